"use client";

// Changing a run from the UI: its name, description (mlflow.note.content), tags, and delete/restore.
// Every change goes through the server's write routes, which check the input with MLflow's rules
// and write nothing when they refuse; the refusal is shown here as the server phrased it.

import { type FormEvent, useState } from "react";

import { errorText, type RunState, sendJson } from "@/lib/api";

import "./actions.css";
import { Section } from "./Common";
import { reloadWithMessage, takeMessage } from "./reloadWithMessage";

interface RunLike {
  run_id: string;
  run_name: string | null;
  lifecycle_stage: string;
  tags: Record<string, string>;
  system: Record<string, string>;
}

function initialState(run: RunLike): RunState {
  return {
    run_id: run.run_id,
    run_name: run.run_name,
    lifecycle_stage: run.lifecycle_stage,
    description: run.system["mlflow.note.content"] ?? "",
    tags: run.tags,
  };
}

export function RunActions({ run }: { run: RunLike }) {
  const [state, setState] = useState<RunState>(() => initialState(run));
  const [name, setName] = useState(run.run_name ?? "");
  const [description, setDescription] = useState(state.description);
  const [tagKey, setTagKey] = useState("");
  const [tagValue, setTagValue] = useState("");
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [busy, setBusy] = useState(false);
  // the confirmation of the change that reloaded the page, if any
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(() => {
    const left = typeof window === "undefined" ? null : takeMessage(`run:${run.run_id}`);
    return left ? { ok: true, text: left } : null;
  });
  const deleted = state.lifecycle_stage === "deleted";
  const path = `/api/runs/${encodeURIComponent(run.run_id)}`;

  const change = async (method: "PATCH" | "POST", url: string, body: unknown, done: string) => {
    setBusy(true);
    setMessage(null);
    try {
      setState(await sendJson<RunState>(method, url, body));
      reloadWithMessage(`run:${run.run_id}`, done);
      return true;
    } catch (error) {
      setMessage({ ok: false, text: errorText(error) });
      return false;
    } finally {
      setBusy(false);
    }
  };

  const rename = (event: FormEvent) => {
    event.preventDefault();
    void change("PATCH", path, { name }, `Renamed to ${name}.`);
  };
  const describe = (event: FormEvent) => {
    event.preventDefault();
    void change("PATCH", path, { description }, "Description saved.");
  };
  const addTag = async (event: FormEvent) => {
    event.preventDefault();
    if (await change("PATCH", path, { set_tags: { [tagKey]: tagValue } }, `Tag ${tagKey} saved.`)) {
      setTagKey("");
      setTagValue("");
    }
  };
  const removeTag = (key: string) => void change("PATCH", path, { delete_tags: [key] }, `Tag ${key} removed.`);
  const lifecycle = async (action: "delete" | "restore") => {
    setConfirmDelete(false);
    await change("POST", `${path}/${action}`, undefined, action === "delete" ? "Run deleted (it can be restored)." : "Run restored.");
  };
  const tagKeys = Object.keys(state.tags).sort();

  return (
    <Section title="Edit run">
      <div className="run-actions" data-testid="run-actions">
        {deleted && (
          <p className="error" data-testid="run-deleted-note">
            This run is deleted: it is hidden from the runs list until restored (mltrack gc removes it for good).
          </p>
        )}
        <form onSubmit={rename} className="action-row">
          <label htmlFor="run-rename">Name</label>
          <input id="run-rename" type="text" value={name} onChange={(e) => setName(e.target.value)} disabled={deleted} data-testid="rename-input" />
          <button type="submit" disabled={busy || deleted || name === (state.run_name ?? "")} data-testid="rename-save">
            Rename
          </button>
        </form>
        <form onSubmit={describe} className="action-row">
          <label htmlFor="run-description">Description</label>
          <textarea
            id="run-description"
            rows={3}
            value={description}
            onChange={(e) => setDescription(e.target.value)}
            disabled={deleted}
            data-testid="description-input"
          />
          <button type="submit" disabled={busy || deleted || description === state.description} data-testid="description-save">
            Save
          </button>
        </form>
        <div className="action-row">
          <span className="label">Tags</span>
          <ul className="tag-list" data-testid="tag-list">
            {tagKeys.length === 0 && <li className="muted">none</li>}
            {tagKeys.map((key) => (
              <li key={key} className="tag-chip">
                <span>
                  {key} = {state.tags[key]}
                </span>
                <button type="button" aria-label={`remove tag ${key}`} title={`remove tag ${key}`} disabled={busy || deleted} onClick={() => removeTag(key)}>
                  ×
                </button>
              </li>
            ))}
          </ul>
        </div>
        <form onSubmit={addTag} className="action-row">
          <span className="label" />
          <input type="text" placeholder="tag name" aria-label="tag name" value={tagKey} onChange={(e) => setTagKey(e.target.value)} disabled={deleted} data-testid="tag-key" />
          <input type="text" placeholder="value" aria-label="tag value" value={tagValue} onChange={(e) => setTagValue(e.target.value)} disabled={deleted} data-testid="tag-value" />
          <button type="submit" disabled={busy || deleted || !tagKey} data-testid="tag-add">
            Add tag
          </button>
        </form>
        <div className="action-row">
          <span className="label">Lifecycle</span>
          {deleted ? (
            <button type="button" className="primary" disabled={busy} onClick={() => void lifecycle("restore")} data-testid="run-restore">
              Restore run
            </button>
          ) : confirmDelete ? (
            <>
              <button type="button" className="danger" disabled={busy} onClick={() => void lifecycle("delete")} data-testid="run-delete-confirm">
                Yes, delete this run
              </button>
              <button type="button" onClick={() => setConfirmDelete(false)}>
                Cancel
              </button>
            </>
          ) : (
            <button type="button" disabled={busy} onClick={() => setConfirmDelete(true)} data-testid="run-delete">
              Delete run…
            </button>
          )}
        </div>
        {message && (
          <p className={message.ok ? "saved" : "error"} role={message.ok ? "status" : "alert"} data-testid="action-message">
            {message.text}
          </p>
        )}
      </div>
    </Section>
  );
}
