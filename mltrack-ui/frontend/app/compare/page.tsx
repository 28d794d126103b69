"use client";

import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { Suspense, useMemo, useState } from "react";

import { Breakable } from "@/components/Breakable";
import { ErrorNote, Loading, Section } from "@/components/Common";
import { MetricPanel } from "@/components/MetricPanel";
import { Num } from "@/components/Num";
import { formatValue } from "@/lib/numbers";
import { runColours, runLabels } from "@/lib/runColour";
import type { RunRow, RunsPage } from "@/lib/types";
import { useApi } from "@/lib/useApi";

function quoted(id: string): string {
  return `'${id.replace(/[^0-9a-zA-Z_-]/g, "")}'`;
}

function RunHeads({ runs, labels, colours }: { runs: RunRow[]; labels: Record<string, string>; colours: Record<string, string> }) {
  return (
    <>
      {runs.map((r) => (
        <th key={r.run_id} title={`${labels[r.run_id] ?? ""} (run ${r.run_id})`} className="run-head">
          <span className="name-clamp">
            <span className="run-dot" style={{ background: colours[r.run_id] }} />
            <Link prefetch={false} href={`/run/?id=${encodeURIComponent(r.run_id)}`} data-testid="run-link">
              <Breakable text={labels[r.run_id] ?? r.run_id} />
            </Link>
          </span>
        </th>
      ))}
    </>
  );
}

function CompareView() {
  const ids = (useSearchParams().get("ids") ?? "").split(",").filter(Boolean);
  const [onlyDiffs, setOnlyDiffs] = useState(false);
  const { data, error, loading } = useApi<RunsPage>(ids.length ? "/api/runs" : null, {
    filter: `attributes.run_id IN (${ids.map(quoted).join(", ")})`,
    page_size: Math.max(ids.length, 1),
  });
  const runs = useMemo(() => data?.runs ?? [], [data]);
  const labels = useMemo(() => runLabels(runs), [runs]);
  const paramKeys = [...new Set(runs.flatMap((r) => Object.keys(r.params)))].sort();
  const metricKeys = [...new Set(runs.flatMap((r) => Object.keys(r.metrics)))].sort();
  const runIds = useMemo(() => runs.map((r) => r.run_id), [runs]);
  const colours = useMemo(() => runColours(runIds), [runIds]);
  const experiments = [...new Set(runs.map((r) => r.experiment_id))];

  if (ids.length === 0) return <><h1>Compare runs</h1><p className="muted">Select runs on the Runs page and press Compare.</p></>;
  return (
    <>
      <h1>Compare {ids.length} runs</h1>
      {experiments.length > 0 && (
        <p className="muted" data-testid="compare-experiments">
          {experiments.length === 1 ? "experiment " : "experiments "}
          {experiments.map((e, i) => (
            <span key={e}>
              {i > 0 && ", "}
              <Link prefetch={false} href={`/runs/?experiment=${encodeURIComponent(e)}`} title={`experiment ${e}`}>
                {runs.find((r) => r.experiment_id === e)?.experiment_name ?? e}
              </Link>
            </span>
          ))}
        </p>
      )}
      <ErrorNote error={error} />
      <Loading when={loading} />
      {data && (
        <>
          {/* side by side only while both tables fit half the page */}
          <div className={runs.length > 2 ? undefined : "two"}>
            <Section title="Metrics (latest)">
              <div className="table-wrap">
                <table className="grid compare-grid" data-testid="metrics-diff">
                  <thead>
                    <tr>
                      <th>metric</th>
                      <RunHeads runs={runs} labels={labels} colours={colours} />
                    </tr>
                  </thead>
                  <tbody>
                    {metricKeys.map((key) => (
                      <tr key={key}>
                        <th title={key}>
                          <span className="name-clamp">
                            <Breakable text={key} />
                          </span>
                        </th>
                        {runs.map((r) => (
                          <td key={r.run_id} className="num">
                            {r.metrics[key] === undefined ? <span className="muted" title="not logged by this run">—</span> : <Num value={r.metrics[key]} />}
                          </td>
                        ))}
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            </Section>
            <Section title="Parameters">
              <label>
                <input type="checkbox" checked={onlyDiffs} onChange={(e) => setOnlyDiffs(e.target.checked)} /> only differences
              </label>
              <div className="table-wrap">
                <table className="grid diff compare-grid" data-testid="params-diff">
                  <thead>
                    <tr>
                      <th>param</th>
                      <RunHeads runs={runs} labels={labels} colours={colours} />
                    </tr>
                  </thead>
                  <tbody>
                    {paramKeys.map((key) => {
                      const values = runs.map((r) => r.params[key]);
                      const differs = new Set(values).size > 1;
                      if (onlyDiffs && !differs) return null;
                      return (
                        <tr key={key}>
                          <th title={key}>
                            <span className="name-clamp">
                              <Breakable text={key} />
                            </span>
                          </th>
                          {values.map((v, i) => (
                            <td key={i} className={differs ? "differs" : undefined} title={v ?? ""}>
                              {v === undefined ? "—" : formatValue(v)}
                            </td>
                          ))}
                        </tr>
                      );
                    })}
                  </tbody>
                </table>
              </div>
            </Section>
          </div>
          <MetricPanel metricKeys={metricKeys} runIds={runIds} runLabels={labels} />
        </>
      )}
    </>
  );
}

export default function ComparePage() {
  return (
    <Suspense fallback={<p className="muted">Loading…</p>}>
      <CompareView />
    </Suspense>
  );
}
