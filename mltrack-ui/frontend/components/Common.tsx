// Small shared pieces. All user data is passed as React children/text, never as HTML.

import type { ReactNode } from "react";

import type { Panel } from "@/lib/types";

import { Num } from "./Num";

export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge status-${status.toLowerCase()}`}>{status}</span>;
}

export function ErrorNote({ error }: { error: string | null }) {
  return error ? (
    <p className="error" role="alert">
      {error}
    </p>
  ) : null;
}

export function Loading({ when }: { when: boolean }) {
  return when ? <p className="muted">Loading…</p> : null;
}

export function Section({ title, children, wide = false }: { title: string; children: ReactNode; wide?: boolean }) {
  return (
    <section className={wide ? "card wide" : "card"}>
      <h2>{title}</h2>
      {children}
    </section>
  );
}

export function KeyValues({ values, empty = "none" }: { values: Record<string, unknown>; empty?: string }) {
  const keys = Object.keys(values).sort();
  if (keys.length === 0) return <p className="muted">{empty}</p>;
  return (
    <table className="kv">
      <tbody>
        {keys.map((key) => (
          <tr key={key}>
            <th>{key}</th>
            <td>{values[key] === null || values[key] === undefined ? "" : String(values[key])}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Panels({ panels }: { panels: Panel[] }) {
  return (
    <>
      {panels.map((panel, i) => (
        <section className={panel.error ? "card panel-error" : "card"} key={`${panel.plugin}-${i}`} data-testid="plugin-panel">
          <h2>
            {panel.title}
            {panel.plugin && <span className="muted"> · plugin {panel.plugin}</span>}
          </h2>
          {panel.kind === "keyvalue" && <KeyValues values={panel.data} />}
          {panel.kind === "text" && <pre className="preview">{panel.data}</pre>}
          {panel.kind === "table" && (
            <table className="grid">
              <thead>
                <tr>
                  {panel.data.columns.map((c, j) => (
                    <th key={j}>{c}</th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {panel.data.rows.map((row, r) => (
                  <tr key={r}>
                    {row.map((cell, j) => (
                      <td key={j}>{cell === null ? "" : String(cell)}</td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      ))}
    </>
  );
}

/** Metric values to a few significant digits (exact on hover), sorted by key. */
export function MetricValues({ values, empty = "none" }: { values: Record<string, number | null>; empty?: string }) {
  const keys = Object.keys(values).sort();
  if (keys.length === 0) return <p className="muted">{empty}</p>;
  return (
    <table className="kv" data-testid="metric-values">
      <tbody>
        {keys.map((key) => (
          <tr key={key}>
            <th>{key}</th>
            <td className="num">
              <Num value={values[key]} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
