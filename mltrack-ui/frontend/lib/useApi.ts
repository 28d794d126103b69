"use client";

import { useEffect, useState } from "react";

import { getJson } from "./api";

type Query = Parameters<typeof getJson>[1];

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
  /** when the shown data arrived (epoch ms), for "updated N s ago" */
  updatedAt: number | null;
}

export interface Polling {
  /** ask again every this many ms while set (a live run); null or 0 asks once */
  refreshMs?: number | null;
}

/** Fetch `path` whenever it or the query changes; stale answers are dropped (aborted).
 *  With `refreshMs`, the same request is repeated and the previous data stays shown meanwhile. */
export function useApi<T>(path: string | null, query: Query = {}, polling: Polling = {}): Loaded<T> {
  const key = path === null ? null : JSON.stringify([path, query]);
  const refreshMs = polling.refreshMs ?? 0;
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
    const load = () => {
      getJson<T>(url, params, controller.signal).then(
        (data) => setState({ data, error: null, loading: false, updatedAt: Date.now(), key }),
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
      controller.abort();
    };
  }, [key, refreshMs]);
  if (state.key !== key) {
    return { data: state.key === null ? null : state.data, error: null, loading: key !== null, updatedAt: null };
  }
  return state;
}
