import type { Metadata } from "next";
import Script from "next/script";
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
      <body>
        <Script id="mltrack-early-fetch" strategy="beforeInteractive">
          {EARLY_FETCH_SCRIPT}
        </Script>
        <Nav />
        <main className="main">
          <AuthGate>{children}</AuthGate>
        </main>
      </body>
    </html>
  );
}
