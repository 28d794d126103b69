"use client";

// A metric's latest value against a param, one dot per run in the run's own colour (SVG).

import { formatSig } from "@/lib/numbers";
import { runColours } from "@/lib/runColour";
import type { RunRow } from "@/lib/types";

import { axisFor } from "./scale";

const W = 480, H = 300;
const PAD = { left: 64, right: 16, top: 12, bottom: 44 };

interface Props {
  runs: RunRow[];
  labels: Record<string, string>;
  param: string;
  metric: string;
}

export function Scatter({ runs, labels, param, metric }: Props) {
  const colours = runColours(runs.map((r) => r.run_id));
  const xAxis = axisFor(runs.map((r) => r.params[param]), true);
  const yAxis = axisFor(runs.map((r) => r.metrics[metric]));
  const plotW = W - PAD.left - PAD.right, plotH = H - PAD.top - PAD.bottom;
  // a little room inside the frame, so the dots at either end are not cut by it
  const inset = (t: number) => 0.03 + 0.94 * t;
  const points = runs.flatMap((run) => {
    const px = xAxis.place(run.params[param]), py = yAxis.place(run.metrics[metric]);
    return px === null || py === null ? [] : [{ run, x: PAD.left + inset(px) * plotW, y: PAD.top + (1 - inset(py)) * plotH }];
  });
  return (
    <svg className="ws-svg" viewBox={`0 0 ${W} ${H}`} role="img" data-testid="scatter" data-axis={xAxis.kind}>
      {yAxis.ticks.map((t) => (
        <g key={`y${t.label}`}>
          <line x1={PAD.left} x2={W - PAD.right} y1={PAD.top + (1 - inset(t.at)) * plotH} y2={PAD.top + (1 - inset(t.at)) * plotH} className="ws-grid" />
          <text x={PAD.left - 6} y={PAD.top + (1 - inset(t.at)) * plotH} textAnchor="end" dominantBaseline="middle" className="ws-tick">
            {t.label}
          </text>
        </g>
      ))}
      {xAxis.ticks.map((t) => (
        <text key={`x${t.label}`} x={PAD.left + inset(t.at) * plotW} y={H - PAD.bottom + 16} textAnchor="middle" className="ws-tick">
          {t.label}
        </text>
      ))}
      <text x={PAD.left + plotW / 2} y={H - 8} textAnchor="middle" className="ws-axis-label">
        {param}
        {xAxis.kind === "log" ? " (log)" : ""}
      </text>
      <text x={12} y={PAD.top + plotH / 2} textAnchor="middle" className="ws-axis-label" transform={`rotate(-90 12 ${PAD.top + plotH / 2})`}>
        {metric} (latest)
      </text>
      {points.map(({ run, x, y }) => (
        <circle key={run.run_id} cx={x} cy={y} r={4} fill={colours[run.run_id]} fillOpacity={0.8} data-testid="scatter-point">
          <title>{`${labels[run.run_id] ?? run.run_id}: ${param}=${run.params[param] ?? ""}, ${metric}=${formatSig(run.metrics[metric])}`}</title>
        </circle>
      ))}
    </svg>
  );
}
