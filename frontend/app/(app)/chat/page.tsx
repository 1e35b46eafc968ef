import ChatPanel from "@/components/ChatPanel";

export const metadata = { title: "Chat · todo-chatbot" };

export default function Page() {
  return (
    <>
      <h1>Chat</h1>
      <ChatPanel />
    </>
  );
}
