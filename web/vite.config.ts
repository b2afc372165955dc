// Vite build of the web app. The output (dist/) is embedded by the yunying
// binary at build time (crates/server/build.rs) and served at `/`.
// In development, `npm run dev` proxies the server's APIs to a running
// `yunying serve` (YUNYING_URL, default http://127.0.0.1:8080).
import { defineConfig } from 'vite';

const backend = process.env.YUNYING_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  base: '/',
  esbuild: { jsx: 'automatic' },
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 6000,
    sourcemap: false,
  },
  worker: { format: 'es' },
  optimizeDeps: {
    exclude: ['@cornerstonejs/dicom-image-loader'],
    include: ['dicom-parser'],
  },
  server: {
    host: '127.0.0.1',
    port: 5173,
    proxy: {
      '/api': backend,
      '/dicom-web': backend,
      '/wado': backend,
      '/oauth': backend,
      '/healthz': backend,
    },
  },
});
