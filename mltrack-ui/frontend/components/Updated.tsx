"use client";

import { useEffect, useState } from "react";

/** "updated N s ago" for a live view; ticks every second while shown. */
export function Updated({ at, live }: { at: number | null; live: boolean }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(timer);
  }, []);
  if (at === null) return null;
  const seconds = Math.max(0, Math.round((now - at) / 1000));
  return (
    <span className="muted live" data-testid="updated-ago" data-live={live ? "true" : "false"}>
      {live ? "● live · " : ""}updated {seconds} s ago
    </span>
  );
}
