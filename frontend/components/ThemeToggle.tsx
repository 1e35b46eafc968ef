"use client";
// Light, dark, or the system's choice; remembered in localStorage.
import { useEffect, useState } from "react";

type Theme = "system" | "light" | "dark";

export default function ThemeToggle() {
  const [theme, setTheme] = useState<Theme>("system");
  useEffect(() => {
    const t = localStorage.getItem("theme");
    if (t === "light" || t === "dark") setTheme(t);
  }, []);
  function change(t: Theme) {
    setTheme(t);
    if (t === "system") {
      localStorage.removeItem("theme");
      delete document.documentElement.dataset.theme;
    } else {
      localStorage.setItem("theme", t);
      document.documentElement.dataset.theme = t;
    }
  }
  return (
    <label className="theme">
      <span className="sr-only">Theme</span>
      <select value={theme} onChange={(e) => change(e.target.value as Theme)}>
        <option value="system">System theme</option>
        <option value="light">Light</option>
        <option value="dark">Dark</option>
      </select>
    </label>
  );
}
