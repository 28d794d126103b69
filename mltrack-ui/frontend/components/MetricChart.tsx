"use client";

// One metric across one or more runs: the server sends each series cut to a point budget;
// zooming asks again for the visible step range only, so detail comes back as you zoom in.
// A metric logged once or twice per run is a value (one run) or bars (several), not a chart.

import { useMemo, useState } from "react";

import { runColour, runColours } from "@/lib/runColour";
import type { Series } from "@/lib/types";
import { useApi } from "@/lib/useApi";

import { ErrorNote } from "./Common";
import { type ChartSeries, LineChart, type XAxis } from "./LineChart";
import { Num } from "./Num";

/** How often a chart showing sampled series asks for their exact cut, and for how long at most. */
const SAMPLED_REFRESH_MS = 3_000;
const REFINE_FOR_MS = 120_000;

/** Smoothing means nothing on a handful of points. */
export const MIN_POINTS_TO_SMOOTH = 10;
/** At most this many points per series are drawn as values or bars instead of lines. */
export const FEW_POINTS = 2;

/** Points per series: fewer when many runs share a chart, so a 100-run compare stays light. */
export function pointBudget(runs: number): number {
  return Math.max(200, Math.min(1000, Math.floor(40_000 / Math.max(1, runs))));
}

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

function xsOf(series: Series, axis: XAxis): number[] {
  if (axis === "step" || !series.timestamps) return series.steps;
  if (axis === "time") return series.timestamps;
  const start = series.timestamps[0] ?? 0;
  return series.timestamps.map((t) => (t - start) / 1000);
}

interface Props {
  metricKey: string;
  runIds: string[];
  runLabels: Record<string, string>;
  axis: XAxis;
  /** poll every this many ms (a live run), else null */
  refreshMs?: number | null;
}

export function Bars({ series, labels, colours }: { series: Series[]; labels: Record<string, string>; colours: Record<string, string> }) {
  const last = series.map((s) => ({ s, value: s.values[s.values.length - 1] }));
  const scale = Math.max(...last.map((l) => Math.abs(l.value ?? 0)), Number.MIN_VALUE);
  return (
    <div className="bars" data-testid="metric-bars">
      {last.map(({ s, value }) => (
        <div className="bar-row" key={s.run_id}>
          <span className="bar-label" title={s.run_id}>
            {labels[s.run_id] ?? s.run_id.slice(0, 8)}
          </span>
          <span className="bar-track">
            <span
              className="bar"
              style={{ width: `${value === undefined ? 0 : (Math.abs(value) / scale) * 100}%`, background: colours[s.run_id] ?? runColour(s.run_id) }}
            />
          </span>
          <span className="bar-value">{value === undefined ? "—" : <Num value={value} />}</span>
        </div>
      ))}
    </div>
  );
}

export function MetricChart({ metricKey, runIds, runLabels, axis, refreshMs = null }: Props) {
  const [range, setRange] = useState<[number, number] | null>(null);
  const [weight, setWeight] = useState(0);
  const { data, error } = useApi<{ series: Series[] }>(
    "/api/metrics/history",
    {
      run_ids: runIds.join(","),
      keys: metricKey,
      max_points: pointBudget(runIds.length),
      step_min: axis === "step" ? range?.[0] : undefined,
      step_max: axis === "step" ? range?.[1] : undefined,
    },
    // A first open of many long series is sampled; the server cuts them exactly in the
    // background, so the chart asks again until they are (for at most REFINE_FOR_MS).
    { refreshMs, again: (answer, since) => (answer.series.some((s) => s.sampled) && since < REFINE_FOR_MS ? SAMPLED_REFRESH_MS : null) },
  );
  const sampled = (data?.series ?? []).some((s) => s.sampled);
  const loaded = useMemo(() => (data?.series ?? []).filter((s) => s.total > 0), [data]);
  // over every run of the chart, not only those that logged this metric: the page's colours
  const colours = useMemo(() => runColours(runIds), [runIds]);
  const longest = loaded.reduce((most, s) => Math.max(most, s.total), 0);
  const few = data !== null && longest <= FEW_POINTS && range === null;
  const smoothing = longest >= MIN_POINTS_TO_SMOOTH ? weight : 0;
  const series: ChartSeries[] = useMemo(
    () =>
      loaded.map((s) => ({
        label: runLabels[s.run_id] ?? s.run_id.slice(0, 8),
        color: colours[s.run_id] ?? runColour(s.run_id),
        xs: xsOf(s, axis),
        values: smooth(s.values, smoothing),
      })),
    [loaded, runLabels, smoothing, axis, colours],
  );
  const total = (data?.series ?? []).reduce((sum, s) => sum + s.total, 0);
  const shipped = (data?.series ?? []).reduce((sum, s) => sum + s.steps.length, 0);
  // A value alone only on a run's own page; in a compare even one run's value is a labelled bar.
  const single = loaded.length === 1 && runIds.length === 1 ? loaded[0] : undefined;

  return (
    <div className="card metric-chart" data-testid="metric-chart" data-key={metricKey} data-mode={few ? "value" : "chart"}>
      <div className="chart-head">
        <h3 title={metricKey}>{metricKey}</h3>
        {!few && longest >= MIN_POINTS_TO_SMOOTH && (
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
        )}
        {range && (
          <button type="button" onClick={() => setRange(null)}>
            reset zoom
          </button>
        )}
        {!few && (
          <span className="muted" data-testid="chart-points" title={`${shipped} of ${total} points drawn${sampled ? " (sampled: spikes may be missing until the exact cut arrives, in a few seconds)" : ""}`}>
            {shipped} of {total} points{sampled ? ", sampled" : ""}
          </span>
        )}
      </div>
      <ErrorNote error={error} />
      {few && single && (
        <div className="metric-value" data-testid="metric-value">
          <span className="big">
            <Num value={single.values[single.values.length - 1]} />
          </span>
          <span className="muted">
            {single.total === 1 ? `logged once, at step ${single.steps[0]}` : `last of ${single.total} values, at step ${single.steps[single.steps.length - 1]}`}
          </span>
        </div>
      )}
      {few && single === undefined && loaded.length > 0 && <Bars series={loaded} labels={runLabels} colours={colours} />}
      {few && loaded.length === 0 && <p className="muted">no finite values</p>}
      {!few && <LineChart series={series} axis={axis} xRange={axis === "step" ? range : null} onZoom={axis === "step" ? setRange : null} />}
      {!few && series.length > 1 && (
        <div className="legend">
          {series.slice(0, 30).map((s, i) => (
            <span key={i} style={{ color: s.color }} data-testid="legend-entry">
              ■ {s.label}
            </span>
          ))}
          {series.length > 30 && <span className="muted">+{series.length - 30} more</span>}
        </div>
      )}
      {few && single === undefined && loaded.length > 0 && (
        <p className="muted">last value per run (each logged {longest === 1 ? "once" : "at most twice"})</p>
      )}
    </div>
  );
}

