// `npx vitest run --config bench/vitest.realboot-x86-direct.config.mjs`: bzImage direct boot vs the
// normal path, time to the userspace marker in QEMU (test/realboot/x86-direct.bench.ts), kept out
// of `npm test`. See bench/README.md.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/realboot/x86-direct.bench.ts"],
    environment: "node",
    testTimeout: 900_000,
  },
});
