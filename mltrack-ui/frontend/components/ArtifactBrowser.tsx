"use client";

import { useState } from "react";

import { apiUrl } from "@/lib/api";
import { formatBytes } from "@/lib/format";
import type { ArtifactEntry, ArtifactPreview } from "@/lib/types";
import { useApi } from "@/lib/useApi";
import { useApiBase } from "@/lib/useApiBase";

import { ErrorNote } from "./Common";

function Folder({ runId, path, onOpen }: { runId: string; path: string; onOpen: (path: string) => void }) {
  const { data, error } = useApi<ArtifactEntry[]>(`/api/runs/${encodeURIComponent(runId)}/artifacts`, { path });
  const [open, setOpen] = useState<Record<string, boolean>>({});
  return (
    <ul>
      <ErrorNote error={error} />
      {(data ?? []).map((entry) => (
        <li key={entry.path}>
          {entry.is_dir ? (
            <>
              <button type="button" onClick={() => setOpen((o) => ({ ...o, [entry.path]: !o[entry.path] }))}>
                {open[entry.path] ? "▾" : "▸"} {entry.path.split("/").pop()}/
              </button>
              {open[entry.path] && (
                <div style={{ paddingLeft: "1rem" }}>
                  <Folder runId={runId} path={entry.path} onOpen={onOpen} />
                </div>
              )}
            </>
          ) : (
            <button type="button" onClick={() => onOpen(entry.path)} data-testid="artifact-file">
              {entry.path.split("/").pop()} <span className="muted">{formatBytes(entry.file_size)}</span>
            </button>
          )}
        </li>
      ))}
      {data && data.length === 0 && path === "" && <li className="muted">no artifacts</li>}
    </ul>
  );
}

function Preview({ runId, path }: { runId: string; path: string }) {
  const base = `/api/runs/${encodeURIComponent(runId)}/artifacts`;
  const { data, error } = useApi<ArtifactPreview>(`${base}/preview`, { path });
  const apiRoot = useApiBase(); // a hosted front end's links go to the API's origin
  const download = apiRoot + apiUrl(`${base}/file`, { path });
  let body = null;
  if (data?.kind === "image") {
    body = <img className="preview" src={apiRoot + apiUrl(`${base}/file`, { path, inline: true })} alt={path} />;
  } else if (data?.kind === "json") {
    let text = data.content ?? "";
    try {
      text = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      // truncated or JSON lines: show as stored
    }
    body = <pre className="preview" data-testid="artifact-preview">{text}</pre>;
  } else if (data?.kind === "text") {
    body = <pre className="preview" data-testid="artifact-preview">{data.content}</pre>;
  } else if (data) {
    body = <p className="muted">binary file ({formatBytes(data.size)}): no preview</p>;
  }
  return (
    <div>
      <div className="toolbar">
        <strong>{path}</strong>
        <a href={download} download>
          download
        </a>
        {data?.truncated && <span className="muted">(preview truncated)</span>}
      </div>
      <ErrorNote error={error} />
      {body}
    </div>
  );
}

export function ArtifactBrowser({ runId }: { runId: string }) {
  const [current, setCurrent] = useState<string | null>(null);
  return (
    <div className="artifacts" data-testid="artifacts">
      <Folder runId={runId} path="" onOpen={setCurrent} />
      <div>{current ? <Preview runId={runId} path={current} /> : <p className="muted">Pick a file to preview it.</p>}</div>
    </div>
  );
}
