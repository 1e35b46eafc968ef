declare module "*.yaml" {
  const text: string;
  export default text;
}

// swagger-ui-react ships no types; the props used are typed where it is used.
declare module "swagger-ui-react" {
  import type { ComponentType } from "react";
  const SwaggerUI: ComponentType<Record<string, unknown>>;
  export default SwaggerUI;
}
