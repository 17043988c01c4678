// Serves the v86 browser boot's images to the test page: Debian's 686 kernel from the fixture
// cache and a marker initrd built once per server from test/realboot/initrd.ts (busybox i386).
//
//   GET /v86f/bzImage       i386/bzImage (fixture; 404 with the reason when the cache lacks it)
//   GET /v86f/initrd.cpio   markerInitrd("i386", { marker: V86_BROWSER_MARKER })
//
// Whole-file answers with Content-Length, and single byte ranges (206) for fromUrl's Range reads.
import type { IncomingMessage, ServerResponse } from "node:http";
import { readFixture } from "../../qemu/fixtures.js";
import { markerInitrd } from "../../realboot/initrd.js";
import { V86_BROWSER_MARKER } from "../cases/v86.marker.js";

export function v86Server() {
  const cache = new Map<string, Uint8Array>();
  const make: Record<string, () => Uint8Array> = {
    bzImage: () => readFixture("i386/bzImage"),
    "initrd.cpio": () => markerInitrd("i386", { marker: V86_BROWSER_MARKER, script: "echo CMDLINE=$(cat /proc/cmdline)" }),
  };
  return function handle(req: IncomingMessage, res: ServerResponse): boolean {
    const m = /^\/v86f\/([\w.-]+)$/.exec(new URL(req.url ?? "/", "http://x").pathname);
    if (!m) return false;
    const name = m[1];
    let bytes = cache.get(name);
    try {
      if (!bytes && make[name]) cache.set(name, (bytes = make[name]()));
    } catch (e) {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end(String((e as Error).message));
      return true;
    }
    if (!bytes) {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found");
      return true;
    }
    const head = { "content-type": "application/octet-stream", "cache-control": "no-store", "accept-ranges": "bytes" };
    const r = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    if (r) {
      const start = Number(r[1]);
      const end = Math.min(r[2] ? Number(r[2]) : bytes.length - 1, bytes.length - 1);
      if (start > end) {
        res.writeHead(416, { ...head, "content-range": `bytes */${bytes.length}` });
        res.end();
        return true;
      }
      res.writeHead(206, { ...head, "content-length": String(end - start + 1), "content-range": `bytes ${start}-${end}/${bytes.length}` });
      res.end(bytes.subarray(start, end + 1));
      return true;
    }
    res.writeHead(200, { ...head, "content-length": String(bytes.length) });
    res.end(bytes);
    return true;
  };
}
