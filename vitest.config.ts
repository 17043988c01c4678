import { existsSync } from "node:fs";
import { playwright } from "@vitest/browser-playwright";
import type { Plugin } from "vite";
import { defineConfig, type TestProjectInlineConfiguration } from "vitest/config";
import { nodeLoad } from "./test/browser/helpers/commands.js";
import { imageServer } from "./test/browser/helpers/image-server.js";
import { v86Server } from "./test/browser/helpers/v86-server.js";

// Two projects: "node" (every *.test.ts) and "browser" (test/browser/**/*.browser.test.ts in
// headless Chromium, Debian's /usr/bin/chromium driven by Playwright). Without a Chromium the
// browser project is left out and `npm test` runs the node project alone (saying so).
const chromium = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const haveChromium = existsSync(chromium);
if (!haveChromium) console.warn(`[vitest] no Chromium at ${chromium}: browser tests are skipped (apt-get install chromium, or set CHROMIUM_PATH)`);

/** The fromUrl test server (test/browser/helpers/image-server.ts) as middleware of the browser tests' server. */
function imageServerPlugin(): Plugin {
  return {
    name: "guest-image-test-server",
    configureServer(server) {
      const { handle } = imageServer();
      const handleV86 = v86Server(); // the v86 boot's kernel and initrd (test/browser/v86.browser.test.ts)
      server.middlewares.use((req, res, next) => {
        if (!handle(req, res) && !handleV86(req, res)) next();
      });
    },
  };
}

const node: TestProjectInlineConfiguration = {
  test: {
    name: "node",
    include: ["test/**/*.test.ts"],
    exclude: ["test/**/*.browser.test.ts", "node_modules/**"],
    environment: "node",
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
};

const browser: TestProjectInlineConfiguration = {
  plugins: [imageServerPlugin()],
  server: {
    // Cross-origin isolation, so tests can share a WebAssembly.Memory with a worker.
    headers: { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" },
  },
  test: {
    name: "browser",
    include: ["test/browser/**/*.browser.test.ts"],
    testTimeout: 30_000,
    browser: {
      enabled: true,
      headless: true,
      screenshotFailures: false,
      api: { host: "127.0.0.1" },
      instances: [{ browser: "chromium" }],
      provider: playwright({
        launchOptions: {
          executablePath: chromium,
          args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        },
      }),
      commands: { nodeLoad },
    },
  },
};

export default defineConfig({
  test: {
    projects: haveChromium ? [node, browser] : [node],
  },
});
