"use client";

// A small canvas line chart: many series, drag to zoom on steps, double-click to reset,
// hover readout. Hand-written to keep the bundle lean; the server already cut every series
// to a point budget, so drawing is a few hundred thousand lineTo calls at most.

import { type MouseEvent, useCallback, useEffect, useMemo, useRef, useState } from "react";

import { formatNumber } from "@/lib/format";

export interface ChartSeries {
  label: string;
  color: string;
  steps: number[];
  values: number[];
}

interface Props {
  series: ChartSeries[];
  height?: number;
  xRange: [number, number] | null;
  onZoom: (range: [number, number] | null) => void;
}

const PAD = { left: 64, right: 12, top: 10, bottom: 28 };
export const PALETTE = [
  "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c",
  "#0891b2", "#c026d3", "#65a30d", "#b45309", "#475569",
];

function formatTick(value: number): string {
  return String(Number(value.toPrecision(6)));
}

function ticks(min: number, max: number, count: number): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let t = Math.ceil(min / step) * step; t <= max + step * 1e-9; t += step) out.push(t);
  return out;
}

function extent(series: ChartSeries[], xRange: [number, number] | null) {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const s of series) {
    for (let i = 0; i < s.steps.length; i++) {
      const x = s.steps[i] as number, y = s.values[i] as number;
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
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const margin = (y1 - y0) * 0.05;
  return { x0, x1, y0: y0 - margin, y1: y1 + margin };
}

export function LineChart({ series, height = 260, xRange, onZoom }: Props) {
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const boxRef = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(600);
  const [drag, setDrag] = useState<[number, number] | null>(null);
  const [hover, setHover] = useState<{ px: number; step: number } | null>(null);
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
    for (const t of ticks(bounds.y0, bounds.y1, 5)) {
      const y = yPx(t);
      ctx.beginPath(); ctx.moveTo(PAD.left, y); ctx.lineTo(PAD.left + plotW, y); ctx.stroke();
      ctx.fillText(formatTick(t), PAD.left - 6, y);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const t of ticks(bounds.x0, bounds.x1, Math.max(2, Math.floor(plotW / 90)))) {
      const x = toPx(t);
      ctx.beginPath(); ctx.moveTo(x, PAD.top); ctx.lineTo(x, PAD.top + plotH); ctx.stroke();
      ctx.fillText(formatTick(t), x, PAD.top + plotH + 6);
    }
    ctx.save();
    ctx.beginPath(); ctx.rect(PAD.left, PAD.top, plotW, plotH); ctx.clip();
    let drawn = 0;
    for (const s of series) {
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      let started = false;
      for (let i = 0; i < s.steps.length; i++) {
        const x = toPx(s.steps[i] as number), y = yPx(s.values[i] as number);
        if (started) ctx.lineTo(x, y); else { ctx.moveTo(x, y); started = true; }
        drawn++;
      }
      if (s.steps.length === 1) ctx.arc(toPx(s.steps[0] as number), yPx(s.values[0] as number), 2, 0, 2 * Math.PI);
      ctx.stroke();
    }
    ctx.restore();
    canvas.dataset.rendered = "true";
    canvas.dataset.points = String(drawn);
  }, [series, bounds, width, height, toPx]);

  function localX(event: MouseEvent<HTMLElement>): number {
    return event.clientX - event.currentTarget.getBoundingClientRect().left;
  }

  const readout = hover
    ? series.slice(0, 6).map((s) => {
        let best = -1;
        for (let i = 0; i < s.steps.length; i++) {
          if ((s.steps[i] as number) <= hover.step) best = i; else break;
        }
        return { label: s.label, color: s.color, value: best >= 0 ? s.values[best] : undefined };
      })
    : [];

  return (
    <div
      ref={boxRef}
      className="chart"
      onMouseDown={(e) => setDrag([localX(e), localX(e)])}
      onMouseMove={(e) => {
        const px = localX(e);
        if (drag) setDrag([drag[0], px]);
        setHover(bounds ? { px, step: fromPx(px) } : null);
      }}
      onMouseLeave={() => { setHover(null); setDrag(null); }}
      onMouseUp={() => {
        if (drag && Math.abs(drag[1] - drag[0]) > 5) {
          const [a, b] = [fromPx(Math.min(...drag)), fromPx(Math.max(...drag))];
          onZoom([Math.floor(a), Math.ceil(b)]);
        }
        setDrag(null);
      }}
      onDoubleClick={() => onZoom(null)}
      title="drag to zoom, double-click to reset"
    >
      <canvas ref={canvasRef} style={{ width: `${width}px`, height: `${height}px` }} data-testid="chart-canvas" />
      {drag && (
        <div className="chart-select" style={{ left: Math.min(...drag), width: Math.abs(drag[1] - drag[0]), height }} />
      )}
      {hover && readout.length > 0 && (
        <div className="chart-readout">
          <div>step {Math.round(hover.step)}</div>
          {readout.map((r, i) => (
            <div key={i} style={{ color: r.color }}>
              {r.label}: {formatNumber(r.value)}
            </div>
          ))}
        </div>
      )}
    </div>
  );
}
