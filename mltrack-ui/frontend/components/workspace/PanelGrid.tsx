"use client";

// The workspace's grid: one panel per metric, every shown run overlaid in its own colour, or,
// grouped, each group's mean and min-max band. A metric logged once or twice per run is bars.

import { useEffect, useMemo } from "react";

import { type ChartSeries, LineChart } from "@/components/LineChart";
import { Bars, FEW_POINTS } from "@/components/MetricChart";
import { runColour, runColours } from "@/lib/runColour";
import type { Series } from "@/lib/types";

import { GroupBands } from "./GroupBands";
import type { Group } from "./groups";

const LEGEND_ENTRIES = 24;
let firstChartMarked = false; // the first panel drawn on this page load, for the benchmark

interface Props {
  keys: string[];
  byKey: Record<string, Series[]>;
  labels: Record<string, string>;
  groups: Group[] | null;
}

function Legend({ entries }: { entries: { label: string; colour: string }[] }) {
  return (
    <div className="legend ws-legend">
      {entries.slice(0, LEGEND_ENTRIES).map((e, i) => (
        <span key={i} style={{ color: e.colour }} title={e.label} data-testid="legend-entry">
          ■ {e.label}
        </span>
      ))}
      {entries.length > LEGEND_ENTRIES && <span className="muted">+{entries.length - LEGEND_ENTRIES} more</span>}
    </div>
  );
}

function Panel({ metricKey, series, labels, groups }: { metricKey: string; series: Series[] | undefined; labels: Record<string, string>; groups: Group[] | null }) {
  const loaded = useMemo(() => (series ?? []).filter((s) => s.total > 0), [series]);
  const colours = useMemo(() => runColours(Object.keys(labels)), [labels]); // every shown run, as the table
  const lines: ChartSeries[] = useMemo(
    () => loaded.map((s) => ({ label: labels[s.run_id] ?? s.run_id.slice(0, 8), color: colours[s.run_id] ?? runColour(s.run_id), xs: s.steps, values: s.values })),
    [loaded, labels, colours],
  );
  const longest = loaded.reduce((most, s) => Math.max(most, s.total), 0);
  const few = series !== undefined && longest <= FEW_POINTS;
  const shownGroups = groups?.filter((g) => g.runIds.some((id) => loaded.some((s) => s.run_id === id))) ?? null;
  const mode = series === undefined ? "loading" : loaded.length === 0 ? "empty" : few ? "bars" : groups ? "groups" : "lines";
  return (
    <div className="card metric-chart" data-testid="workspace-panel" data-key={metricKey} data-mode={mode} data-runs={loaded.length}>
      <div className="chart-head">
        <h3 title={metricKey}>{metricKey}</h3>
        {series !== undefined && <span className="muted">{loaded.length} runs</span>}
      </div>
      {mode === "loading" && <p className="muted">Loading…</p>}
      {mode === "empty" && <p className="muted">no finite values</p>}
      {mode === "bars" && <Bars series={loaded} labels={labels} colours={colours} />}
      {mode === "groups" && shownGroups && (
        <>
          <GroupBands groups={shownGroups} series={loaded} />
          <div className="legend ws-legend">
            {shownGroups.map((g) => (
              <span key={g.value} style={{ color: g.colour }} data-testid="group-label">
                ■ {g.label}
              </span>
            ))}
          </div>
        </>
      )}
      {mode === "lines" && (
        <>
          <LineChart series={lines} axis="step" height={220} xRange={null} onZoom={null} />
          <Legend entries={lines.map((l) => ({ label: l.label, colour: l.color }))} />
        </>
      )}
    </div>
  );
}

export function PanelGrid({ keys, byKey, labels, groups }: Props) {
  const anyDrawn = keys.some((k) => byKey[k] !== undefined);
  useEffect(() => {
    // Children's effects (the canvases' drawing) have run by now.
    if (anyDrawn && !firstChartMarked) {
      firstChartMarked = true;
      performance.mark("mltrack:workspace-first-chart");
    }
  }, [anyDrawn]);
  if (keys.length === 0) return <p className="muted">No metric panels: add one with Panels, or show runs that logged metrics.</p>;
  return (
    <div className="charts ws-grid" data-testid="panel-grid">
      {keys.map((key) => (
        <Panel key={key} metricKey={key} series={byKey[key]} labels={labels} groups={groups} />
      ))}
    </div>
  );
}
