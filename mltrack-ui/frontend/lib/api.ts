// The one place the app talks to the server. A 401 asks the auth gate to show the login form.

import { takeEarly } from "./earlyFetch";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly hint: string | null = null,
  ) {
    super(message);
  }
}

export const AUTH_REQUIRED_EVENT = "mltrack:auth-required";

type Query = Record<string, string | number | boolean | null | undefined | string[]>;

let apiBaseUrl: Promise<string> | null = null;

/**
 * Where the API lives: `apiBaseUrl` of the `config.json` served beside the front end (a front end
 * hosted on another origin, e.g. Vercel, names the UI server there at deploy time, no rebuild),
 * else "" (this origin, as `mltrack ui` serves it). Read once per page load.
 */
export function apiBase(): Promise<string> {
  apiBaseUrl ??= (takeEarly("/config.json") ?? fetch("/config.json", { cache: "no-cache" }))
    .then((response) => (response.ok ? (response.json() as Promise<{ apiBaseUrl?: unknown }>) : ({} as { apiBaseUrl?: unknown })))
    .then((config) => (typeof config.apiBaseUrl === "string" ? config.apiBaseUrl.replace(/\/+$/, "") : ""))
    .catch(() => "");
  return apiBaseUrl;
}

/** Cookies go to another origin only when the API is there (its CORS allow-list must name this one). */
function credentialsFor(base: string): RequestCredentials {
  return base ? "include" : "same-origin";
}

export function apiUrl(path: string, query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === null || value === undefined || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => params.append(key, v));
    else params.append(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

export async function getJson<T>(path: string, query: Query = {}, signal?: AbortSignal): Promise<T> {
  const base = await apiBase();
  const url = apiUrl(path, query);
  const response = await ((base ? undefined : takeEarly(url)) ??
    fetch(base + url, { credentials: credentialsFor(base), signal }));
  if (response.status === 401) {
    window.dispatchEvent(new Event(AUTH_REQUIRED_EVENT));
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    let hint: string | null = null;
    try {
      const body = (await response.json()) as { error?: string; hint?: string | null };
      message = body.error ?? message;
      hint = body.hint ?? null;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(response.status, message, hint);
  }
  return (await response.json()) as T;
}

/** What `GET /api/auth` says: whether a login is needed, and who the proxy says is asking. */
export interface AuthState {
  required: boolean;
  authenticated: boolean;
  /** the user an authenticating reverse proxy named; null for a token, a session or an open UI */
  user: string | null;
  /** false when the UI has no token and takes its users only from the proxy */
  token_login: boolean;
}

let authState: Promise<AuthState> | null = null;

/** `GET /api/auth`, asked once per page load: the auth gate and the nav's user name share it. */
export function authStatus(): Promise<AuthState> {
  authState ??= getJson<AuthState>("/api/auth").catch((error: unknown) => {
    authState = null; // a failed request is asked again next time
    throw error;
  });
  return authState;
}

export async function login(token: string): Promise<boolean> {
  const base = await apiBase();
  const response = await fetch(`${base}/api/auth/login`, {
    method: "POST",
    credentials: credentialsFor(base),
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token }),
  });
  return response.ok;
}

// -- writes (actions) and traces ---------------------------------------------------------------

/**
 * A write: `method` with a JSON body. The server accepts it only from this UI's own pages (it checks
 * the Origin the browser sends), and refuses bad input before writing anything.
 */
export async function sendJson<T>(method: "PATCH" | "POST" | "PUT" | "DELETE", path: string, body?: unknown, query: Query = {}): Promise<T> {
  const base = await apiBase();
  const response = await fetch(base + apiUrl(path, query), {
    method,
    credentials: credentialsFor(base),
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) window.dispatchEvent(new Event(AUTH_REQUIRED_EVENT));
  const answer = (await response.json().catch(() => null)) as (T & { error?: string; hint?: string | null }) | null;
  if (!response.ok) {
    throw new ApiError(response.status, answer?.error ?? `${response.status} ${response.statusText}`, answer?.hint ?? null);
  }
  return answer as T;
}

/** A run as the write routes return it after a change. */
export interface RunState {
  run_id: string;
  run_name: string | null;
  lifecycle_stage: string;
  description: string;
  tags: Record<string, string>;
}

export interface TokenCounts {
  input: number;
  output: number;
  total: number;
}

/** One row of `GET /api/traces`. */
export interface TraceSummary {
  trace_id: string;
  name: string;
  experiment_id: string;
  run_id: string | null;
  status: string;
  start_time: number | null;
  latency_ms: number | null;
  tokens: TokenCounts | null;
}

/** One span of `GET /api/traces/{id}`; inputs and outputs are text, shown as text. */
export interface TraceSpan {
  span_id: string;
  parent_id: string | null;
  name: string;
  type: string;
  status: string;
  error: string | null;
  start_ms: number;
  duration_ms: number | null;
  model: string | null;
  tokens: TokenCounts | null;
  inputs: string | null;
  outputs: string | null;
}

export interface TraceDetail extends TraceSummary {
  spans: TraceSpan[];
}

/** The message and hint of a failed request, as one line for the page. */
export function errorText(error: unknown): string {
  if (error instanceof ApiError) return error.hint ? `${error.message} (${error.hint})` : error.message;
  return error instanceof Error ? error.message : String(error);
}
