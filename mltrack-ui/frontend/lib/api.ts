// The one place the app talks to the server. A 401 asks the auth gate to show the login form.

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

// Requests started before React hydrates (see `prefetchJson`), taken once by the first matching getJson.
const early = new Map<string, Promise<Response>>();

/** Start a request now, while the page's scripts are still booting; getJson picks it up. */
export function prefetchJson(path: string, query: Query = {}): void {
  const url = apiUrl(path, query);
  if (!early.has(url)) early.set(url, fetch(url, { credentials: "same-origin" }));
}

export async function getJson<T>(path: string, query: Query = {}, signal?: AbortSignal): Promise<T> {
  const url = apiUrl(path, query);
  const started = early.get(url);
  early.delete(url);
  const response = await (started ?? fetch(url, { credentials: "same-origin", signal }));
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

export async function login(token: string): Promise<boolean> {
  const response = await fetch("/api/auth/login", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token }),
  });
  return response.ok;
}
