"use client";
// The frame of every signed-in screen: navigation, connection indicator, notifications,
// theme, sign out; and the providers (live connection, toasts). A session that expires
// while a screen is open sends the user to sign-in.
import Link from "next/link";
import { usePathname } from "next/navigation";
import { useEffect } from "react";
import { setSessionExpiredHandler } from "@/lib/api";
import { authClient } from "@/lib/auth-client";
import { tokens } from "@/lib/token";
import ConnectionIndicator from "./ConnectionIndicator";
import LiveProvider from "./LiveProvider";
import NotificationBell from "./NotificationBell";
import ThemeToggle from "./ThemeToggle";
import Toasts from "./Toasts";

const NAV = [
  { href: "/", label: "Tasks" },
  { href: "/activity", label: "Activity" },
  { href: "/chat", label: "Chat" },
  { href: "/docs", label: "API" },
];

export default function AppShell({
  user,
  wsUrl,
  children,
}: {
  user: { name: string; email: string };
  wsUrl: string;
  children: React.ReactNode;
}) {
  const path = usePathname();
  useEffect(() => {
    setSessionExpiredHandler(() => {
      tokens.clear();
      const next = encodeURIComponent(window.location.pathname + window.location.search);
      window.location.assign(`/sign-in?expired=1&next=${next}`);
    });
  }, []);

  async function signOut() {
    await authClient.signOut();
    tokens.clear();
    window.location.assign("/sign-in");
  }

  return (
    <LiveProvider wsUrl={wsUrl}>
      <Toasts>
        <a className="skip" href="#main">
          Skip to content
        </a>
        <header className="top">
          <nav aria-label="Main">
            <ul>
              {NAV.map((n) => (
                <li key={n.href}>
                  <Link href={n.href} aria-current={path === n.href ? "page" : undefined}>
                    {n.label}
                  </Link>
                </li>
              ))}
            </ul>
          </nav>
          <div className="tools">
            <ConnectionIndicator />
            <NotificationBell />
            <ThemeToggle />
            <span className="user" title={user.email}>
              {user.name}
            </span>
            <button type="button" onClick={signOut}>
              Sign out
            </button>
          </div>
        </header>
        <main id="main">{children}</main>
      </Toasts>
    </LiveProvider>
  );
}
