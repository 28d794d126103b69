"use client";

// The runs table's column choice: metrics first, the user's own params, autologged params
// (sklearn's `logisticregression__C` and kin) folded away, tags; remembered per experiment.

const STORAGE_PREFIX = "mltrack.runs.columns.";
const DEFAULT_METRICS = 6;
const DEFAULT_PARAMS = 6;

/** Autologged params name a pipeline step and its argument with a double underscore. */
export function isAutologged(column: string): boolean {
  return column.startsWith("params.") && column.includes("__");
}

/** What a table shows before anyone chooses: key metrics first, then the user's own params. */
export function defaultColumns(all: string[]): string[] {
  const metrics = all.filter((c) => c.startsWith("metrics.")).slice(0, DEFAULT_METRICS);
  const params = all.filter((c) => c.startsWith("params.") && !isAutologged(c)).slice(0, DEFAULT_PARAMS);
  return [...metrics, ...params];
}

export function loadColumns(experiment: string): string[] | null {
  if (typeof window === "undefined") return null;
  try {
    const raw = window.localStorage.getItem(STORAGE_PREFIX + (experiment || "all"));
    const parsed: unknown = raw === null ? null : JSON.parse(raw);
    return Array.isArray(parsed) && parsed.every((c) => typeof c === "string") ? (parsed as string[]) : null;
  } catch {
    return null; // storage off (private window) or a damaged value: fall back to the default
  }
}

export function saveColumns(experiment: string, columns: string[] | null): void {
  try {
    const key = STORAGE_PREFIX + (experiment || "all");
    if (columns === null) window.localStorage.removeItem(key);
    else window.localStorage.setItem(key, JSON.stringify(columns));
  } catch {
    // storage off: the choice lasts for this page only
  }
}

interface Props {
  columns: string[];
  visible: string[];
  onChange: (next: string[] | null) => void;
}

function Group({ title, columns, visible, toggle }: { title: string; columns: string[]; visible: string[]; toggle: (c: string) => void }) {
  return (
    <div className="column-group">
      {columns.map((column) => (
        <label key={column} title={column}>
          <input type="checkbox" checked={visible.includes(column)} onChange={() => toggle(column)} />
          <span>{column}</span>
        </label>
      ))}
      {columns.length === 0 && <span className="muted">none</span>}
      <span className="sr-only">{title}</span>
    </div>
  );
}

export function ColumnPicker({ columns, visible, onChange }: Props) {
  const toggle = (column: string) =>
    onChange(visible.includes(column) ? visible.filter((c) => c !== column) : [...visible, column]);
  const metrics = columns.filter((c) => c.startsWith("metrics."));
  const params = columns.filter((c) => c.startsWith("params.") && !isAutologged(c));
  const autologged = columns.filter(isAutologged);
  const tags = columns.filter((c) => c.startsWith("tags."));
  return (
    <div className="card column-picker" data-testid="column-chooser">
      <div className="toolbar">
        <strong>Columns</strong>
        <button type="button" onClick={() => onChange(null)} data-testid="columns-default">
          default
        </button>
        <span className="muted">your choice is remembered in this browser, per experiment</span>
      </div>
      <h4>Metrics</h4>
      <Group title="metrics" columns={metrics} visible={visible} toggle={toggle} />
      <h4>Parameters</h4>
      <Group title="parameters" columns={params} visible={visible} toggle={toggle} />
      {autologged.length > 0 && (
        <details data-testid="autologged-params">
          <summary>Autologged parameters ({autologged.length})</summary>
          <Group title="autologged parameters" columns={autologged} visible={visible} toggle={toggle} />
        </details>
      )}
      {tags.length > 0 && (
        <details open>
          <summary>Tags ({tags.length})</summary>
          <Group title="tags" columns={tags} visible={visible} toggle={toggle} />
        </details>
      )}
    </div>
  );
}
