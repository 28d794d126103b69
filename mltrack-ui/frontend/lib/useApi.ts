"use client";

import { useEffect, useRef, useState } from "react";

import { getJson } from "./api";

type Query = Parameters<typeof getJson>[1];

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
  /** when the shown data arrived (epoch ms), for "updated N s ago" */
  updatedAt: number | null;
}

export interface Polling<T = unknown> {
  /** ask again every this many ms while set (a live run); null or 0 asks once */
  refreshMs?: number | null;
  /** after each answer: ask once more after this many ms, or null to stop (`sinceFirstMs`: since
   *  the first answer to this request, so a caller can give up) */
  again?: (data: T, sinceFirstMs: number) => number | null;
}

/** Fetch `path` whenever it or the query changes; stale answers are dropped (aborted).
 *  With `refreshMs`, the same request is repeated and the previous data stays shown meanwhile. */
export function useApi<T>(path: string | null, query: Query = {}, polling: Polling<T> = {}): Loaded<T> {
  const key = path === null ? null : JSON.stringify([path, query]);
  const refreshMs = polling.refreshMs ?? 0;
  // the caller's latest `again` (a new function each render must not restart the requests)
  const again = useRef(polling.again);
  useEffect(() => {
    again.current = polling.again;
  });
  const [state, setState] = useState<Loaded<T> & { key: string | null }>({
    data: null,
    error: null,
    loading: path !== null,
    updatedAt: null,
    key: null,
  });
  useEffect(() => {
    if (key === null) return;
    const [url, params] = JSON.parse(key) as [string, Query];
    let controller = new AbortController();
    let timer: number | undefined;
    let followUp: number | undefined;
    let firstAnswer: number | null = null;
    const load = () => {
      getJson<T>(url, params, controller.signal).then(
        (data) => {
          const now = Date.now();
          firstAnswer ??= now;
          setState({ data, error: null, loading: false, updatedAt: now, key });
          const wait = again.current?.(data, now - firstAnswer);
          if (wait != null && !controller.signal.aborted) {
            window.clearTimeout(followUp);
            followUp = window.setTimeout(load, wait);
          }
        },
        (error: unknown) => {
          if (controller.signal.aborted) return;
          const message = error instanceof Error ? error.message : String(error);
          setState((old) => ({ ...old, data: old.key === key ? old.data : null, error: message, loading: false, key }));
        },
      );
    };
    load();
    if (refreshMs > 0) {
      timer = window.setInterval(() => {
        controller.abort();
        controller = new AbortController();
        load();
      }, refreshMs);
    }
    return () => {
      window.clearInterval(timer);
      window.clearTimeout(followUp);
      controller.abort();
    };
  }, [key, refreshMs]);
  if (state.key !== key) {
    return { data: state.key === null ? null : state.data, error: null, loading: key !== null, updatedAt: null };
  }
  return state;
}
