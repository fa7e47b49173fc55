// init.js: starts Swagger UI on the gateway's own OpenAPI document. validatorUrl is off (the
// default would send the document to an online validator); nothing else leaves the page's origin.
/* global SwaggerUIBundle */
(function () {
  'use strict';
  if (typeof SwaggerUIBundle !== 'function') {
    document.getElementById('missing').style.display = 'block';
    return;
  }
  window.ui = SwaggerUIBundle({
    url: '/sparkweb/api/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    validatorUrl: null,
    docExpansion: 'list',
    defaultModelsExpandDepth: 0,
    displayOperationId: false,
    persistAuthorization: false,
    tryItOutEnabled: false,
  });
})();
