import TaskEditor from "@/components/TaskEditor";

export const metadata = { title: "New task · todo-chatbot" };

export default function Page() {
  return <TaskEditor initial={null} />;
}
