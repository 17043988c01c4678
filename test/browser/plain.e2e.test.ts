// The package without a bundler: a plain <script type="module"> page imports the browser entry
// (dist/index.js) through an import map, loads the samples with fromUrl on the page and in a
// module worker into shared memory, and must get Node's guest RAM digest both times. Served by a
// static server on 127.0.0.1 that sends COOP/COEP (cross-origin isolation, for shared memory).
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { extname } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runScenario, SCENARIOS } from "./cases/scenario.js";
import { haveChromium, launch } from "./helpers/chromium.js";

const root = new URL("../../", import.meta.url);
const SERVED = ["/dist/", "/examples/images/", "/test/browser/fixtures/"];
const TYPES: Record<string, string> = { ".js": "text/javascript", ".html": "text/html; charset=utf-8", ".map": "application/json" };

function staticServer(): Server {
  return createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const file = new URL(`.${path}`, root);
    let ok = SERVED.some((p) => path.startsWith(p)) && !path.includes("..");
    try {
      ok &&= statSync(file).isFile();
    } catch {
      ok = false;
    }
    const isolation = { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" };
    if (!ok) {
      res.writeHead(404, isolation);
      return void res.end();
    }
    const body = readFileSync(file);
    res.writeHead(200, { ...isolation, "content-type": TYPES[extname(path)] ?? "application/octet-stream", "content-length": body.length });
    res.end(body);
  });
}

describe.skipIf(!haveChromium)("the browser entry in a plain module script (no bundler)", () => {
  let server: Server;
  let origin = "";
  beforeAll(async () => {
    server = staticServer();
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((ok) => server.close(ok));
  });

  it("loads the samples on the page and in a worker, with Node's guest RAM digest", async () => {
    const lib = (await import(new URL("dist/node.js", root).href)) as typeof import("../../src/node.js");
    const node = await runScenario(lib, SCENARIOS.samples, lib.fromDirectory(new URL("examples/images/", root).pathname), async (b) =>
      createHash("sha256").update(b).digest("hex"),
    );
    const browser = await launch();
    try {
      await browser.page.goto(`${origin}/test/browser/fixtures/plain.html`);
      await browser.page.waitForFunction(() => (window as { __result?: unknown }).__result, null, { timeout: 20_000 });
      const r = await browser.page.evaluate(() => (window as unknown as { __result: Record<string, unknown> }).__result);
      expect(r.error).toBeUndefined();
      expect(r.placed).toEqual(node.placed);
      expect(r.sha256).toBe(node.sha256);
      expect(r.isolated).toBe(true);
      expect(r.workerPlaced).toEqual(node.placed);
      expect(r.workerSha256).toBe(node.sha256);
      expect(browser.problems).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
