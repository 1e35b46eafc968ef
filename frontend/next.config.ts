import type { NextConfig } from "next";
import path from "node:path";

const config: NextConfig = {
  output: "standalone",
  // This app lives in a subfolder of the repository; trace files from here.
  outputFileTracingRoot: path.join(__dirname),
  // The standalone output also carries Better Auth's migration (scripts/migrate.mjs), so
  // the image can create its tables (a Job or an init container running it).
  outputFileTracingIncludes: {
    "/api/auth/**": [
      "./scripts/migrate.mjs",
      "./lib/auth-options.mjs",
      // what `better-auth/db/migration` loads (found by running it from the standalone tree)
      ...["better-auth", "@better-auth", "kysely", "better-call", "zod", "jose", "@noble/hashes", "@noble/ciphers", "defu", "rou3", "@better-fetch/fetch"].map(
        (p) => `./node_modules/${p}/**/*`,
      ),
    ],
  },
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
