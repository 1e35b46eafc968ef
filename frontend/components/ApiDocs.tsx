"use client";
// The API reference: Swagger UI rendering /api/openapi.yaml. "Try it out" sends requests
// to this origin (the same-origin proxy) with the signed-in user's token.
import SwaggerUI from "swagger-ui-react";
import "swagger-ui-react/swagger-ui.css";
import { tokens } from "@/lib/token";

interface SwaggerRequest {
  url: string;
  headers: Record<string, string>;
}

export default function ApiDocs() {
  return (
    <div className="api-docs">
      <SwaggerUI
        url="/api/openapi.yaml"
        tryItOutEnabled
        requestInterceptor={async (req: SwaggerRequest) => {
          if (req.url.endsWith("/api/openapi.yaml")) return req;
          // The contract names the host's own address; the browser goes through this origin.
          const u = new URL(req.url, window.location.origin);
          req.url = window.location.origin + u.pathname + u.search;
          req.headers.Authorization = `Bearer ${await tokens.get()}`;
          return req;
        }}
      />
    </div>
  );
}
