import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// Served by Kithost at /admin/ (platform/kithost/dashboard/endpoints.py), from its package.
export default defineConfig({
  base: '/admin/',
  plugins: [react()],
  build: {
    outDir: '../platform/kithost/dashboard/dist',
    emptyOutDir: true,
    target: 'es2022',
    // No inline scripts: the dashboard's CSP allows only 'self'.
    modulePreload: { polyfill: false },
    // The API browser (/api/v1/docs, platform/kithost/api_docs.py) is a page of its own.
    rollupOptions: { input: { main: 'index.html', apiDocs: 'api-docs.html' } },
    // Swagger UI's bundle (1.6 MB) is one chunk, loaded by the API browser alone.
    chunkSizeWarningLimit: 2000,
  },
  server: { proxy: { '/api': 'http://localhost:8000', '/preview': 'http://localhost:8000', '/embed': 'http://localhost:8000', '/w': 'http://localhost:8000', '/v1': 'http://localhost:8000' } },
});
