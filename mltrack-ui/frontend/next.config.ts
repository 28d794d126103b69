import type { NextConfig } from "next";

// A static export: `mltrack ui` serves these files from the Python package, so pip users need no Node.js.
const config: NextConfig = {
  output: "export",
  trailingSlash: true,
  images: { unoptimized: true },
  reactStrictMode: true,
  poweredByHeader: false,
};

export default config;
