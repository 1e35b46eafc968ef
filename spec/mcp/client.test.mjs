// The /mcp endpoint driven by the official MCP TypeScript SDK client (pinned in
// package.json), the way an outside AI client uses it: initialize, tools/list,
// tools/call, errors. Run by spec/02-integration/mcp_sdk_spec.lua, which starts the host
// and passes MCP_URL, MCP_TOKEN (a user) and MCP_OTHER_TASK_ID (another user's task).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError, ErrorCode, LATEST_PROTOCOL_VERSION } from "@modelcontextprotocol/sdk/types.js";

const url = new URL(process.env.MCP_URL);
const token = process.env.MCP_TOKEN;
const otherId = process.env.MCP_OTHER_TASK_ID;

async function connect(bearer = token) {
  const headers = bearer ? { Authorization: `Bearer ${bearer}` } : {};
  const transport = new StreamableHTTPClientTransport(url, { requestInit: { headers } });
  const client = new Client({ name: "todo-spec", version: "1.0.0" });
  await client.connect(transport);
  return { client, transport };
}

test("initialize: server info, tools capability, the newest protocol version", async () => {
  const { client, transport } = await connect();
  assert.equal(client.getServerVersion().name, "todo-chatbot");
  assert.ok(client.getServerCapabilities().tools);
  assert.match(client.getInstructions(), /todo tasks/);
  assert.equal(transport.protocolVersion, LATEST_PROTOCOL_VERSION);
  await client.ping();
  await client.close();
});

test("tools/list: the nine task tools with their JSON Schemas", async () => {
  const { client } = await connect();
  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name), ["add_task", "list_tasks", "complete_task", "reopen_task",
    "delete_task", "update_task", "reschedule_tasks", "snooze_reminder", "plan_day"]);
  const add = tools.find((t) => t.name === "add_task");
  assert.equal(add.inputSchema.type, "object");
  assert.deepEqual(add.inputSchema.required, ["title"]);
  assert.deepEqual(add.inputSchema.properties.priority.enum, ["none", "low", "medium", "high"]);
  for (const t of tools) assert.ok(t.description.length > 0, t.name);
  await client.close();
});

test("tools/call: a task's life through the tools", async () => {
  const { client } = await connect();
  const added = await client.callTool({ name: "add_task", arguments: {
    title: "Renew passport", priority: "high", tags: ["admin"],
    due_at: "2030-05-01T09:00:00+02:00", tz: "Europe/Berlin" } });
  assert.equal(added.isError, false);
  const task = added.structuredContent.task;
  assert.equal(task.title, "Renew passport");
  assert.equal(task.due_at, "2030-05-01T07:00:00Z");
  assert.deepEqual(JSON.parse(added.content[0].text).task.id, task.id);

  const listed = await client.callTool({ name: "list_tasks", arguments: { tags: ["admin"] } });
  assert.deepEqual(listed.structuredContent.items.map((t) => t.id), [task.id]);

  const updated = await client.callTool({ name: "update_task", arguments: { id: task.id, add_tags: ["travel"] } });
  assert.deepEqual(updated.structuredContent.task.tags, ["admin", "travel"]);

  const moved = await client.callTool({ name: "reschedule_tasks", arguments: { ids: [task.id], time: "14:30" } });
  assert.equal(moved.structuredContent.tasks[0].due_at, "2030-05-01T12:30:00Z");

  const done = await client.callTool({ name: "complete_task", arguments: { id: task.id } });
  assert.equal(done.structuredContent.task.completed, true);
  const open = await client.callTool({ name: "reopen_task", arguments: { id: task.id } });
  assert.equal(open.structuredContent.task.completed, false);

  const plan = await client.callTool({ name: "plan_day", arguments: { date: "2030-05-01", tz: "Europe/Berlin" } });
  assert.ok(plan.structuredContent.due.some((t) => t.id === task.id));

  const deleted = await client.callTool({ name: "delete_task", arguments: { id: task.id } });
  assert.equal(deleted.isError, false);
  const gone = await client.callTool({ name: "complete_task", arguments: { id: task.id } });
  assert.equal(gone.isError, true);
  assert.match(gone.content[0].text, /not found/);
  await client.close();
});

test("another user's task is 'not found' through every tool that takes an id", async () => {
  const { client } = await connect();
  const calls = [
    ["complete_task", { id: otherId }], ["reopen_task", { id: otherId }], ["delete_task", { id: otherId }],
    ["update_task", { id: otherId, title: "mine now" }], ["reschedule_tasks", { ids: [otherId], time: "10:00" }],
    ["snooze_reminder", { id: otherId, for: "PT10M" }],
  ];
  for (const [name, args] of calls) {
    const r = await client.callTool({ name, arguments: args });
    assert.equal(r.isError, true, name);
    assert.equal(r.structuredContent.error.code, "not_found", name);
  }
  const listed = await client.callTool({ name: "list_tasks", arguments: {} });
  assert.ok(!listed.structuredContent.items.some((t) => t.id === otherId));
  await client.close();
});

test("refused input is a tool error the model can read; an unknown tool is a protocol error", async () => {
  const { client } = await connect();
  const long = await client.callTool({ name: "add_task", arguments: { title: "x".repeat(300) } });
  assert.equal(long.isError, true);
  assert.match(long.content[0].text, /title must be at most 200 characters/);
  const bad = await client.callTool({ name: "add_task", arguments: { title: "x", colour: "red" } });
  assert.equal(bad.isError, true);
  assert.match(bad.content[0].text, /unknown argument colour/);
  await assert.rejects(client.callTool({ name: "launch_rockets", arguments: {} }),
    (e) => e instanceof McpError && e.code === ErrorCode.InvalidParams);
  await client.close();
});

test("without a token the connection is refused (401)", async () => {
  await assert.rejects(connect(null), (e) => /401/.test(String(e.code ?? e.message)));
});
