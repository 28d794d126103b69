// Group-by for the workspace: runs grouped by a param or tag value, and each group's curve as
// its mean with a min-max band, computed here per step bin over the group's runs.

import type { RunRow, Series } from "@/lib/types";

/** Distinct, readable on white; groups are few, so a fixed palette beats hashed colours. */
export const GROUP_COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f", "#7c2d12", "#475569"];

export interface Group {
  value: string;
  label: string;
  colour: string;
  runIds: string[];
}

export function groupValue(run: RunRow, by: string): string {
  const [kind, ...rest] = by.split(".");
  const key = rest.join(".");
  const values = kind === "tags" ? run.tags : run.params;
  return values[key] ?? "(none)";
}

/** Numbers compare as numbers ("16" before "128"), other text as text. */
export function compareValues(a: string, b: string): number {
  const x = Number(a), y = Number(b);
  if (a.trim() !== "" && b.trim() !== "" && Number.isFinite(x) && Number.isFinite(y)) return x - y;
  return a.localeCompare(b);
}

export function groupRuns(runs: RunRow[], by: string): Group[] {
  const found = new Map<string, string[]>();
  for (const run of runs) {
    const value = groupValue(run, by);
    found.set(value, [...(found.get(value) ?? []), run.run_id]);
  }
  const key = by.split(".").slice(1).join(".");
  return [...found.keys()].sort(compareValues).map((value, i) => {
    const ids = found.get(value) ?? [];
    return {
      value,
      label: `${key}=${value} (${ids.length} run${ids.length === 1 ? "" : "s"})`,
      colour: GROUP_COLOURS[i % GROUP_COLOURS.length] as string,
      runIds: ids,
    };
  });
}

export interface Band {
  steps: number[];
  mean: number[];
  min: number[];
  max: number[];
}

/**
 * The group's band over `bins` step bins: each run's points in a bin are averaged first (its
 * series were cut on the server, at steps that differ from run to run), then the runs' values
 * give the bin's mean, min and max. A bin no run has a point in is left out.
 */
export function band(series: Series[], bins = 120): Band {
  let lo = Infinity, hi = -Infinity;
  for (const s of series) {
    if (s.steps.length === 0) continue;
    lo = Math.min(lo, s.steps[0] as number);
    hi = Math.max(hi, s.steps[s.steps.length - 1] as number);
  }
  const out: Band = { steps: [], mean: [], min: [], max: [] };
  if (!Number.isFinite(lo)) return out;
  const count = Math.max(1, Math.min(bins, hi - lo + 1));
  const width = (hi - lo + 1) / count;
  const sums = Array.from({ length: count }, () => ({ total: 0, n: 0, min: Infinity, max: -Infinity, step: 0 }));
  for (const s of series) {
    const own = new Float64Array(count), seen = new Uint32Array(count), at = new Float64Array(count);
    for (let i = 0; i < s.steps.length; i++) {
      const b = Math.min(count - 1, Math.floor(((s.steps[i] as number) - lo) / width));
      own[b] = (own[b] as number) + (s.values[i] as number);
      at[b] = (at[b] as number) + (s.steps[i] as number);
      seen[b] = (seen[b] as number) + 1;
    }
    for (let b = 0; b < count; b++) {
      const n = seen[b] as number;
      if (n === 0) continue;
      const value = (own[b] as number) / n;
      const bin = sums[b] as (typeof sums)[number];
      bin.total += value;
      bin.step += (at[b] as number) / n;
      bin.n += 1;
      bin.min = Math.min(bin.min, value);
      bin.max = Math.max(bin.max, value);
    }
  }
  for (const bin of sums) {
    if (bin.n === 0) continue;
    out.steps.push(bin.step / bin.n);
    out.mean.push(bin.total / bin.n);
    out.min.push(bin.min);
    out.max.push(bin.max);
  }
  return out;
}
