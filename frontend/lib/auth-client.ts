// Better Auth's browser client: sign up, sign in, sign out against /api/auth.
import { createAuthClient } from "better-auth/react";

export const authClient = createAuthClient();
