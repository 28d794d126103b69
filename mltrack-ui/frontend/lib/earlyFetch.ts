// The runs table's first page is requested by an inline script in <head>, while the page's
// scripts are still downloading, and handed to the first getJson for the same URL. It must build
// the URL exactly as `apiUrl(runsQuery(...))` does for the page's initial state; if it ever
// differs, the page simply fetches again (the browser tests check it does not).

export const RUNS_PAGE_SIZE = 100;

export const EARLY_FETCH_SCRIPT = `(function () {
  if (location.pathname.indexOf("/runs") !== 0) return;
  var s = new URLSearchParams(location.search), q = new URLSearchParams();
  if (s.get("experiment")) q.append("experiment_ids", s.get("experiment"));
  if (s.get("filter")) q.append("filter", s.get("filter"));
  q.append("page_size", "${RUNS_PAGE_SIZE}");
  var url = "/api/runs?" + q.toString();
  window.__mltrackEarly = {};
  window.__mltrackEarly[url] = fetch(url, { credentials: "same-origin" });
})();`;

declare global {
  interface Window {
    __mltrackEarly?: Record<string, Promise<Response> | undefined>;
  }
}

/** The response promise the inline script started for `url`, taken at most once. */
export function takeEarly(url: string): Promise<Response> | undefined {
  const early = typeof window === "undefined" ? undefined : window.__mltrackEarly;
  const started = early?.[url];
  if (early && started) early[url] = undefined;
  return started;
}
