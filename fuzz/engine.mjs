// The mutation fuzzer's loop, shared by `npm run fuzz` (fuzz/main.mjs, on dist/) and the bounded CI
// slice (test/fuzz/fuzz-slice.test.ts, on src/ through vitest). Deterministic for a given seed:
// case i of format F depends only on (seed, F, i), so a finding is reproduced by its case record.
import { createHash } from "node:crypto";
import { createHarness, timeLimit } from "./harness.mjs";
import { mutate } from "./mutate.mjs";
import { makeRng } from "./rng.mjs";
import { FORMATS, seeds } from "./seeds.mjs";

export { FORMATS };

const ATS = [0, 0x8000, 0x80000, 0x100000, 0x200000, 0x3ff000, 0x40000000, 0x40008000, 0x40080000, 0x40200000, 0x403f0000, 0x80000000, 0x80200000,
  0xffe00000, 0xfffff000, 0x100000000, 2 ** 53 - 0x200000, 2 ** 53 - 0x1000, Number.MAX_SAFE_INTEGER, 0xffffffff, 0x7ffff000];
const ALIGNS = [1, 0x1000, 0x10000, 0x200000, 0x400000, 2 ** 52, 3, 0x7fffffff];
const ARCH_OF = { "arm64-image": "arm64", gzip: "arm64", zstd: "arm64", xz: "arm64", lz4: "arm64", lzo: "arm64", bzip2: "arm64", lzma: "arm64", "efi-zboot": "arm64", uimage: "arm64", "riscv-image": "riscv64", zimage: "arm", bzimage: "x86_64", multiboot: "x86", multiboot2: "x86" };

function weighted(rng, table) {
  const total = table.reduce((n, [, w]) => n + w, 0);
  let r = rng.int(total);
  for (const [v, w] of table) if ((r -= w) < 0) return v;
  return table[0][0];
}

/** Builds case i of a format: a mutant of one of its seeds and the lane/options it goes through. */
export function makeCase(rng, seed, pool, hasBoot) {
  const bytes = rng.chance(0.04) ? seed.bytes.slice() : mutate(rng, seed, pool);
  const lanes = seed.role === "kernel"
    ? [["kernel", 50], ["kernel-sel4", 15], ["inspect", 8], ["module", 10], ["module-sel4", 5], ["module-auto", 4], ["boot", hasBoot ? 5 : 0], ["boot-mb2", seed.format === "multiboot2" ? 20 : 0],
      // PVH (note parser, hvm_start_info) and the setup_data chain (kernel_info's setup_type_max).
      ["boot-pvh", seed.pvh ? 30 : 0], ["boot-sd", seed.format === "bzimage" ? 8 : 0]]
    : seed.role === "cpio"
      ? [["cpio", 80], ["module", 10], ["inspect", 10]]
      : [["module", 45], ["module-sel4", 15], ["module-auto", 10], ["kernel", 15], ["inspect", 10], ["fdt", seed.format === "fdt" ? 25 : 0], ["boot", hasBoot ? 6 : 0]];
  const lane = weighted(rng, lanes);
  const c = { lane, key: "fuzz.img", name: rng.chance(0.1) ? "./fuzz.img" : "fuzz.img", bytes };
  const optionalAt = lane === "kernel" || lane === "cpio";
  if (!(optionalAt && rng.chance(0.5))) c.at = rng.chance(0.1) ? rng.int(2 ** 33) : rng.pick(ATS);
  if (rng.chance(0.35)) c.align = rng.pick(ALIGNS);
  if ((lane === "kernel" || lane === "module") && rng.chance(0.05)) c.dryRun = true;
  if ((lane === "kernel" || lane === "kernel-sel4") && seed.format === "elf" && rng.chance(0.15)) c.relocs = true;
  if (lane === "module-auto" && rng.chance(0.5)) c.auto = { from: rng.pick(["top", "bottom"]), min: rng.pick([0, 0x40000000, 0xfff00000]), max: rng.chance(0.5) ? undefined : rng.pick([0x400000, 0x40400000, 2 ** 32]) };
  if (lane === "boot") {
    // The input is the kernel, the initrd or the device tree of a boot whose other parts are sound.
    c.bootRole = seed.role === "kernel" ? "kernel" : seed.format === "fdt" || (seed.format === "uimage" && rng.chance(0.5)) ? "dtb" : "initrd";
    c.arch = c.bootRole === "kernel" ? ARCH_OF[seed.format] ?? rng.pick(["arm64", "arm", "riscv64", "x86_64"]) : rng.pick(["arm64", "arm", "riscv64", "x86_64"]);
    c.withInitrd = rng.chance(0.5);
    c.withDtb = rng.chance(0.5);
  }
  if (lane === "cpio") c.entry = rng.int(1000);
  if (lane === "boot-pvh") c.arch = seed.bytes[4] === 1 ? "x86" : "x86_64";
  if (lane === "boot-sd") c.sdType = rng.pick([1, 2, 5, 9, 10, 0x7fffffff, 0x80000001, 0x8000000a, 0xffffffff]);
  c.source = weighted(rng, [["map", 80], ["slow", 10], ["cpio", 7], ["dir", 3]]);
  if (["gzip", "efi-zboot", "uimage"].includes(seed.format) && rng.chance(0.2)) c.inflater = "ds";
  if (rng.chance(0.3)) c.measure = true; // measured boot, in the executions that get a fresh VM
  return c;
}

/** A case as JSON (bytes left out: they are saved beside it). */
export const caseRecord = (c) => Object.fromEntries(Object.entries(c).filter(([k]) => k !== "bytes"));

/**
 * Runs the fuzzer. opts: { lib, inflate? (the library's compress/inflate module, to try its
 * DecompressionStream inflater too), seconds (total), formats, seed, maxExecs?, onFinding?(finding),
 * log?(line) }. Returns { stats: { [format]: { execs, ms, ok, codes } }, findings }.
 */
export async function fuzz(opts) {
  const { lib } = opts;
  const formats = opts.formats ?? FORMATS;
  const harness = await createHarness(lib, { inflate: opts.inflate });
  const all = seeds();
  const hasBoot = typeof lib.bootLinux === "function";
  const stats = {};
  const findings = [];
  const seen = new Set();
  const perFormat = (opts.seconds * 1000) / formats.length;
  let lastRss = process.memoryUsage.rss();
  try {
    for (const format of formats) {
      const mine = seeds(format);
      const st = (stats[format] = { execs: 0, ms: 0, ok: 0, codes: {}, seeds: mine.length });
      if (!mine.length) continue;
      const rng = makeRng((opts.seed ?? 1) * 7919 + FORMATS.indexOf(format) * 104729);
      const start = performance.now();
      const deadline = start + perFormat;
      while (performance.now() < deadline && (opts.maxExecs === undefined || st.execs < opts.maxExecs)) {
        const seed = mine[rng.int(mine.length)];
        const c = makeCase(rng, seed, all, hasBoot);
        let r = await harness.run(c);
        st.execs++;
        if (!r.violation && r.ms > timeLimit(c.bytes.length, format)) {
          // Timing: re-run a slow input (GC pauses, the other CPU's work) and keep the best time.
          let best = r.ms;
          for (let k = 0; k < 3 && best > timeLimit(c.bytes.length, format); k++) best = Math.min(best, (await harness.run(c)).ms);
          if (best > timeLimit(c.bytes.length, format)) r = { ...r, violation: { kind: "time", detail: `${best.toFixed(1)} ms for ${c.bytes.length} bytes (limit ${timeLimit(c.bytes.length, format).toFixed(1)} ms)` } };
        }
        const rss = process.memoryUsage.rss();
        const grew = rss - lastRss;
        lastRss = rss;
        if (!r.violation && grew > 256 * 2 ** 20) r = { ...r, violation: { kind: "memory", detail: `RSS grew by ${(grew / 2 ** 20).toFixed(0)} MiB in one execution` } };
        if (r.violation) {
          const sig = `${format}|${r.violation.kind}|${String(r.violation.detail).split("\n").slice(0, 2).join("|").replace(/0x[0-9a-f]+|\d+/g, "N")}`;
          if (!seen.has(sig)) {
            seen.add(sig);
            const sha = createHash("sha256").update(c.bytes).digest("hex").slice(0, 12);
            const f = { format, seed: seed.id, sha, case: caseRecord(c), bytes: c.bytes, violation: r.violation };
            findings.push(f);
            opts.log?.(`FINDING ${format} ${r.violation.kind} (seed ${seed.id}, lane ${c.lane}, ${c.bytes.length} bytes): ${String(r.violation.detail).split("\n")[0]}`);
            await opts.onFinding?.(f, harness);
          }
        } else if (r.ok) st.ok++;
        else st.codes[r.code] = (st.codes[r.code] ?? 0) + 1;
      }
      st.ms = performance.now() - start;
      opts.log?.(`${format.padEnd(12)} ${String(st.execs).padStart(8)} execs  ${(st.execs / (st.ms / 1000)).toFixed(0).padStart(6)}/s  ok ${st.ok}  ${Object.entries(st.codes).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(", ")}`);
    }
  } finally {
    harness.close();
  }
  return { stats, findings };
}

/** Shrinks a finding's input while the same kind of violation persists (truncations and deletions). */
export async function minimize(harness, c, kind, budget = 300) {
  let best = c.bytes;
  const still = async (b) => {
    const r = await harness.run({ ...c, bytes: b });
    return r.violation?.kind === kind;
  };
  let tries = 0;
  for (let chunk = Math.max(1, best.length >> 1); chunk >= 1 && tries < budget; chunk >>= 1) {
    for (let at = 0; at < best.length && tries < budget; ) {
      const cand = new Uint8Array(best.length - Math.min(chunk, best.length - at));
      cand.set(best.subarray(0, at));
      cand.set(best.subarray(at + chunk), at);
      tries++;
      if (cand.length && (await still(cand))) best = cand;
      else at += chunk;
    }
  }
  return best;
}
