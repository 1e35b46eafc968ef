// The Better Auth configuration, shared by the Next.js app (lib/auth.ts) and the
// programmatic migration (scripts/migrate.mjs): the migration must see the same plugins
// (the JWT plugin adds the `jwks` table). Plain JavaScript so that Node 20 runs the
// migration without a TypeScript step.
//
// Environment:
//   DATABASE_URL        the PostgreSQL the API uses too (Better Auth's tables: user,
//                       session, account, verification, jwks)
//   BETTER_AUTH_SECRET  encrypts the JWT private key and signs cookies; keep it stable
//   BETTER_AUTH_URL     the front end's public origin (http://localhost:3000)
//   AUTH_ISSUER         the JWT `iss` (default: BETTER_AUTH_URL); the host checks it
//   AUTH_AUDIENCE       the JWT `aud` (default: todo-api); the host checks it
//   TRUSTED_ORIGINS     extra origins allowed to call /api/auth (comma-separated)
import pg from "pg";
import { jwt } from "better-auth/plugins/jwt";

/** The origin the front end is served from. */
export function publicUrl() {
  return (process.env.BETTER_AUTH_URL || "http://localhost:3000").replace(/\/+$/, "");
}

/** The `iss` and `aud` every API token carries (the host is started with the same). */
export function tokenClaims() {
  return {
    issuer: process.env.AUTH_ISSUER || publicUrl(),
    audience: process.env.AUTH_AUDIENCE || "todo-api",
  };
}

let pool;
function database() {
  // Connects on first use: `next build` loads this module without a database.
  pool ??= new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 5 });
  return pool;
}

/** Better Auth's options. The token is small: `sub` (the user id), iss, aud, iat, exp, name. */
export function authOptions() {
  const { issuer, audience } = tokenClaims();
  const extra = (process.env.TRUSTED_ORIGINS || "").split(",").map((s) => s.trim()).filter(Boolean);
  return {
    appName: "todo-chatbot",
    baseURL: publicUrl(),
    secret: process.env.BETTER_AUTH_SECRET,
    database: database(),
    trustedOrigins: [publicUrl(), ...extra],
    emailAndPassword: { enabled: true, minPasswordLength: 8, autoSignIn: true },
    session: { expiresIn: 60 * 60 * 24 * 7, updateAge: 60 * 60 * 24 },
    plugins: [
      jwt({
        // EdDSA (Ed25519) is the default and what the host verifies; chosen explicitly
        // because it cannot change once the first key pair is stored.
        jwks: { keyPairConfig: { alg: "EdDSA" } },
        jwt: {
          issuer,
          audience,
          expirationTime: process.env.AUTH_TOKEN_LIFETIME || "15m",
          // Not the whole user row: the API needs only `sub`.
          definePayload: ({ user }) => ({ name: user.name }),
        },
      }),
    ],
  };
}
