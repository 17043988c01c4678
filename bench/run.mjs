// npm run bench [-- options]: the loader against its native floors, side by side in one run.
//
// Every case times our loader (the built dist/) and, in the same process run and the same
// minute, its baseline: C read(2)/memcpy/memset and relocation loops compiled here with gcc -O2,
// Node's zlib, and our own pure-JS loops. Inputs are generated (deterministic) into
// os.tmpdir()/guest-image-bench and reused while their parameters match. Prints a table (median
// of --runs after one warm-up, min–max) and writes bench/results.json. See bench/README.md.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import zlib from "node:zlib";
import { MiB, arm64Image, fillRandom, segmentsElf, uImage } from "./lib/gen.mjs";
import { freshVm, loadLib, pieInput, relocCase, sharedMemory, x86Input } from "./lib/cases.mjs";
import { now, sample, summary } from "./lib/stats.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..");
let DIST = pathToFileURL(join(ROOT, "dist") + "/").href;

// ---------------------------------------------------------------------------------------------
// Options

const SIZE = (s) => {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)i?B?$/i.exec(String(s));
  if (!m) throw new Error(`bad size "${s}" (e.g. 64M, 1G, 4096)`);
  return Math.round(Number(m[1]) * { "": 1, K: 1024, M: MiB, G: 1024 * MiB }[m[2].toUpperCase()]);
};
const COUNT = (s) => {
  const m = /^(\d+(?:\.\d+)?)([kM]?)$/.exec(String(s));
  if (!m) throw new Error(`bad count "${s}" (e.g. 1000000, 500k, 1M)`);
  return Math.round(Number(m[1]) * { "": 1, k: 1e3, M: 1e6 }[m[2]]);
};
const CASES = { 1: "raw-file", 2: "raw-mem", 3: "elf", 4: "reloc", 5: "gzip", 6: "uimage", 7: "startup", 8: "rss", 9: "v86", 10: "realboot", 11: "codecs", 12: "reboot" };
const HELP = `usage: npm run bench -- [options]
  --quick              small sizes, 3 runs, no browser (a smoke test, < 20 s)
  --runs N             timed runs per measurement after one warm-up (default 7, quick 3)
  --only LIST          cases by number or name: ${Object.entries(CASES).map(([k, v]) => `${k}/${v}`).join(", ")}
  --size S             raw image for cases 1, 2 and 8 (default 256M); case 8's guest RAM is 2 × S
  --elf-size S         case 3: file bytes in 4 PT_LOADs (default 64M), plus S/4 of BSS
  --relocs N           case 4: R_X86_64_RELATIVE entries in the PIE (default 1M)
  --x86-relocs N       case 4: entries in the x86 relocs stream (default 500k)
  --gz-size S          case 5: uncompressed Image size (default 64M)
  --uimage-size S      case 6: uImage payload (default 64M)
  --v86-runs N         case 9: boots per side (default 3; --quick leaves case 9 out unless --only names it)
                       case 10 (real boots in QEMU: arm64, arm, riscv64, x86_64, x86_64 direct vs normal)
                       and case 11 (decoders vs the native CLIs) run their own scripts; --quick leaves
                       them out unless --only names them
  --no-cold            skip the cold-RAM (page faults included) rows
  --browser / --no-browser   also run cases 2, 3, 4, 7 and 11 in Chromium (default: on unless --quick)
  --dist DIR           benchmark another build of the library (default: dist/, built if stale)
  --out FILE           results file (default bench/results.json; quick: bench/results-quick.json)`;

function parseArgs(argv) {
  const quick = argv.includes("--quick");
  const o = {
    quick, runs: quick ? 3 : 7, only: null, size: quick ? 16 * MiB : 256 * MiB, elfSize: quick ? 8 * MiB : 64 * MiB,
    relocs: quick ? 100_000 : 1_000_000, x86Relocs: quick ? 50_000 : 500_000, gzSize: quick ? 4 * MiB : 64 * MiB,
    uimageSize: quick ? 8 * MiB : 64 * MiB, cold: true, browser: !quick, out: null, v86Runs: quick ? 1 : 3,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--quick") continue;
    else if (a === "--runs") o.runs = Math.max(1, parseInt(val(), 10));
    else if (a === "--only") o.only = new Set(val().split(",").map((s) => CASES[s.trim()] ?? s.trim()));
    else if (a === "--size") o.size = SIZE(val());
    else if (a === "--elf-size") o.elfSize = SIZE(val());
    else if (a === "--relocs") o.relocs = COUNT(val());
    else if (a === "--x86-relocs") o.x86Relocs = COUNT(val());
    else if (a === "--gz-size") o.gzSize = SIZE(val());
    else if (a === "--uimage-size") o.uimageSize = SIZE(val());
    else if (a === "--v86-runs") o.v86Runs = Math.max(1, parseInt(val(), 10));
    else if (a === "--no-cold") o.cold = false;
    else if (a === "--browser") o.browser = true;
    else if (a === "--no-browser") o.browser = false;
    else if (a === "--out") o.out = val();
    else if (a === "--dist") o.dist = val();
    else if (a === "--help" || a === "-h") {
      console.log(HELP);
      process.exit(0);
    } else throw new Error(`unknown option ${a}\n${HELP}`);
  }
  for (const c of o.only ?? []) if (!Object.values(CASES).includes(c)) throw new Error(`unknown case "${c}"`);
  o.elfSize = Math.max(4 * 4096, Math.floor(o.elfSize / 4 / 4096) * 4096 * 4);
  o.size = Math.ceil(o.size / 4096) * 4096;
  o.out ??= join(HERE, quick ? "results-quick.json" : "results.json");
  return o;
}

// ---------------------------------------------------------------------------------------------
// Build: dist/ (if missing or older than src/, assembly/) and the C baselines.

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

function ensureDist() {
  if (process.env.BENCH_NO_BUILD) return;
  const idx = join(ROOT, "dist", "index.js");
  const stale = !existsSync(idx) || statSync(idx).mtimeMs < Math.max(newest(join(ROOT, "src")), newest(join(ROOT, "assembly")));
  if (!stale) return;
  console.log("building dist/ (npm run build; it is missing or older than src/) …");
  const t = now();
  const r = spawnSync("npm", ["run", "build", "--silent"], { cwd: ROOT, stdio: "inherit" });
  console.log(`built in ${((now() - t) / 1000).toFixed(1)} s (not counted below)`);
  if (r.status !== 0) {
    if (existsSync(idx)) console.log("build failed; benchmarking the existing dist/");
    else throw new Error("npm run build failed and there is no dist/ to benchmark");
  }
}

function buildC() {
  const dir = mkdtempSync(join(os.tmpdir(), "guest-image-bench-c-"));
  const bins = {};
  for (const name of ["load", "reloc", "elfload"]) {
    bins[name] = join(dir, name);
    try {
      execFileSync("gcc", ["-O2", "-o", bins[name], join(HERE, "c", `${name}.c`)], { stdio: "inherit" });
    } catch (e) {
      throw new Error(`cannot build the C baselines (gcc -O2 bench/c/${name}.c): ${e.code === "ENOENT" ? "gcc is not installed (apt-get install -y gcc)" : e.message}`);
    }
  }
  return bins;
}

const gccVersion = () => {
  try {
    return execFileSync("gcc", ["-dumpfullversion"], { encoding: "utf8" }).trim();
  } catch {
    return null;
  }
};

function runC(bin, args) {
  const out = execFileSync(bin, args.map(String), { encoding: "utf8", maxBuffer: 1 << 20 });
  return JSON.parse(out);
}

// ---------------------------------------------------------------------------------------------
// Inputs, cached in os.tmpdir()/guest-image-bench (deterministic, so reuse is safe).

const INPUTS = join(os.tmpdir(), "guest-image-bench");
/** Bumped whenever bench/lib/gen.mjs changes what it writes, so cached inputs are remade. */
const GEN_VERSION = 2;

function input(name, make) {
  mkdirSync(INPUTS, { recursive: true });
  const path = join(INPUTS, `v${GEN_VERSION}-${name}`);
  if (!existsSync(path)) {
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, make());
    renameSync(tmp, path);
  }
  return path;
}

const mb = (n) => (n % MiB === 0 ? `${n / MiB}M` : n % 1024 === 0 ? `${n / 1024}K` : `${n}`);

// ---------------------------------------------------------------------------------------------
// Measuring: interleaved rounds, so a case and its baseline see the same machine state.

/**
 * Runs each entry once untimed, then `runs` rounds of all entries in turn. An entry's `run`
 * returns nothing (its wall time is taken) or its own measured time in ms (the C programs time
 * themselves, without process start-up). `before` runs untimed before each call.
 */
async function interleave(runs, entries) {
  const out = Object.fromEntries(entries.map((e) => [e.name, []]));
  for (let r = -1; r < runs; r++) {
    for (const e of entries) {
      if (e.before) await e.before();
      const t0 = now();
      const self = await e.run();
      const ms = typeof self === "number" ? self : now() - t0;
      if (r >= 0) out[e.name].push(ms);
    }
  }
  return out;
}

const cTime = (bin, args) => () => runC(bin, args).ns[0] / 1e6;

// ---------------------------------------------------------------------------------------------
// Results

const results = { rows: [], notes: [], extra: {} };
const gbs = (bytes, ms) => bytes / (ms * 1e6);

/**
 * A table row. kind "throughput": ours/base in ms for `bytes` (ratio = base/ours time = our
 * throughput as a fraction of the baseline's); "count": ms for `count` items; "value": plain
 * numbers where lower is better (ms, MiB) compared with an absolute limit.
 */
function row(r) {
  const s = (x) => (x ? { ...summary(x), samples: x.map((v) => +v.toFixed(3)) } : null);
  const out = { ...r, ours: s(r.ours), base: s(r.base) };
  // Samples taken in interleaved rounds are paired: the ratio is the median of the per-round
  // ratios, which cancels load that drifts over the run (the median of each side is shown too).
  if (r.ours && r.base) {
    out.ratioOfMedians = out.base.median / out.ours.median;
    out.ratio = r.ours.length === r.base.length ? summary(r.ours.map((v, i) => r.base[i] / v)).median : out.ratioOfMedians;
  }
  if (out.ratio !== undefined && r.target !== undefined) out.pass = out.ratio >= r.target;
  if (r.limit !== undefined && r.ours) out.pass = out.ours.median <= r.limit;
  results.rows.push(out);
  return out;
}

function fmtVal(r, sm) {
  if (!sm) return "—";
  if (r.kind === "throughput") return `${gbs(r.bytes, sm.median).toFixed(2)} GB/s (${gbs(r.bytes, sm.max).toFixed(2)}–${gbs(r.bytes, sm.min).toFixed(2)})`;
  if (r.kind === "rate") return `${(1000 / sm.median).toFixed(1)} ${r.unit} (${(1000 / sm.max).toFixed(1)}–${(1000 / sm.min).toFixed(1)})`;
  if (r.kind === "count") return `${(r.count / sm.median / 1e3).toFixed(1)} M/s (${(r.count / sm.max / 1e3).toFixed(1)}–${(r.count / sm.min / 1e3).toFixed(1)})`;
  return `${sm.median.toFixed(r.unit === "MiB" ? 0 : 2)} ${r.unit} (${sm.min.toFixed(r.unit === "MiB" ? 0 : 2)}–${sm.max.toFixed(r.unit === "MiB" ? 0 : 2)})`;
}

function printTable(browser) {
  const head = ["#", "case", "ours (Node)", "baseline", "base value", "ratio", "target", ""];
  if (browser) head.push("Chromium (ratio)");
  const lines = [head];
  for (const r of results.rows) {
    const target = r.target !== undefined ? `≥ ${r.target.toFixed(2)}` : r.limit !== undefined ? `≤ ${r.limit} ${r.unit}` : "";
    const ok = r.pass === undefined ? "" : r.pass ? "ok" : "MISS";
    const l = [r.id, r.name, fmtVal(r, r.ours), r.baseName ?? "", r.base ? fmtVal(r, r.base) : "", r.ratio !== undefined ? r.ratio.toFixed(2) : "", target, ok];
    if (browser) {
      const b = r.browser;
      l.push(!b ? "" : b.error ? b.error : `${fmtVal(r, b.ours).replace(/ \(.*\)/, "")}${b.ratio !== undefined ? ` (${b.ratio.toFixed(2)})` : ""}`);
    }
    lines.push(l.map(String));
  }
  const w = head.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  for (const l of lines) console.log(l.map((c, i) => c.padEnd(w[i])).join("  ").trimEnd());
  if (results.notes.length) {
    console.log("");
    for (const n of results.notes) console.log(`- ${n}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The cases

async function main() {
  let o;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(e.message);
    process.exit(2);
  }
  const want = (c) => !o.only || o.only.has(c);
  if (o.dist) DIST = pathToFileURL(join(o.dist, "/")).href;
  else ensureDist();
  const t0 = now();
  const C = buildC();
  const lib = await loadLib(DIST);
  const node = await import(DIST + "node.js");
  const detect = await import(DIST + "formats/detect.js");
  const largest = Math.max(want("raw-file") || want("raw-mem") ? o.size : 0, 160 * MiB, o.elfSize * 1.25 + 2 * MiB, o.gzSize + 8 * MiB, o.uimageSize + 8 * MiB);
  const shared = sharedMemory(lib, Math.ceil(largest / 65536) * 65536);
  const cold = o.cold ? ["warm", "cold"] : ["warm"];
  results.meta = {
    date: new Date().toISOString(), cpu: os.cpus()[0]?.model, cpus: os.cpus().length, memGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    kernel: os.release(), node: process.version, v8: process.versions.v8, gcc: gccVersion(), options: { ...o, only: o.only ? [...o.only] : null },
  };
  console.log(`guest-image bench: ${results.meta.cpu} ×${results.meta.cpus}, Node ${process.version}, gcc ${results.meta.gcc}; median of ${o.runs} runs after a warm-up (min–max)`);
  console.log(`inputs in ${INPUTS}\n`);

  // ---- 1. raw module from a page-cached file ------------------------------------------------
  if (want("raw-file") || want("raw-mem") || want("rss")) {
    const rawPath = input(`raw-${mb(o.size)}.bin`, () => fillRandom(new Uint8Array(o.size), 1));
    const dir = dirname(rawPath);
    const name = rawPath.slice(dir.length + 1);
    if (want("raw-file")) {
      for (const mode of [...cold, "dirty"]) {
        const files = node.fromDirectory(dir);
        let vm;
        const cmode = mode === "cold" ? "cold" : "warm";
        const s = await interleave(o.runs, [
          { name: "ours", before: async () => (vm = await freshVm(lib, shared, { base: 0, size: o.size, files, mode })), run: () => vm.loadModule(name, { at: 0 }) },
          { name: "c", run: cTime(C.load, [rawPath, "file", cmode, 1, 0, o.size, `c:0:0:${o.size}`]) },
          { name: "c8", run: cTime(C.load, [rawPath, "file", cmode, 1, 8 * MiB, o.size, `c:0:0:${o.size}`]) },
        ]);
        const r = row({
          id: "1", name: `raw ${mb(o.size)} file → RAM, ${mode}`, kind: "throughput", bytes: o.size, ours: s.ours, base: s.c,
          baseName: `C read(2)${mode === "cold" ? " cold" : ""}`, target: mode === "warm" ? 0.9 : undefined,
        });
        r.extra = { cRead8MiB: summary(s.c8) };
      }
    }

    // ---- 2. raw module from an in-memory Uint8Array ------------------------------------------
    if (want("raw-mem")) {
      const bytes = new Uint8Array(readFileSync(rawPath).buffer);
      for (const mode of [...cold, "dirty"]) {
        const files = lib.fromMap({ img: bytes });
        let vm;
        const s = await interleave(o.runs, [
          { name: "ours", before: async () => (vm = await freshVm(lib, shared, { base: 0, size: o.size, files, mode })), run: () => vm.loadModule("img", { at: 0 }) },
          { name: "c", run: cTime(C.load, [rawPath, "mem", mode === "cold" ? "cold" : "warm", 1, 0, o.size, `c:0:0:${o.size}`]) },
        ]);
        row({
          id: "2", name: `raw ${mb(o.size)} Uint8Array → RAM, ${mode}`, kind: "throughput", bytes: o.size, ours: s.ours, base: s.c,
          baseName: `C memcpy${mode === "cold" ? " cold" : ""}`, target: mode === "warm" ? 0.9 : undefined,
        });
      }
      await bookkeeping(lib, shared, o);
    }
  }

  // ---- 3. ELF64, 4 PT_LOADs + BSS ---------------------------------------------------------------
  if (want("elf")) {
    const filesz = o.elfSize / 4;
    const bss = filesz / 4;
    const spec = { filesz, bss };
    const elfPath = input(`elf-4x${mb(filesz)}-bss${mb(bss)}.elf`, () => segmentsElf(spec).bytes);
    const elf = segmentsElf(spec); // the same layout, for the C op list and the in-memory rows
    const ops = [...elf.copies.map((c) => `c:${c.dst}:${c.src}:${c.len}`), ...elf.zeros.map((z) => `z:${z.dst}:${z.len}`)];
    const ramSize = elf.paddr + elf.imageSize;
    const dir = dirname(elfPath);
    const name = elfPath.slice(dir.length + 1);
    for (const mode of cold) {
      const files = node.fromDirectory(dir);
      let vm;
      const s = await interleave(o.runs, [
        { name: "ours", before: async () => (vm = await freshVm(lib, shared, { base: 0, size: ramSize, files, mode })), run: () => vm.loadKernel(name) },
        { name: "c", run: cTime(C.load, [elfPath, "file", mode, 1, 0, elf.imageSize, ...ops]) },
      ]);
      row({
        id: "3", name: `ELF64 4×${mb(filesz)} + ${mb(4 * bss)} BSS, file, ${mode}`, kind: "throughput", bytes: elf.imageSize, ours: s.ours, base: s.c,
        baseName: `C read+memset${mode === "cold" ? " cold" : ""}`, target: mode === "warm" ? 0.85 : undefined,
      });
    }
    {
      const files = lib.fromMap({ vmlinux: elf.bytes });
      let vm;
      const s = await interleave(o.runs, [
        { name: "ours", before: async () => (vm = await freshVm(lib, shared, { base: 0, size: ramSize, files, mode: "warm" })), run: () => vm.loadKernel("vmlinux") },
        { name: "c", run: cTime(C.load, [elfPath, "mem", "warm", 1, 0, elf.imageSize, ...ops]) },
      ]);
      row({ id: "3m", name: `ELF64 4×${mb(filesz)} + ${mb(4 * bss)} BSS, Uint8Array, warm`, kind: "throughput", bytes: elf.imageSize, ours: s.ours, base: s.c, baseName: "C memcpy+memset", target: 0.85, browserKey: "elf" });
    }
  }

  // ---- 4. relocation ---------------------------------------------------------------------------
  if (want("reloc")) await relocations(lib, node, shared, C, o);

  // ---- 5. Image.gz ------------------------------------------------------------------------------
  if (want("gzip")) await gzipCase(lib, node, detect, shared, o);

  // ---- 6. uImage and CRC-32 -----------------------------------------------------------------------
  if (want("uimage")) await uimageCase(lib, node, detect, shared, C, o);

  // ---- 7. first load after import ----------------------------------------------------------------
  if (want("startup")) {
    const samples = [];
    let first;
    for (let i = 0; i <= o.runs; i++) {
      const out = execFileSync(process.execPath, [join(HERE, "startup-child.mjs"), DIST], { encoding: "utf8" });
      const j = JSON.parse(out);
      if (i === 0) first = j;
      else samples.push(j);
    }
    const r = row({ id: "7", name: "first load after import (compile + instantiate + 4 KiB)", kind: "value", unit: "ms", ours: samples.map((s) => s.firstLoadMs), limit: 10, browserKey: "startup" });
    const m = (k) => summary(samples.map((s) => s[k]));
    r.extra = { importMs: m("importMs"), createVmMs: m("createVmMs"), loadModuleMs: m("loadModuleMs"), secondLoadMs: m("secondLoadMs"), firstProcess: first };
    results.notes.push(
      `7: fresh node process per run; import of dist/index.js ${r.extra.importMs.median.toFixed(1)} ms (not in the figure), ` +
        `then createVm ${r.extra.createVmMs.median.toFixed(2)} ms (Wasm compile + instantiate) + loadModule of 4 KiB ${r.extra.loadModuleMs.median.toFixed(2)} ms = ${r.ours.median.toFixed(2)} ms; ` +
        `a second VM and load in the same process ${r.extra.secondLoadMs.median.toFixed(2)} ms.`,
    );
  }

  // ---- 8. peak resident memory -------------------------------------------------------------------
  if (want("rss")) await rssCase(o);

  // ---- 12. reboots: reset, prepared boots, worker pools (bench/reboot.mjs) ----------------------
  if (want("reboot")) {
    const { rebootCase } = await import("./reboot.mjs");
    await rebootCase({ lib, node, C, runs: o.runs, input, interleave, cTime, row, notes: results.notes, quick: o.quick });
  }

  // ---- 9. v86: time to a Linux userspace marker, guest-image/v86 vs v86's own loader + SeaBIOS ----
  if (o.only ? want("v86") : !o.quick) {
    const { v86Case } = await import("./v86.mjs");
    await v86Case({ dist: DIST, runs: o.v86Runs, row, notes: results.notes });
  }

  // ---- 10. real boots: the bootLinux call to a userspace marker in QEMU vs QEMU's own -kernel ----
  // Each side in its own process (bench/realboot-arm.mjs, test/realboot/x86*.bench.ts); their JSON
  // results become rows here.
  if (o.only ? want("realboot") : !o.quick) {
    const runs = String(o.v86Runs);
    const sub = (cmd, args, env = {}) => {
      const r = spawnSync(cmd, args, { cwd: ROOT, stdio: "inherit", env: { ...process.env, ...env } });
      if (r.status !== 0) throw new Error(`bench: ${cmd} ${args.join(" ")} exited ${r.status}`);
    };
    sub(process.execPath, ["bench/realboot-arm.mjs", "--runs", runs]);
    for (const a of JSON.parse(readFileSync(join(ROOT, "bench", "realboot-arm.json"), "utf8")).results) {
      row({ id: "10", name: `real boot ${a.arch}: bootLinux → marker (s)`, kind: "value", unit: "s", ours: a.guestImageAll.map((x) => x / 1000), base: a.qemuKernelAll.map((x) => x / 1000), baseName: "qemu -kernel → marker" });
    }
    const vitest = join(ROOT, "node_modules", "vitest", "vitest.mjs");
    sub(process.execPath, [vitest, "run", "--config", "bench/vitest.realboot-x86.config.mjs"], { RUNS: runs });
    const x = JSON.parse(readFileSync(join(ROOT, "bench", "results-realboot-x86.json"), "utf8"));
    row({ id: "10", name: "real boot x86_64: bootLinux → marker (s)", kind: "value", unit: "s", ours: x.guestImageSeconds, base: x.qemuKernelSeconds, baseName: "qemu -kernel → marker" });
    sub(process.execPath, [vitest, "run", "--config", "bench/vitest.realboot-x86-direct.config.mjs"], { RUNS: runs });
    const d = JSON.parse(readFileSync(join(ROOT, "bench", "results-realboot-x86-direct.json"), "utf8"));
    row({ id: "10", name: "real boot x86_64 direct (x86Direct) → marker (s)", kind: "value", unit: "s", ours: d.directSeconds, base: d.normalSeconds, baseName: "bzImage path → marker" });
  }

  // ---- 11. decoders: host decompression into guest RAM vs the native CLI to /dev/null ----
  if (o.only ? want("codecs") : !o.quick) {
    const NATIVE_TOOL = { lzo: "lzop" };
    const r = spawnSync(process.execPath, ["bench/codecs.mjs"], { cwd: ROOT, stdio: "inherit" });
    if (r.status !== 0) throw new Error(`bench: bench/codecs.mjs exited ${r.status}`);
    // The same decoders in Chromium, against the native tool measured again beside them.
    const b = o.browser ? spawnSync(process.execPath, ["bench/codecs-browser.mjs"], { cwd: ROOT, stdio: "inherit" }) : null;
    if (b && b.status !== 0) throw new Error(`bench: bench/codecs-browser.mjs exited ${b.status}`);
    for (const c of JSON.parse(readFileSync(join(ROOT, "bench", "results-codecs.json"), "utf8")).rows) {
      const x = row({ id: "11", name: `decode ${c.format} (ms)`, kind: "value", unit: "ms", ours: [c.oursMs], base: [c.nativeMs], baseName: `${c.tool ?? NATIVE_TOOL[c.format] ?? c.format} -dc >/dev/null`, target: c.target });
      if (b && c.chromiumMs !== undefined) x.browser = { ours: summary([c.chromiumMs]), ratio: c.chromiumRatio };
    }
  }

  // ---- Chromium ------------------------------------------------------------------------------------
  let browser = null;
  if (o.browser && (want("raw-mem") || want("elf") || want("reloc") || want("startup"))) {
    const { runBrowser } = await import("./browser-run.mjs");
    browser = await runBrowser(o, ROOT);
    attachBrowser(browser);
  }

  results.meta.seconds = +((now() - t0) / 1000).toFixed(1);
  console.log("");
  printTable((browser && !browser.skipped) || results.rows.some((r) => r.browser));
  if (browser?.skipped) console.log(`\nChromium: skipped (${browser.skipped})`);
  writeFileSync(o.out, JSON.stringify(results, (k, v) => (typeof v === "bigint" ? v.toString() : v), 2) + "\n");
  console.log(`\nwrote ${o.out} (${results.meta.seconds} s)`);
}

// ---------------------------------------------------------------------------------------------
// The bookkeeping execute() does before each 8 MiB read (rollback): isZero on the chunk, and a
// saved copy when it is not all zero.

async function bookkeeping(lib, shared, o) {
  const size = o.size;
  const CHUNK = lib.READ_CHUNK;
  const vm = await freshVm(lib, shared, { base: 0, size, mode: "warm" });
  const core = vm.core;
  const scan = (c) => {
    for (let off = 0; off < size; off += CHUNK) c.isZero(off, Math.min(CHUNK, size - off));
  };
  const zeroWarm = await sample(o.runs, () => scan(core));
  const fillWarm = await sample(o.runs, () => core.fill(0, 0, size));
  // Cold: a fresh memory each run. Scan it (reads map the shared zero page), then write it; and
  // the same write without the scan before it.
  const coldScan = [], coldWriteAfterScan = [], coldWrite = [];
  for (let i = 0; i <= o.runs; i++) {
    globalThis.gc?.();
    let v = await lib.createVm({ ram: [{ base: 0, size }] });
    let t = now();
    scan(v.core);
    const a = now() - t;
    t = now();
    v.core.fill(0, 1, size);
    const b = now() - t;
    v = null;
    globalThis.gc?.();
    v = await lib.createVm({ ram: [{ base: 0, size }] });
    t = now();
    v.core.fill(0, 1, size);
    const c = now() - t;
    v = null;
    if (i > 0) {
      coldScan.push(a);
      coldWriteAfterScan.push(b);
      coldWrite.push(c);
    }
  }
  // Dirty: isZero stops at the first byte, and execute() saves the chunk: slice() = a new
  // ArrayBuffer (fresh pages) + a copy.
  const saveDirty = await sample(o.runs, () => {
    const keep = [];
    const u8 = core.bytes();
    for (let off = 0; off < size; off += CHUNK) keep.push(u8.slice(off, Math.min(size, off + CHUNK)));
    return keep.length;
  }, () => {
    new Uint8Array(shared.memory.buffer, 0, size).fill(0xa5);
    globalThis.gc?.();
  });
  const m = (x) => summary(x).median;
  results.extra.bookkeeping = {
    size, isZeroWarmZeroMs: summary(zeroWarm), fillWarmMs: summary(fillWarm), isZeroColdMs: summary(coldScan),
    coldWriteAfterScanMs: summary(coldWriteAfterScan), coldWriteMs: summary(coldWrite), saveDirtyMs: summary(saveDirty),
  };
  const g = (ms) => `${gbs(size, ms).toFixed(1)} GB/s`;
  results.notes.push(
    `execute() rollback bookkeeping over ${mb(size)} (8 MiB chunks): isZero on warm zeroed RAM ${m(zeroWarm).toFixed(1)} ms (${g(m(zeroWarm))}; a memset of the same range ${m(fillWarm).toFixed(1)} ms); ` +
      `on fresh (never touched) RAM ${m(coldScan).toFixed(1)} ms, and writing that RAM afterwards ${m(coldWriteAfterScan).toFixed(1)} ms vs ${m(coldWrite).toFixed(1)} ms without the scan; ` +
      `on dirty RAM isZero returns at the first byte but the chunk is saved: ${m(saveDirty).toFixed(1)} ms (${g(m(saveDirty))}) and ${mb(size)} more memory held until the load ends.`,
  );
}

// ---------------------------------------------------------------------------------------------

async function relocations(lib, node, shared, C, o) {
  const pie = pieInput(o.relocs);
  const piePath = input(`pie-${o.relocs}-${mb(pie.imageSize)}.elf`, () => pie.bytes);
  const x86 = x86Input(o.x86Relocs);
  const kPath = input(`x86-${o.x86Relocs}-${mb(x86.imageSize)}.elf`, () => x86.kernel);
  const rPath = input(`x86-${o.x86Relocs}-${mb(x86.imageSize)}.relocs`, () => x86.relocs);
  const segArg = (segs) => segs.map(([a, b]) => `${a}:${b}`).join(",");
  const loadArg = (loads) => loads.map((l) => `${l.dst}:${l.src}:${l.len}`).join(",");

  // RELA: linked at 0, loaded at 1 GiB + 2 MiB (guest RAM from 0: linear = physical).
  {
    const at = 0x4020_0000;
    const delta = at;
    const file = node.openPath(piePath, "pie.elf");
    const r = await relocRounds(o.runs, C, () => relocCase(lib, shared, { file, ramBase: 0x4000_0000, at, runs: 1, imageSize: pie.imageSize, segs: pie.segs }),
      ["rela", piePath, 1, pie.tableOff, pie.count, 0, delta, pie.imageSize, segArg(pie.segs), loadArg(pie.loads)]);
    await file.close();
    const c = r.c;
    const cBoth = r.cBoth;
    const same = r.oursHash === c.hash && r.jsHash === c.hash;
    const k = `${(pie.count / 1e6).toFixed(pie.count % 1e6 ? 2 : 0)}M`;
    row({ id: "4a", name: `PIE ${k} RELA RELATIVE: check + apply`, kind: "count", count: pie.count, ours: r.ours, base: cBoth, baseName: "C loop", target: 0.8, browserKey: "relaC" });
    row({ id: "4a", name: `PIE ${k} RELA RELATIVE vs pure JS`, kind: "count", count: pie.count, ours: r.ours, base: r.js, baseName: "our pure-JS loop", target: 1.5, browserKey: "relaJs" });
    row({ id: "4a·", name: `  apply pass alone`, kind: "count", count: pie.count, ours: r.oursApply, base: r.cApply, baseName: "C apply pass" });
    if (!same) results.notes.push(`4a: RESULT MISMATCH: image hash ours ${r.oursHash}, pure JS ${r.jsHash}, C ${c.hash}`);
    else results.notes.push(`4a: the patched image is bit-identical in the loader, the pure-JS loop and C (FNV-1a ${c.hash.toString(16)}).`);
    // The whole load at the shifted base, from the page-cached file (for scale).
    const files = node.fromDirectory(dirname(piePath));
    const name = piePath.slice(dirname(piePath).length + 1);
    let vm;
    const s = await interleave(o.runs, [{ name: "ours", before: async () => (vm = await freshVm(lib, shared, { base: 0x4000_0000, size: at - 0x4000_0000 + pie.imageSize, files, mode: "warm" })), run: () => vm.loadKernel(name, { at }) }]);
    row({ id: "4a·", name: `  whole load of the PIE (${mb(pie.imageSize)}) at +${(at / MiB).toFixed(0)} MiB, file`, kind: "value", unit: "ms", ours: s.ours });
  }

  // The whole CLI process, fresh per sample: its marginal time for the relocations is the PIE's
  // load minus the same file's with PT_DYNAMIC turned into PT_NULL (same bytes placed, nothing to
  // relocate); the C baseline is a minimal C loader (bench/c/elfload.c) run the same two ways.
  // Each process's CPU time (user + system, from bash's `time`, ms resolution) is what is
  // compared: on a shared machine a process's wall time is mostly waiting for a CPU, noise far
  // above the few ms measured here. Wall times are kept in results.json.
  {
    const at = 0x4020_0000;
    const ramBase = 0x4000_0000;
    const ramSize = Math.ceil((at - ramBase + pie.imageSize) / MiB) * MiB;
    const noDyn = input(`pie-${o.relocs}-${mb(pie.imageSize)}-nodyn.elf`, () => withoutDynamic(pie.bytes));
    const cli = fileURLToPath(new URL("cli/main.js", DIST));
    const cliArgs = (f) => [process.execPath, cli, "load", "--ram", `0x${ramBase.toString(16)}:${ramSize}`, "--kernel", f, "--kernel-addr", `0x${at.toString(16)}`];
    const cArgs = (f) => [C.elfload, f, ramBase, ramSize, at].map(String);
    const time = (args) => {
      const r = spawnSync("bash", ["-c", 'TIMEFORMAT="%3R %3U %3S"; time "$@" >/dev/null', "_", ...args], { encoding: "utf8" });
      const m = /(\d+\.\d+) (\d+\.\d+) (\d+\.\d+)\s*$/.exec(r.stderr);
      if (r.status !== 0 || !m) throw new Error(`${args.join(" ")} failed: ${r.stderr}`);
      return { wall: 1e3 * Number(m[1]), cpu: 1e3 * (Number(m[2]) + Number(m[3])) };
    };
    const runs = Math.max(21, o.runs);
    const t = { cliRel: [], cliNo: [], cRel: [], cNo: [] };
    for (let i = -1; i < runs; i++) {
      const a = time(cliArgs(piePath));
      const b = time(cliArgs(noDyn));
      const c = time(cArgs(piePath));
      const d = time(cArgs(noDyn));
      if (i < 0) continue;
      t.cliRel.push(a); t.cliNo.push(b); t.cRel.push(c); t.cNo.push(d);
    }
    const med = (x, k = "cpu") => summary(x.map((v) => v[k])).median;
    const min = (x, k = "cpu") => Math.min(...x.map((v) => v[k]));
    const oursM = med(t.cliRel) - med(t.cliNo);
    const cM = med(t.cRel) - med(t.cNo);
    const k = `${(pie.count / 1e6).toFixed(pie.count % 1e6 ? 2 : 0)}M`;
    const r = row({
      id: "4a·", name: `  CLI whole process: marginal CPU ms for ${k} relocations`, kind: "value", unit: "ms",
      ours: t.cliRel.map((v, i) => v.cpu - t.cliNo[i].cpu), base: t.cRel.map((v, i) => v.cpu - t.cNo[i].cpu), baseName: "C loader process",
    });
    // Differences of process times are noisy per round: the ratio is taken of the medians.
    r.ratio = cM / Math.max(oursM, 0.5);
    r.target = 1 / 1.5;
    r.pass = r.ratio >= r.target;
    const sm = (x) => ({ cpu: summary(x.map((v) => v.cpu)), wall: summary(x.map((v) => v.wall)) });
    r.extra = { cli: sm(t.cliRel), cliNoRelocs: sm(t.cliNo), c: sm(t.cRel), cNoRelocs: sm(t.cNo), oursMarginalMs: oursM, cMarginalMs: cM };
    results.notes.push(
      `4a CLI: CPU time (user + sys) per process, medians of ${runs} interleaved rounds: CLI ${med(t.cliRel).toFixed(0)} ms with ${k} relocations, ${med(t.cliNo).toFixed(0)} ms without ` +
        `(marginal ${oursM.toFixed(1)} ms; of the minima ${(min(t.cliRel) - min(t.cliNo)).toFixed(1)} ms); C loader ${med(t.cRel).toFixed(0)} / ${med(t.cNo).toFixed(0)} ms ` +
        `(marginal ${cM.toFixed(1)} ms; of the minima ${(min(t.cRel) - min(t.cNo)).toFixed(1)} ms). Wall medians: CLI ${med(t.cliRel, "wall").toFixed(0)} / ${med(t.cliNo, "wall").toFixed(0)} ms, ` +
        `C ${med(t.cRel, "wall").toFixed(0)} / ${med(t.cNo, "wall").toFixed(0)} ms. Target: ours ≤ 1.5 × C's marginal (ratio ≥ 0.67; ours floored at 0.5 ms).`,
    );
  }

  // x86 relocs: kernel at paddr 16 MiB, loaded 16 MiB higher.
  {
    const at = x86.pbase + 16 * MiB;
    const delta = 16 * MiB;
    const file = node.openPath(kPath, "vmlinux");
    const relocsFile = node.openPath(rPath, "vmlinux.relocs");
    const r = await relocRounds(o.runs, C, () => relocCase(lib, shared, { file, relocsFile, at, runs: 1, imageSize: x86.imageSize, segs: x86.segs }),
      ["x86", rPath, 1, 0, x86.relocs.length, x86.vbase32, delta, x86.imageSize, segArg(x86.segs), loadArg(x86.loads), kPath]);
    await file.close();
    await relocsFile.close();
    const c = r.c;
    const cBoth = r.cBoth;
    const n = r.count;
    const k = `${(n / 1e3).toFixed(0)}k`;
    row({ id: "4b", name: `x86 relocs ${k} (${x86.counts.join("/")}): check + apply`, kind: "count", count: n, ours: r.ours, base: cBoth, baseName: "C loop", target: 0.8, browserKey: "x86C" });
    row({ id: "4b", name: `x86 relocs ${k} vs pure JS`, kind: "count", count: n, ours: r.ours, base: r.js, baseName: "our pure-JS loop", target: 1.5, browserKey: "x86Js" });
    row({ id: "4b·", name: `  apply pass alone`, kind: "count", count: n, ours: r.oursApply, base: r.cApply, baseName: "C apply pass" });
    if (r.oursHash !== c.hash || r.jsHash !== c.hash) results.notes.push(`4b: RESULT MISMATCH: image hash ours ${r.oursHash}, pure JS ${r.jsHash}, C ${c.hash}`);
    else results.notes.push(`4b: the patched image is bit-identical in the loader, the pure-JS loop and C (FNV-1a ${c.hash.toString(16)}).`);
  }
}

/** An ELF64 little-endian file with its PT_DYNAMIC header turned into PT_NULL (every byte else kept). */
function withoutDynamic(bytes) {
  const out = bytes.slice();
  const dv = new DataView(out.buffer);
  const phoff = Number(dv.getBigUint64(32, true));
  for (let i = 0; i < dv.getUint16(56, true); i++) if (dv.getUint32(phoff + i * 56, true) === 2) dv.setUint32(phoff + i * 56, 0, true);
  return out;
}

/**
 * `runs` rounds of: the loader's relocation step, its apply pass and the pure-JS loop (one sample
 * each after a warm-up, from `one()`), then the C loop (one iteration after a warm-up), so a
 * burst of load on the machine hits both sides of a ratio alike.
 */
async function relocRounds(runs, C, one, cArgs) {
  const acc = { ours: [], oursApply: [], js: [], cBoth: [], cApply: [] };
  let last, c;
  for (let i = 0; i < runs; i++) {
    last = await one();
    c = runC(C.reloc, cArgs);
    acc.ours.push(...last.ours);
    acc.oursApply.push(...last.oursApply);
    acc.js.push(...last.js);
    acc.cBoth.push((c.check_ns[0] + c.apply_ns[0]) / 1e6);
    acc.cApply.push(c.apply_ns[0] / 1e6);
  }
  return { ...last, ...acc, c };
}

// ---------------------------------------------------------------------------------------------

/** A format is available when detect's table has it and a small image of it loads. */
async function probe(lib, detect, formatName, bytes, opts) {
  const f = detect.FORMATS.find((x) => x.name === formatName || x.name.toLowerCase() === formatName.toLowerCase());
  try {
    const vm = await lib.createVm({ ram: [{ base: 0x4000_0000, size: 64 * MiB }], files: lib.fromMap({ probe: bytes }) });
    const k = await vm.loadKernel("probe", opts);
    return { ok: true, format: k.format };
  } catch (e) {
    return { ok: false, why: `${f ? "" : `no "${formatName}" format in dist/formats/detect.js; `}${e.code ?? ""} ${e.message}`.trim() };
  }
}

async function gzipCase(lib, node, detect, shared, o) {
  const small = zlib.gzipSync(arm64Image({ size: 1 * MiB }));
  const p = await probe(lib, detect, "gzip", small, { at: 0x4000_0000 });
  if (!p.ok) {
    row({ id: "5", name: `Image.gz ${mb(o.gzSize)}: not available yet`, kind: "throughput" });
    results.notes.push(`5: not available yet (${p.why}).`);
    return;
  }
  const gzPath = input(`Image-${mb(o.gzSize)}.gz`, () => zlib.gzipSync(arm64Image({ size: o.gzSize }), { level: 9 }));
  const gz = readFileSync(gzPath);
  const files = node.fromDirectory(dirname(gzPath));
  const name = gzPath.slice(dirname(gzPath).length + 1);
  let vm;
  let k;
  const ramSize = o.gzSize + 8 * MiB;
  const s = await interleave(o.runs, [
    { name: "ours", before: async () => (vm = await freshVm(lib, shared, { base: 0x4000_0000, size: ramSize, files, mode: "warm" })), run: async () => { k = await vm.loadKernel(name, { at: 0x4000_0000 }); } },
    // zlib's floor: one output buffer the size of the result (chunkSize = size), so no
    // concatenation; the default 16 KiB chunks are slower (reported below).
    { name: "zlib", run: () => { zlib.gunzipSync(gz, { chunkSize: o.gzSize }); } },
    { name: "zlibDefault", run: () => { zlib.gunzipSync(gz); } },
  ]);
  const r = row({ id: "5", name: `Image.gz ${mb(o.gzSize)} (${(gz.length / MiB).toFixed(1)} MiB gz) → RAM`, kind: "throughput", bytes: o.gzSize, ours: s.ours, base: s.zlib, baseName: "Node zlib.gunzipSync", target: 0.9 });
  r.extra = { gunzipSyncDefaultChunks: summary(s.zlibDefault) };
  results.notes.push(
    `5: loaded as format "${k?.format}"; throughput counts uncompressed bytes; gz is ${(100 * gz.length / o.gzSize).toFixed(0)}% of the Image (gzip -9). ` +
      `Baseline: zlib.gunzipSync into one ${mb(o.gzSize)} buffer; with its default 16 KiB chunks (plus concatenation) it does ${gbs(o.gzSize, r.extra.gunzipSyncDefaultChunks.median).toFixed(2)} GB/s.`,
  );
}

async function uimageCase(lib, node, detect, shared, C, o) {
  // CRC-32 over guest RAM: the core's slicing-by-8 against zlib's crc32 on the same bytes.
  const size = o.uimageSize;
  const vm0 = await freshVm(lib, shared, { base: 0, size, mode: "warm" });
  fillRandom(new Uint8Array(shared.memory.buffer, 0, size), 7);
  const view = new Uint8Array(shared.memory.buffer, 0, size);
  let a, b;
  const s0 = await interleave(o.runs, [
    { name: "core", run: () => { a = vm0.core.crc32(0, size); } },
    { name: "zlib", run: () => { b = zlib.crc32(view); } },
  ]);
  row({ id: "6·", name: `CRC-32 of ${mb(size)} in guest RAM (Wasm core)`, kind: "throughput", bytes: size, ours: s0.core, base: s0.zlib, baseName: "Node zlib.crc32" });
  if (a !== b) results.notes.push(`6: CRC MISMATCH core ${a} zlib ${b}`);

  const payload = fillRandom(new Uint8Array(16 * 4096), 8);
  const p = await probe(lib, detect, "uimage", uImage({ payload, load: 0x4008_0000, ep: 0x4008_0000, crc32: (u) => zlib.crc32(u) }), {});
  if (!p.ok) {
    row({ id: "6", name: `uImage ${mb(size)}, both CRCs: not available yet`, kind: "throughput" });
    results.notes.push(`6: uImage loading not available yet (${p.why}); the CRC-32 row above is measured anyway.`);
    return;
  }
  const path = input(`uImage-${mb(size)}.img`, () => uImage({ payload: fillRandom(new Uint8Array(size), 9), load: 0x4008_0000, ep: 0x4008_0000, crc32: (u) => zlib.crc32(u) }));
  const files = node.fromDirectory(dirname(path));
  const name = path.slice(dirname(path).length + 1);
  const bytes = readFileSync(path);
  let vm;
  const s = await interleave(o.runs, [
    { name: "ours", before: async () => (vm = await freshVm(lib, shared, { base: 0x4000_0000, size: size + 4 * MiB, files, mode: "warm" })), run: () => vm.loadKernel(name) },
    { name: "c", run: cTime(C.load, [path, "file", "warm", 1, 0, size + 64, `c:0:0:${size + 64}`]) },
    { name: "crc", run: () => { zlib.crc32(bytes.subarray(0, 64)); zlib.crc32(bytes.subarray(64)); } },
  ]);
  const base = s.c.map((v, i) => v + s.crc[i]);
  row({ id: "6", name: `uImage ${mb(size)} file → RAM, both CRCs checked`, kind: "throughput", bytes: size, ours: s.ours, base, baseName: "C read(2) + zlib.crc32" });
}

// ---------------------------------------------------------------------------------------------

async function rssCase(o) {
  const size = o.size;
  const ram = 2 * size;
  const rawPath = input(`raw-${mb(size)}.bin`, () => fillRandom(new Uint8Array(size), 1));
  const limitMiB = ram / MiB + 32;
  const hasTime = existsSync("/usr/bin/time");
  for (const mode of ["fresh", "dirty"]) {
    const samples = [];
    let last;
    for (let i = 0; i < Math.min(o.runs, 3); i++) {
      const args = [join(HERE, "rss-child.mjs"), DIST, rawPath, String(ram), mode];
      const r = hasTime
        ? spawnSync("/usr/bin/time", ["-v", process.execPath, ...args], { encoding: "utf8" })
        : spawnSync(process.execPath, args, { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`rss-child failed: ${r.stderr}`);
      const j = JSON.parse(r.stdout);
      const tm = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr ?? "");
      j.timeMaxRssKiB = tm ? Number(tm[1]) : null;
      samples.push((j.timeMaxRssKiB ?? j.maxRssKiB) / 1024);
      last = j;
    }
    const r = row({
      id: "8", name: `peak RSS, ${mb(size)} file into ${mb(ram)} RAM, ${mode === "fresh" ? "fresh" : "dirty (every page used before)"}`,
      kind: "value", unit: "MiB", ours: samples, limit: limitMiB,
    });
    r.extra = last;
    results.notes.push(
      `8 (${mode}): peak ${r.ours.median.toFixed(0)} MiB (${hasTime ? "/usr/bin/time -v" : "process.resourceUsage"}); node alone with the VM created ${(last.beforeRssKiB / 1024).toFixed(0)} MiB resident, ` +
        `${(last.beforeMaxRssKiB / 1024).toFixed(0)} MiB peak before the load; the load added ${((last.maxRssKiB - last.beforeMaxRssKiB) / 1024).toFixed(0)} MiB to the peak.`,
    );
  }
}

// ---------------------------------------------------------------------------------------------

function attachBrowser(b) {
  results.browser = b;
  if (b.skipped) return;
  for (const r of results.rows) {
    const key = r.browserKey ?? (r.id === "2" && r.name.endsWith("warm") ? "raw" : null);
    if (!key) continue;
    const x = b.cases?.[key];
    if (!x) continue;
    if (x.error) {
      r.browser = { error: x.error };
      continue;
    }
    const ours = summary(x.ours);
    const base = key.endsWith("Js") ? summary(x.js) : r.base;
    r.browser = { ours, ratio: base ? base.median / ours.median : undefined };
    if (key.endsWith("Js")) r.browser.jsMedianMs = base.median;
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
