// Every signed-in screen: the session is checked on the server for each navigation, so an
// expired or revoked session lands on sign-in, never on an error page.
import { headers } from "next/headers";
import { redirect } from "next/navigation";
import { getSessionCookie } from "better-auth/cookies";
import { auth } from "@/lib/auth";
import AppShell from "@/components/AppShell";

export const dynamic = "force-dynamic";

export default async function AppLayout({ children }: { children: React.ReactNode }) {
  const h = await headers();
  const session = await auth.api.getSession({ headers: h });
  // A session cookie that no longer names a live session: say so on the sign-in page.
  if (!session) redirect(getSessionCookie(h) ? "/sign-in?expired=1" : "/sign-in");
  const wsUrl = process.env.TODO_WS_URL || "";
  return (
    <AppShell user={{ name: session.user.name, email: session.user.email }} wsUrl={wsUrl}>
      {children}
    </AppShell>
  );
}
