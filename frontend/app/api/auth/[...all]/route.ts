// Better Auth's endpoints: sign-up, sign-in, sign-out, session, /token (the API's JWT)
// and /jwks (the public keys the host verifies those JWTs with).
import { toNextJsHandler } from "better-auth/next-js";
import { auth } from "@/lib/auth";

export const { GET, POST } = toNextJsHandler(auth);
