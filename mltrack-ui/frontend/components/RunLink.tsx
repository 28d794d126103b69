import Link from "next/link";

export function RunLink({ runId, name }: { runId: string; name: string | null }) {
  return (
    <Link prefetch={false} href={`/run/?id=${encodeURIComponent(runId)}`} data-testid="run-link">
      {name || runId.slice(0, 8)}
    </Link>
  );
}
