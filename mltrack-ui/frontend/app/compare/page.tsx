"use client";

import { useSearchParams } from "next/navigation";
import { Suspense, useMemo, useState } from "react";

import { ErrorNote, Loading, Section } from "@/components/Common";
import { MetricChart } from "@/components/MetricChart";
import { RunLink } from "@/components/RunLink";
import { formatNumber } from "@/lib/format";
import type { RunsPage } from "@/lib/types";
import { useApi } from "@/lib/useApi";

function quoted(id: string): string {
  return `'${id.replace(/[^0-9a-zA-Z_-]/g, "")}'`;
}

function CompareView() {
  const ids = (useSearchParams().get("ids") ?? "").split(",").filter(Boolean);
  const [onlyDiffs, setOnlyDiffs] = useState(false);
  const { data, error, loading } = useApi<RunsPage>(ids.length ? "/api/runs" : null, {
    filter: `attributes.run_id IN (${ids.map(quoted).join(", ")})`,
    page_size: Math.max(ids.length, 1),
  });
  const runs = useMemo(() => data?.runs ?? [], [data]);
  const names = useMemo(() => Object.fromEntries(runs.map((r) => [r.run_id, r.run_name ?? r.run_id.slice(0, 8)])), [runs]);
  const paramKeys = [...new Set(runs.flatMap((r) => Object.keys(r.params)))].sort();
  const metricKeys = [...new Set(runs.flatMap((r) => Object.keys(r.metrics)))].sort();
  const runIds = useMemo(() => runs.map((r) => r.run_id), [runs]);

  if (ids.length === 0) return <><h1>Compare runs</h1><p className="muted">Select runs on the Runs page and press Compare.</p></>;
  return (
    <>
      <h1>Compare {ids.length} runs</h1>
      <ErrorNote error={error} />
      <Loading when={loading} />
      {data && (
        <>
          <Section title="Parameters">
            <label>
              <input type="checkbox" checked={onlyDiffs} onChange={(e) => setOnlyDiffs(e.target.checked)} /> only differences
            </label>
            <div className="table-wrap">
              <table className="grid diff" data-testid="params-diff">
                <thead>
                  <tr>
                    <th>param</th>
                    {runs.map((r) => (
                      <th key={r.run_id}>
                        <RunLink runId={r.run_id} name={r.run_name} />
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {paramKeys.map((key) => {
                    const values = runs.map((r) => r.params[key]);
                    const differs = new Set(values).size > 1;
                    if (onlyDiffs && !differs) return null;
                    return (
                      <tr key={key}>
                        <th>{key}</th>
                        {values.map((v, i) => (
                          <td key={i} className={differs ? "differs" : undefined}>
                            {v ?? "—"}
                          </td>
                        ))}
                      </tr>
                    );
                  })}
                  {metricKeys.map((key) => (
                    <tr key={`m-${key}`}>
                      <th>metrics.{key}</th>
                      {runs.map((r) => (
                        <td key={r.run_id} className="num">
                          {formatNumber(r.metrics[key])}
                        </td>
                      ))}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </Section>
          <div className="charts">
            {metricKeys.map((key) => (
              <MetricChart key={key} metricKey={key} runIds={runIds} runNames={names} />
            ))}
          </div>
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
