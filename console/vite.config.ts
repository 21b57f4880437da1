import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

export default defineConfig({
  base: "/admin/",
  plugins: [preact()],
  build: {
    outDir: "../kiro_gateway/console/static",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    target: "es2020",
    modulePreload: { polyfill: false },
  },
});
