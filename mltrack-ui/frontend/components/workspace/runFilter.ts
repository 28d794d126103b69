/** MLflow's filter for these runs; an id that is not one (from an edited URL) is left out. */
export function runIdsFilter(runIds: string[]): string {
  const ids = runIds.filter((id) => /^[\w-]+$/.test(id));
  return `attributes.run_id IN (${ids.map((id) => `'${id}'`).join(", ")})`;
}
