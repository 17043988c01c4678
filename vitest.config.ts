import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/**/*.browser.test.ts", "node_modules/**"],
    environment: "node",
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
});
