// Axes for the workspace's SVG charts: numbers on a linear (or, across decades, log) scale;
// anything else as ordered categories.

import { formatSig } from "@/lib/numbers";

import { compareValues } from "./groups";

export interface Tick {
  at: number; // 0..1 along the axis
  label: string;
}

export interface Axis {
  kind: "linear" | "log" | "category";
  /** where a value sits, 0..1; null for a value this axis has no place for */
  place: (value: string | number | null | undefined) => number | null;
  ticks: Tick[];
}

/** Round-number ticks between lo and hi (about `count` of them). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let i = Math.ceil(lo / step); i * step <= hi + step * 1e-9; i++) out.push(i === 0 ? 0 : Number((i * step).toPrecision(12)));
  return out;
}

/** The axis' ends, labelled with their values, and the round numbers between not too close to them:
 *  a narrow range (0.951..0.958) still shows where it starts and ends. */
function endsAndBetween(lo: number, hi: number): Tick[] {
  const inner = niceTicks(lo, hi, 4)
    .map((t) => ({ at: (t - lo) / (hi - lo), label: formatSig(t, 3) }))
    .filter((t) => t.at > 0.12 && t.at < 0.88);
  return [{ at: 0, label: formatSig(lo, 3) }, ...inner, { at: 1, label: formatSig(hi, 3) }];
}

function asNumber(value: string | number | null | undefined): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (value.trim() === "") return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

/** An axis fitted to `values`: numeric when every present value is a number, else categories;
 *  with `allowLog`, positive numbers spanning a decade or more are on a log axis. */
export function axisFor(values: (string | number | null | undefined)[], allowLog = false): Axis {
  const present = values.filter((v): v is string | number => v !== null && v !== undefined && v !== "");
  const numbers = present.map(asNumber);
  if (present.length > 0 && numbers.every((n) => n !== null)) {
    const ns = numbers as number[];
    let lo = Math.min(...ns), hi = Math.max(...ns);
    // Learning rates and the like span decades: evenly spread on a log axis, bunched on a linear one.
    if (allowLog && lo > 0 && hi / lo >= 10) {
      const [a, b] = [Math.log10(lo), Math.log10(hi)];
      const ticks: Tick[] = [];
      for (let e = Math.ceil(a); e <= Math.floor(b); e++) ticks.push({ at: (e - a) / (b - a), label: formatSig(10 ** e, 3) });
      // less than two decades: the ends are labelled too, or one tick would be all there is
      if (ticks.length < 3) ticks.push({ at: 0, label: formatSig(lo, 3) }, { at: 1, label: formatSig(hi, 3) });
      return {
        kind: "log",
        place: (v) => {
          const n = asNumber(v);
          return n === null || n <= 0 ? null : (Math.log10(n) - a) / (b - a);
        },
        ticks,
      };
    }
    if (lo === hi) {
      lo -= Math.abs(lo) * 0.1 || 1;
      hi += Math.abs(hi) * 0.1 || 1;
    }
    return {
      kind: "linear",
      place: (v) => {
        const n = asNumber(v);
        return n === null ? null : (n - lo) / (hi - lo);
      },
      ticks: endsAndBetween(lo, hi),
    };
  }
  const categories = [...new Set(present.map(String))].sort(compareValues);
  const at = (i: number) => (categories.length === 1 ? 0.5 : i / (categories.length - 1));
  // Too many categories to label each: every n-th, so labels never overlap.
  const every = Math.max(1, Math.ceil(categories.length / 8));
  return {
    kind: "category",
    place: (v) => {
      if (v === null || v === undefined) return null;
      const i = categories.indexOf(String(v));
      return i < 0 ? null : at(i);
    },
    ticks: categories.flatMap((c, i) => (i % every === 0 ? [{ at: at(i), label: c.length > 14 ? `${c.slice(0, 13)}…` : c }] : [])),
  };
}

/** A colour from blue (low) through to orange (high) for 0..1. */
export function rampColour(t: number): string {
  const x = Math.max(0, Math.min(1, t));
  const hue = 230 - 200 * x;
  return `hsl(${hue}, 75%, ${45 - 5 * Math.sin(Math.PI * x)}%)`;
}
