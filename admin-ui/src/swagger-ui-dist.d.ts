// swagger-ui-dist ships no types; the API browser calls its bundle with these options only.
declare module 'swagger-ui-dist/swagger-ui-es-bundle.js' {
  export default function SwaggerUIBundle(options: { url: string; dom_id: string; deepLinking: boolean }): unknown;
}
