// Debian's chromium driven by playwright-core (no browser download), headless, plus
// the helpers the browser tests share: signing up, calling the API as the signed-in user
// from inside the page, the axe-core scan, screenshots.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";
import { frontendDir, repoRoot } from "./stack.mjs";

const require = createRequire(import.meta.url);

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox", // root in a container: chromium's sandbox cannot start
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

export async function signUp(context, web, email, name = "Tester") {
  const page = await context.newPage();
  await page.goto(`${web}/sign-up`);
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("correct horse battery");
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.waitForURL(`${web}/`);
  await page.getByRole("heading", { name: "Tasks" }).waitFor();
  return page;
}

/** Call the API from the page, as its user (token from /api/auth/token). */
export async function apiAs(page, method, apiPath, body, ifMatch) {
  return page.evaluate(
    async ({ method, apiPath, body, ifMatch }) => {
      const { token } = await (await fetch("/api/auth/token")).json();
      const headers = { authorization: `Bearer ${token}` };
      if (body !== undefined) headers["content-type"] = "application/json";
      if (ifMatch !== undefined) headers["if-match"] = `"${ifMatch}"`;
      const r = await fetch(apiPath, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await r.text();
      return { status: r.status, body: text ? JSON.parse(text) : null };
    },
    { method, apiPath, body, ifMatch },
  );
}

/** axe-core's serious and critical violations on the page as it is now. */
export async function axeViolations(page, exclude = []) {
  await page.addScriptTag({ path: require.resolve("axe-core/axe.min.js") });
  const result = await page.evaluate(async (exclude) => {
    const r = await window.axe.run({ exclude: exclude.map((s) => [s]) }, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 3) }));
  }, exclude);
  return result.filter((v) => v.impact === "serious" || v.impact === "critical");
}

export const shotDir = path.join(frontendDir, "test-results", "screenshots");
export async function screenshot(page, name) {
  fs.mkdirSync(shotDir, { recursive: true });
  await page.screenshot({ path: path.join(shotDir, `${name}.png`), fullPage: false });
}

export { repoRoot };
