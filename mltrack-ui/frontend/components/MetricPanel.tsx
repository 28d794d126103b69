"use client";

// Every metric of some runs, with one x-axis choice for the whole grid.

import { useState } from "react";

import { type XAxis, X_LABELS } from "./LineChart";
import { MetricChart } from "./MetricChart";

interface Props {
  metricKeys: string[];
  runIds: string[];
  runLabels: Record<string, string>;
  refreshMs?: number | null;
}

export function MetricPanel({ metricKeys, runIds, runLabels, refreshMs = null }: Props) {
  const [axis, setAxis] = useState<XAxis>("step");
  if (metricKeys.length === 0) return <p className="muted">No metrics logged.</p>;
  return (
    <>
      <div className="toolbar">
        <label className="muted">
          x axis{" "}
          <select value={axis} onChange={(e) => setAxis(e.target.value as XAxis)} aria-label="x axis" data-testid="x-axis">
            {(Object.keys(X_LABELS) as XAxis[]).map((a) => (
              <option key={a} value={a}>
                {X_LABELS[a]}
              </option>
            ))}
          </select>
        </label>
      </div>
      <div className="charts">
        {metricKeys.map((key) => (
          <MetricChart key={key} metricKey={key} runIds={runIds} runLabels={runLabels} axis={axis} refreshMs={refreshMs} />
        ))}
      </div>
    </>
  );
}
