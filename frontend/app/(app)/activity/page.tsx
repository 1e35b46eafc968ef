import HistoryList from "@/components/HistoryList";

export const metadata = { title: "Activity · todo-chatbot" };

export default function Page() {
  return (
    <>
      <h1>Activity</h1>
      <HistoryList source="/api/activity?limit=50" showTask label="Recent changes" />
    </>
  );
}
