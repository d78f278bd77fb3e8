// Swagger UI on gmsd's own OpenAPI document (no inline script: the page's CSP allows none).
// validatorUrl null: Swagger UI would otherwise send the document to an outside validator.
"use strict";
window.addEventListener("DOMContentLoaded", () => {
  window.ui = window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    defaultModelsExpandDepth: 0,
  });
});
