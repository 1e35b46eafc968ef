import type { NextConfig } from "next";
import path from "node:path";

const config: NextConfig = {
  output: "standalone",
  // This app lives in a subfolder of the repository; trace files from here.
  outputFileTracingRoot: path.join(__dirname),
  poweredByHeader: false,
  reactStrictMode: true,
  experimental: { externalDir: true },
  webpack(cfg) {
    // The OpenAPI contract is imported as text (app/api/openapi.yaml/route.ts).
    cfg.module.rules.push({ test: /\.yaml$/, type: "asset/source" });
    return cfg;
  },
};

export default config;
