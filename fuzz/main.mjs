#!/usr/bin/env node
// npm run fuzz -- [--seconds N] [--format F[,F…]] [--seed S] [--jobs J] [--out DIR] [--execs N]
//
// Mutation fuzzer over the built library (dist/node.js): seeds from the real images and crafted
// ones (fuzz/seeds.mjs), mutated (fuzz/mutate.mjs) and run through every API lane with the issue
// #6 invariants checked (fuzz/harness.mjs). Every distinct failure is minimized and saved to
// --out (default test/corpus/) as fuzz-<format>-<kind>-<sha>.bin with a .json beside it naming
// the invariant it broke and the lane/options that reproduce it. --jobs runs J processes with
// seeds S, S+1, … (one per CPU is the useful maximum). Exit status 1 when anything was found.
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { FORMATS, fuzz, minimize } from "./engine.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

function parse(argv) {
  const o = { seconds: 60, formats: FORMATS, seed: Date.now() % 1e6, jobs: 1, out: join(ROOT, "test", "corpus"), execs: undefined, child: false, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--seconds") o.seconds = Number(v());
    else if (a === "--format") o.formats = v().split(",");
    else if (a === "--seed") o.seed = Number(v());
    else if (a === "--jobs") o.jobs = Number(v());
    else if (a === "--out") o.out = resolve(v());
    else if (a === "--execs") o.execs = Number(v());
    else if (a === "--child") o.child = true;
    else if (a === "--json") o.json = true;
    else if (a === "--help" || a === "-h") {
      console.log("npm run fuzz -- [--seconds N] [--format F[,F…]] [--seed S] [--jobs J] [--out DIR] [--execs N-per-format]\nformats: " + FORMATS.join(", "));
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  for (const f of o.formats) if (!FORMATS.includes(f)) throw new Error(`unknown format ${f} (one of ${FORMATS.join(", ")})`);
  if (!(o.seconds > 0)) throw new Error("--seconds must be positive");
  return o;
}

async function runOne(o) {
  const lib = await import(pathToFileURL(join(ROOT, "dist", "node.js")).href);
  const inflate = await import(pathToFileURL(join(ROOT, "dist", "compress", "inflate.js")).href).catch(() => undefined);
  const log = (s) => console.error(`[seed ${o.seed}] ${s}`);
  mkdirSync(o.out, { recursive: true });
  const saved = [];
  const { stats, findings } = await fuzz({
    lib, inflate, seconds: o.seconds, formats: o.formats, seed: o.seed, maxExecs: o.execs, log,
    async onFinding(f, harness) {
      const small = await minimize(harness, { ...f.case, bytes: f.bytes }, f.violation.kind).catch(() => f.bytes);
      const base = `fuzz-${f.format}-${f.violation.kind}-${f.sha}`;
      writeFileSync(join(o.out, `${base}.bin`), small);
      writeFileSync(join(o.out, `${base}.json`), JSON.stringify({ format: f.format, seed_image: f.seed, invariant: f.violation.kind, detail: f.violation.detail, case: f.case, fuzz_seed: o.seed, original_size: f.bytes.length }, null, 2) + "\n");
      saved.push(base);
      log(`saved ${join(o.out, base)}.bin (${small.length} bytes)`);
    },
  });
  return { seed: o.seed, stats, findings: findings.map((f) => ({ format: f.format, kind: f.violation.kind, detail: String(f.violation.detail).split("\n")[0] })), saved };
}

const o = parse(process.argv.slice(2));
if (o.child || o.jobs <= 1) {
  const r = await runOne(o);
  if (o.child || o.json) process.stdout.write(JSON.stringify(r) + "\n");
  else report([r]);
  process.exitCode = r.findings.length ? 1 : 0;
} else {
  const children = Array.from({ length: o.jobs }, (_, j) => new Promise((res, rej) => {
    const args = [fileURLToPath(import.meta.url), "--child", "--seconds", String(o.seconds), "--format", o.formats.join(","), "--seed", String(o.seed + j), "--out", o.out];
    if (o.execs !== undefined) args.push("--execs", String(o.execs));
    const p = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.on("error", rej);
    p.on("close", (code) => {
      try {
        res(JSON.parse(out.trim().split("\n").pop()));
      } catch {
        rej(new Error(`fuzz job ${j} exited ${code} without a report`));
      }
    });
  }));
  const rs = await Promise.all(children);
  report(rs);
  process.exitCode = rs.some((r) => r.findings.length) ? 1 : 0;
}

function report(rs) {
  const total = {};
  for (const r of rs) {
    for (const [f, s] of Object.entries(r.stats)) {
      const t = (total[f] ??= { execs: 0, ms: 0, ok: 0 });
      t.execs += s.execs;
      t.ms += s.ms;
      t.ok += s.ok;
    }
  }
  console.log(`\nfuzz: ${rs.length} job(s), seeds ${rs.map((r) => r.seed).join(", ")}`);
  console.log("format        execs     execs/s   loaded");
  let sum = 0;
  for (const [f, t] of Object.entries(total)) {
    sum += t.execs;
    console.log(`${f.padEnd(12)} ${String(t.execs).padStart(8)}  ${(t.execs / (t.ms / 1000 / rs.length)).toFixed(0).padStart(9)}  ${((100 * t.ok) / Math.max(1, t.execs)).toFixed(1).padStart(6)}%`);
  }
  console.log(`total        ${String(sum).padStart(8)} executions`);
  const found = rs.flatMap((r) => r.findings);
  console.log(found.length ? `${found.length} finding(s):\n${found.map((f) => `  ${f.format} ${f.kind}: ${f.detail}`).join("\n")}` : "no findings");
  const saved = rs.flatMap((r) => r.saved);
  if (saved.length) console.log(`saved: ${saved.join(", ")}`);
}
