"use client";

import { useEffect, useState } from "react";

import { getJson } from "./api";

type Query = Parameters<typeof getJson>[1];

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
}

/** Fetch `path` whenever it or the query changes; stale answers are dropped (aborted). */
export function useApi<T>(path: string | null, query: Query = {}): Loaded<T> {
  const key = path === null ? null : JSON.stringify([path, query]);
  const [state, setState] = useState<Loaded<T> & { key: string | null }>({
    data: null,
    error: null,
    loading: path !== null,
    key: null,
  });
  useEffect(() => {
    if (key === null) return;
    const [url, params] = JSON.parse(key) as [string, Query];
    const controller = new AbortController();
    getJson<T>(url, params, controller.signal).then(
      (data) => setState({ data, error: null, loading: false, key }),
      (error: unknown) => {
        if (controller.signal.aborted) return;
        setState({ data: null, error: error instanceof Error ? error.message : String(error), loading: false, key });
      },
    );
    return () => controller.abort();
  }, [key]);
  if (state.key !== key) return { data: state.key === null ? null : state.data, error: null, loading: key !== null };
  return state;
}
