import type { Metadata } from "next";
import type { ReactNode } from "react";

import { AuthGate } from "@/components/AuthGate";
import { Nav } from "@/components/Nav";
import { EARLY_FETCH_SCRIPT } from "@/lib/earlyFetch";

import "./globals.css";

export const metadata: Metadata = {
  title: "MLTrack",
  description: "Experiment tracking on MLflow",
};

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <head>
        {/* An inline async module runs as soon as it is parsed, before the stylesheets are in (a
            plain inline script waits for them; next/script's beforeInteractive waits for the
            framework's chunks, 0.6 s later on a busy machine). A constant, never user data. */}
        {/* eslint-disable-next-line no-restricted-syntax */}
        <script id="mltrack-early-fetch" type="module" async dangerouslySetInnerHTML={{ __html: EARLY_FETCH_SCRIPT }} />
      </head>
      <body>
        <Nav />
        <main className="main">
          <AuthGate>{children}</AuthGate>
        </main>
      </body>
    </html>
  );
}
