"use client";

// A small canvas line chart: many series, drag to zoom on steps, double-click to reset,
// hover readout. Hand-written to keep the bundle lean; the server already cut every series
// to a point budget, so drawing is a few hundred thousand lineTo calls at most.

import { type MouseEvent, useCallback, useEffect, useMemo, useRef, useState } from "react";

import { formatSig } from "@/lib/numbers";

export interface ChartSeries {
  label: string;
  color: string;
  /** x positions in the chart's current axis (steps, epoch ms or seconds since the start) */
  xs: number[];
  values: number[];
}

export type XAxis = "step" | "time" | "relative";

export const X_LABELS: Record<XAxis, string> = { step: "step", time: "time (UTC)", relative: "time since start" };

interface Props {
  series: ChartSeries[];
  axis: XAxis;
  height?: number;
  xRange: [number, number] | null;
  /** zooming asks the server for a step window; other axes do not zoom */
  onZoom: ((range: [number, number] | null) => void) | null;
}

const PAD = { left: 64, right: 12, top: 10, bottom: 40 };

function clockTick(ms: number, span: number): string {
  const iso = new Date(ms).toISOString();
  if (span > 2 * 86_400_000) return iso.slice(5, 10);
  return span > 600_000 ? iso.slice(11, 16) : iso.slice(11, 19);
}

export function durationTick(seconds: number): string {
  if (Math.abs(seconds) < 120) return `${formatSig(seconds, 3)} s`;
  if (Math.abs(seconds) < 7200) return `${formatSig(seconds / 60, 3)} min`;
  return `${formatSig(seconds / 3600, 3)} h`;
}

function xTickText(axis: XAxis, value: number, span: number): string {
  if (axis === "time") return clockTick(value, span);
  if (axis === "relative") return durationTick(value);
  return formatSig(value, 6);
}

function ticks(min: number, max: number, count: number, integer: boolean): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  if (integer) step = Math.max(1, Math.round(step)); // steps are whole numbers: no 0.5 ticks
  const out: number[] = [];
  for (let i = Math.ceil(min / step); i * step <= max + step * 1e-9; i++) {
    // i * step, not repeated addition: no 0.30000000000000004 or -0 labels
    out.push(i === 0 ? 0 : Number((i * step).toPrecision(12)));
  }
  return out;
}

function extent(series: ChartSeries[], xRange: [number, number] | null) {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const s of series) {
    for (let i = 0; i < s.xs.length; i++) {
      const x = s.xs[i] as number, y = s.values[i] as number;
      if (xRange && (x < xRange[0] || x > xRange[1])) continue;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
  }
  if (xRange) [x0, x1] = xRange;
  if (!Number.isFinite(x0)) return null;
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  // Scaled to the data: a flat line at 0.0097 sits mid-chart on a 0.0087..0.0107 axis, not on -1..1.
  const margin = y0 === y1 ? Math.abs(y0) * 0.1 || 1 : (y1 - y0) * 0.05;
  return { x0, x1, y0: y0 - margin, y1: y1 + margin };
}

export function LineChart({ series, axis, height = 260, xRange, onZoom }: Props) {
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const boxRef = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(600);
  const [drag, setDrag] = useState<[number, number] | null>(null);
  const [hover, setHover] = useState<{ px: number; x: number } | null>(null);
  const bounds = useMemo(() => extent(series, xRange), [series, xRange]);

  useEffect(() => {
    const box = boxRef.current;
    if (!box) return;
    const observer = new ResizeObserver((entries) => {
      const w = entries[0]?.contentRect.width;
      if (w) setWidth(Math.max(200, Math.floor(w)));
    });
    observer.observe(box);
    return () => observer.disconnect();
  }, []);

  const toPx = useCallback(
    (x: number) => (bounds ? PAD.left + ((x - bounds.x0) / (bounds.x1 - bounds.x0)) * (width - PAD.left - PAD.right) : 0),
    [bounds, width],
  );
  const fromPx = useCallback(
    (px: number) => (bounds ? bounds.x0 + ((px - PAD.left) / (width - PAD.left - PAD.right)) * (bounds.x1 - bounds.x0) : 0),
    [bounds, width],
  );

  useEffect(() => {
    const canvas = canvasRef.current;
    const ctx = canvas?.getContext("2d");
    if (!canvas || !ctx) return;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = width * dpr;
    canvas.height = height * dpr;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    if (!bounds) {
      canvas.dataset.rendered = "empty";
      return;
    }
    const plotW = width - PAD.left - PAD.right, plotH = height - PAD.top - PAD.bottom;
    const yPx = (y: number) => PAD.top + (1 - (y - bounds.y0) / (bounds.y1 - bounds.y0)) * plotH;
    ctx.font = "11px system-ui, sans-serif";
    ctx.strokeStyle = "#e5e7eb";
    ctx.fillStyle = "#6b7280";
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const t of ticks(bounds.y0, bounds.y1, 5, false)) {
      const y = yPx(t);
      ctx.beginPath(); ctx.moveTo(PAD.left, y); ctx.lineTo(PAD.left + plotW, y); ctx.stroke();
      ctx.fillText(formatSig(t, 4), PAD.left - 6, y);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const xTicks = ticks(bounds.x0, bounds.x1, Math.max(2, Math.floor(plotW / 60)), axis === "step");
    canvas.dataset.xticks = xTicks.join(",");
    for (const t of xTicks) {
      const x = toPx(t);
      ctx.beginPath(); ctx.moveTo(x, PAD.top); ctx.lineTo(x, PAD.top + plotH); ctx.stroke();
      ctx.fillText(xTickText(axis, t, bounds.x1 - bounds.x0), x, PAD.top + plotH + 5);
    }
    ctx.fillStyle = "#374151";
    ctx.fillText(X_LABELS[axis], PAD.left + plotW / 2, PAD.top + plotH + 22);
    ctx.save();
    ctx.beginPath(); ctx.rect(PAD.left, PAD.top, plotW, plotH); ctx.clip();
    let drawn = 0;
    for (const s of series) {
      ctx.strokeStyle = s.color;
      ctx.fillStyle = s.color;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      let started = false;
      for (let i = 0; i < s.xs.length; i++) {
        const x = toPx(s.xs[i] as number), y = yPx(s.values[i] as number);
        if (started) ctx.lineTo(x, y); else { ctx.moveTo(x, y); started = true; }
        drawn++;
      }
      ctx.stroke();
      if (s.xs.length <= 3) {
        // a few points: show each one, not just a short segment
        for (let i = 0; i < s.xs.length; i++) {
          ctx.beginPath();
          ctx.arc(toPx(s.xs[i] as number), yPx(s.values[i] as number), 3, 0, 2 * Math.PI);
          ctx.fill();
        }
      }
    }
    ctx.restore();
    canvas.dataset.rendered = "true";
    canvas.dataset.points = String(drawn);
    canvas.dataset.ymin = String(bounds.y0);
    canvas.dataset.ymax = String(bounds.y1);
  }, [series, bounds, width, height, toPx, axis]);

  function localX(event: MouseEvent<HTMLElement>): number {
    return event.clientX - event.currentTarget.getBoundingClientRect().left;
  }

  const readout = hover
    ? series.slice(0, 8).map((s) => {
        let best = -1;
        for (let i = 0; i < s.xs.length; i++) {
          if ((s.xs[i] as number) <= hover.x) best = i; else break;
        }
        return { label: s.label, color: s.color, value: best >= 0 ? s.values[best] : undefined };
      })
    : [];

  return (
    <div
      ref={boxRef}
      className="chart"
      onMouseDown={(e) => onZoom && setDrag([localX(e), localX(e)])}
      onMouseMove={(e) => {
        const px = localX(e);
        if (drag) setDrag([drag[0], px]);
        setHover(bounds ? { px, x: fromPx(px) } : null);
      }}
      onMouseLeave={() => { setHover(null); setDrag(null); }}
      onMouseUp={() => {
        if (onZoom && drag && Math.abs(drag[1] - drag[0]) > 5) {
          const [a, b] = [fromPx(Math.min(...drag)), fromPx(Math.max(...drag))];
          onZoom([Math.floor(a), Math.ceil(b)]);
        }
        setDrag(null);
      }}
      onDoubleClick={() => onZoom?.(null)}
      title={onZoom ? "drag to zoom, double-click to reset" : undefined}
    >
      <canvas ref={canvasRef} style={{ width: `${width}px`, height: `${height}px` }} data-testid="chart-canvas" />
      {drag && (
        <div className="chart-select" style={{ left: Math.min(...drag), width: Math.abs(drag[1] - drag[0]), height }} />
      )}
      {hover && bounds && readout.length > 0 && (
        <div className="chart-readout">
          <div>
            {X_LABELS[axis]} {xTickText(axis, axis === "step" ? Math.round(hover.x) : hover.x, bounds.x1 - bounds.x0)}
          </div>
          {readout.map((r, i) => (
            <div key={i} style={{ color: r.color }}>
              {r.label}: {formatSig(r.value)}
            </div>
          ))}
        </div>
      )}
    </div>
  );
}
