// npm run bench:codecs:browser [-- --runs N] [--file PATH] [--only zstd,lz4,…]
//
// The Chromium figures of the codec bench (bench/codecs.mjs has the Node ones): every decoder run
// in headless Debian Chromium (playwright-core, /usr/bin/chromium or CHROMIUM_PATH) on the same
// compressed files (os.tmpdir()/guest-image-bench-codecs, made by the same tools with the same
// options as bench/codecs.mjs, and shared with it), against the native tool decoding the same file
// to /dev/null, measured in the same run, format by format (native runs, then Chromium's).
//
// In the page, a load is what a page does: createVm over fresh guest RAM, the compressed kernel
// in fromMap, vm.loadKernel (detect, size, decode straight into guest RAM with the VM's core;
// gzip through DecompressionStream, the browser entry's inflater), timed from loadKernel's call to
// its return, VM creation not timed (chromiumLoad*: it includes what a load does besides the
// decode, e.g. the measuring pass of an lz4 or zstd stream that declares no size). And, for every
// codec but gzip, the decoder alone into a VM's guest RAM with its core, as bench/codecs.mjs times
// it in Node (chromiumMs/chromiumRatio: for gzip the whole load, as in Node, so the Node and
// Chromium columns measure the same thing). The first load's and the first decode's output are
// compared with the Image byte for byte; then median of --runs (default 5) after that warm-up.
// Adds these fields to bench/results-codecs.json's rows (and a `chromium` record); Node's fields
// are left as they are.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import os from "node:os";
import { dirname, extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..");
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const RUNS = Number(opt("--runs", 5));
const FIX = process.env.GUEST_IMAGE_FIXTURES ?? join(os.homedir(), ".cache", "guest-image-fixtures");
const SRC = opt("--file", join(FIX, "arm64", "Image"));
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
if (!existsSync(SRC)) throw new Error(`${SRC} is missing: run \`bash scripts/fetch-fixtures.sh\` or pass --file`);
if (!existsSync(join(ROOT, "dist", "index.js"))) throw new Error("build first: npm run build");
if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`);

// The same files as bench/codecs.mjs: same tools, options and names.
const FORMATS = [
  { name: "gzip", ext: "gz", make: "gzip -c", decode: "gzip -dc", target: 0.5 },
  { name: "lz4", ext: "lz4", make: "lz4 -l -c", decode: "lz4 -dc", target: 0.5 },
  { name: "lzo", ext: "lzo", make: "lzop -c", decode: "lzop -dc", target: 0.5 },
  { name: "zstd", ext: "zst", make: "zstd -q -c", decode: "zstd -q -dc", target: 0.5 },
  { name: "xz", ext: "xz", make: "xz -c", decode: "xz -dc", target: 0.33 },
  { name: "lzma", ext: "lzma", make: "lzma -c", decode: "lzma -dc", target: 0.33 },
  { name: "bzip2", ext: "bz2", make: "bzip2 -c", decode: "bzip2 -dc", target: 0.33 },
];
const only = opt("--only", null)?.split(",");

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sh = (cmd) => {
  const r = spawnSync("sh", ["-c", cmd], { stdio: ["ignore", "ignore", "pipe"] });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
};

const dir = join(os.tmpdir(), "guest-image-bench-codecs");
mkdirSync(dir, { recursive: true });
const bytes = statSync(SRC).size;
const stamp = `${bytes}-${statSync(SRC).mtimeMs}`;

/** Static files: /dist/… (the built library), /input/<file> (the compressed kernels), /raw (the Image). */
function serve() {
  const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".map": "application/json" };
  const server = createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    let path = null;
    if (url.pathname === "/") {
      res.writeHead(200, { "content-type": "text/html", "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" });
      res.end("<!doctype html><meta charset=utf-8><title>guest-image codec bench</title>");
      return;
    }
    if (url.pathname === "/raw") path = SRC;
    else if (url.pathname.startsWith("/input/")) path = join(dir, decodeURIComponent(url.pathname.slice(7)).replaceAll("/", ""));
    else {
      const p = normalize(join(ROOT, decodeURIComponent(url.pathname)));
      if (p.startsWith(join(ROOT, "dist") + sep)) path = p;
    }
    if (!path || !existsSync(path) || !statSync(path).isFile()) {
      res.writeHead(404).end();
      return;
    }
    // Cross-origin isolation gives performance.now() 5 µs resolution instead of 100 µs.
    res.writeHead(200, {
      "content-type": TYPES[extname(path)] ?? "application/octet-stream",
      "cross-origin-opener-policy": "same-origin",
      "cross-origin-embedder-policy": "require-corp",
      "cache-control": "no-store",
    });
    res.end(readFileSync(path));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, port: server.address().port })));
}

/**
 * Runs in the page (serialised by playwright): `runs` + 1 loads of `file` into fresh VMs and, but
 * for gzip, `runs` + 1 decodes into one VM's guest RAM; the first of each checked against /raw.
 */
async function pageBench({ name, file, runs, bytes }) {
  const lib = await import("/dist/index.js");
  const { CODECS } = await import("/dist/compress/registry.js");
  globalThis.__raw ??= new Uint8Array(await (await fetch("/raw")).arrayBuffer());
  const raw = globalThis.__raw;
  const input = new Uint8Array(await (await fetch(`/input/${file}`)).arrayBuffer());
  const BASE = 0x4000_0000;
  const size = Math.ceil((bytes + 8 * 2 ** 20) / 65536) * 65536;
  const same = (got, what) => {
    if (got.length !== raw.length) throw new Error(`${name}: ${what} gave ${got.length} bytes, want ${raw.length}`);
    for (let i = 0; i < raw.length; i++) if (got[i] !== raw[i]) throw new Error(`${name}: ${what} differs from the Image at byte ${i}`);
  };
  const load = async (check) => {
    const vm = await lib.createVm({ ram: [{ base: BASE, size }], files: lib.fromMap({ [file]: input }) });
    const t = performance.now();
    const k = await vm.loadKernel(file, { at: BASE });
    const dt = performance.now() - t;
    if (check) same(vm.ram.view(k.paddr, bytes), "the load");
    return dt;
  };
  await load(true);
  const loads = [];
  for (let i = 0; i < runs; i++) loads.push(await load(false));
  let decodes = null;
  if (name !== "gzip") {
    const codec = CODECS.find((c) => c.name === name);
    const vm = await lib.createVm({ ram: [{ base: BASE, size }] });
    const decode = (check) => {
      const out = vm.ram.view(BASE, bytes);
      const t = performance.now();
      const r = codec.decode(input, out, { core: vm.core });
      const dt = performance.now() - t;
      if (r.written !== bytes) throw new Error(`${name}: decoded ${r.written} bytes, want ${bytes}`);
      if (check) same(out, "the decoder");
      return dt;
    };
    decode(true);
    decodes = [];
    for (let i = 0; i < runs; i++) decodes.push(decode(false));
  }
  return { loads, decodes, userAgent: navigator.userAgent, crossOriginIsolated: globalThis.crossOriginIsolated };
}

const { chromium } = await import("playwright-core");
const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const { server, port } = await serve();
const profile = mkdtempSync(join(os.tmpdir(), "chromium-profile-"));
const ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS });
const found = {};
let userAgent = "";
let isolated = false;
try {
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  await page.goto(`http://127.0.0.1:${port}/`);
  for (const f of FORMATS) {
    if (only && !only.includes(f.name)) continue;
    const name = `Image-${stamp}.${f.ext}`;
    const file = join(dir, name);
    if (!existsSync(file)) sh(`${f.make} < '${SRC}' > '${file}.tmp' && mv '${file}.tmp' '${file}'`);
    // native: the tool decoding the file to /dev/null (process start included), one warm-up
    sh(`${f.decode} '${file}' > /dev/null`);
    const native = [];
    for (let i = 0; i < RUNS; i++) {
      const t = performance.now();
      sh(`${f.decode} '${file}' > /dev/null`);
      native.push(performance.now() - t);
    }
    const r = await page.evaluate(pageBench, { name: f.name, file: name, runs: RUNS, bytes });
    userAgent = r.userAgent;
    isolated = r.crossOriginIsolated;
    const mbps = (ms) => bytes / 1e6 / (ms / 1000);
    // chromiumMs: what bench/codecs.mjs's oursMs is in Node (the decoder alone into guest RAM;
    // gzip: the whole load), so the two columns compare; chromiumLoadMs: the whole load for all.
    const ours = median(r.decodes ?? r.loads);
    const row = {
      chromiumNativeMs: median(native),
      chromiumMs: ours,
      chromiumMBps: mbps(ours),
      chromiumRatio: median(native) / ours,
      chromiumLoadMs: median(r.loads),
      chromiumLoadMBps: mbps(median(r.loads)),
      chromiumLoadRatio: median(native) / median(r.loads),
    };
    found[f.name] = { row, compressed: statSync(file).size, target: f.target };
    console.log(
      `${f.name.padEnd(6)} native ${row.chromiumNativeMs.toFixed(0).padStart(5)} ms ${mbps(row.chromiumNativeMs).toFixed(0).padStart(5)} MB/s   ` +
        `Chromium ${row.chromiumMs.toFixed(0).padStart(5)} ms ${row.chromiumMBps.toFixed(0).padStart(5)} MB/s ratio ${row.chromiumRatio.toFixed(2)} (target ${f.target})` +
        `   whole load ${row.chromiumLoadMs.toFixed(0).padStart(5)} ms ratio ${row.chromiumLoadRatio.toFixed(2)}`,
    );
  }
} finally {
  await ctx.close();
  server.close();
  rmSync(profile, { recursive: true, force: true });
}

const path = join(HERE, "results-codecs.json");
const results = existsSync(path) ? JSON.parse(readFileSync(path, "utf8")) : { input: SRC, bytes, rows: [] };
for (const [format, { row, compressed, target }] of Object.entries(found)) {
  let r = results.rows.find((x) => x.format === format);
  if (!r) results.rows.push((r = { format, compressed, output: bytes, target }));
  Object.assign(r, row);
}
results.chromium = { date: new Date().toISOString(), input: SRC, bytes, runs: RUNS, executablePath: CHROMIUM, driver: "playwright-core", userAgent, crossOriginIsolated: isolated };
writeFileSync(path, JSON.stringify(results, null, 2) + "\n");
