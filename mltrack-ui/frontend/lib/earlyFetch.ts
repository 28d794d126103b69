// The runs table's first page (and config.json, which every request waits for) is requested by an
// inline script in <head>, while the page's scripts are still downloading, and handed to the first
// getJson for the same URL. On the charts tab (no selection), once that page is in, the script
// also asks for the first panel's histories as the workspace will (useHistories' first batch).
// Each URL must be built exactly as the page builds it for its initial state; where one ever
// differs the page simply fetches again (the browser tests check it does not).

export const RUNS_PAGE_SIZE = 100;
/** Points per series in the workspace's grid: a panel is ~400 px wide, so more would not be seen. */
export const GRID_POINTS = 300;

export const EARLY_FETCH_SCRIPT = `(function () {
  var early = (window.__mltrackEarly = { "/config.json": fetch("/config.json", { cache: "no-cache" }) });
  if (location.pathname.indexOf("/runs") !== 0) return;
  var s = new URLSearchParams(location.search), q = new URLSearchParams();
  if (s.get("experiment")) q.append("experiment_ids", s.get("experiment"));
  if (s.get("filter")) q.append("filter", s.get("filter"));
  q.append("page_size", "${RUNS_PAGE_SIZE}");
  var url = "/api/runs?" + q.toString();
  var runs = (early[url] = fetch(url, { credentials: "same-origin" }));
  if (s.get("tab") !== "charts" || s.get("sel")) return;
  runs
    .then(function (r) { return r.ok ? r.clone().json() : null; })
    .then(function (page) {
      if (!page || !page.runs.length) return;
      var present = {};
      page.runs.forEach(function (run) { Object.keys(run.metrics).forEach(function (k) { present[k] = true; }); });
      var keys = page.columns.metrics.filter(function (k) { return present[k]; });
      var chosen = s.get("panels");
      if (chosen !== null) {
        chosen = chosen === "" ? [] : chosen.split(",").map(decodeURIComponent);
        keys = chosen.filter(function (k) { return keys.indexOf(k) >= 0; });
      }
      if (!keys.length) return;
      var h = new URLSearchParams();
      h.append("run_ids", page.runs.map(function (run) { return run.run_id; }).join(","));
      h.append("keys", keys[0]);
      h.append("max_points", "${GRID_POINTS}");
      var first = "/api/metrics/history?" + h.toString();
      early[first] = fetch(first, { credentials: "same-origin" });
    })
    .catch(function () {});
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
