"use client";

import { useEffect, useState } from "react";

import { absoluteTime, relativeTime } from "@/lib/time";

/** A moment as "5 min ago", the absolute UTC time on hover. Accepts epoch ms or an ISO string. */
export function When({ at }: { at: number | string | null | undefined }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), 30_000);
    return () => window.clearInterval(timer);
  }, []);
  const ms = typeof at === "string" ? Date.parse(at) : at;
  if (ms === null || ms === undefined || Number.isNaN(ms) || ms === 0) return null;
  return (
    <time className="when" dateTime={new Date(ms).toISOString()} title={absoluteTime(ms)}>
      {relativeTime(ms, now)}
    </time>
  );
}
