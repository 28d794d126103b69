"use client";

// One metric with runs grouped: each group's mean line over its min-max band (SVG).

import { useMemo } from "react";

import { formatSig } from "@/lib/numbers";
import type { Series } from "@/lib/types";

import { band, type Band, type Group } from "./groups";
import { niceTicks } from "./scale";

const W = 480, H = 240;
const PAD = { left: 56, right: 12, top: 10, bottom: 36 };

interface Props {
  groups: Group[];
  series: Series[];
}

export function GroupBands({ groups, series }: Props) {
  const bands = useMemo(() => {
    const byRun = new Map(series.map((s) => [s.run_id, s]));
    return groups.map((g) => ({ group: g, band: band(g.runIds.flatMap((id) => byRun.get(id) ?? [])) }));
  }, [groups, series]);
  const bounds = useMemo(() => {
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const { band: b } of bands) {
      for (let i = 0; i < b.steps.length; i++) {
        x0 = Math.min(x0, b.steps[i] as number);
        x1 = Math.max(x1, b.steps[i] as number);
        y0 = Math.min(y0, b.min[i] as number);
        y1 = Math.max(y1, b.max[i] as number);
      }
    }
    if (!Number.isFinite(x0)) return null;
    if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
    const margin = y0 === y1 ? Math.abs(y0) * 0.1 || 1 : (y1 - y0) * 0.05;
    return { x0, x1, y0: y0 - margin, y1: y1 + margin };
  }, [bands]);
  if (!bounds) return <p className="muted">no values to group</p>;
  const plotW = W - PAD.left - PAD.right, plotH = H - PAD.top - PAD.bottom;
  const x = (v: number) => PAD.left + ((v - bounds.x0) / (bounds.x1 - bounds.x0)) * plotW;
  const y = (v: number) => PAD.top + (1 - (v - bounds.y0) / (bounds.y1 - bounds.y0)) * plotH;
  const path = (b: Band, values: number[]) => values.map((v, i) => `${i ? "L" : "M"}${x(b.steps[i] as number).toFixed(1)},${y(v).toFixed(1)}`).join("");
  const area = (b: Band) =>
    `${path(b, b.max)}${b.min
      .map((_, j) => {
        const i = b.min.length - 1 - j;
        return `L${x(b.steps[i] as number).toFixed(1)},${y(b.min[i] as number).toFixed(1)}`;
      })
      .join("")}Z`;
  const xTicks = niceTicks(bounds.x0, bounds.x1, 5).filter((t) => Number.isInteger(t));
  return (
    <svg className="ws-svg" viewBox={`0 0 ${W} ${H}`} role="img" data-testid="group-bands">
      {niceTicks(bounds.y0, bounds.y1, 4).map((t) => (
        <g key={`y${t}`}>
          <line x1={PAD.left} x2={W - PAD.right} y1={y(t)} y2={y(t)} className="ws-grid" />
          <text x={PAD.left - 6} y={y(t)} textAnchor="end" dominantBaseline="middle" className="ws-tick">
            {formatSig(t, 4)}
          </text>
        </g>
      ))}
      {xTicks.map((t) => (
        <text key={`x${t}`} x={x(t)} y={H - PAD.bottom + 14} textAnchor="middle" className="ws-tick">
          {formatSig(t, 6)}
        </text>
      ))}
      <text x={PAD.left + plotW / 2} y={H - 6} textAnchor="middle" className="ws-axis-label">
        step
      </text>
      {/* every band first, then every mean line: a later group's band never hides an earlier mean */}
      {bands.map(({ group, band: b }) =>
        b.steps.length === 0 ? null : (
          <path key={group.value} d={area(b)} fill={group.colour} fillOpacity={0.14} stroke="none" data-testid="group-band" data-group={group.value} />
        ),
      )}
      {bands.map(({ group, band: b }) =>
        b.steps.length === 0 ? null : (
          <path key={`m${group.value}`} d={path(b, b.mean)} fill="none" stroke={group.colour} strokeWidth={2} data-testid="group-mean">
            <title>{`${group.label}: mean, band = min..max`}</title>
          </path>
        ),
      )}
    </svg>
  );
}
