// End-to-end: the real stack (stack.mjs) in headless Debian chromium. Run by
// `node --test e2e/` from scripts/test; screenshots go to test-results/screenshots/.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startStack } from "./stack.mjs";
import { apiAs, axeViolations, launch, screenshot, signUp } from "./browser.mjs";

let stack, browser, ctxA, pageA;
const emailA = `alice-${Date.now()}@example.com`;
const day = 24 * 3600 * 1000;
const iso = (ms) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");

before(async () => {
  stack = await startStack();
  browser = await launch();
  ctxA = await browser.newContext({ timezoneId: "Europe/Paris", locale: "en-GB" });
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

const rows = (page) => page.getByTestId("task-row");
async function titles(page) {
  return rows(page).locator(".title").allTextContents();
}
/** The titles shown, once they equal `expected` (the list reloads after each change). */
async function expectTitles(page, expected, ms = 5000) {
  const until = Date.now() + ms;
  let got;
  do {
    got = await titles(page);
    if (JSON.stringify(got) === JSON.stringify(expected)) return;
    await page.waitForTimeout(100);
  } while (Date.now() < until);
  assert.deepEqual(got, expected);
}
async function search(page, words) {
  await page.getByLabel("Search", { exact: true }).fill(words);
  await page.waitForTimeout(400); // the list debounces typing
  await page.waitForFunction(() => document.querySelector('[aria-label="Task list"]')?.getAttribute("aria-busy") === "false");
}

test("sign up lands on the empty task list, with a JWT the host accepts", async () => {
  pageA = await signUp(ctxA, stack.web, emailA, "Alice");
  await pageA.getByText("No tasks match.").waitFor();
  const r = await apiAs(pageA, "GET", "/api/tasks");
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.items, []);
  // The token is small: only the claims the API needs.
  const claims = await pageA.evaluate(async () => {
    const { token } = await (await fetch("/api/auth/token")).json();
    return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  });
  assert.deepEqual(Object.keys(claims).sort(), ["aud", "exp", "iat", "iss", "name", "sub"]);
  assert.equal(claims.aud, "todo-api");
  assert.equal(claims.iss, stack.web);
});

test("the API refuses a token it did not issue", async () => {
  const r = await pageA.evaluate(async () => (await fetch("/api/tasks", { headers: { authorization: "Bearer abc.def.ghi" } })).status);
  assert.equal(r, 401);
});

test("the editor creates a task with priority, tag and due time; the list shows it", async () => {
  await pageA.goto(`${stack.web}/tasks/new`);
  await pageA.getByLabel("Title", { exact: true }).fill("Pay invoice");
  await pageA.getByLabel("Priority", { exact: true }).selectOption("high");
  await pageA.getByLabel("Add a tag").fill("work");
  await pageA.getByLabel("Add a tag").press("Enter");
  const tomorrow = new Date(Date.now() + day).toISOString().slice(0, 10);
  await pageA.getByLabel("Date", { exact: true }).fill(tomorrow);
  await pageA.getByLabel("Time", { exact: true }).fill("14:30");
  assert.equal(await pageA.getByLabel("Time zone", { exact: true }).inputValue(), "Europe/Paris"); // the browser's
  await pageA.getByRole("button", { name: "Save" }).click();
  await pageA.waitForURL(/\/tasks\/[0-9a-f-]{36}$/);
  const id = pageA.url().split("/").pop();
  const r = await apiAs(pageA, "GET", `/api/tasks/${id}`);
  assert.equal(r.body.priority, "high");
  assert.deepEqual(r.body.tags, ["work"]);
  assert.equal(r.body.tz, "Europe/Paris");
  const local = new Date(r.body.due_at).toLocaleString("en-GB", { timeZone: "Europe/Paris", hour: "2-digit", minute: "2-digit" });
  assert.equal(local, "14:30");
  await screenshot(pageA, "editor");
  await pageA.goto(stack.web + "/");
  await rows(pageA).first().waitFor();
  assert.deepEqual(await titles(pageA), ["Pay invoice"]);
});

test("quick add saves a line", async () => {
  const parser = await apiAs(pageA, "POST", "/api/parse", { text: "Buy milk" });
  await pageA.getByLabel("Quick add a task").fill("Buy milk");
  await pageA.getByTestId("quick-add-preview").locator('[data-field="title"]').waitFor();
  await pageA.getByRole("button", { name: "Add", exact: true }).click();
  await pageA.getByRole("link", { name: "Buy milk" }).waitFor();
  const r = await apiAs(pageA, "GET", "/api/tasks?q=milk");
  assert.equal(r.body.items.length, 1);
  assert.equal(r.body.items[0].title, "Buy milk");
  assert.ok(parser.status === 404 || parser.status === 200, `POST /api/parse answered ${parser.status}`);
});

test("quick add parses a phrase before saving", async (t) => {
  const probe = await apiAs(pageA, "POST", "/api/parse", { text: "x" });
  if (probe.status === 404) return t.skip("POST /api/parse is not served by these bundles yet");
  await pageA.getByLabel("Quick add a task").fill("Pay rent every 1st at 9am p1 #home");
  const preview = pageA.getByTestId("quick-add-preview");
  await preview.locator('[data-field="recurrence"]').waitFor();
  assert.equal(await preview.locator('[data-field="title"]').textContent(), "Pay rent");
  assert.equal(await preview.locator('[data-field="tags"]').textContent(), "#home");
  await pageA.getByRole("button", { name: "Add", exact: true }).click();
  await pageA.getByRole("link", { name: "Pay rent" }).waitFor();
  const r = await apiAs(pageA, "GET", "/api/tasks?q=rent");
  assert.ok(r.body.items[0].recurrence?.rule?.includes("FREQ=MONTHLY"));
  assert.deepEqual(r.body.items[0].tags, ["home"]);
});

test("filter, sort and search", async () => {
  const now = Date.now();
  for (const t of [
    { title: "Zebra alpha", priority: "low", tags: ["home"] },
    { title: "Zebra beta", priority: "high", tags: ["work"], due_at: iso(now - 2 * 3600 * 1000), tz: "Europe/Paris" },
    { title: "Zebra gamma", priority: "medium", tags: ["work"], due_at: iso(now + 3 * day), tz: "Europe/Paris" },
  ]) {
    assert.equal((await apiAs(pageA, "POST", "/api/tasks", t)).status, 201);
  }
  await pageA.reload();
  await search(pageA, "zebra");
  assert.deepEqual((await titles(pageA)).sort(), ["Zebra alpha", "Zebra beta", "Zebra gamma"]);
  await pageA.getByLabel("Sort by", { exact: true }).selectOption("title");
  await pageA.getByLabel("Order", { exact: true }).selectOption("desc");
  await expectTitles(pageA, ["Zebra gamma", "Zebra beta", "Zebra alpha"]);
  // The overdue task says so in words.
  const beta = rows(pageA).filter({ hasText: "Zebra beta" });
  assert.equal(await beta.locator(".flag-overdue").textContent(), "Overdue");
  await pageA.getByLabel("Tags", { exact: true }).fill("work");
  await pageA.getByLabel("Tags", { exact: true }).press("Enter");
  await expectTitles(pageA, ["Zebra gamma", "Zebra beta"]);
  await pageA.getByRole("checkbox", { name: "high" }).check();
  await expectTitles(pageA, ["Zebra beta"]);
  await pageA.getByRole("checkbox", { name: "high" }).uncheck();
  await pageA.getByLabel("Overdue only").check();
  await expectTitles(pageA, ["Zebra beta"]);
  await pageA.getByRole("button", { name: "Clear filters" }).click();
  // Cleared: the open tasks, newest first (the API's default order).
  const open = (await apiAs(pageA, "GET", "/api/tasks?status=pending&limit=200")).body.items.map((x) => x.title);
  await expectTitles(pageA, open);
  await screenshot(pageA, "tasks");
});

test("bulk complete and reschedule", async () => {
  await search(pageA, "zebra");
  await pageA.getByLabel("Select Zebra alpha").check();
  await pageA.getByLabel("Select Zebra gamma").check();
  await pageA.getByRole("button", { name: "Complete", exact: true }).click();
  await pageA.getByText("Completed 2 task(s)").waitFor();
  assert.deepEqual(await titles(pageA), ["Zebra beta"]);
  await pageA.getByLabel("Select Zebra beta").check();
  await pageA.getByLabel("Shift days").fill("2");
  const before = (await apiAs(pageA, "GET", "/api/tasks?q=beta")).body.items[0].due_at;
  await pageA.getByRole("button", { name: "Reschedule" }).click();
  await pageA.getByText("Rescheduled 1 task(s)").waitFor();
  const afterDue = (await apiAs(pageA, "GET", "/api/tasks?q=beta")).body.items[0].due_at;
  assert.equal(Date.parse(afterDue) - Date.parse(before), 2 * day);
  await pageA.getByLabel("Search", { exact: true }).fill("");
});

test("an edit that meets a newer version (412) shows it and lets me apply mine", async () => {
  const created = await apiAs(pageA, "POST", "/api/tasks", { title: "Conflict me" });
  const id = created.body.id;
  await pageA.goto(`${stack.web}/tasks/${id}`);
  await pageA.getByLabel("Description", { exact: true }).fill("my note");
  // Meanwhile, another device renames it.
  assert.equal((await apiAs(pageA, "PATCH", `/api/tasks/${id}`, { title: "Changed elsewhere" }, 1)).status, 200);
  await pageA.getByRole("button", { name: "Save" }).click();
  const dialog = pageA.getByRole("dialog", { name: "This task was changed elsewhere" });
  await dialog.waitFor();
  assert.equal(await dialog.getByTestId("mine-description").textContent(), "my note");
  assert.equal(await dialog.getByTestId("theirs-title").textContent(), "Changed elsewhere");
  await screenshot(pageA, "conflict");
  await dialog.getByRole("button", { name: "Apply my changes over it" }).click();
  await dialog.waitFor({ state: "detached" });
  const r = await apiAs(pageA, "GET", `/api/tasks/${id}`);
  assert.equal(r.body.title, "Changed elsewhere");
  assert.equal(r.body.description, "my note");
  assert.equal(r.body.version, 3);
  assert.equal(await pageA.getByLabel("Title", { exact: true }).inputValue(), "Changed elsewhere");
});

test("completing a recurring task brings its next occurrence", async () => {
  const yesterday = new Date(Date.now() - day);
  yesterday.setUTCHours(9, 0, 0, 0);
  const c = await apiAs(pageA, "POST", "/api/tasks", {
    title: "Water plants", due_at: iso(yesterday.getTime()), tz: "UTC", recurrence: { rule: "FREQ=DAILY" },
  });
  assert.equal(c.status, 201);
  await pageA.goto(stack.web + "/");
  await search(pageA, "water plants");
  await pageA.getByRole("button", { name: "Complete Water plants" }).click();
  // The recurring-task service creates the next one from the completion event.
  let next;
  for (let i = 0; i < 60 && !next; i++) {
    const r = await apiAs(pageA, "GET", "/api/tasks?q=water&status=pending");
    next = r.body.items.find((t) => t.id !== c.body.id);
    if (!next) await pageA.waitForTimeout(250);
  }
  assert.ok(next, "no next occurrence");
  assert.equal(next.occurrence_index, 2);
  assert.ok(Date.parse(next.due_at) > Date.now(), "the next occurrence is in the future");
  await pageA.reload();
  await search(pageA, "water plants");
  const row = rows(pageA).filter({ hasText: "Water plants" });
  await row.first().waitFor();
  assert.equal(await row.count(), 1);
  assert.equal(await row.locator(".flag-overdue").count(), 0);
});

test("the activity view undoes a change", async () => {
  const c = await apiAs(pageA, "POST", "/api/tasks", { title: "Undo me" });
  await apiAs(pageA, "PATCH", `/api/tasks/${c.body.id}`, { priority: "high" }, 1);
  await pageA.goto(`${stack.web}/activity`);
  const undo = pageA.getByRole("button", { name: "Undo updated of Undo me" });
  for (let i = 0; i < 20 && !(await undo.count()); i++) {
    await pageA.waitForTimeout(250); // history is written a moment after the change
    await pageA.reload();
  }
  await undo.click();
  await pageA.getByText("Undid: updated Undo me").waitFor();
  const r = await apiAs(pageA, "GET", `/api/tasks/${c.body.id}`);
  assert.equal(r.body.priority, "none");
  await screenshot(pageA, "activity");
});

test("a second user sees none of the first user's tasks", async () => {
  const mine = (await apiAs(pageA, "GET", "/api/tasks?status=all&limit=200")).body.items;
  assert.ok(mine.length >= 5);
  const ctxB = await browser.newContext();
  const pageB = await signUp(ctxB, stack.web, `bob-${Date.now()}@example.com`, "Bob");
  await pageB.getByLabel("Status", { exact: true }).selectOption("all");
  await pageB.getByText("No tasks match.").waitFor();
  assert.equal(await rows(pageB).count(), 0);
  assert.equal((await apiAs(pageB, "GET", `/api/tasks/${mine[0].id}`)).status, 404);
  assert.equal((await apiAs(pageB, "GET", "/api/tasks?status=all")).body.items.length, 0);
  assert.equal((await apiAs(pageB, "GET", "/api/activity")).body.items.length, 0);
  await ctxB.close();
});

test("main screens have no serious accessibility violations, in both themes and on a phone", async () => {
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: "dark" });
  const anon = await ctx.newPage();
  await anon.goto(`${stack.web}/sign-in`);
  assert.deepEqual(await axeViolations(anon), [], "sign-in");
  await anon.close();
  await ctx.close();
  const screens = ["/", "/tasks/new", "/activity", "/chat"];
  for (const scheme of ["light", "dark"]) {
    await pageA.emulateMedia({ colorScheme: scheme });
    for (const s of screens) {
      await pageA.goto(stack.web + s);
      await pageA.locator("main h1").first().waitFor();
      await pageA.waitForTimeout(200);
      assert.deepEqual(await axeViolations(pageA), [], `${s} (${scheme})`);
    }
  }
  await pageA.goto(stack.web + "/");
  await rows(pageA).first().waitFor();
  await screenshot(pageA, "tasks-dark");
  await pageA.emulateMedia({ colorScheme: "light" });
  await pageA.setViewportSize({ width: 390, height: 844 });
  await pageA.reload();
  await rows(pageA).first().waitFor();
  const overflow = await pageA.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the task list is ${overflow}px wider than a phone`);
  await screenshot(pageA, "tasks-phone");
  await pageA.setViewportSize({ width: 1280, height: 800 });
});

test("the list is usable with the keyboard alone", async () => {
  await pageA.goto(stack.web + "/");
  await rows(pageA).first().waitFor();
  await pageA.keyboard.press("Tab"); // the skip link comes first
  assert.equal(await pageA.evaluate(() => document.activeElement?.textContent), "Skip to content");
  await pageA.getByLabel("Quick add a task").focus();
  await pageA.keyboard.type("Typed with keys");
  await pageA.keyboard.press("Enter");
  await pageA.getByRole("link", { name: "Typed with keys" }).waitFor();
  await pageA.getByRole("link", { name: "Typed with keys" }).focus();
  await pageA.keyboard.press("Enter");
  await pageA.waitForURL(/\/tasks\//);
  await pageA.getByLabel("Title", { exact: true }).waitFor();
});

test("/docs renders the contract and tries a call with my token", async () => {
  await pageA.goto(`${stack.web}/docs`);
  await pageA.getByText("todo-chatbot Task API").first().waitFor({ timeout: 20000 });
  const op = pageA.locator("#operations-tags-listTags");
  await op.locator(".opblock-summary").click();
  // tryItOutEnabled: the form is open at once.
  await op.getByRole("button", { name: "Execute" }).click();
  const code = op.locator(".live-responses-table tbody .response-col_status").first();
  await code.waitFor();
  assert.equal((await code.textContent()).trim(), "200");
  await screenshot(pageA, "docs");
});

test("the chat adds a task, its tool call shown, and the task is in the list", async (t) => {
  if (!stack.bundles.includes("chat")) return t.skip("services/chat is not in services/ yet");
  await pageA.goto(`${stack.web}/chat`);
  await pageA.getByLabel("Message", { exact: true }).fill("add buy bread tomorrow at 5pm #shop");
  await pageA.getByRole("button", { name: "Send" }).click();
  const reply = pageA.getByTestId("msg-assistant").last();
  const failure = pageA.locator("main [role=alert]"); // (Next's route announcer is an alert too)
  await reply.or(failure).first().waitFor();
  assert.equal(await failure.count(), 0, String(await failure.allTextContents()));
  assert.match(await reply.textContent(), /bread/i);
  assert.match(await reply.locator("summary").textContent(), /tool call/);
  const r = await apiAs(pageA, "GET", "/api/tasks?q=bread");
  assert.equal(r.body.items.length, 1);
  assert.deepEqual(r.body.items[0].tags, ["shop"]);
  // The conversation is listed and reopens with its messages.
  await pageA.reload();
  await pageA.getByRole("navigation", { name: "Conversations" }).getByRole("button", { name: /buy bread/ }).click();
  await pageA.getByTestId("msg-user").first().waitFor();
  await screenshot(pageA, "chat");
  await pageA.goto(stack.web + "/");
  await search(pageA, "bread");
  assert.deepEqual(await titles(pageA), [r.body.items[0].title]);
});

test("two browser contexts of one user stay in sync within one second", async (t) => {
  if (!stack.bundles.includes("websocket")) return t.skip("services/websocket is not in services/ yet");
  const ctx2 = await browser.newContext({ storageState: await ctxA.storageState(), timezoneId: "Europe/Paris" });
  const page2 = await ctx2.newPage();
  await pageA.goto(stack.web + "/");
  await page2.goto(stack.web + "/");
  for (const p of [pageA, page2]) await p.locator('[data-testid="connection"][data-status="live"]').waitFor();
  await pageA.getByLabel("Quick add a task").fill("Seen on both");
  const added = pageA.waitForResponse((res) => res.url().endsWith("/api/tasks") && res.request().method() === "POST");
  await pageA.getByRole("button", { name: "Add", exact: true }).click();
  await added;
  const t0 = Date.now();
  await page2.getByRole("link", { name: "Seen on both" }).waitFor({ timeout: 5000 });
  const ms = Date.now() - t0;
  assert.ok(ms < 1000, `the other context saw it after ${ms} ms`);
  t.diagnostic(`seen by the other context ${ms} ms after the POST answered`);
  // Completed on the second, gone from the first's open list, with no reload.
  await page2.getByRole("button", { name: "Complete Seen on both" }).click();
  await pageA.getByRole("link", { name: "Seen on both" }).waitFor({ state: "detached", timeout: 2000 });
  if (stack.bundles.includes("chat")) {
    // A change made by the assistant reaches the open list the same way.
    await page2.goto(`${stack.web}/chat`);
    await page2.getByLabel("Message", { exact: true }).fill("add call the plumber tomorrow");
    await page2.getByRole("button", { name: "Send" }).click();
    await pageA.getByRole("link", { name: /plumber/i }).waitFor({ timeout: 3000 });
  }
  await ctx2.close();
});

test("the assistant beside the list adds a task that appears in the list at once", async (t) => {
  if (!stack.bundles.includes("chat") || !stack.bundles.includes("websocket"))
    return t.skip("services/chat and services/websocket are not both in services/ yet");
  await pageA.goto(stack.web + "/");
  await pageA.locator('[data-testid="connection"][data-status="live"]').waitFor();
  await pageA.evaluate(() => (window.__noReload = true));
  await pageA.getByRole("button", { name: "Ask the assistant" }).click();
  const aside = pageA.getByRole("complementary", { name: "Assistant" });
  await aside.getByLabel("Message", { exact: true }).fill("add renew passport next friday #admin");
  await aside.getByRole("button", { name: "Send" }).click();
  await pageA.getByRole("list", { name: "Task list" }).getByRole("link", { name: /passport/i }).waitFor({ timeout: 3000 });
  assert.match(await aside.getByTestId("msg-assistant").last().textContent(), /passport/i);
  assert.equal(await pageA.evaluate(() => window.__noReload), true);
  await screenshot(pageA, "tasks-with-assistant");
  await pageA.getByRole("button", { name: "Hide assistant" }).click();
});

test("after a dropped connection the list catches up by resuming, with no reload", async (t) => {
  if (!stack.bundles.includes("websocket")) return t.skip("services/websocket is not in services/ yet");
  const ctx2 = await browser.newContext({ storageState: await ctxA.storageState() });
  const page2 = await ctx2.newPage();
  let allow = true;
  let route;
  // Between the page and the host: lets the test cut the connection and hold reconnects.
  await page2.routeWebSocket(/\/ws$/, (ws) => {
    if (!allow) return ws.close({ code: 4000, reason: "test: offline" });
    route = ws;
    ws.connectToServer();
  });
  await page2.goto(stack.web + "/");
  const live = page2.locator('[data-testid="connection"][data-status="live"]');
  await live.waitFor();
  await page2.evaluate(() => (window.__noReload = true));
  allow = false;
  route.close({ code: 4000, reason: "test: dropped" });
  await page2.locator('[data-testid="connection"]:not([data-status="live"])').waitFor();
  assert.equal((await apiAs(pageA, "POST", "/api/tasks", { title: "Missed while offline" })).status, 201);
  await page2.waitForTimeout(700);
  assert.equal(await page2.getByRole("link", { name: "Missed while offline" }).count(), 0);
  allow = true;
  await live.waitFor({ timeout: 15000 });
  await page2.getByRole("link", { name: "Missed while offline" }).waitFor({ timeout: 3000 });
  assert.equal(await page2.evaluate(() => window.__noReload), true, "the page was reloaded");
  await ctx2.close();
});

test("a reminder a few seconds ahead arrives as a toast", async (t) => {
  if (!stack.bundles.includes("notification") || !stack.bundles.includes("websocket"))
    return t.skip("services/notification and services/websocket are not both in services/ yet");
  await pageA.goto(stack.web + "/");
  await pageA.locator('[data-testid="connection"][data-status="live"]').waitFor();
  const due = Date.now() + 64_000; // reminded one minute before: in about 4 s
  const c = await apiAs(pageA, "POST", "/api/tasks", { title: "Stretch", due_at: iso(due), reminders: [{ before: "PT1M" }] });
  assert.equal(c.status, 201, JSON.stringify(c.body));
  const toast = pageA.getByTestId("toast").filter({ hasText: "Reminder: Stretch" });
  await toast.waitFor({ timeout: 15000 });
  await pageA.getByTestId("unread-count").waitFor();
});

test("the bell counts a fired reminder, lists it and marks it read", async (t) => {
  if (!stack.bundles.includes("notification")) return t.skip("services/notification is not in services/ yet");
  const c = await apiAs(pageA, "POST", "/api/tasks", { title: "Call mum", due_at: iso(Date.now() + 62_000), reminders: [{ before: "PT1M" }] });
  assert.equal(c.status, 201, JSON.stringify(c.body));
  let fired = false;
  for (let i = 0; i < 60 && !fired; i++) {
    await pageA.waitForTimeout(250);
    fired = (await apiAs(pageA, "GET", "/api/notifications?limit=50")).body.items.some((n) => n.task_id === c.body.id);
  }
  assert.ok(fired, "the reminder did not fire");
  const unread = (await apiAs(pageA, "GET", "/api/notifications/unread-count")).body.unread;
  assert.ok(unread >= 1);
  await pageA.goto(stack.web + "/");
  assert.equal(await pageA.getByTestId("unread-count").textContent(), String(unread));
  await pageA.getByRole("button", { name: /^Notifications/ }).click();
  const list = pageA.getByRole("region", { name: "Notification list" });
  await list.getByText("Call mum").waitFor();
  await list.getByRole("button", { name: "Mark all read" }).click();
  await pageA.getByTestId("unread-count").waitFor({ state: "detached" });
  assert.equal((await apiAs(pageA, "GET", "/api/notifications/unread-count")).body.unread, 0);
});

test("an expired session is sent to sign-in, not shown an error page", async () => {
  const { rows: users } = await stack.db.query('SELECT id FROM "user" WHERE email = $1', [emailA]);
  await stack.db.query(`UPDATE "session" SET "expiresAt" = now() - interval '1 minute' WHERE "userId" = $1`, [users[0].id]);
  const res = await pageA.goto(stack.web + "/");
  await pageA.waitForURL(/\/sign-in\?expired=1/);
  assert.equal(res.status(), 200);
  await pageA.getByText("Your session has expired. Please sign in again.").waitFor();
  // The token endpoint refuses too: nothing can mint a new API token for that session.
  assert.equal(await pageA.evaluate(async () => (await fetch("/api/auth/token")).status), 401);
});
