import Link from "next/link";

export default function NotFound() {
  return (
    <div className="card not-found" data-testid="not-found">
      <div className="code">404</div>
      <h1>Page not found</h1>
      <p className="muted">There is no page at this address. Runs and models are opened from their lists.</p>
      <p>
        <Link href="/">Dashboard</Link> · <Link href="/runs/">Runs</Link> · <Link href="/models/">Models</Link>
      </p>
    </div>
  );
}
