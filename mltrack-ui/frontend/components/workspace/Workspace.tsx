"use client";

// The runs page's charts workspace: a panel grid of every metric of the shown runs (the
// selected ones when some are), group-by with mean and min-max bands, parallel coordinates and
// a scatter. Its choices live in the page's view (the URL); the page owns that state.

import { useMemo, useState } from "react";

import { ErrorNote } from "@/components/Common";
import type { RunRow, RunsPage } from "@/lib/types";
import { useApi } from "@/lib/useApi";

import { groupRuns } from "./groups";
import { PanelChooser } from "./PanelChooser";
import { PanelGrid } from "./PanelGrid";
import { runIdsFilter } from "./runFilter";
import { ParallelCoords } from "./ParallelCoords";
import { Scatter } from "./Scatter";
import { useHistories } from "./useHistories";
import type { PageView } from "./viewState";

/** How often the panels are asked again while a shown run is RUNNING. */
const LIVE_REFRESH_MS = 3_000;
/** Parallel coordinates start with this many params; more can be chosen. */
const DEFAULT_AXES = 4;

interface Props {
  runs: RunRow[];
  labels: Record<string, string>;
  columns: { params: string[]; metrics: string[]; tags: string[] };
  view: PageView;
  onChange: (patch: Partial<PageView>) => void;
}

function MultiChoice({ all, chosen, onChange, label }: { all: string[]; chosen: string[]; onChange: (c: string[]) => void; label: string }) {
  return (
    <details className="ws-multi">
      <summary>
        {label}: {chosen.length ? chosen.join(", ") : "none"}
      </summary>
      <div className="ws-multi-list">
        {all.map((key) => (
          <label key={key} title={key}>
            <input
              type="checkbox"
              checked={chosen.includes(key)}
              onChange={() => onChange(chosen.includes(key) ? chosen.filter((k) => k !== key) : [...chosen, key])}
            />
            <span>{key}</span>
          </label>
        ))}
      </div>
    </details>
  );
}

export function Workspace({ runs, labels, columns, view, onChange }: Props) {
  const [choosing, setChoosing] = useState(false);
  const metricKeys = useMemo(() => {
    // only the metrics the shown runs have, in the table's order
    const present = new Set(runs.flatMap((r) => Object.keys(r.metrics)));
    return columns.metrics.filter((k) => present.has(k));
  }, [runs, columns.metrics]);
  const paramKeys = useMemo(() => {
    const present = new Set(runs.flatMap((r) => Object.keys(r.params)));
    return columns.params.filter((k) => present.has(k));
  }, [runs, columns.params]);
  const shownPanels = (view.panels ?? metricKeys).filter((k) => metricKeys.includes(k));
  const runIds = useMemo(() => runs.map((r) => r.run_id), [runs]);
  // While a shown run is RUNNING its panels follow it, as a running run's own page does.
  const live = runs.some((r) => r.status === "RUNNING");
  const histories = useHistories(runIds, shownPanels, live ? LIVE_REFRESH_MS : null);
  // The table's rows carry no tags (they are asked for only as chosen columns): grouping by a tag
  // asks for that one tag of the shown runs.
  const tagKey = view.group.startsWith("tags.") ? view.group.slice("tags.".length) : null;
  const tagged = useApi<RunsPage>(tagKey === null ? null : "/api/runs", {
    filter: runIdsFilter(runIds),
    columns: `tags.${tagKey ?? ""}`,
    page_size: Math.max(1, runIds.length),
  });
  const groups = useMemo(() => {
    if (!view.group) return null;
    if (tagKey === null) return groupRuns(runs, view.group);
    if (!tagged.data) return null;
    const tags = new Map(tagged.data.runs.map((r) => [r.run_id, r.tags]));
    return groupRuns(runs.map((r) => ({ ...r, tags: { ...r.tags, ...tags.get(r.run_id) } })), view.group);
  }, [runs, view.group, tagKey, tagged.data]);

  const axes = (view.parallel ?? paramKeys.slice(0, DEFAULT_AXES)).filter((k) => paramKeys.includes(k));
  const parallelMetric = metricKeys.includes(view.parallelMetric) ? view.parallelMetric : (metricKeys[0] ?? "");
  const scatterX = paramKeys.includes(view.scatterX) ? view.scatterX : (paramKeys[0] ?? "");
  const scatterY = metricKeys.includes(view.scatterY) ? view.scatterY : (metricKeys[0] ?? "");

  if (runs.length === 0) return <p className="muted">No runs to chart: change the filter or the experiment.</p>;
  return (
    <div data-testid="workspace">
      <div className="toolbar ws-toolbar">
        <button type="button" onClick={() => setChoosing((c) => !c)} data-testid="choose-panels">
          Panels ({shownPanels.length} of {metricKeys.length})
        </button>
        <label>
          group by{" "}
          <select value={view.group} onChange={(e) => onChange({ group: e.target.value })} aria-label="group by" data-testid="group-by">
            <option value="">no grouping</option>
            {paramKeys.map((k) => (
              <option key={`p${k}`} value={`params.${k}`}>
                param {k}
              </option>
            ))}
            {columns.tags.map((k) => (
              <option key={`t${k}`} value={`tags.${k}`}>
                tag {k}
              </option>
            ))}
          </select>
        </label>
        <span className="muted">
          {runs.length} runs{view.selected.length > 0 ? " (selected)" : " (this page)"}
        </span>
        {live && (
          <span className="muted live" data-testid="workspace-live">
            a run is running: charts follow it every {LIVE_REFRESH_MS / 1000} s
          </span>
        )}
      </div>
      {choosing && <PanelChooser all={metricKeys} shown={shownPanels} onChange={(panels) => onChange({ panels })} />}
      <ErrorNote error={histories.error ?? tagged.error} />
      <PanelGrid keys={shownPanels} byKey={histories.byKey} labels={labels} groups={groups} />
      {paramKeys.length > 0 && metricKeys.length > 0 && (
        <div className="two ws-pair">
          <section className="card" data-testid="parallel-panel">
            <div className="chart-head">
              <h3>Parallel coordinates</h3>
              <MultiChoice all={paramKeys} chosen={axes} onChange={(parallel) => onChange({ parallel })} label="params" />
              <label>
                →{" "}
                <select value={parallelMetric} onChange={(e) => onChange({ parallelMetric: e.target.value })} aria-label="parallel coordinates metric">
                  {metricKeys.map((k) => (
                    <option key={k}>{k}</option>
                  ))}
                </select>
              </label>
            </div>
            <ParallelCoords runs={runs} labels={labels} params={axes} metric={parallelMetric} />
          </section>
          <section className="card" data-testid="scatter-panel">
            <div className="chart-head">
              <h3>Scatter</h3>
              <label>
                <select value={scatterY} onChange={(e) => onChange({ scatterY: e.target.value })} aria-label="scatter metric">
                  {metricKeys.map((k) => (
                    <option key={k}>{k}</option>
                  ))}
                </select>{" "}
                against{" "}
                <select value={scatterX} onChange={(e) => onChange({ scatterX: e.target.value })} aria-label="scatter param">
                  {paramKeys.map((k) => (
                    <option key={k}>{k}</option>
                  ))}
                </select>
              </label>
            </div>
            <Scatter runs={runs} labels={labels} param={scatterX} metric={scatterY} />
          </section>
        </div>
      )}
    </div>
  );
}
