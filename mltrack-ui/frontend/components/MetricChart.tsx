"use client";

// One metric across one or more runs: the server sends each series cut to a point budget;
// zooming asks again for the visible step range only, so detail comes back as you zoom in.

import { useMemo, useState } from "react";

import { useApi } from "@/lib/useApi";
import type { Series } from "@/lib/types";

import { ErrorNote } from "./Common";
import { type ChartSeries, LineChart, PALETTE } from "./LineChart";

const POINTS = 1000;

/** Exponential moving average with TensorBoard's debiasing, so early steps are not pulled to 0. */
export function smooth(values: number[], weight: number): number[] {
  if (weight <= 0) return values;
  const out = new Array<number>(values.length);
  let last = 0;
  for (let i = 0; i < values.length; i++) {
    last = last * weight + (1 - weight) * (values[i] as number);
    out[i] = last / (1 - weight ** (i + 1));
  }
  return out;
}

interface Props {
  metricKey: string;
  runIds: string[];
  runNames: Record<string, string>;
}

export function MetricChart({ metricKey, runIds, runNames }: Props) {
  const [range, setRange] = useState<[number, number] | null>(null);
  const [weight, setWeight] = useState(0);
  const { data, error } = useApi<{ series: Series[] }>("/api/metrics/history", {
    run_ids: runIds.join(","),
    keys: metricKey,
    max_points: POINTS,
    step_min: range?.[0],
    step_max: range?.[1],
  });
  const series: ChartSeries[] = useMemo(
    () =>
      (data?.series ?? []).map((s, i) => ({
        label: runNames[s.run_id] ?? s.run_id.slice(0, 8),
        color: PALETTE[i % PALETTE.length] as string,
        steps: s.steps,
        values: smooth(s.values, weight),
      })),
    [data, runNames, weight],
  );
  const total = (data?.series ?? []).reduce((sum, s) => sum + s.total, 0);
  const shipped = (data?.series ?? []).reduce((sum, s) => sum + s.steps.length, 0);

  return (
    <div className="card metric-chart" data-testid="metric-chart" data-key={metricKey}>
      <div className="chart-head">
        <h3>{metricKey}</h3>
        <label className="muted">
          smoothing{" "}
          <input
            type="range"
            min={0}
            max={0.99}
            step={0.01}
            value={weight}
            onChange={(e) => setWeight(Number(e.target.value))}
            aria-label={`smoothing for ${metricKey}`}
          />{" "}
          {weight.toFixed(2)}
        </label>
        {range && (
          <button type="button" onClick={() => setRange(null)}>
            reset zoom
          </button>
        )}
        <span className="muted" data-testid="chart-points">
          {shipped} of {total} points
        </span>
      </div>
      <ErrorNote error={error} />
      <LineChart series={series} xRange={range} onZoom={setRange} />
      {series.length > 1 && (
        <div className="legend">
          {series.map((s, i) => (
            <span key={i} style={{ color: s.color }}>
              ■ {s.label}
            </span>
          ))}
        </div>
      )}
    </div>
  );
}
