// GET /api/openapi.yaml: the Task API contract (spec/contracts/openapi.yaml), bundled
// into the build as text, so /docs renders exactly the contract the specs check. Served
// by the front end rather than the host: Lua bundles have no file access.
import contract from "../../../../spec/contracts/openapi.yaml";

export const dynamic = "force-static";

export function GET(): Response {
  return new Response(contract, { headers: { "content-type": "application/yaml; charset=utf-8" } });
}
