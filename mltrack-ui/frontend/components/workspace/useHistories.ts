"use client";

// Every (run, metric) series the workspace draws, asked for in batches the history route accepts
// (at most MAX_SERIES_PER_REQUEST series each). Each batch holds whole metrics where it can, so a
// panel is drawn as soon as its own batch is back rather than after the slowest one. Showing,
// hiding or reordering panels asks only for metrics not yet loaded for the same runs.

import { useEffect, useRef, useState } from "react";

import { getJson } from "@/lib/api";
import { GRID_POINTS } from "@/lib/earlyFetch";
import type { Series } from "@/lib/types";

export const MAX_SERIES_PER_REQUEST = 200;

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
  // The first panel alone first: it is drawn while the server cuts the others.
  out.push({ runIds, keys: keys.slice(0, 1) });
  const keysPer = Math.max(1, Math.floor(limit / runIds.length));
  for (let i = 1; i < keys.length; i += keysPer) out.push({ runIds, keys: keys.slice(i, i + keysPer) });
  return out;
}

export interface Histories {
  /** metric key -> its series, one per run that logged it; a key is absent until its batches are in */
  byKey: Record<string, Series[]>;
  error: string | null;
}

const EMPTY: Histories = { byKey: {}, error: null };

/** With `refreshMs` (a shown run is RUNNING) every shown series is asked for again that often; the
 *  panels keep what they show until the new answer is in (the server's cache answers unchanged
 *  series without reading them). */
export function useHistories(runIds: string[], keys: string[], refreshMs: number | null = null, maxPoints = GRID_POINTS): Histories {
  const runsKey = JSON.stringify([runIds, maxPoints]);
  const keysKey = JSON.stringify(keys); // in panel order: the first panel is asked for first
  const [state, setState] = useState<Histories & { runsKey: string }>({ ...EMPTY, runsKey: "" });
  const [generation, setGeneration] = useState(0);
  // keys asked for (or answered) for `runsKey` in this generation: a panel shown again is not fetched again
  const asked = useRef<{ runsKey: string; generation: number; keys: Set<string> }>({ runsKey: "", generation: 0, keys: new Set() });

  useEffect(() => {
    if (!refreshMs) return;
    const timer = window.setInterval(() => setGeneration((g) => g + 1), refreshMs);
    return () => window.clearInterval(timer);
  }, [refreshMs]);

  useEffect(() => {
    const [ids, points] = JSON.parse(runsKey) as [string[], number];
    if (asked.current.runsKey !== runsKey || asked.current.generation !== generation) {
      asked.current = { runsKey, generation, keys: new Set() };
    }
    const sent = asked.current;
    const missing = (JSON.parse(keysKey) as string[]).filter((k) => !sent.keys.has(k));
    const plan = batches(ids, missing);
    const controller = new AbortController();
    const waiting = new Map<string, number>();
    for (const b of plan) for (const k of b.keys) waiting.set(k, (waiting.get(k) ?? 0) + 1);
    for (const k of missing) sent.keys.add(k);
    const collected: Record<string, Series[]> = {};
    const done = new Set<string>();
    // An answer for other runs than the state's starts a fresh state: older panels are not mixed in.
    const current = (old: Histories & { runsKey: string }) => (old.runsKey === runsKey ? old : { ...EMPTY, runsKey });
    const send = (batch: Batch) =>
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
            if (left === 0) {
              ready[k] = collected[k] ?? [];
              done.add(k);
            }
          }
          setState((old) => {
            const base = current(old);
            return { ...base, byKey: { ...base.byKey, ...ready } };
          });
        },
        (error: unknown) => {
          if (controller.signal.aborted) return;
          const message = error instanceof Error ? error.message : String(error);
          setState((old) => ({ ...current(old), error: message }));
        },
      );
    // The first batch goes alone and the rest once it is back: sent together, they would share the
    // server's CPU and every panel, the first one too, would arrive as late as the last.
    const [first, ...rest] = plan;
    if (first) void send(first).finally(() => rest.forEach((batch) => void send(batch)));
    return () => {
      controller.abort();
      // what was cut off is asked again by the next run of this effect
      for (const k of missing) if (!done.has(k)) sent.keys.delete(k);
    };
  }, [runsKey, keysKey, generation]);

  return state.runsKey === runsKey ? state : EMPTY;
}
