// One colour per run, derived from its id, so a run has the same colour on every page and chart.

/** FNV-1a over the id: stable across pages and sessions, spread over the hue circle. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export function runColour(runId: string): string {
  const h = hash(runId);
  const hue = h % 360;
  // Two lightness/saturation levels double the distinguishable colours; both stay readable on white.
  const [saturation, lightness] = (h >>> 9) % 2 === 0 ? [70, 42] : [85, 32];
  return `hsl(${hue}, ${saturation}%, ${lightness}%)`;
}

export function shortId(runId: string): string {
  return runId.slice(0, 8);
}

interface Named {
  run_id: string;
  run_name: string | null;
}

/** run id -> label: the run's name, plus its short id where two shown runs share a name. */
export function runLabels(runs: Named[]): Record<string, string> {
  const counts = new Map<string, number>();
  for (const run of runs) counts.set(run.run_name ?? "", (counts.get(run.run_name ?? "") ?? 0) + 1);
  const labels: Record<string, string> = {};
  for (const run of runs) {
    const name = run.run_name ?? "";
    if (!name) labels[run.run_id] = shortId(run.run_id);
    else labels[run.run_id] = (counts.get(name) ?? 0) > 1 ? `${name} (${shortId(run.run_id)})` : name;
  }
  return labels;
}
