// The loader-side measurements that run the same in Node and in Chromium: the built library is
// passed in (`lib`, see loadLib), so this file imports nothing platform-specific.
import { MiB, arm64Image, fillRandom, pieElf, segmentsElf, x86Kernel } from "./gen.mjs";
import { relaJs, x86Js } from "./jsreloc.mjs";
import { hash32, now, sample, summary } from "./stats.mjs";

const PAGE = 65536;

/** Imports the built library (dist/) from `base` (a URL string ending in "/"). */
export async function loadLib(base) {
  const [index, plan, elf, ledger, source, core] = await Promise.all(
    ["index.js", "plan.js", "formats/elf.js", "ram/ledger.js", "sources/source.js", "core/core.js"].map((p) => import(base + p)),
  );
  return { ...index, check: plan.check, execute: plan.execute, READ_CHUNK: plan.READ_CHUNK, readElf: elf.readElf, planElf: elf.planElf, Ledger: ledger.Ledger, bytesFile: source.bytesFile, Core: core.Core };
}

/**
 * One WebAssembly.Memory shared by the warm cases, big enough for the largest guest RAM plus the
 * loader's scratch area at its end; every page is written once (pre-faulted) up front.
 */
export function sharedMemory(lib, ramBytes) {
  const pages = Math.ceil((ramBytes + lib.SCRATCH_BYTES) / PAGE);
  const memory = new WebAssembly.Memory({ initial: pages });
  new Uint8Array(memory.buffer).fill(1);
  return { memory, ramMax: pages * PAGE - lib.SCRATCH_BYTES, scratchOffset: pages * PAGE - lib.SCRATCH_BYTES };
}

/**
 * A fresh VM for one timed load. mode "warm": guest RAM in the shared pre-faulted memory, zeroed
 * before the load (untimed), as fresh RAM is; "dirty": the same memory filled with 0xA5, as RAM
 * an earlier guest used; "cold": a new memory (pages not yet faulted in).
 */
export async function freshVm(lib, shared, { base, size, files, mode }) {
  if (mode === "cold") {
    globalThis.gc?.();
    return lib.createVm({ ram: [{ base, size }], files });
  }
  if (size > shared.ramMax) throw new Error(`guest RAM ${size} exceeds the shared memory (${shared.ramMax})`);
  new Uint8Array(shared.memory.buffer, 0, size).fill(mode === "dirty" ? 0xa5 : 0);
  return lib.createVm({ ram: [{ base, size }], memory: shared.memory, scratchOffset: shared.scratchOffset, files });
}

/** Times `load(vm)` on a fresh VM per run. Returns ms samples (after one untimed warm-up). */
export async function timeLoads(lib, shared, runs, vmOpts, load) {
  let vm;
  return sample(runs, () => load(vm), async () => {
    vm = undefined;
    vm = await freshVm(lib, shared, vmOpts);
  });
}

// ---------------------------------------------------------------------------------------------
// Case 2 and 3 (in-memory sources) and 4 (relocation): the loader's side.

export async function rawFromMemory(lib, shared, { size, runs, mode, bytes }) {
  bytes ??= fillRandom(new Uint8Array(size));
  const files = lib.fromMap({ img: bytes });
  const ms = await timeLoads(lib, shared, runs, { base: 0, size, files, mode }, (vm) => vm.loadModule("img", { at: 0 }));
  return { ms, bytes: size };
}

export async function elfFromMemory(lib, shared, { filesz, bss, runs, mode, elf }) {
  elf ??= segmentsElf({ filesz, bss });
  const files = lib.fromMap({ vmlinux: elf.bytes });
  const size = elf.paddr + elf.imageSize;
  const ms = await timeLoads(lib, shared, runs, { base: 0, size, files, mode }, (vm) => vm.loadKernel("vmlinux"));
  return { ms, bytes: elf.imageSize };
}

/**
 * The relocation step as the loader runs it: check() (which validates every entry in the core)
 * and execute() of the plan with its copies and zero fills removed (the image is already in RAM),
 * i.e. exactly the passes a load adds when the image moves. Also the core's apply pass alone, the
 * pure-JS loop on the same list, and the patched image's hash (to compare with C and JS).
 */
export async function relocCase(lib, shared, { file, relocsFile, ramBase = 0, at, runs, imageSize, segs, extra = [] }) {
  const vm = await freshVm(lib, shared, { base: ramBase, size: at - ramBase + imageSize, mode: "warm" });
  const elf = await lib.readElf(file);
  const plan = await lib.planElf(file, elf, { base: at, relocs: relocsFile });
  const lin = at - ramBase; // guest RAM starts at linear 0
  // Put the image in RAM once (untimed), keep a pristine copy to restore before every run.
  const l0 = new lib.Ledger();
  await lib.execute(lib.check({ ...plan, relocs: [] }, vm.ram, l0, vm.core), vm.ram, l0, vm.core);
  const mem = () => new Uint8Array(shared.memory.buffer);
  const pristine = mem().slice(lin, lin + imageSize);
  const restore = () => mem().set(pristine, lin);
  const relocOnly = { ...plan, copies: [], zeros: [] };
  const results = {};

  results.ours = await sample(runs, async () => {
    const ledger = new lib.Ledger();
    await lib.execute(lib.check(relocOnly, vm.ram, ledger, vm.core), vm.ram, ledger, vm.core);
  }, restore);
  results.oursHash = hash32(mem(), lin, imageSize);

  // The core's apply pass alone (what the relocation step adds to it is the validation pass),
  // reading an ELF table where it lies in the image, as the loader does.
  const r = plan.relocs[0];
  const table = r.kind === "elf" ? (r.table ?? pristine.slice(r.imageOffset, r.imageOffset + r.len)) : undefined;
  results.oursApply = await sample(runs, () => {
    if (r.kind === "elf" && r.imageOffset !== undefined && !r.table) {
      vm.core.elfRelocApply(lin + r.imageOffset, r.len / r.entsize, r.entsize, r.is64, r.bigEndian, r.rela, r.relativeType, r.vbase, lin, r.delta);
    } else if (r.kind === "elf") {
      vm.core.forEachBatch(table, r.entsize, (ptr, n) => {
        vm.core.elfRelocApply(ptr, n, r.entsize, r.is64, r.bigEndian, r.rela, r.relativeType, r.vbase, lin, r.delta);
        return -1;
      });
    } else {
      for (const g of r.groups) vm.core.forEachBatch(g.entries, 4, (ptr, n) => { vm.core.x86RelocApply(ptr, n, r.vbase32, lin, g.op, r.delta); return -1; });
    }
  }, restore);

  results.js = await sample(runs, () => {
    const bad = r.kind === "elf"
      ? relaJs(mem(), lin, table, Number(r.vbase), Number(r.delta), segs)
      : x86Js(mem(), lin, r.groups, r.vbase32, Number(r.delta), segs);
    if (bad >= 0) throw new Error(`pure-JS check refused entry ${bad}`);
  }, restore);
  results.jsHash = hash32(mem(), lin, imageSize);
  results.count = r.kind === "elf" ? r.len / r.entsize : r.groups.reduce((n, g) => n + g.entries.length / 4, 0);
  results.relocations = plan.result.arch.relocations;
  for (const x of extra) results[x.name] = await x.run({ vm, plan, restore, mem });
  return results;
}

/** The inputs of case 4 (deterministic): sites at 16 bytes apart on average, in at least 32 MiB. */
export const relocSpace = (n) => Math.max(32 * MiB, Math.ceil((n * 16) / MiB) * MiB);
export const pieInput = (relocs) => pieElf({ count: relocs, dataSize: relocSpace(relocs) });
export const x86Input = (x86Relocs) => x86Kernel({ count: x86Relocs, imageSize: relocSpace(x86Relocs) });

// ---------------------------------------------------------------------------------------------
// Case 7: the first load after import, measured inside a fresh process or page.

export async function firstLoad(base) {
  const t0 = now();
  const lib = await import(base + "index.js");
  const t1 = now();
  const page = fillRandom(new Uint8Array(4096));
  const vm = await lib.createVm({ ram: [{ base: 0x40000000, size: 16 * MiB }], files: lib.fromMap({ page }) });
  const tc = now();
  await vm.loadModule("page", { at: 0x40000000 });
  const t2 = now();
  // The same again, now that the module is compiled: what a second VM costs.
  const vm2 = await lib.createVm({ ram: [{ base: 0x40000000, size: 16 * MiB }], files: lib.fromMap({ page }) });
  await vm2.loadModule("page", { at: 0x40000000 });
  const t3 = now();
  return { importMs: t1 - t0, firstLoadMs: t2 - t1, createVmMs: tc - t1, loadModuleMs: t2 - tc, secondLoadMs: t3 - t2 };
}

export { arm64Image, summary };
