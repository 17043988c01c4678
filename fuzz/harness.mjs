// The fuzz harness: runs one input through one API "lane" against a small VM and checks the
// invariants of issue #6 on the outcome:
//   - only GuestImageError escapes, with a known code (and never IO when the source did not fail:
//     IO is how the library wraps foreign exceptions, so there it would hide a RangeError);
//   - a failure leaves guest RAM byte for byte and the ledger entry for entry as before (bootLinux
//     included: it runs as one transaction);
//   - a success writes no byte outside the range(s) it reports (a dry run writes none), and they
//     lie in RAM and are recorded in the ledger;
//   - no unhandled rejection or uncaught exception is left behind;
//   - (the driver checks) the time per input stays within 100 ms/MiB + 50 ms.
// `lib` is the library module: dist/node.js for `npm run fuzz`, src/node.js under vitest.
//
// Guest RAM is a few small regions at awkward addresses (low memory, 0x40000000, 0x80000000, up to
// 4 GiB, a region adjacent to it across 4 GiB, and one ending at 2^53 − 1); two images are already
// placed. Most executions share one RAM whose unplaced bytes are partly non-zero ("stale", so a
// rollback must restore, not just zero), each with a fresh Vm (and ledger) over it, RAM compared
// with its baseline afterwards. One in FRESH_EVERY executions runs on a second RAM instead, which
// is zero apart from the residents and known to be (the library's fast path for untouched memory).
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { arm64Image, bzImage, cpio, fdt, filler, gzip, riscvImage, sampleTree, zImage } from "./builders.mjs";

export const MiB = 1 << 20;
export const F_BASE = 2 ** 53 - 0x200000;
export const FUZZ_RAM = [
  { base: 0x0, size: 4 * MiB },
  { base: 0x40000000, size: 4 * MiB },
  { base: 0x80000000, size: 4 * MiB },
  { base: 0xffe00000, size: 2 * MiB }, // ends exactly at 4 GiB
  { base: 0x100000000, size: 1 * MiB }, // adjacent: a range may cross 4 GiB
  { base: F_BASE, size: 0x1fffff }, // ends at 2^53 − 1
];
export const RESIDENTS = [
  { name: "resident-a", paddr: 0x380000, size: 0x10000 },
  { name: "resident-b", paddr: 0x40300000, size: 0x10000 },
];
const FRESH_EVERY = 8;

export const CODES = new Set(["NOT_FOUND", "BAD_MAGIC", "TRUNCATED", "BAD_HEADER", "BAD_ALIGNMENT", "BAD_ADDRESS", "BAD_ARGUMENT", "OUT_OF_RAM", "OVERLAP", "BAD_CHECKSUM", "RELOCATION", "TOO_LARGE", "UNSUPPORTED", "IO"]);

/**
 * Per-input time limit of issue #6: 50 ms + 100 ms per MiB of input. Compressed lanes decode what
 * they are given (up to the room at the target), and our slowest decoders (bzip2, xz/lzma, zstd)
 * run at 20–60 MB/s and expand kernels ~4–10×: their inputs get 1 s per MiB instead.
 */
const SLOW_FORMATS = new Set(["zstd", "xz", "lz4", "lzo", "bzip2", "lzma", "efi-zboot", "uimage"]);
export const timeLimit = (bytes, format) => 50 + ((SLOW_FORMATS.has(format) ? 1000 : 100) * bytes) / MiB;

const HANG_MS = 20_000;

/** JSON with bigints as hex strings and byte arrays as lengths: what a caller would print. */
export const toJson = (v) => JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? `0x${x.toString(16)}` : x instanceof Uint8Array ? x.length : x));

function describeError(e) {
  if (e === null || e === undefined) return String(e);
  const s = e?.stack ?? String(e);
  return `${e?.constructor?.name ?? typeof e}: ${e?.message ?? e}\n${String(s).split("\n").slice(1, 8).join("\n")}`;
}

/** Companion files for the boot lane: a good kernel per architecture, an initrd and a device tree. */
const COMPANIONS = {
  "k-arm64.img": arm64Image({ len: 0x4000, image_size: 0x8000n }).bytes,
  "k-arm.img": zImage({ len: 0x4000 }).bytes,
  "k-riscv.img": riscvImage({ len: 0x4000, text_offset: 0n, image_size: 0x8000n }).bytes,
  "k-x86.img": bzImage({ kernelLen: 0x4000, init_size: 0x80000 }).bytes,
  "i.img": gzip(filler(0x2000, 41)).bytes,
  "d.dtb": fdt(sampleTree(0x40000000n, 0x400000n)).bytes,
};
const companionKernel = (arch) => (arch === "arm64" ? "k-arm64.img" : arch === "arm" ? "k-arm.img" : arch.startsWith("riscv") ? "k-riscv.img" : "k-x86.img");

/** A source whose reads resolve on a later turn of the event loop (like a network or disk). */
function slowSource(lib, files) {
  return {
    async open(name) {
      const bytes = files[name] ?? files[name.replace(/^\.\//, "")];
      if (!bytes) throw new lib.GuestImageError("NOT_FOUND", `no file named "${name}"`, { image: name });
      return {
        name,
        size: bytes.length,
        async read(dst, position) {
          await new Promise((r) => setImmediate(r));
          if (!Number.isSafeInteger(position) || position < 0 || position + dst.length > bytes.length) {
            throw new lib.GuestImageError("TRUNCATED", `read past the end`, { image: name });
          }
          dst.set(bytes.subarray(position, position + dst.length));
        },
        async close() {},
      };
    },
  };
}

let tmp;
function dirSource(lib, files) {
  tmp ??= mkdtempSync(join(tmpdir(), "guest-image-fuzz-"));
  for (const [k, v] of Object.entries(files)) writeFileSync(join(tmp, k), v);
  return lib.fromDirectory(tmp);
}

/**
 * @param {any} lib the library module
 * @param {{ alwaysCompare?: boolean, freshEvery?: number, inflate?: { setInflater: Function, decompressionStreamInflater: object } }} [opts]
 */
export async function createHarness(lib, opts = {}) {
  const vm0 = await lib.createVm({ ram: FUZZ_RAM });
  const ram = vm0.ram;
  const core = vm0.core;
  const linEnd = ram.linEnd;
  const realMemory = ram.memory;
  const shared = { view: () => Buffer.from(realMemory.buffer, 0, linEnd) };
  // Stale bytes in the first half of every region, and the residents' bytes.
  for (const r of FUZZ_RAM) {
    const half = Math.floor(r.size / 2);
    const b = new Uint8Array(half);
    for (let i = 0; i < half; i++) b[i] = ((i * 131 + (r.base % 251)) % 255) + 1;
    ram.write(r.base, b);
  }
  for (const p of RESIDENTS) ram.write(p.paddr, new Uint8Array(p.size).fill(0xa5));
  shared.baseline = Buffer.from(shared.view());

  // Comparing all of RAM after every execution would cost more than most executions. Instead the
  // harness notes whether the library could have written the shared RAM at all: every JS write
  // goes through a view of the memory's buffer (the getters below are the only ways to it) and
  // every Wasm write through Core's fill/copy/relocation methods (wrapped below). Executions that
  // did neither skip the comparison; one in 16 is compared regardless, in case another path appears.
  let touched = false;
  const memoryProxy = Object.create(WebAssembly.Memory.prototype, {
    buffer: { get: () => ((touched = true), realMemory.buffer) },
    grow: { value: (n) => ((touched = true), realMemory.grow(n)) },
  });
  // GuestRam hands its memory out through getters (`memory`, and `buffer` for the library's own
  // copies); own properties on the instance shadow them. Core keeps a plain `memory` field.
  Object.defineProperty(ram, "memory", { get: () => memoryProxy, configurable: true });
  Object.defineProperty(ram, "buffer", { get: () => ((touched = true), realMemory.buffer), configurable: true });
  core.memory = memoryProxy;
  for (const m of ["fill", "copy", "elfRelocApply", "relrApply", "x86RelocApply"]) {
    const f = core[m].bind(core);
    core[m] = (...a) => ((touched = true), f(...a));
  }
  let runs = 0;
  // Self-check: a load that writes RAM must be noticed; if the library ever reaches the memory
  // some other way, fall back to comparing after every execution.
  let alwaysCompare = !!opts.alwaysCompare;
  {
    const probe = new lib.Vm(ram, core, lib.fromMap({ probe: new Uint8Array(16).fill(1) }), false);
    touched = false;
    await probe.loadModule("probe", { at: 0x40000000 + 2 * MiB });
    if (!touched) alwaysCompare = true;
    ram.write(0x40000000 + 2 * MiB, new Uint8Array(16));
  }

  // "Fresh" executions: a second RAM that is all zero apart from the residents and that the library
  // knows to be (GuestRam's untouched state, which lets execute() skip its zero test). Made once;
  // after each execution it is put back to zero with the Wasm core and marked fresh again, which
  // is what a brand-new VM would be, without allocating a new memory every time.
  const freshVm0 = await lib.createVm({ ram: FUZZ_RAM });
  const freshRam = freshVm0.ram;
  const freshCore = freshVm0.core;
  const freshBuffer = () => Buffer.from(freshRam.buffer, 0, linEnd);
  const freshBaseline = Buffer.alloc(linEnd);
  for (const p of RESIDENTS) {
    for (const piece of freshRam.pieces(p.paddr, p.size)) {
      freshBaseline.fill(0xa5, piece.lin, piece.lin + piece.len);
      freshCore.fill(piece.lin, 0xa5, piece.len);
    }
  }
  const canMarkFresh = typeof freshRam.markFresh === "function";
  const resetFresh = () => {
    if (Buffer.compare(freshBuffer(), freshBaseline) !== 0) freshBaseline.copy(freshBuffer());
    if (canMarkFresh) freshRam.markFresh();
  };
  resetFresh();

  // Rejections and exceptions nobody handled, attributed to the execution running when they surface.
  const strays = [];
  const onRejection = (e) => strays.push({ what: "unhandledRejection", e });
  const onException = (e) => strays.push({ what: "uncaughtException", e });
  process.on("unhandledRejection", onRejection);
  process.on("uncaughtException", onException);

  const inRam = (paddr, size) => {
    if (!Number.isSafeInteger(paddr) || !Number.isSafeInteger(size) || paddr < 0 || size < 0) return false;
    if (size === 0) return FUZZ_RAM.some((r) => paddr >= r.base && paddr <= r.base + r.size);
    return Array.isArray(ram.pieces(paddr, size));
  };

  function files(c) {
    const f = { [c.key]: c.bytes };
    if (c.lane === "boot" || c.lane === "boot-mb2" || c.lane === "boot-pvh") Object.assign(f, COMPANIONS);
    return f;
  }

  function source(c) {
    const fs = files(c);
    if (c.source === "slow") return slowSource(lib, fs);
    if (c.source === "cpio") return lib.fromCpio(cpio(Object.entries(fs).map(([name, data]) => ({ name, data }))).bytes);
    if (c.source === "dir") return dirSource(lib, fs);
    return lib.fromMap(fs);
  }

  function addResidents(vm) {
    const t = vm.ledger.reserve(RESIDENTS.map((p) => ({ ...p })));
    vm.ledger.commit(t);
  }

  /** Runs the lane; returns the ranges the outcome says were written. */
  async function lane(vm, c, env) {
    const dry = c.dryRun === true;
    switch (c.lane) {
      case "kernel": {
        const k = await vm.loadKernel(c.name, { at: c.at, align: c.align, dryRun: dry, relocs: c.relocs ? c.name : undefined });
        checkKernel(k);
        return { ranges: [{ name: c.name, paddr: k.paddr, size: k.size }], value: k, dry };
      }
      case "kernel-sel4": {
        const input = c.relocs ? { kernel_image: {}, kernel_image_arch: { is_reloc_enabled: true, relocs_file: c.name } } : undefined;
        const g = await lib.vm_load_guest_kernel(vm, c.name, c.at ?? 0, c.align ?? 0, input);
        return { ranges: [{ name: c.name, paddr: g.kernel_image.load_paddr, size: g.kernel_image.size }], value: g };
      }
      case "module": {
        const m = await vm.loadModule(c.name, { at: c.at ?? 0, align: c.align, dryRun: dry });
        return { ranges: [{ name: c.name, paddr: m.paddr, size: m.size }], value: m, dry };
      }
      case "module-auto": {
        const m = await vm.loadModule(c.name, { auto: c.auto ?? true, align: c.align });
        return { ranges: [{ name: c.name, paddr: m.paddr, size: m.size }], value: m };
      }
      case "module-sel4": {
        const g = await lib.vm_load_guest_module(vm, c.name, c.at ?? 0, c.align ?? 0);
        return { ranges: [{ name: c.name, paddr: g.load_paddr, size: g.size }], value: g };
      }
      case "inspect": {
        const f = await source(c).open(c.name);
        try {
          const info = await lib.inspectFile(f);
          toJson(info);
          return { ranges: [], value: info, noRam: true };
        } finally {
          await f.close();
        }
      }
      case "fdt": {
        const t = lib.parseFdt(c.bytes, c.name);
        let blob;
        try {
          blob = lib.writeFdt(t);
        } catch (e) {
          throw Object.assign(new Error(`writeFdt refused a tree parseFdt accepted: ${e?.code ?? ""} ${e?.message}`), { violation: "fdt-roundtrip", cause: e });
        }
        const t2 = lib.parseFdt(blob, "rewritten");
        const strip = (x) => toJson({ root: x.root, reservations: x.reservations, boot: x.bootCpuidPhys, values: collectValues(x.root) });
        if (strip(t) !== strip(t2)) throw Object.assign(new Error("parseFdt(writeFdt(tree)) differs from the tree"), { violation: "fdt-roundtrip" });
        return { ranges: [], value: null, noRam: true };
      }
      case "cpio": {
        const entries = lib.parseCpio(c.bytes, c.name);
        for (const e of entries) {
          if (!(Number.isSafeInteger(e.offset) && Number.isSafeInteger(e.size) && e.offset >= 0 && e.size >= 0 && e.offset + e.size <= c.bytes.length)) {
            throw Object.assign(new Error(`parseCpio entry "${e.name}" [${e.offset}, +${e.size}) is outside the archive (${c.bytes.length} bytes)`), { violation: "cpio-range" });
          }
        }
        const regular = entries.filter((e) => (e.mode & 0o170000) === 0o100000);
        if (!regular.length) return { ranges: [], value: entries, noRam: true };
        const pickName = regular[c.entry % regular.length].name;
        const v2 = env.makeVm(lib.fromCpio(c.bytes, c.name));
        vm.__inner = await v2;
        const asKernel = c.entry % 3 === 0;
        const r = asKernel ? await vm.__inner.loadKernel(pickName, { at: c.at, align: c.align }) : await vm.__inner.loadModule(pickName, { at: c.at ?? 0x40000000, align: c.align });
        return { ranges: [{ name: pickName, paddr: r.paddr, size: r.size }], value: r };
      }
      case "boot": {
        const role = c.bootRole ?? "kernel";
        const x86 = c.arch === "x86" || c.arch === "x86_64";
        const o = { arch: c.arch, kernel: role === "kernel" ? c.name : companionKernel(c.arch), cmdline: "console=ttyS0" };
        if (role === "initrd") o.initrd = c.name;
        else if (c.withInitrd) o.initrd = "i.img";
        if (role === "dtb" && !x86) o.dtb = c.name;
        else if (c.withDtb && !x86) o.dtb = "d.dtb";
        const b = await lib.bootLinux(vm, o);
        toJson(b);
        return { ranges: null, value: b };
      }
      case "boot-mb2": {
        // bootMultiboot2 with the input as the kernel and a sound module: one transaction, so a
        // failure must leave RAM and the ledger as they were.
        const b = await lib.bootMultiboot2(vm, { kernel: c.name, cmdline: "console=ttyS0", modules: [{ name: "i.img", cmdline: "initrd" }], at: c.at });
        toJson(b);
        return { ranges: null, value: b };
      }
      case "boot-pvh": {
        // bootLinux's PVH entry with the input as the kernel (its notes name the entry): one transaction.
        const b = await lib.bootLinux(vm, { arch: c.arch, kernel: c.name, initrd: "i.img", cmdline: "console=ttyS0", x86Entry: "pvh" });
        toJson(b);
        return { ranges: null, value: b };
      }
      case "boot-sd": {
        // An x86 boot with a setup_data chain: kernel_info's setup_type_max decides which types pass.
        const b = await lib.bootLinux(vm, { arch: "x86_64", kernel: c.name, cmdline: "console=ttyS0", seed: 1, setupData: { rngSeed: true, entries: [{ type: c.sdType, data: new Uint8Array(7).fill(0x5a) }] } });
        toJson(b);
        return { ranges: null, value: b };
      }
      default:
        throw new Error(`unknown lane ${c.lane}`);
    }
  }

  function checkKernel(k) {
    if (typeof k.entry !== "bigint") throw Object.assign(new Error(`entry is ${typeof k.entry}, not a bigint`), { violation: "result" });
    if (!k.arch || typeof k.arch.format !== "string") throw Object.assign(new Error("kernel result without arch.format"), { violation: "result" });
  }

  const ledgerEntries = (vm) => vm.ledger["entries"];
  const residentsOnly = (vm) => {
    const e = ledgerEntries(vm);
    return e.length === RESIDENTS.length && RESIDENTS.every((p) => e.some((x) => x.committed && x.name === p.name && x.paddr === p.paddr && x.size === p.size));
  };
  const fresh = (vm) => ledgerEntries(vm).filter((x) => !RESIDENTS.some((p) => p.name === x.name && p.paddr === x.paddr));

  /** The shared VM environment (most executions) or a brand-new VM (one in FRESH_EVERY). */
  async function makeEnv(c) {
    if (c.fresh) {
      const vm = new lib.Vm(freshRam, freshCore, source(c), c.measure === true);
      addResidents(vm);
      return {
        vm, view: freshBuffer, baseline: freshBaseline, compare: () => true, pieces: (p, l) => freshRam.pieces(p, l),
        makeVm: async (src) => {
          const v = new lib.Vm(freshRam, freshCore, src, false);
          addResidents(v);
          return v;
        },
      };
    }
    const vm = new lib.Vm(ram, core, source(c), false);
    addResidents(vm);
    return {
      vm, view: shared.view, baseline: shared.baseline, compare: null, pieces: (p, l) => ram.pieces(p, l),
      makeVm: async (src) => {
        const v = new lib.Vm(ram, core, src, false);
        addResidents(v);
        return v;
      },
    };
  }

  /**
   * Runs one case. c = { bytes, key, name, lane, at?, align?, dryRun?, relocs?, source?, arch?, entry?, fresh? }.
   * Returns { ok, code?, ms, violation?: { kind, detail } }.
   */
  async function run(c) {
    strays.length = 0;
    touched = false;
    if (c.fresh === undefined && (opts.freshEvery ?? FRESH_EVERY) > 0 && runs % (opts.freshEvery ?? FRESH_EVERY) === 0) c = { ...c, fresh: true };
    runs++;
    const env = await makeEnv(c);
    const vm = env.vm;
    // Compressed inputs go through node:zlib (the Node entry's inflater) or, for some cases, the
    // Compression Streams API the browser entry uses.
    const previousInflater = c.inflater === "ds" && opts.inflate ? opts.inflate.setInflater(opts.inflate.decompressionStreamInflater) : undefined;
    let out, error;
    const t0 = performance.now();
    let timer;
    try {
      out = await Promise.race([
        lane(vm, c, env),
        new Promise((_, rej) => {
          timer = setTimeout(() => rej(Object.assign(new Error(`no answer after ${HANG_MS} ms`), { violation: "hang" })), HANG_MS);
        }),
      ]);
    } catch (e) {
      error = e;
    } finally {
      clearTimeout(timer);
      if (previousInflater) opts.inflate.setInflater(previousInflater);
    }
    const ms = performance.now() - t0;
    await new Promise((r) => setImmediate(r));
    const inner = vm.__inner;
    let modelError;
    if (error === undefined && c.onSuccess) {
      try {
        await c.onSuccess(out.value, (paddr, len) => (inner ?? vm).ram.read(paddr, len), inner ?? vm);
      } catch (e) {
        modelError = e;
      }
    }
    const doCompare = env.compare ? env.compare() : touched || runs % 16 === 0 || alwaysCompare;
    const v = judge(c, vm, inner, out, error, env, doCompare);
    // Whatever happened, RAM goes back to its baseline for the next case.
    if (c.fresh) resetFresh();
    else if ((doCompare || touched) && Buffer.compare(shared.view(), shared.baseline) !== 0) shared.baseline.copy(shared.view());
    if (modelError && !v) return { ok: false, ms, violation: { kind: "model", detail: describeError(modelError) }, error: modelError };
    if (strays.length && !v) {
      const s = strays[0];
      return { ok: false, ms, violation: { kind: s.what, detail: describeError(s.e) } };
    }
    if (v) return { ok: false, ms, code: error?.code, violation: v, error };
    return { ok: error === undefined, code: error?.code, field: error?.field, ms, error, value: out?.value };
  }

  function judge(c, vm, inner, out, error, env, doCompare) {
    const V = (kind, detail) => ({ kind, detail });
    const lvm = inner ?? vm;
    const changed = () => doCompare && Buffer.compare(env.view(), env.baseline) !== 0;
    const diff = () => firstDiff(env.view(), env.baseline);
    if (error !== undefined) {
      if (error?.violation) return V(error.violation, describeError(error) + (error.cause ? `\ncause: ${describeError(error.cause)}` : ""));
      if (!(error instanceof lib.GuestImageError)) return V("foreign-exception", describeError(error));
      if (!CODES.has(error.code)) return V("unknown-code", `${error.code}: ${error.message}`);
      if (error.code === "IO" && !c.faulty) return V("io-masks-exception", `${error.message}\ncause: ${describeError(error.cause)}`);
      if (typeof error.message !== "string" || error.message === "" || /NaN|Infinity|\[object /.test(error.message)) return V("bad-message", error.message);
      if (changed()) return V("ram-changed-on-failure", diff());
      if (!residentsOnly(vm) || (inner && !residentsOnly(inner))) return V("ledger-changed-on-failure", toJson(ledgerEntries(lvm)));
      return null;
    }
    // Success.
    if (out.noRam) {
      if (changed()) return V("ram-changed-without-load", diff());
      if (!residentsOnly(vm)) return V("ledger-changed-without-load", toJson(ledgerEntries(vm)));
      return null;
    }
    try {
      toJson(out.value);
    } catch (e) {
      return V("result", `result cannot be printed: ${describeError(e)}`);
    }
    if (ledgerEntries(lvm).some((x) => !x.committed)) return V("ledger", `reservations left uncommitted after success: ${toJson(ledgerEntries(lvm))}`);
    const ranges = out.ranges ?? fresh(lvm).map((x) => ({ name: x.name, paddr: x.paddr, size: x.size }));
    for (const r of ranges) {
      if (!Number.isSafeInteger(r.paddr) || !Number.isSafeInteger(r.size) || r.paddr < 0 || r.size < 0) return V("result", `reported range ${toJson(r)} is not exact`);
      if (r.size > 0 && !inRam(r.paddr, r.size)) return V("result", `reported range [${r.paddr.toString(16)}, +${r.size.toString(16)}) is not inside RAM`);
      const led = ledgerEntries(lvm).find((x) => x.paddr <= r.paddr && r.paddr + r.size <= x.paddr + x.size && x.name.startsWith(r.name));
      if (!led && r.size > 0) return V("ledger", `reported range ${toJson(r)} is not recorded in the ledger: ${toJson(ledgerEntries(lvm))}`);
    }
    // Every byte written lies inside the reported ranges: put those back and compare the rest.
    if (doCompare) {
      if (!out.dry) for (const r of ranges) if (r.size > 0 && inRam(r.paddr, r.size)) for (const p of env.pieces(r.paddr, r.size)) env.baseline.copy(env.view(), p.lin, p.lin, p.lin + p.len);
      if (changed()) return V(out.dry ? "dry-run-wrote" : "write-outside-range", `${diff()} (reported ${toJson(ranges)})`);
    }
    return null;
  }

  return {
    run,
    ram,
    core,
    baseline: shared.baseline,
    close() {
      process.off("unhandledRejection", onRejection);
      process.off("uncaughtException", onException);
    },
  };
}

function firstDiff(cur, baseline) {
  const n = Math.min(cur.length, baseline.length);
  for (let i = 0; i < n; i += 4096) {
    if (Buffer.compare(cur.subarray(i, i + 4096), baseline.subarray(i, i + 4096)) !== 0) {
      let j = i;
      while (cur[j] === baseline[j]) j++;
      let k = j;
      while (k < n && cur[k] !== baseline[k]) k++;
      return `first changed byte at linear 0x${j.toString(16)} (0x${(k - j).toString(16)} bytes from there differ)`;
    }
  }
  return "no difference";
}

function collectValues(node, out = []) {
  for (const p of node.props) out.push(p.name, Buffer.from(p.value).toString("hex"));
  for (const c of node.children) collectValues(c, out);
  return out;
}
