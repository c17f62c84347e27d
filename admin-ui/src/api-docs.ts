// The API browser at /api/v1/docs: Swagger UI, bundled here so that page runs only
// Kithost's own scripts (it shares the dashboard's origin and cookie).
import SwaggerUIBundle from 'swagger-ui-dist/swagger-ui-es-bundle.js';
import 'swagger-ui-dist/swagger-ui.css';

SwaggerUIBundle({ url: '/api/v1/openapi.json', dom_id: '#swagger-ui', deepLinking: true });
