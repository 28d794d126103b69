"use client";

import Link from "next/link";
import { usePathname } from "next/navigation";

const LINKS = [
  ["/", "Dashboard"],
  ["/experiments/", "Experiments"],
  ["/runs/", "Runs"],
  ["/compare/", "Compare"],
  ["/models/", "Models"],
  ["/deployments/", "Deployments"],
  ["/plugins/", "Plugins"],
] as const;

export function Nav() {
  const pathname = usePathname();
  return (
    <nav className="nav">
      <span className="brand">MLTrack</span>
      {LINKS.map(([href, label]) => (
        <Link prefetch={false} key={href} href={href} className={pathname === href ? "active" : undefined}>
          {label}
        </Link>
      ))}
    </nav>
  );
}
