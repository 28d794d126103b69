// One colour per run. Each run prefers a slot of a fixed palette (from a hash of its id), so it
// keeps its colour from page to page; runs shown together take distinct slots, because two hashed
// hues can land a few degrees apart and read as one colour.

/**
 * Twenty colours picked far apart (greedily, by CIEDE2000: any two differ by 15 or more, where 2
 * is a just-noticeable difference), each at least 3:1 against white so a line or dot stays visible;
 * no greys, which read as "disabled".
 */
export const PALETTE: readonly string[] = [
  "#2d69f0", "#879600", "#a52d00", "#ff4ba5", "#00a5a5",
  "#692d5a", "#005a2d", "#c3875a", "#785a00", "#ff4b4b",
  "#a587d2", "#00a55a", "#c3004b", "#3c2da5", "#0096d2",
  "#a53cb4", "#004b78", "#5a691e", "#b46978", "#b48700",
];

/** FNV-1a over the id: stable across pages and sessions. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The hue-circle colour of a run past the palette's size (the 21st and later run of one view). */
function hashColour(runId: string): string {
  const h = hash(runId);
  const hue = h % 360;
  // Two lightness/saturation levels double the distinguishable colours; both stay readable on white.
  const [saturation, lightness] = (h >>> 9) % 2 === 0 ? [70, 42] : [85, 32];
  return `hsl(${hue}, ${saturation}%, ${lightness}%)`;
}

/** The colour a run has when shown alone (its preferred palette slot). */
export function runColour(runId: string): string {
  return PALETTE[hash(runId) % PALETTE.length] as string;
}

/**
 * run id -> colour for runs shown together: each takes its preferred palette slot, or the next
 * free one when another run holds it. Ids are taken in sorted order, so the answer depends on the
 * set of runs only, not on the order a page lists them in; once the palette is used up the rest
 * get their hashed hue.
 */
export function runColours(runIds: Iterable<string>): Record<string, string> {
  const ids = [...new Set(runIds)].sort();
  const taken = new Array<boolean>(PALETTE.length).fill(false);
  const colours: Record<string, string> = {};
  let free = PALETTE.length;
  for (const id of ids) {
    if (free === 0) {
      colours[id] = hashColour(id);
      continue;
    }
    let slot = hash(id) % PALETTE.length;
    while (taken[slot]) slot = (slot + 1) % PALETTE.length;
    taken[slot] = true;
    free -= 1;
    colours[id] = PALETTE[slot] as string;
  }
  return colours;
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
