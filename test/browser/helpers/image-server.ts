// An HTTP handler that serves test images in the ways real servers (and broken ones) do, for the
// fromUrl tests. The same handler runs in a node:http server (Node tests, e2e) and as Vite
// middleware in the vitest browser project, so Node's fetch and Chromium's fetch meet the same
// server behaviour.
//
//   GET /gi/<mode>/<file>      file: a name in examples/images, or one of fixtures.SYNTHETIC
//   GET /gi/log                JSON list of the requests so far ({mode, file, range}); ?reset clears
//
// Modes:
//   range        Accept-Ranges: bytes, single ranges answered 206 with Content-Range, ETag
//   range-quiet  ranges answered 206, but no Accept-Ranges header (the client has to probe)
//   norange      Range ignored (200 with the whole file), no Accept-Ranges
//   none         Accept-Ranges: none, Range ignored
//   chunked      no Content-Length (chunked transfer coding), Range ignored
//   lying-range  ranges answered 206 with a Content-Range longer than the body that follows
//   cut-<n>      Content-Length of the whole file, then the connection is destroyed after n bytes
//   slow         the whole file in 256 KiB pieces, 20 ms apart
//   huge         Content-Length 512 MiB, the file's first 64 KiB, then nothing until the client gives up
import type { IncomingMessage, ServerResponse } from "node:http";
import { readFileSync } from "node:fs";
import { SYNTHETIC } from "../cases/fixtures.js";

export interface LoggedRequest {
  mode: string;
  file: string;
  range: string | null;
}

const samples = new URL("../../../examples/images/", import.meta.url);

export function imageServer() {
  const log: LoggedRequest[] = [];
  const cache = new Map<string, Uint8Array>();
  const fileBytes = (file: string): Uint8Array | null => {
    let b = cache.get(file);
    if (b) return b;
    const make = SYNTHETIC[file];
    if (make) b = make();
    else if (/^[\w.-]+$/.test(file)) {
      try {
        b = new Uint8Array(readFileSync(new URL(file, samples)));
      } catch {
        return null;
      }
    } else return null;
    cache.set(file, b);
    return b;
  };

  /** Handles the request if it is one of ours; returns false otherwise. */
  function handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/gi/log") {
      const body = JSON.stringify(log);
      if (url.searchParams.has("reset")) log.length = 0;
      res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(body);
      return true;
    }
    const m = /^\/gi\/([\w-]+)\/([^/]+)$/.exec(url.pathname);
    if (!m) return false;
    const [, mode, file] = m;
    const range = req.headers.range ?? null;
    log.push({ mode, file, range });
    const bytes = fileBytes(file);
    const common = { "content-type": "application/octet-stream", "cache-control": "no-store" };
    if (!bytes) {
      res.writeHead(404, common);
      res.end("not found");
      return true;
    }
    const etag = `"${file}-${bytes.length}"`;
    const whole = (extra: Record<string, string> = {}) => {
      res.writeHead(200, { ...common, "content-length": String(bytes.length), ...extra });
      res.end(bytes);
    };
    const ranged = (accept: boolean, lie: boolean) => {
      const r = range && /^bytes=(\d+)-(\d*)$/.exec(range);
      const extra: Record<string, string> = accept ? { "accept-ranges": "bytes", etag } : { etag };
      if (!r) return whole(extra);
      const a = Number(r[1]);
      const b = r[2] === "" ? bytes.length - 1 : Math.min(Number(r[2]), bytes.length - 1);
      if (a >= bytes.length || b < a) {
        res.writeHead(416, { ...common, "content-range": `bytes */${bytes.length}` });
        res.end();
        return;
      }
      const body = bytes.subarray(a, lie ? a + Math.ceil((b + 1 - a) / 2) : b + 1);
      res.writeHead(206, { ...common, ...extra, "content-range": `bytes ${a}-${b}/${bytes.length}`, "content-length": String(body.length) });
      res.end(body);
    };
    if (mode === "range") ranged(true, false);
    else if (mode === "range-quiet") ranged(false, false);
    else if (mode === "lying-range") ranged(true, true);
    else if (mode === "norange") whole();
    else if (mode === "none") whole({ "accept-ranges": "none" });
    else if (mode === "chunked") {
      res.writeHead(200, common);
      for (let o = 0; o < bytes.length; o += 64 * 1024) res.write(bytes.subarray(o, o + 64 * 1024));
      res.end();
    } else if (mode.startsWith("cut-")) {
      const n = Number(mode.slice(4));
      res.writeHead(200, { ...common, "content-length": String(bytes.length) });
      res.write(bytes.subarray(0, n), () => setTimeout(() => res.destroy(), 50));
    } else if (mode === "slow") {
      res.writeHead(200, { ...common, "content-length": String(bytes.length) });
      let o = 0;
      const step = () => {
        if (res.destroyed) return;
        if (o >= bytes.length) return void res.end();
        res.write(bytes.subarray(o, o + 256 * 1024));
        o += 256 * 1024;
        setTimeout(step, 20);
      };
      step();
    } else if (mode === "huge") {
      res.writeHead(200, { ...common, "content-length": String(512 * 1024 * 1024) });
      res.write(bytes.subarray(0, 64 * 1024)); // enough for the headers, then nothing
      const t = setTimeout(() => res.destroy(), 30_000);
      res.on("close", () => clearTimeout(t));
    } else {
      res.writeHead(400, common);
      res.end(`unknown mode ${mode}`);
    }
    return true;
  }

  return { handle, log };
}
