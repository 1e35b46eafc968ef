"use client";
// The chat with the assistant (POST /api/chat): the conversation, its tool calls shown
// compactly, and the list of past conversations (GET /api/conversations). Tasks the
// assistant changes reach the task list through the live connection, like any change.
import { useCallback, useEffect, useId, useRef, useState } from "react";
import { api } from "@/lib/api";
import { browserZone } from "@/lib/tasks";
import type { ChatReply, ToolCall } from "@/lib/types";

interface Message {
  role: "user" | "assistant";
  content: string;
  tool_calls?: ToolCall[];
}

interface Conversation {
  id: string;
  title?: string | null;
  updated_at?: string;
  created_at?: string;
}

function ToolCalls({ calls }: { calls: ToolCall[] }) {
  if (!calls.length) return null;
  return (
    <details className="tools-used">
      <summary>
        {calls.length} tool call{calls.length > 1 ? "s" : ""}: {calls.map((c) => c.name).join(", ")}
      </summary>
      <ul>
        {calls.map((c, i) => (
          <li key={i}>
            <code>{c.name}</code> <code className="muted">{JSON.stringify(c.arguments)}</code>
          </li>
        ))}
      </ul>
    </details>
  );
}

export default function ChatPanel({ compact = false }: { compact?: boolean }) {
  const [conversations, setConversations] = useState<Conversation[]>([]);
  const [current, setCurrent] = useState<string | null>(null);
  const [messages, setMessages] = useState<Message[]>([]);
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const end = useRef<HTMLDivElement>(null);
  const inputId = useId();

  const loadConversations = useCallback(async () => {
    try {
      const r = await api<{ items: Conversation[] }>("/api/conversations");
      setConversations(r.data.items ?? []);
    } catch {
      /* the list is optional; the chat still works */
    }
  }, []);

  useEffect(() => {
    void loadConversations();
  }, [loadConversations]);
  useEffect(() => {
    // A block body: in current Chromium scrollIntoView returns a promise, and an effect
    // must return nothing but its cleanup.
    end.current?.scrollIntoView?.({ block: "end" });
  }, [messages]);

  async function open(id: string) {
    setCurrent(id);
    try {
      const r = await api<{ items: Message[] }>(`/api/conversations/${encodeURIComponent(id)}/messages`);
      setMessages((r.data.items ?? []).filter((m) => m.role === "user" || m.role === "assistant"));
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  }

  async function send(e: React.FormEvent) {
    e.preventDefault();
    const message = text.trim();
    if (!message || busy) return;
    setText("");
    setBusy(true);
    setError(null);
    setMessages((m) => [...m, { role: "user", content: message }]);
    try {
      const r = await api<ChatReply>("/api/chat", {
        method: "POST",
        body: { message, conversation_id: current ?? undefined, tz: browserZone() },
      });
      setCurrent(r.data.conversation_id);
      setMessages((m) => [...m, { role: "assistant", content: r.data.response, tool_calls: r.data.tool_calls }]);
      void loadConversations();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className={compact ? "chat compact" : "chat"}>
      {!compact && (
      <nav aria-label="Conversations" className="conversations">
        <button
          type="button"
          onClick={() => {
            setCurrent(null);
            setMessages([]);
          }}
        >
          New conversation
        </button>
        <ul>
          {conversations.map((c) => (
            <li key={c.id}>
              <button type="button" aria-current={c.id === current ? "true" : undefined} onClick={() => open(c.id)}>
                {c.title || (c.updated_at ?? c.created_at ?? c.id).slice(0, 16)}
              </button>
            </li>
          ))}
        </ul>
      </nav>
      )}
      <section className="conversation" aria-label="Conversation">
        <ol className="messages" aria-live="polite">
          {messages.map((m, i) => (
            <li key={i} className={`msg msg-${m.role}`} data-testid={`msg-${m.role}`}>
              <span className="sr-only">{m.role === "user" ? "You" : "Assistant"}:</span>
              <p>{m.content}</p>
              {m.tool_calls && <ToolCalls calls={m.tool_calls} />}
            </li>
          ))}
        </ol>
        <div ref={end} />
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        <form onSubmit={send} className="row" aria-label="Send a message">
          <label htmlFor={inputId} className="sr-only">
            Message
          </label>
          <input id={inputId} value={text} onChange={(e) => setText(e.target.value)} placeholder="Add a task to buy milk tomorrow at 5pm" autoComplete="off" />
          <button type="submit" className="primary" disabled={busy || !text.trim()}>
            Send
          </button>
        </form>
      </section>
    </div>
  );
}
