// The server side of Better Auth (route handler, server components). Configuration in
// auth-options.mjs; nextCookies lets server actions set cookies.
import { betterAuth } from "better-auth";
import { nextCookies } from "better-auth/next-js";
import { authOptions } from "./auth-options.mjs";

const options = authOptions();
export const auth = betterAuth({ ...options, plugins: [...options.plugins, nextCookies()] });
