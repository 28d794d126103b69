"use client";

// Parallel coordinates: one vertical axis per chosen param and a last one for a metric's latest
// value; one polyline per run, coloured by that metric (blue low, orange high). SVG.

import { formatSig } from "@/lib/numbers";
import type { RunRow } from "@/lib/types";

import { axisFor, rampColour } from "./scale";

const H = 320;
const PAD = { left: 48, right: 64, top: 40, bottom: 24 };
const AXIS_GAP = 150;

interface Props {
  runs: RunRow[];
  labels: Record<string, string>;
  params: string[];
  metric: string;
}

export function ParallelCoords({ runs, labels, params, metric }: Props) {
  const columns: { name: string; value: (r: RunRow) => string | number | null | undefined }[] = [
    ...params.map((p) => ({ name: p, value: (r: RunRow) => r.params[p] })),
    { name: metric, value: (r: RunRow) => r.metrics[metric] },
  ];
  const axes = columns.map((c, i) => axisFor(runs.map((r) => c.value(r)), i < params.length));
  const W = PAD.left + PAD.right + AXIS_GAP * Math.max(1, columns.length - 1);
  const plotH = H - PAD.top - PAD.bottom;
  const ax = (i: number) => PAD.left + i * AXIS_GAP;
  const ay = (t: number) => PAD.top + (1 - t) * plotH;
  const metricAxis = axes[axes.length - 1];
  const lines = runs.flatMap((run) => {
    const places = columns.map((c, i) => axes[i]?.place(c.value(run)) ?? null);
    const last = places[places.length - 1];
    if (last === null || last === undefined) return []; // no value of the metric: nothing to colour it by
    const d = places
      .map((p, i) => (p === null || p === undefined ? null : `${ax(i).toFixed(1)},${ay(p).toFixed(1)}`))
      .filter((p) => p !== null)
      .map((p, i) => `${i ? "L" : "M"}${p}`)
      .join("");
    return [{ run, d, colour: rampColour(last) }];
  });
  return (
    <div className="ws-scroll">
      <svg className="ws-svg" viewBox={`0 0 ${W} ${H}`} style={{ minWidth: `${Math.min(W, 900)}px` }} role="img" data-testid="parallel-coords">
        {lines.map(({ run, d, colour }) => (
          <path key={run.run_id} d={d} fill="none" stroke={colour} strokeOpacity={0.55} strokeWidth={1.2} data-testid="parallel-line">
            <title>{`${labels[run.run_id] ?? run.run_id}: ${metric}=${formatSig(run.metrics[metric])}`}</title>
          </path>
        ))}
        {columns.map((c, i) => (
          <g key={c.name} data-testid="parallel-axis">
            <line x1={ax(i)} x2={ax(i)} y1={PAD.top} y2={PAD.top + plotH} className="ws-axis" />
            <text x={ax(i)} y={PAD.top - 20} textAnchor="middle" className="ws-axis-label">
              {c.name.length > 22 ? `${c.name.slice(0, 21)}…` : c.name}
              {axes[i]?.kind === "log" ? " (log)" : ""}
              <title>{c.name}</title>
            </text>
            {(axes[i]?.ticks ?? []).map((t) => (
              <text key={t.label} x={ax(i) + 5} y={ay(t.at)} dominantBaseline="middle" className="ws-tick ws-halo">
                {t.label}
              </text>
            ))}
          </g>
        ))}
      </svg>
      {metricAxis && lines.length === 0 && <p className="muted">no run has a value of {metric}</p>}
    </div>
  );
}
