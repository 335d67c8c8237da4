import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The edge serves the built page at `/`; in development Vite forwards the API to it.
const edge = process.env.CFD_EDGE_URL ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
  },
  server: {
    proxy: {
      "/v1/ws": { target: edge.replace(/^http/, "ws"), ws: true },
      "/v1": { target: edge },
    },
  },
  test: {
    include: ["tests/**/*.test.ts"],
    environment: "node",
  },
});
