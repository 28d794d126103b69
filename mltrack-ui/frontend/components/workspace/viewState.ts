// The runs page's whole view (table and charts workspace) as URL query parameters, so a copied
// URL reproduces it, and as the JSON object a saved view stores (the same keys, parsed).

export type Tab = "table" | "charts";

export interface PageView {
  experiment: string;
  filter: string;
  /** the table's chosen columns; null = the default choice (or the one remembered locally) */
  columns: string[] | null;
  selected: string[];
  tab: Tab;
  /** metric panels shown, in order; null = every metric of the shown runs */
  panels: string[] | null;
  /** "params.<key>" or "tags.<key>" to group by, or "" */
  group: string;
  /** params on the parallel-coordinates axes; null = the first few */
  parallel: string[] | null;
  parallelMetric: string;
  scatterX: string;
  scatterY: string;
}

const LIST_SEPARATOR = ",";

function list(text: string | null): string[] | null {
  if (text === null) return null;
  return text === "" ? [] : text.split(LIST_SEPARATOR).map(decodeURIComponent);
}

function joined(values: string[]): string {
  // a key may hold a comma: each item is escaped, the separator is not
  return values.map(encodeURIComponent).join(LIST_SEPARATOR);
}

export function viewFromQuery(search: URLSearchParams): PageView {
  return {
    experiment: search.get("experiment") ?? "",
    filter: search.get("filter") ?? "",
    columns: list(search.get("cols")),
    selected: list(search.get("sel")) ?? [],
    tab: search.get("tab") === "charts" ? "charts" : "table",
    panels: list(search.get("panels")),
    group: search.get("group") ?? "",
    parallel: list(search.get("pc")),
    parallelMetric: search.get("pcm") ?? "",
    scatterX: search.get("sx") ?? "",
    scatterY: search.get("sy") ?? "",
  };
}

/** Only what differs from an empty view, so a plain runs page keeps a plain URL. */
export function viewToQuery(view: PageView): string {
  const params = new URLSearchParams();
  const set = (key: string, value: string) => value && params.set(key, value);
  set("experiment", view.experiment);
  set("filter", view.filter);
  if (view.columns !== null) params.set("cols", joined(view.columns));
  if (view.selected.length > 0) params.set("sel", joined(view.selected));
  if (view.tab !== "table") params.set("tab", view.tab);
  if (view.panels !== null) params.set("panels", joined(view.panels));
  set("group", view.group);
  if (view.parallel !== null) params.set("pc", joined(view.parallel));
  set("pcm", view.parallelMetric);
  set("sx", view.scatterX);
  set("sy", view.scatterY);
  return params.toString();
}

/** A saved view's JSON back into a view; anything missing or of the wrong type takes its default. */
export function viewFromSaved(saved: Record<string, unknown>): PageView {
  const text = (v: unknown) => (typeof v === "string" ? v : "");
  const strings = (v: unknown) => (Array.isArray(v) && v.every((x) => typeof x === "string") ? (v as string[]) : null);
  return {
    experiment: text(saved.experiment),
    filter: text(saved.filter),
    columns: strings(saved.columns),
    selected: strings(saved.selected) ?? [],
    tab: saved.tab === "charts" ? "charts" : "table",
    panels: strings(saved.panels),
    group: text(saved.group),
    parallel: strings(saved.parallel),
    parallelMetric: text(saved.parallelMetric),
    scatterX: text(saved.scatterX),
    scatterY: text(saved.scatterY),
  };
}
