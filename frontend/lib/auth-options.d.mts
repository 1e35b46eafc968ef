import type { BetterAuthOptions } from "better-auth";
import type { Pool } from "pg";
import type { jwt } from "better-auth/plugins/jwt";
export function publicUrl(): string;
export function tokenClaims(): { issuer: string; audience: string };
export function authOptions(): BetterAuthOptions & { database: Pool; plugins: ReturnType<typeof jwt>[] };
