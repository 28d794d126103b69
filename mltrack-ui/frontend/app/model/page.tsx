"use client";

import { useSearchParams } from "next/navigation";
import { Suspense, useState } from "react";

import { ErrorNote, KeyValues, Loading, Panels, Section, StatusBadge } from "@/components/Common";
import { ModelAliases } from "@/components/ModelAliases";
import { RunLink } from "@/components/RunLink";
import { When } from "@/components/When";
import type { ModelDetail, Panel } from "@/lib/types";
import { useApi } from "@/lib/useApi";

function VersionPanels({ name, version }: { name: string; version: number }) {
  const { data, error } = useApi<Panel[]>("/api/model/panels", { name, version });
  return (
    <>
      <ErrorNote error={error} />
      <Panels panels={data ?? []} />
    </>
  );
}

function ModelView() {
  const name = useSearchParams().get("name") ?? "";
  const { data, error, loading } = useApi<ModelDetail>(name ? "/api/model" : null, { name });
  const [picked, setPicked] = useState<number | null>(null);
  if (!name) return <p className="error">No model name given.</p>;
  const current = data?.versions.find((v) => v.version === picked) ?? data?.versions[0];
  return (
    <>
      <ErrorNote error={error} />
      <Loading when={loading} />
      {data && (
        <>
          <h1 data-testid="model-name">{data.name}</h1>
          {data.description && <p>{data.description}</p>}
          <div className="table-wrap">
            <table className="grid" data-testid="versions-table">
              <thead>
                <tr>
                  <th>version</th>
                  <th>aliases</th>
                  <th>status</th>
                  <th>source run</th>
                  <th>created</th>
                  <th>deployments</th>
                </tr>
              </thead>
              <tbody>
                {data.versions.map((v) => (
                  <tr key={v.version} onClick={() => setPicked(v.version)} style={{ cursor: "pointer" }}>
                    <td>v{v.version}</td>
                    <td>{v.aliases.map((a) => `@${a}`).join(", ")}</td>
                    <td>{v.status}</td>
                    <td>{v.run_id ? <RunLink runId={v.run_id} name={v.run_id.slice(0, 8)} /> : ""}</td>
                    <td><When at={v.creation_timestamp} /></td>
                    <td>
                      {v.deployments.map((d) => (
                        <span key={d.id}>
                          {d.id} <StatusBadge status={d.status} />{" "}
                        </span>
                      ))}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <ModelAliases name={data.name} aliases={data.aliases} versions={data.versions.map((v) => v.version)} />
          {current && (
            <>
              <h2 style={{ marginTop: "1rem" }}>Version {current.version}</h2>
              <div className="two">
                <Section title="Details">
                  <KeyValues values={{ source: current.source, run: current.run_id, description: current.description }} />
                </Section>
                <Section title="Tags">
                  <KeyValues values={current.tags} />
                </Section>
              </div>
              <VersionPanels name={data.name} version={current.version} />
            </>
          )}
        </>
      )}
    </>
  );
}

export default function ModelPage() {
  return (
    <Suspense fallback={<p className="muted">Loading…</p>}>
      <ModelView />
    </Suspense>
  );
}
