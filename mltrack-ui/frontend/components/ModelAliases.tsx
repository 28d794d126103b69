"use client";

// Model aliases (MLflow's @champion style): set one on a version, move it to another, remove it.
// Setting an alias that exists moves it, as MLflow does; the server refuses names MLflow reserves.

import { type FormEvent, useState } from "react";

import { errorText, sendJson } from "@/lib/api";

import "./actions.css";
import { Section } from "./Common";
import { reloadWithMessage, takeMessage } from "./reloadWithMessage";

interface AliasState {
  name: string;
  aliases: Record<string, number>;
}

export function ModelAliases({ name, aliases, versions }: { name: string; aliases: Record<string, number>; versions: number[] }) {
  const [current, setCurrent] = useState<Record<string, number>>(aliases);
  const [alias, setAlias] = useState("");
  const [version, setVersion] = useState<number>(versions[0] ?? 1);
  const [busy, setBusy] = useState(false);
  // the confirmation of the change that reloaded the page, if any
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(() => {
    const left = typeof window === "undefined" ? null : takeMessage(`model:${name}`);
    return left ? { ok: true, text: left } : null;
  });

  const run = async (write: () => Promise<AliasState>, done: string) => {
    setBusy(true);
    setMessage(null);
    try {
      setCurrent((await write()).aliases);
      reloadWithMessage(`model:${name}`, done);
      return true;
    } catch (error) {
      setMessage({ ok: false, text: errorText(error) });
      return false;
    } finally {
      setBusy(false);
    }
  };
  const moving = alias in current && current[alias] !== version;
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const verb = moving ? `moved from v${current[alias]} to` : "set on";
    if (await run(() => sendJson<AliasState>("PUT", "/api/model/aliases", { name, alias, version }), `@${alias} ${verb} v${version}.`)) setAlias("");
  };
  const remove = (key: string) => void run(() => sendJson<AliasState>("DELETE", "/api/model/aliases", undefined, { name, alias: key }), `@${key} removed.`);
  const keys = Object.keys(current).sort();

  return (
    <Section title="Aliases">
      <ul className="tag-list" data-testid="alias-list">
        {keys.length === 0 && <li className="muted">no aliases</li>}
        {keys.map((key) => (
          <li key={key} className="tag-chip">
            <span>
              @{key} → v{current[key]}
            </span>
            <button type="button" aria-label={`remove alias ${key}`} title={`remove alias ${key}`} disabled={busy} onClick={() => remove(key)}>
              ×
            </button>
          </li>
        ))}
      </ul>
      <form className="alias-form" onSubmit={submit}>
        <input type="text" placeholder="alias, e.g. champion" aria-label="alias" value={alias} onChange={(e) => setAlias(e.target.value)} data-testid="alias-name" />
        <label>
          on version{" "}
          <select aria-label="version" value={version} onChange={(e) => setVersion(Number(e.target.value))} data-testid="alias-version">
            {versions.map((v) => (
              <option key={v} value={v}>
                v{v}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" className="primary" disabled={busy || !alias} data-testid="alias-set">
          {moving ? "Move alias" : "Set alias"}
        </button>
      </form>
      {message && (
        <p className={message.ok ? "saved" : "error"} role={message.ok ? "status" : "alert"} data-testid="alias-message">
          {message.text}
        </p>
      )}
    </Section>
  );
}
