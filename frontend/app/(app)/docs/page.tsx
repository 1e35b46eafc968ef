"use client";
// /docs: the OpenAPI contract rendered in the browser only (Swagger UI needs the DOM).
import dynamic from "next/dynamic";

const ApiDocs = dynamic(() => import("@/components/ApiDocs"), { ssr: false, loading: () => <p>Loading the API reference…</p> });

export default function Page() {
  return (
    <>
      <h1>API reference</h1>
      <ApiDocs />
    </>
  );
}
