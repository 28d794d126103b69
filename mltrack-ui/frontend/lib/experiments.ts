"use client";

import type { Experiment } from "./types";
import { useApi } from "./useApi";

/** experiment id -> name, for pages that show runs of several experiments. */
export function useExperimentNames(): Record<string, string> {
  const { data } = useApi<Experiment[]>("/api/experiments");
  const names: Record<string, string> = {};
  for (const e of data ?? []) names[e.experiment_id] = e.name;
  return names;
}
