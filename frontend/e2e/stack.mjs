// Starts the real stack for the browser tests: a fresh database in the test PostgreSQL
// (TEST_PG_ADMIN_URL from scripts/test, else a throwaway cluster of scripts/pg), todo-host ($TODO_HOST) serving every bundle in
// services/ and verifying tokens against the front end's JWKS only (no dev secret), and
// the front end's production build (the standalone server of `next build`). Ports are
// free ones picked here; everything is stopped by stop().
import { spawn, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";

const here = path.dirname(fileURLToPath(import.meta.url));
export const frontendDir = path.resolve(here, "..");
export const repoRoot = path.resolve(frontendDir, "..");

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

async function waitFor(url, proc, what, ms = 30000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (proc.exitCode !== null || proc.pid === undefined) throw new Error(`${what} exited with ${proc.exitCode}; see ${proc.logFile}`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`${what} not ready at ${url} within ${ms} ms; see ${proc.logFile}`);
}

function start(cmd, args, env, logFile, cwd) {
  const out = fs.openSync(logFile, "w");
  const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", out, out], cwd });
  p.logFile = logFile;
  p.on("error", (e) => fs.appendFileSync(logFile, `spawn failed: ${e.message}\n`));
  return p;
}

// E2E_SERVICES_ROOT: serve the bundles of another checkout (trying a branch's services).
const servicesRoot = process.env.E2E_SERVICES_ROOT || repoRoot;

export function bundles() {
  return fs
    .readdirSync(path.join(servicesRoot, "services"))
    .filter((d) => fs.existsSync(path.join(servicesRoot, "services", d, "service.lua")))
    .map((d) => path.join(servicesRoot, "services", d));
}

/** The test PostgreSQL's admin URL: scripts/test's, or a throwaway cluster started here. */
function adminUrl() {
  if (process.env.TEST_PG_ADMIN_URL) return { admin: process.env.TEST_PG_ADMIN_URL, stopPg: () => {} };
  const dir = fs.mkdtempSync("/tmp/front-e2e-pg-");
  const pg = path.join(repoRoot, "scripts/pg");
  const url = execFileSync(pg, ["start", dir], { env: { ...process.env, PG_THROWAWAY: "1" } }).toString().trim();
  return {
    admin: url.replace(/\/todo$/, "/postgres"),
    stopPg: () => {
      execFileSync(pg, ["stop", dir]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function startStack() {
  const { admin, stopPg } = adminUrl();
  const host = path.resolve(process.env.TODO_HOST || path.join(repoRoot, "build/todo-host"));
  if (!fs.existsSync(host)) throw new Error(`no todo-host at ${host} (make build)`);
  if (!fs.existsSync(path.join(frontendDir, ".next/standalone/server.js"))) throw new Error("no production build (npm run build)");

  const dbName = "front_e2e_" + randomBytes(4).toString("hex");
  const adminClient = new pg.Client({ connectionString: admin });
  await adminClient.connect();
  await adminClient.query(`CREATE DATABASE ${dbName}`);
  await adminClient.end();
  const databaseUrl = admin.replace(/\/[^/?]*(\?|$)/, `/${dbName}$1`);

  const logDir = fs.mkdtempSync("/tmp/front-e2e-");
  const [apiPort, webPort] = [await freePort(), await freePort()];
  const web = `http://127.0.0.1:${webPort}`;
  const issuer = web;
  const audience = "todo-api";
  const bs = bundles();

  execFileSync(host, ["migrate", ...bs], { env: { ...process.env, DATABASE_URL: databaseUrl }, stdio: "pipe" });
  const webEnv = {
    DATABASE_URL: databaseUrl,
    BETTER_AUTH_SECRET: randomBytes(24).toString("hex"),
    BETTER_AUTH_URL: web,
    AUTH_ISSUER: issuer,
    AUTH_AUDIENCE: audience,
    TODO_API_URL: `http://127.0.0.1:${apiPort}`,
    TODO_WS_URL: `ws://127.0.0.1:${apiPort}/ws`,
    PORT: String(webPort),
    HOSTNAME: "127.0.0.1",
    NODE_ENV: "production",
  };
  execFileSync(process.execPath, ["scripts/migrate.mjs"], { cwd: frontendDir, env: { ...process.env, ...webEnv }, stdio: "pipe" });
  const webProc = start(process.execPath, [".next/standalone/server.js"], webEnv, path.join(logDir, "frontend.log"), frontendDir);

  const hostEnv = {
    DATABASE_URL: databaseUrl,
    PORT: String(apiPort),
    WORKERS: "1",
    BUS: "postgres",
    AUTH_JWKS_URL: `${web}/api/auth/jwks`,
    AUTH_ISSUER: issuer,
    AUTH_AUDIENCE: audience,
    AUTH_DEV_SECRET: "",
    API_CURSOR_SECRET: randomBytes(16).toString("hex"),
    WS_ALLOWED_ORIGINS: web,
  };
  const hostProc = start(host, ["run", ...bs], hostEnv, path.join(logDir, "host.log"), servicesRoot);
  await waitFor(`${web}/api/auth/jwks`, webProc, "the front end");
  await waitFor(`http://127.0.0.1:${apiPort}/readyz`, hostProc, "todo-host");

  const db = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  db.on("error", () => {}); // an idle connection ended by the DROP DATABASE at the end
  return {
    web,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    db,
    logDir,
    bundles: bs.map((b) => path.basename(b)),
    async stop() {
      const running = [hostProc, webProc].filter((p) => p.pid !== undefined && p.exitCode === null && p.signalCode === null);
      const exited = running.map((p) => new Promise((r) => p.once("exit", r)));
      for (const p of running) p.kill("SIGTERM");
      await Promise.race([Promise.all(exited), new Promise((r) => setTimeout(r, 10000))]);
      for (const p of running) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
      await db.end();
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await c.end();
      stopPg();
    },
  };
}
