import TaskPage from "@/components/TaskPage";

export const metadata = { title: "Task · todo-chatbot" };

export default async function Page({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  return <TaskPage id={id} />;
}
