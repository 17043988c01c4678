// The demo page (`npm run web`): Vite serves web/ on 127.0.0.1, and the bundled sample images
// (examples/images) under /samples/. The page imports the package by its name, "guest-image",
// which Vite resolves through package.json "exports" to the browser entry (dist/index.js).
import { createReadStream, readdirSync, readFileSync, statSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { fileURLToPath } from "node:url";
import { defineConfig, type Plugin } from "vite";

const samplesDir = fileURLToPath(new URL("../examples/images/", import.meta.url));

/** GET/HEAD /samples/<name>, with Content-Length and single byte ranges (what fromUrl uses). */
function serveSample(req: IncomingMessage, res: ServerResponse, next: () => void): void {
  const m = /^\/samples\/([\w.-]+)$/.exec(new URL(req.url ?? "/", "http://x").pathname);
  if (!m) return next();
  const path = samplesDir + m[1];
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) return next();
    size = st.size;
  } catch {
    return next();
  }
  const headers = { "content-type": "application/octet-stream", "accept-ranges": "bytes", "cache-control": "no-cache" };
  const r = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
  let start = 0;
  let end = size - 1;
  if (r) {
    start = Number(r[1]);
    end = r[2] ? Math.min(Number(r[2]), size - 1) : size - 1;
    if (start >= size || end < start) {
      res.writeHead(416, { ...headers, "content-range": `bytes */${size}` });
      return void res.end();
    }
    res.writeHead(206, { ...headers, "content-length": String(end - start + 1), "content-range": `bytes ${start}-${end}/${size}` });
  } else {
    res.writeHead(200, { ...headers, "content-length": String(size) });
  }
  if (req.method === "HEAD" || size === 0) return void res.end();
  createReadStream(path, { start, end }).pipe(res);
}

function samples(): Plugin {
  return {
    name: "guest-image-samples",
    configureServer: (server) => void server.middlewares.use(serveSample),
    configurePreviewServer: (server) => void server.middlewares.use(serveSample),
    generateBundle() {
      for (const name of readdirSync(samplesDir)) {
        this.emitFile({ type: "asset", fileName: `samples/${name}`, source: readFileSync(samplesDir + name) });
      }
    },
  };
}

// Cross-origin isolation lets the page share a WebAssembly.Memory with a worker.
const headers = { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" };

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "./",
  publicDir: false,
  clearScreen: false,
  plugins: [samples()],
  server: { host: "127.0.0.1", port: 5173, headers },
  preview: { host: "127.0.0.1", port: 4173, headers },
  build: { outDir: "dist", emptyOutDir: true, target: "es2022" },
  worker: { format: "es" },
});
