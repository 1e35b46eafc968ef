// Creates or updates Better Auth's tables (user, session, account, verification, jwks)
// in DATABASE_URL, offline, with Better Auth's programmatic migration (its CLI needs
// Node 22; this runs on Node 20). Run by `make run` and by the tests before the app.
import { getMigrations } from "better-auth/db/migration";
import { authOptions } from "../lib/auth-options.mjs";

const options = authOptions();
const { toBeCreated, toBeAdded, runMigrations } = await getMigrations(options);
if (toBeCreated.length === 0 && toBeAdded.length === 0) {
  console.log("auth migrate: up to date");
} else {
  await runMigrations();
  console.log(
    "auth migrate: created " + (toBeCreated.map((t) => t.table).join(", ") || "none") +
      "; added columns to " + (toBeAdded.map((t) => t.table).join(", ") || "none"),
  );
}
await options.database.end();
