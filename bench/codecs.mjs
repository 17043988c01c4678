// npm run bench:codecs [-- --runs N] [--file PATH] [--only zstd,lz4,…]
//
// Host decompression throughput per kernel compression, ours against the native tool decoding
// the same file to /dev/null (`zstd -dc f > /dev/null`, …), and the ratio. The input is Debian's
// arm64 kernel (fixture arm64/Image, made by scripts/fetch-fixtures.sh) or --file, compressed
// once per format with the tool's defaults (as a user would: `zstd Image`, `lz4 -l` as Linux's
// build does) into os.tmpdir()/guest-image-bench-codecs. Ours is the decoder alone writing into
// a VM's guest RAM (a view of its WebAssembly.Memory, exactly the output's size) with the VM's
// Wasm core passed as a real load passes it (DecodeOptions.core: zstd runs its loops there), plus,
// for gzip, node:zlib's inflate through the loader's own path. Median of --runs (default 5) after
// one warm-up, native and ours run alternately.
// Writes bench/results-codecs.json.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

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
if (!existsSync(SRC)) throw new Error(`${SRC} is missing: run \`bash scripts/fetch-fixtures.sh\` or pass --file`);
if (!existsSync(join(ROOT, "dist", "node.js"))) throw new Error("build first: npm run build");

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
const raw = new Uint8Array(readFileSync(SRC));
const stamp = `${statSync(SRC).size}-${statSync(SRC).mtimeMs}`;

const { CODECS } = await import(pathToFileURL(join(ROOT, "dist", "compress", "registry.js")).href);
const lib = await import(pathToFileURL(join(ROOT, "dist", "node.js")).href);

// One VM whose guest RAM holds the output, as a load decodes into it.
const RAM_BASE = 0x4000_0000;
const ramVm = await lib.createVm({ ram: [{ base: RAM_BASE, size: Math.ceil(raw.length / 65536) * 65536 }] });

const rows = [];
for (const f of FORMATS) {
  if (only && !only.includes(f.name)) continue;
  const file = join(dir, `Image-${stamp}.${f.ext}`);
  if (!existsSync(file)) sh(`${f.make} < '${SRC}' > '${file}.tmp' && mv '${file}.tmp' '${file}'`);
  const input = new Uint8Array(readFileSync(file));
  // native: the tool decoding the file to /dev/null (process start included; a few ms)
  const nativeRun = () => {
    const t = performance.now();
    sh(`${f.decode} '${file}' > /dev/null`);
    return performance.now() - t;
  };
  // ours
  let run;
  if (f.name === "gzip") {
    // The loader's gzip path: node:zlib through the streaming member file, into guest RAM (a
    // fresh VM per run, its creation not timed).
    run = async () => {
      const vm = await lib.createVm({ ram: [{ base: 0x4000_0000, size: raw.length + 64 * 2 ** 20 }], files: lib.fromMap({ "Image.gz": input }) });
      const t = performance.now();
      await vm.loadKernel("Image.gz", { at: 0x4000_0000 });
      return performance.now() - t;
    };
  } else {
    const codec = CODECS.find((c) => c.name === f.name);
    if (!codec) throw new Error(`no ${f.name} codec registered`);
    run = async () => {
      const out = ramVm.ram.view(RAM_BASE, raw.length);
      const t = performance.now();
      const r = codec.decode(input, out, { core: ramVm.core });
      const dt = performance.now() - t;
      if (r.written !== raw.length) throw new Error(`${f.name}: decoded ${r.written} bytes, want ${raw.length}`);
      return dt;
    };
  }
  // One warm-up each, then native and ours alternately, so that both see the same load on a
  // shared machine (run back to back, a burst of load landed on one side only).
  nativeRun();
  await run();
  const native = [];
  const ours = [];
  for (let i = 0; i < RUNS; i++) {
    native.push(nativeRun());
    ours.push(await run());
  }
  const mbps = (ms) => raw.length / 1e6 / (ms / 1000);
  const row = {
    format: f.name,
    compressed: input.length,
    output: raw.length,
    nativeMs: median(native),
    oursMs: median(ours),
    nativeMBps: mbps(median(native)),
    oursMBps: mbps(median(ours)),
    ratio: median(native) / median(ours),
    target: f.target,
  };
  rows.push(row);
  console.log(
    `${f.name.padEnd(6)} ${String((input.length / 1e6).toFixed(1)).padStart(6)} MB  native ${row.nativeMs.toFixed(0).padStart(5)} ms ${row.nativeMBps.toFixed(0).padStart(5)} MB/s   ours ${row.oursMs.toFixed(0).padStart(5)} ms ${row.oursMBps.toFixed(0).padStart(5)} MB/s   ratio ${row.ratio.toFixed(2)} (target ${f.target})`,
  );
}
writeFileSync(join(HERE, "results-codecs.json"), JSON.stringify({ date: new Date().toISOString(), input: SRC, bytes: raw.length, node: process.version, cpus: os.cpus().length, runs: RUNS, rows }, null, 2) + "\n");
