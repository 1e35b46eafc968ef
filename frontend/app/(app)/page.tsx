import TaskList from "@/components/TaskList";

export const metadata = { title: "Tasks · todo-chatbot" };

export default function Home() {
  return <TaskList />;
}
