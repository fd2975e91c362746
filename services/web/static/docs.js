// Starts the vendored Swagger UI on the server's own OpenAPI document (a static file, not
// an inline script, so a strict Content-Security-Policy holds).
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: root.getAttribute("data-openapi"),
    dom_id: "#swagger-ui",
    // Off: deep links put an anchor inside each operation's toggle button (nested
    // interactive controls, which screen readers cannot use).
    deepLinking: false,
    // No validator badge: it would call validator.swagger.io.
    validatorUrl: null,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
})();
