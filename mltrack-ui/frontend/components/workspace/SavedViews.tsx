"use client";

// Saved views: the page's view under a name, stored as the experiment's tag mltrack.view.<name>
// (GET/PUT/DELETE /api/views), so it is in the MLflow store beside the runs it shows.

import { type FormEvent, useEffect, useState } from "react";

import { errorText, getJson, sendJson } from "@/lib/api";

import type { PageView } from "./viewState";

interface Saved {
  name: string;
  experiment_id: string;
  view: Record<string, unknown>;
}

interface Props {
  experiment: string;
  current: PageView;
  onOpen: (saved: Record<string, unknown>) => void;
}

export function SavedViews({ experiment, current, onOpen }: Props) {
  const [views, setViews] = useState<Saved[]>([]);
  const [name, setName] = useState("");
  const [message, setMessage] = useState<string | null>(null);
  const [reload, setReload] = useState(0);

  useEffect(() => {
    if (!experiment) return;
    const controller = new AbortController();
    getJson<Saved[]>("/api/views", { experiment_id: experiment }, controller.signal).then(setViews, (e: unknown) => {
      if (!controller.signal.aborted) setMessage(errorText(e));
    });
    return () => controller.abort();
  }, [experiment, reload]);

  if (!experiment) return <span className="muted ws-views">choose an experiment to save or open views</span>;

  async function save(event: FormEvent) {
    event.preventDefault();
    try {
      await sendJson("PUT", `/api/views/${encodeURIComponent(name.trim())}`, current, { experiment_id: experiment });
      setMessage(`saved view “${name.trim()}”`);
      setName("");
      setReload((r) => r + 1);
    } catch (e) {
      setMessage(errorText(e));
    }
  }
  async function remove(view: string) {
    try {
      await sendJson("DELETE", `/api/views/${encodeURIComponent(view)}`, undefined, { experiment_id: experiment });
      setMessage(`deleted view “${view}”`);
      setReload((r) => r + 1);
    } catch (e) {
      setMessage(errorText(e));
    }
  }

  return (
    <div className="ws-views" data-testid="saved-views">
      <form onSubmit={save} className="ws-inline">
        <input type="text" value={name} onChange={(e) => setName(e.target.value)} placeholder="view name" aria-label="view name" maxLength={100} />
        <button type="submit" disabled={!name.trim()} data-testid="save-view">
          Save view
        </button>
      </form>
      {views.length > 0 && (
        <span className="ws-inline">
          <span className="muted">views:</span>
          {views.map((v) => (
            <span key={v.name} className="ws-view-chip">
              <button type="button" onClick={() => onOpen(v.view)} data-testid="open-view" title={`open view ${v.name}`}>
                {v.name}
              </button>
              <button type="button" onClick={() => void remove(v.name)} aria-label={`delete view ${v.name}`} title="delete this view">
                ×
              </button>
            </span>
          ))}
        </span>
      )}
      {message && (
        <span className="muted" role="status">
          {message}
        </span>
      )}
    </div>
  );
}
