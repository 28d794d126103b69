"use client";

import { ErrorNote, Loading, StatusBadge } from "@/components/Common";
import type { PluginInfo } from "@/lib/types";
import { useApi } from "@/lib/useApi";

export default function Plugins() {
  const { data, error, loading } = useApi<PluginInfo[]>("/-/plugins.json");
  return (
    <>
      <h1>Plugins</h1>
      <p className="muted">The same listing as `mltrack plugins --json`.</p>
      <ErrorNote error={error} />
      <Loading when={loading} />
      {data && (
        <div className="table-wrap">
          <table className="grid" data-testid="plugins-table">
            <thead>
              <tr>
                <th>name</th>
                <th>distribution</th>
                <th>version</th>
                <th>status</th>
                <th>contributes / reason</th>
              </tr>
            </thead>
            <tbody>
              {data.map((p) => (
                <tr key={p.name}>
                  <td>{p.name}</td>
                  <td>{p.distribution ?? ""}</td>
                  <td>{p.version ?? ""}</td>
                  <td>
                    <StatusBadge status={p.status} />
                  </td>
                  <td>
                    {p.reason ??
                      Object.entries(p.contributes)
                        .map(([kind, names]) => `${kind}: ${names.join(", ")}`)
                        .join("; ")}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
