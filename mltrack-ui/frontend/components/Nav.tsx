"use client";

import Link from "next/link";
import { usePathname } from "next/navigation";
import { useEffect, useState } from "react";

import { authStatus } from "@/lib/api";

const LINKS = [
  ["/", "Dashboard"],
  ["/experiments/", "Experiments"],
  ["/runs/", "Runs"],
  ["/compare/", "Compare"],
  ["/traces/", "Traces"],
  ["/models/", "Models"],
  ["/deployments/", "Deployments"],
  ["/plugins/", "Plugins"],
] as const;

/** Who the authenticating proxy says is signed in (nothing for a token or an open UI). */
function CurrentUser() {
  const [user, setUser] = useState<string | null>(null);
  useEffect(() => {
    authStatus().then(
      (state) => setUser(state.user),
      () => undefined,
    );
  }, []);
  if (user === null) return null;
  return (
    <div className="current-user" title={`Signed in as ${user}`}>
      <span className="muted">Signed in as</span>
      <span data-testid="current-user">{user}</span>
    </div>
  );
}

export function Nav() {
  const pathname = usePathname();
  return (
    <nav className="nav">
      <span className="brand">MLTrack</span>
      <CurrentUser />
      {LINKS.map(([href, label]) => (
        <Link prefetch={false} key={href} href={href} className={pathname === href ? "active" : undefined}>
          {label}
        </Link>
      ))}
    </nav>
  );
}
