// The root layout: document shell, theme (light / dark / the system's, set before paint so
// there is no flash) and the run-time settings the browser needs (the WebSocket URL).
import type { Metadata, Viewport } from "next";
import "./globals.css";

export const metadata: Metadata = { title: "todo-chatbot", description: "Tasks, reminders and a chat assistant" };
export const viewport: Viewport = { width: "device-width", initialScale: 1 };

const themeScript = `try{var t=localStorage.getItem("theme");if(t==="light"||t==="dark")document.documentElement.dataset.theme=t}catch(e){}`;

export default function RootLayout({ children }: { children: React.ReactNode }) {
  return (
    <html lang="en" suppressHydrationWarning>
      <head>
        <script dangerouslySetInnerHTML={{ __html: themeScript }} />
      </head>
      <body>{children}</body>
    </html>
  );
}
