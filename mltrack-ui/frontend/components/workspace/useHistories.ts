"use client";

// Every (run, metric) series the workspace draws, asked for in batches the history route accepts
// (at most MAX_SERIES_PER_REQUEST series each). Each batch holds whole metrics where it can, so a
// panel is drawn as soon as its own batch is back rather than after the slowest one.

import { useEffect, useState } from "react";

import { getJson } from "@/lib/api";
import type { Series } from "@/lib/types";

export const MAX_SERIES_PER_REQUEST = 200;
/** Points per series in the grid: a panel is ~400 px wide, so more would not be seen. */
export const GRID_POINTS = 300;

interface Batch {
  runIds: string[];
  keys: string[];
}

export function batches(runIds: string[], keys: string[], limit = MAX_SERIES_PER_REQUEST): Batch[] {
  if (runIds.length === 0 || keys.length === 0) return [];
  const out: Batch[] = [];
  if (runIds.length >= limit) {
    for (const key of keys) {
      for (let i = 0; i < runIds.length; i += limit) out.push({ runIds: runIds.slice(i, i + limit), keys: [key] });
    }
    return out;
  }
  const keysPer = Math.max(1, Math.floor(limit / runIds.length));
  for (let i = 0; i < keys.length; i += keysPer) out.push({ runIds, keys: keys.slice(i, i + keysPer) });
  return out;
}

export interface Histories {
  /** metric key -> its series, one per run that logged it; a key is absent until its batches are in */
  byKey: Record<string, Series[]>;
  error: string | null;
  pending: number;
}

export function useHistories(runIds: string[], keys: string[], maxPoints = GRID_POINTS): Histories {
  const requestKey = JSON.stringify([runIds, keys, maxPoints]);
  const [state, setState] = useState<Histories & { requestKey: string }>({ byKey: {}, error: null, pending: 0, requestKey: "" });

  useEffect(() => {
    const [ids, wanted, points] = JSON.parse(requestKey) as [string[], string[], number];
    const plan = batches(ids, wanted);
    const controller = new AbortController();
    // A key is complete once every batch naming it has answered.
    const waiting = new Map<string, number>();
    for (const b of plan) for (const k of b.keys) waiting.set(k, (waiting.get(k) ?? 0) + 1);
    const collected: Record<string, Series[]> = {};
    // The first answer of this request starts from empty: an older request's panels are not mixed in.
    const current = (old: Histories & { requestKey: string }) =>
      old.requestKey === requestKey ? old : { byKey: {}, error: null, pending: plan.length, requestKey };
    for (const batch of plan) {
      getJson<{ series: Series[] }>(
        "/api/metrics/history",
        { run_ids: batch.runIds.join(","), keys: batch.keys.join(","), max_points: points },
        controller.signal,
      ).then(
        (answer) => {
          const ready: Record<string, Series[]> = {};
          for (const s of answer.series) (collected[s.key] ??= []).push(s);
          for (const k of batch.keys) {
            const left = (waiting.get(k) ?? 1) - 1;
            waiting.set(k, left);
            if (left === 0) ready[k] = collected[k] ?? [];
          }
          setState((old) => {
            const base = current(old);
            return { ...base, byKey: { ...base.byKey, ...ready }, pending: base.pending - 1 };
          });
        },
        (error: unknown) => {
          if (controller.signal.aborted) return;
          const message = error instanceof Error ? error.message : String(error);
          setState((old) => {
            const base = current(old);
            return { ...base, error: message, pending: base.pending - 1 };
          });
        },
      );
    }
    return () => controller.abort();
  }, [requestKey]);

  return state.requestKey === requestKey ? state : { byKey: {}, error: null, pending: 1 };
}
