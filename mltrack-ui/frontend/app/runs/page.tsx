"use client";

import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { type FormEvent, Suspense, useEffect, useMemo, useState } from "react";

import { ColumnPicker, defaultColumns, loadColumns, saveColumns } from "@/components/ColumnPicker";
import { ErrorNote, Loading, StatusBadge } from "@/components/Common";
import { DeletedRuns } from "@/components/DeletedRuns";
import { Num } from "@/components/Num";
import { Updated } from "@/components/Updated";
import { When } from "@/components/When";
import { runIdsFilter } from "@/components/workspace/runFilter";
import { SavedViews } from "@/components/workspace/SavedViews";
import { type PageView, viewFromQuery, viewFromSaved, viewToQuery } from "@/components/workspace/viewState";
import { Workspace } from "@/components/workspace/Workspace";
import { RUNS_PAGE_SIZE } from "@/lib/earlyFetch";
import { formatDuration, quotedKey } from "@/lib/format";
import { formatValue } from "@/lib/numbers";
import { runColours, runLabels } from "@/lib/runColour";
import type { Experiment, RunsPage } from "@/lib/types";
import { useApi } from "@/lib/useApi";

const PAGE_SIZE = RUNS_PAGE_SIZE;
/** While a shown run is RUNNING the table is asked again this often. */
const LIVE_REFRESH_MS = 10_000;
let tableMarked = false; // the first render of the table, for the page-view benchmark

type Order = { key: string; ascending: boolean } | null;

function runsQuery(experiment: string, filter: string, order: Order, pageToken: string | null, chosen: string[] | null) {
  // Params and metrics come by default; naming columns is needed only to get tags, and leaving
  // them out keeps the request the one the page's inline script already started.
  const wantsTags = chosen !== null && chosen.some((c) => c.startsWith("tags."));
  return {
    experiment_ids: experiment,
    filter,
    order_by: orderClause(order),
    page_size: PAGE_SIZE,
    page_token: pageToken,
    columns: wantsTags ? chosen.join(",") : null,
  };
}

function orderClause(order: Order): string[] {
  return order ? [`${order.key} ${order.ascending ? "ASC" : "DESC"}`] : [];
}

function SortHeader({ label, orderKey, order, onSort }: { label: string; orderKey: string; order: Order; onSort: (o: Order) => void }) {
  const active = order?.key === orderKey;
  const arrow = active ? (order?.ascending ? " ▲" : " ▼") : "";
  return (
    <th
      className="sortable"
      onClick={() => onSort(active && !order?.ascending ? { key: orderKey, ascending: true } : { key: orderKey, ascending: false })}
      title={`sort by ${orderKey}`}
    >
      {label}
      {arrow}
    </th>
  );
}

type WorkspaceChoices = Pick<PageView, "tab" | "panels" | "group" | "parallel" | "parallelMetric" | "scatterX" | "scatterY">;

function RunsTable() {
  const search = useSearchParams();
  // The whole view comes from the URL (a shared or saved view); columns fall back to the remembered choice.
  const [initial] = useState(() => viewFromQuery(search));
  const [experiment, setExperiment] = useState(initial.experiment);
  const [draftFilter, setDraftFilter] = useState(initial.filter);
  const [filter, setFilter] = useState(initial.filter);
  const [order, setOrder] = useState<Order>(null);
  const [tokens, setTokens] = useState<(string | null)[]>([null]);
  const [chosen, setChosen] = useState<string[] | null>(() => initial.columns ?? loadColumns(initial.experiment));
  const [showChooser, setShowChooser] = useState(false);
  const [selected, setSelected] = useState<string[]>(initial.selected);
  const [workspace, setWorkspace] = useState<WorkspaceChoices>(initial);
  const [live, setLive] = useState(false);

  const experiments = useApi<Experiment[]>("/api/experiments");
  const pageToken = tokens[tokens.length - 1] ?? null;
  const { data, error, loading, updatedAt } = useApi<RunsPage>(
    "/api/runs",
    runsQuery(experiment, filter, order, pageToken, chosen),
    { refreshMs: live ? LIVE_REFRESH_MS : null },
  );
  const anyRunning = (data?.runs ?? []).some((r) => r.status === "RUNNING");
  // Poll only while something shown is RUNNING; the answer in which nothing runs stops it.
  if (data && anyRunning !== live) setLive(anyRunning);
  const experimentNames = useMemo(
    () => Object.fromEntries((experiments.data ?? []).map((e) => [e.experiment_id, e.name])),
    [experiments.data],
  );
  const labels = useMemo(() => runLabels(data?.runs ?? []), [data]);
  const colours = useMemo(() => runColours((data?.runs ?? []).map((r) => r.run_id)), [data]);

  const view: PageView = useMemo(
    () => ({ ...workspace, experiment, filter, columns: chosen, selected }),
    [workspace, experiment, filter, chosen, selected],
  );
  useEffect(() => {
    const text = viewToQuery(view);
    window.history.replaceState(null, "", text ? `?${text}` : window.location.pathname);
  }, [view]);
  // Selected runs may sit on other pages of the table: the workspace asks for them by id.
  const chartSelected = workspace.tab === "charts" && selected.length > 0;
  const selectedRuns = useApi<RunsPage>(
    chartSelected ? "/api/runs" : null,
    { filter: runIdsFilter(selected), page_size: PAGE_SIZE },
  );
  const shownRuns = useMemo(() => {
    if (!chartSelected) return data?.runs ?? [];
    const onPage = (data?.runs ?? []).filter((r) => selected.includes(r.run_id));
    return selectedRuns.data?.runs ?? onPage;
  }, [chartSelected, data, selected, selectedRuns.data]);
  const shownLabels = useMemo(() => runLabels(shownRuns), [shownRuns]);
  function openView(saved: Record<string, unknown>) {
    // A saved view is opened as its URL: one way in, the same as a shared link.
    const text = viewToQuery(viewFromSaved(saved));
    window.location.assign(`${window.location.pathname}${text ? `?${text}` : ""}`);
  }

  useEffect(() => {
    if (data && !tableMarked) {
      tableMarked = true;
      performance.mark("mltrack:runs-table-rendered");
    }
  }, [data]);

  const allColumns = useMemo(
    () => [
      ...(data?.columns.params ?? []).map((k) => `params.${k}`),
      ...(data?.columns.metrics ?? []).map((k) => `metrics.${k}`),
      ...(data?.columns.tags ?? []).map((k) => `tags.${k}`),
    ],
    [data],
  );
  const visible = (chosen ?? defaultColumns(allColumns)).filter((c) => allColumns.includes(c));

  function resetPaging() {
    setTokens([null]);
  }
  function applyFilter(event: FormEvent) {
    event.preventDefault();
    setFilter(draftFilter.trim());
    resetPaging();
  }
  function choose(next: string[] | null) {
    setChosen(next);
    saveColumns(experiment, next);
  }
  function toggleRun(runId: string) {
    setSelected((s) => (s.includes(runId) ? s.filter((r) => r !== runId) : [...s, runId]));
  }

  return (
    <>
      <h1>Runs</h1>
      <form className="toolbar" onSubmit={applyFilter}>
        <select
          value={experiment}
          onChange={(e) => {
            setExperiment(e.target.value);
            setChosen(loadColumns(e.target.value));
            resetPaging();
          }}
          aria-label="experiment"
        >
          <option value="">all experiments</option>
          {(experiments.data ?? []).map((e) => (
            <option key={e.experiment_id} value={e.experiment_id}>
              {e.name}
            </option>
          ))}
        </select>
        <input
          type="text"
          value={draftFilter}
          onChange={(e) => setDraftFilter(e.target.value)}
          placeholder="MLflow filter, e.g. metrics.loss < 0.1 and params.lr = '0.01'"
          aria-label="filter"
          data-testid="runs-filter"
        />
        <button type="submit" className="primary">
          Filter
        </button>
        <button type="button" onClick={() => setShowChooser((v) => !v)} data-testid="choose-columns">
          Columns
        </button>
        <Link prefetch={false}
          href={`/compare/?ids=${selected.map(encodeURIComponent).join(",")}`}
          aria-disabled={selected.length < 1}
          className={selected.length < 1 ? "muted" : undefined}
          onClick={(e) => selected.length < 1 && e.preventDefault()}
          data-testid="compare-selected"
        >
          Compare {selected.length} selected
        </Link>
      </form>
      {showChooser && <ColumnPicker columns={allColumns} visible={visible} onChange={choose} />}
      <div className="tabs ws-tabs">
        {(["table", "charts"] as const).map((tab) => (
          <button
            key={tab}
            type="button"
            className={workspace.tab === tab ? "active" : undefined}
            onClick={() => setWorkspace((w) => ({ ...w, tab }))}
            data-testid={`tab-${tab}`}
          >
            {tab === "table" ? "Table" : "Charts"}
          </button>
        ))}
        <SavedViews experiment={experiment} current={view} onOpen={openView} />
      </div>
      <ErrorNote error={error} />
      <Loading when={loading && !data} />
      {chartSelected && <ErrorNote error={selectedRuns.error} />}
      {data && workspace.tab === "charts" && (
        <Workspace
          runs={shownRuns}
          labels={shownLabels}
          columns={data.columns}
          view={view}
          onChange={(patch) => setWorkspace((w) => ({ ...w, ...patch }))}
        />
      )}
      {data && (
        <>
          {workspace.tab === "table" && (
          <div className="table-wrap">
            <table className="grid" data-testid="runs-table">
              <thead>
                <tr>
                  <th />
                  <SortHeader label="run" orderKey="attributes.run_name" order={order} onSort={(o) => { setOrder(o); resetPaging(); }} />
                  <th>experiment</th>
                  <SortHeader label="status" orderKey="attributes.status" order={order} onSort={(o) => { setOrder(o); resetPaging(); }} />
                  <SortHeader label="started" orderKey="attributes.start_time" order={order} onSort={(o) => { setOrder(o); resetPaging(); }} />
                  <th>duration</th>
                  {visible.map((column) => {
                    const [kind, ...rest] = column.split(".");
                    const key = rest.join(".");
                    return (
                      <SortHeader
                        key={column}
                        label={column}
                        orderKey={quotedKey(kind as string, key)}
                        order={order}
                        onSort={(o) => {
                          setOrder(o);
                          resetPaging();
                        }}
                      />
                    );
                  })}
                </tr>
              </thead>
              <tbody>
                {data.runs.map((run) => (
                  <tr key={run.run_id} data-testid="run-row">
                    <td>
                      <input
                        type="checkbox"
                        checked={selected.includes(run.run_id)}
                        onChange={() => toggleRun(run.run_id)}
                        aria-label={`select ${run.run_name ?? run.run_id}`}
                      />
                    </td>
                    <td>
                      <span className="run-dot" style={{ background: colours[run.run_id] }} />
                      <Link
                        prefetch={false}
                        href={`/run/?id=${encodeURIComponent(run.run_id)}`}
                        title={`run ${run.run_id}`}
                        data-testid="run-link"
                      >
                        {labels[run.run_id]}
                      </Link>
                    </td>
                    <td title={`experiment ${run.experiment_id}`} data-testid="run-experiment">
                      {run.experiment_name ?? experimentNames[run.experiment_id] ?? run.experiment_id}
                    </td>
                    <td>
                      <StatusBadge status={run.status} />
                    </td>
                    <td>
                      <When at={run.start_time} />
                    </td>
                    <td>{formatDuration(run.start_time, run.end_time)}</td>
                    {visible.map((column) => {
                      const [kind, ...rest] = column.split(".");
                      const key = rest.join(".");
                      if (kind === "metrics") {
                        return (
                          <td key={column} className="num">
                            <Num value={run.metrics[key]} />
                          </td>
                        );
                      }
                      const values = kind === "params" ? run.params : run.tags;
                      return (
                        <td key={column} title={values[key] ?? ""}>
                          {formatValue(values[key])}
                        </td>
                      );
                    })}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          )}
          <div className="toolbar">
            <button type="button" disabled={tokens.length < 2} onClick={() => setTokens((t) => t.slice(0, -1))}>
              ← previous
            </button>
            <button
              type="button"
              disabled={!data.next_page_token}
              onClick={() => setTokens((t) => [...t, data.next_page_token])}
              data-testid="next-page"
            >
              next →
            </button>
            <span className="muted" data-testid="runs-count">
              {data.runs.length} runs shown{data.total !== null ? ` of ${data.total}` : ""}
            </span>
            {live && <Updated at={updatedAt} live />}
          </div>
        </>
      )}
      <DeletedRuns key={experiment} experiment={experiment} />
    </>
  );
}

export default function RunsPageView() {
  return (
    <Suspense fallback={<p className="muted">Loading…</p>}>
      <RunsTable />
    </Suspense>
  );
}
