"use client";

import Link from "next/link";
import { useState } from "react";

import { ErrorNote, Loading, StatusBadge } from "@/components/Common";
import { When } from "@/components/When";
import type { DeploymentsAnswer } from "@/lib/types";
import { useApi } from "@/lib/useApi";

export default function Deployments() {
  const [generation, setGeneration] = useState(0);
  const { data, error, loading } = useApi<DeploymentsAnswer>("/api/deployments", { refresh: true, generation });
  return (
    <>
      <h1>Deployments</h1>
      <div className="toolbar">
        <button type="button" onClick={() => setGeneration((g) => g + 1)}>
          Refresh status
        </button>
        <span className="muted">status is asked live from each provider</span>
      </div>
      <ErrorNote error={error} />
      <Loading when={loading} />
      {data && !data.available && <p className="muted">{data.reason}</p>}
      {data && data.available && data.deployments.length === 0 && <p className="muted">No deployments yet.</p>}
      {data && data.deployments.length > 0 && (
        <div className="table-wrap">
          <table className="grid" data-testid="deployments-table">
            <thead>
              <tr>
                <th>id</th>
                <th>model</th>
                <th>provider</th>
                <th>status</th>
                <th>url</th>
                <th>message</th>
                <th>updated</th>
              </tr>
            </thead>
            <tbody>
              {data.deployments.map((d) => (
                <tr key={d.id}>
                  <td>{d.id}</td>
                  <td>
                    <Link prefetch={false} href={`/model/?name=${encodeURIComponent(d.model_name)}`}>
                      {d.model_name} v{d.model_version}
                    </Link>
                    {d.alias ? ` @${d.alias}` : ""}
                  </td>
                  <td>{d.provider}</td>
                  <td>
                    <StatusBadge status={d.status} />
                  </td>
                  <td>
                    {d.url && /^https?:\/\//i.test(d.url) ? (
                      <a href={d.url} target="_blank" rel="noopener noreferrer" data-testid="deployment-url">
                        {d.url}
                      </a>
                    ) : (
                      (d.url ?? "")
                    )}
                  </td>
                  <td>{d.refresh_error ?? d.message}</td>
                  <td>
                    <When at={d.updated_at} />
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
