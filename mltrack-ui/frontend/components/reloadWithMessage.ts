// After a change, the page is loaded again so that every part of it (header, tag table, versions
// table) shows the stored state; the confirmation survives the reload in sessionStorage.

const KEY = "mltrack:action-message";

export function reloadWithMessage(scope: string, text: string): void {
  window.sessionStorage.setItem(KEY, JSON.stringify({ scope, text }));
  window.location.reload();
}

/** The confirmation left for `scope` by the change that reloaded the page (read once). */
export function takeMessage(scope: string): string | null {
  const raw = window.sessionStorage.getItem(KEY);
  if (raw === null) return null;
  try {
    const saved = JSON.parse(raw) as { scope?: string; text?: string };
    if (saved.scope !== scope || typeof saved.text !== "string") return null;
    window.sessionStorage.removeItem(KEY);
    return saved.text;
  } catch {
    window.sessionStorage.removeItem(KEY);
    return null;
  }
}
