// `npx vitest run --config bench/vitest.realboot-x86.config.mjs`: the x86 real-boot timing
// (test/realboot/x86.bench.ts), kept out of `npm test`. See bench/README.md.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/realboot/x86.bench.ts"],
    environment: "node",
    testTimeout: 900_000,
  },
});
