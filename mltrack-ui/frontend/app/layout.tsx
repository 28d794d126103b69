import type { Metadata } from "next";
import type { ReactNode } from "react";

import { AuthGate } from "@/components/AuthGate";
import { Nav } from "@/components/Nav";

import "./globals.css";

export const metadata: Metadata = {
  title: "MLTrack",
  description: "Experiment tracking on MLflow",
};

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>
        <Nav />
        <main className="main">
          <AuthGate>{children}</AuthGate>
        </main>
      </body>
    </html>
  );
}
