"use client";

import Link from "next/link";

import { ErrorNote, Loading } from "@/components/Common";
import { When } from "@/components/When";
import type { ModelSummary } from "@/lib/types";
import { useApi } from "@/lib/useApi";

export default function Models() {
  const { data, error, loading } = useApi<ModelSummary[]>("/api/models");
  return (
    <>
      <h1>Model registry</h1>
      <ErrorNote error={error} />
      <Loading when={loading} />
      {data && data.length === 0 && <p className="muted">No registered models yet.</p>}
      {data && data.length > 0 && (
        <div className="table-wrap">
          <table className="grid" data-testid="models-table">
            <thead>
              <tr>
                <th>name</th>
                <th>latest version</th>
                <th>aliases</th>
                <th>updated</th>
                <th>description</th>
              </tr>
            </thead>
            <tbody>
              {data.map((m) => (
                <tr key={m.name}>
                  <td>
                    <Link prefetch={false} href={`/model/?name=${encodeURIComponent(m.name)}`}>{m.name}</Link>
                  </td>
                  <td className="num">{m.latest_version ?? ""}</td>
                  <td>
                    {Object.entries(m.aliases)
                      .map(([alias, version]) => `@${alias} → v${version}`)
                      .join(", ")}
                  </td>
                  <td><When at={m.last_updated_timestamp} /></td>
                  <td>{m.description}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
