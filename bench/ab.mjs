// Before/after: the same loads with two or more builds of the library, interleaved round by round
// in one process, so a change's gain is measured against the machine's noise rather than
// between two runs. Uses the inputs `npm run bench` generated (run it once first).
//
// usage: node --expose-gc bench/ab.mjs [--runs N] [--only raw-warm,raw-cold,rela,x86,uimage] DIST_A DIST_B …
//   DIST_x: a dist/ directory (e.g. a copy of dist/ before the change, and dist/ after it)
import { existsSync } from "node:fs";
import os from "node:os";
import { basename, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { loadLib } from "./lib/cases.mjs";
import { summary } from "./lib/stats.mjs";

const args = process.argv.slice(2);
let runs = 15;
let only = null;
const dists = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--runs") runs = Number(args[++i]);
  else if (args[i] === "--only") only = new Set(args[++i].split(","));
  else dists.push(resolve(args[i]));
}
if (dists.length < 1) {
  console.error("usage: node --expose-gc bench/ab.mjs [--runs N] [--only raw-warm,raw-cold,rela,x86,uimage] DIST_A DIST_B …");
  process.exit(2);
}
const IN = join(os.tmpdir(), "guest-image-bench");
const file = (n) => {
  const p = join(IN, n);
  if (!existsSync(p)) throw new Error(`${p} is missing: run npm run bench once to make the inputs`);
  return p;
};
const MiB = 1 << 20;
const libs = [];
for (const d of dists) {
  const url = pathToFileURL(d + "/").href;
  libs.push({ name: d, lib: await loadLib(url), node: await import(url + "node.js") });
}

// One pre-faulted memory for the warm loads (guest RAM at linear 0, scratch at the end).
const RAM = 256 * MiB;
const pages = Math.ceil((RAM + 128 * 1024) / 65536);
const memory = new WebAssembly.Memory({ initial: pages });
new Uint8Array(memory.buffer).fill(1);
const scratchOffset = pages * 65536 - 128 * 1024;
const warmVm = (L, files, base = 0, size = RAM) => {
  new Uint8Array(memory.buffer, 0, size).fill(0);
  return L.lib.createVm({ ram: [{ base, size }], memory, scratchOffset, files });
};

const cases = {
  "raw-warm": {
    bytes: 256 * MiB,
    async prep(L) {
      return warmVm(L, L.node.fromDirectory(IN));
    },
    run: (L, vm) => vm.loadModule(basename(file("v2-raw-256M.bin")), { at: 0 }),
  },
  "raw-cold": {
    bytes: 256 * MiB,
    async prep(L) {
      globalThis.gc?.();
      return L.lib.createVm({ ram: [{ base: 0, size: RAM }], files: L.node.fromDirectory(IN) });
    },
    run: (L, vm) => vm.loadModule(basename(file("v2-raw-256M.bin")), { at: 0 }),
  },
  rela: relocCase("v2-pie-1000000-56M.elf", null, 0x4000_0000, 0x4020_0000, 1e6),
  x86: relocCase("v2-x86-500000-32M.elf", "v2-x86-500000-32M.relocs", 0, 32 * MiB, 5e5),
  uimage: {
    bytes: 64 * MiB,
    async prep(L) {
      return warmVm(L, L.node.fromDirectory(IN), 0x4000_0000, 68 * MiB);
    },
    run: (L, vm) => vm.loadKernel(basename(file("v2-uImage-64M.img"))),
  },
};

/** The relocation step as bench/run.mjs times it: check() + execute() of the plan without copies. */
function relocCase(elfName, relocsName, ramBase, at, count) {
  const state = new Map();
  return {
    count,
    async prep(L) {
      let s = state.get(L);
      if (!s) {
        const f = L.node.openPath(file(elfName), "k");
        const rf = relocsName ? L.node.openPath(file(relocsName), "r") : undefined;
        const plan = await L.lib.planElf(f, await L.lib.readElf(f), { base: at, relocs: rf });
        const vm = await warmVm(L, undefined, ramBase, 96 * MiB);
        const l0 = new L.lib.Ledger();
        await L.lib.execute(L.lib.check({ ...plan, relocs: [] }, vm.ram, l0, vm.core), vm.ram, l0, vm.core);
        const lin = at - ramBase;
        s = { vm, plan: { ...plan, copies: [], zeros: [] }, lin, pristine: new Uint8Array(memory.buffer).slice(lin, lin + plan.size) };
        state.set(L, s);
      }
      new Uint8Array(memory.buffer).set(s.pristine, s.lin);
      return s;
    },
    async run(L, s) {
      const l = new L.lib.Ledger();
      await L.lib.execute(L.lib.check(s.plan, s.vm.ram, l, s.vm.core), s.vm.ram, l, s.vm.core);
    },
  };
}

for (const [name, c] of Object.entries(cases)) {
  if (only && !only.has(name)) continue;
  const t = new Map(libs.map((L) => [L, []]));
  for (let r = -1; r < runs; r++) {
    for (const L of libs) {
      const x = await c.prep(L);
      const t0 = performance.now();
      await c.run(L, x);
      if (r >= 0) t.get(L).push(performance.now() - t0);
    }
  }
  const base = summary(t.get(libs[0])).median;
  console.log(name);
  for (const L of libs) {
    const s = summary(t.get(L));
    const rate = c.bytes ? `${(c.bytes / s.median / 1e6).toFixed(2)} GB/s` : `${(c.count / s.median / 1e3).toFixed(0)} M/s`;
    console.log(`  ${L.name.padEnd(36)} ${s.median.toFixed(2).padStart(8)} ms  ${rate.padStart(11)}  (${s.min.toFixed(1)}–${s.max.toFixed(1)} ms)  ×${(base / s.median).toFixed(2)}`);
  }
}
