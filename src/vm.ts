// The VM: guest RAM in a WebAssembly.Memory, the ledger of placed images, the Wasm core, and
// the source images are read from. Loads go through plan → check → execute → record.
import { Core, SCRATCH_BYTES } from "./core/core.js";
import { GuestImageError } from "./errors.js";
import { detect, sniff } from "./formats/detect.js";
import type { Arm64ImageArch, RiscvImageArch } from "./formats/arm64-image.js";
import type { BzImageKernelArch } from "./formats/bzimage.js";
import type { ElfKernelArch } from "./formats/elf.js";
import type { MultibootKernelArch } from "./formats/multiboot.js";
import type { Multiboot2KernelArch } from "./formats/multiboot2.js";
import type { UImageKernelArch } from "./formats/uimage.js";
import type { ZImageArch } from "./formats/zimage.js";
import type { FormatContext, KernelResult, ModuleResult } from "./formats/format.js";
import { planRaw, type RawKernelArch } from "./formats/raw.js";
import { checkMeasureSupport, EventLog, type MeasuredEvent } from "./measure.js";
import { alignUp, checkAddress, checkAlignment, hex, MAX_SAFE } from "./num.js";
import { check, commitWithoutWriting, execute, readRelocTables, restore, type LoadPlan, type ProgressCallback, type Saved } from "./plan.js";

/** What a running transaction has done, so it can be undone. */
export interface Transaction {
  journal: Saved[];
  tokens: symbol[];
  /** Event-log entries its loads recorded. */
  events: MeasuredEvent[];
}

/** Where a transaction-bound view of a VM keeps its transaction (see Vm.transaction). */
const TX = Symbol("guest-image transaction");
import { GuestRam, type RamRegion } from "./ram/guest-ram.js";
import { Ledger, type Placement } from "./ram/ledger.js";
import { bytesFile, type ImageFile, type Source } from "./sources/source.js";
import type { BootCpuState } from "./boot/linux.js";
import { digestHex } from "./measure.js";

const PAGE = 65536;
const MAX_PAGES = 65536; // wasm32: 4 GiB

export interface CreateVmOptions {
  /** Guest RAM regions: any guest physical bases, holes allowed, no overlaps. */
  ram: RamRegion[];
  /** A memory the caller owns (an emulator's); default: a new one sized for RAM. */
  memory?: WebAssembly.Memory;
  /** Where guest RAM starts inside `memory` (default 0). */
  memoryOffset?: number;
  /**
   * Where in a caller-owned memory the library may keep its scratch area (SCRATCH_BYTES,
   * 348 KiB: CRC table, relocation batches, the zstd decoder's block and tables). Default: the
   * memory is grown by six pages and the
   * new pages are used.
   */
  scratchOffset?: number;
  /** Where images are read from. */
  files?: Source;
  /**
   * Measured boot: record the SHA-256 of every image placed, in `vm.eventLog` (src/measure.ts).
   * Off by default: hashing costs time an ordinary load does not need.
   */
  measure?: boolean;
  /**
   * Ranges of guest physical memory the guest must not use as RAM (firmware tables, device
   * windows…). Automatic placement (findFree, `auto`) keeps out of them; an explicit `at` may
   * still write there (that is how a VMM puts its own tables in). x86: listed in the e820 map
   * with their type (default 2, reserved).
   */
  reserved?: ReservedRange[];
  /**
   * Keep a copy of every image as it is placed, so vm.reset() can write them all back (a guest
   * reboot). Costs the placed bytes once more in host memory (images instantiated from a
   * prepareBoot template share the template's bytes instead). Default false.
   */
  resettable?: boolean;
}

/** One image as it was placed: where, what, and the bytes written there (kept for reset/templates). */
export interface KeptImage {
  name: string;
  format: string;
  paddr: number;
  size: number;
  /** The `size` bytes as placed. Never written to after capture. */
  bytes: Uint8Array;
  /** Its measured digest (hex), when the VM measured it. */
  digest?: string;
}

/**
 * What bootLinux leaves for vm.reset(): the CPU state and where the per-boot random fields lie
 * (device tree /chosen rng-seed and kaslr-seed), and how to make them.
 * @internal
 */
export interface BootRecord {
  cpu: BootCpuState;
  /** Guest physical addresses of the seed values (32-byte rng-seed, 8-byte big-endian kaslr-seed). */
  seedSites?: { rng: number; kaslr: number };
  /** The seed the boot was given (a reset without one reuses it: a reproducible VM stays reproducible). */
  seed?: number | bigint;
  /** rng-seed and kaslr-seed bytes for a seed, or fresh ones. */
  makeSeeds?: (seed: number | bigint | undefined) => { rng: Uint8Array; kaslr: Uint8Array };
}

export interface ResetOptions {
  /** Zero every byte of guest RAM that no image occupies (default false: left as the guest left it). */
  zero?: boolean;
  /** Derive rng-seed / kaslr-seed from this seed (0 … 2^64 − 1) instead of fresh random bytes. */
  seed?: number | bigint;
}

export interface ResetResult {
  /** The boot CPU state of the last bootLinux / prepared instance in this VM (undefined if none). */
  cpu: BootCpuState | undefined;
  /** Images written back. */
  images: number;
  /** Bytes written back (without the zero fill). */
  bytes: number;
}

/** A reserved range of guest physical memory (CreateVmOptions.reserved, BootLinuxOptions.reserved). */
export interface ReservedRange {
  base: number;
  size: number;
  /** x86 e820 type (2 reserved, 3 ACPI, 4 NVS, 5 unusable, …); default 2. Not 1 (RAM). */
  type?: number;
}

/** Where vm.findFree() may put a range (crosvm's arch::load_image_high is the model). */
export interface FindFreeOptions {
  /** Alignment of the start: 0 or 1 for none, else a power of two. Default 0x1000 (a page). */
  align?: number;
  /** Lowest start address allowed (default 0). */
  min?: number;
  /** The range must end at or below this address (exclusive bound; default: no bound). */
  max?: number;
  /** Search from the top of RAM down (default, like load_image_high) or from the bottom up. */
  from?: "top" | "bottom";
  /** Ranges to keep out of, besides placed images and the VM's reserved ranges. */
  avoid?: ReadonlyArray<{ base: number; size: number }>;
}

/** kernel_image_arch: one record per kernel format, told apart by `format`. */
export type KernelArch = ElfKernelArch | RawKernelArch | Arm64ImageArch | RiscvImageArch | ZImageArch | MultibootKernelArch | Multiboot2KernelArch | BzImageKernelArch | UImageKernelArch;

export interface LoadedImage {
  name: string;
  /** The detected format ("elf", "raw", "fdt", "gzip", …). */
  format: string;
  /** Guest physical address of the image's first byte. */
  paddr: number;
  /** The alignment asked for. */
  alignment: number;
  /** Bytes the image occupies in guest RAM (ELF: lowest segment start to highest end). */
  size: number;
}

export interface LoadedKernel extends LoadedImage {
  /** Entry point (e_entry + relocation offset for ELF, the load address for raw images). */
  entry: bigint;
  arch: KernelArch;
}

export interface KernelLoadOptions {
  /** Load address; rounded up to `align`. Omitted: where the image asks to be (ELF: its link address). */
  at?: number;
  /** 0 or 1: no rounding; else a power of two. */
  align?: number;
  /** Name (in the VM's files) of Linux x86 `relocs` data; may be the kernel file itself. */
  relocs?: string;
  /** Check and record, but write nothing to guest RAM. */
  dryRun?: boolean;
  /** Progress of the copy into guest RAM: bytes done and in all, after each chunk. */
  onProgress?: ProgressCallback;
}

export interface ModuleLoadOptions {
  /** Load address; rounded up to `align`. Omitted: `auto` must be given. */
  at?: number;
  align?: number;
  /**
   * With no `at`, the module goes to free RAM found by vm.findFree(size, auto) (`align`, when
   * given, is the default alignment). Omitted or `true`: the defaults (the highest free
   * page-aligned range).
   */
  auto?: FindFreeOptions | true;
  /** place() only: the format recorded for the bytes (LoadedImage.format, the event log); default "bytes". */
  format?: string;
  dryRun?: boolean;
  onProgress?: ProgressCallback;
}

export class Vm {
  readonly ram: GuestRam;
  readonly ledger = new Ledger();
  readonly files: Source | undefined;
  /** @internal */
  readonly core: Core;
  /** The measured-boot event log, when the VM was created with `measure: true`. */
  readonly eventLog: EventLog | undefined;
  /** The reserved ranges given to createVm (checked, type filled in), in the order given. */
  readonly reserved: ReadonlyArray<Required<ReservedRange>>;
  /**
   * Reset state, shared by transaction-bound views (a plain property: they inherit it).
   * @internal
   */
  readonly resetState: { keep: boolean; images: Map<symbol, KeptImage[]>; boot?: BootRecord };

  /** @internal use createVm() */
  constructor(ram: GuestRam, core: Core, files: Source | undefined, measure = false, reserved: Required<ReservedRange>[] = [], resettable = false) {
    this.resetState = { keep: resettable, images: new Map() };
    this.reserved = Object.freeze(reserved.map((r) => Object.freeze({ ...r })));
    this.ram = ram;
    this.core = core;
    this.files = files;
    this.eventLog = measure ? new EventLog() : undefined;
  }

  /** The measured-boot events so far (empty when the VM does not measure). */
  measurements(): MeasuredEvent[] {
    return this.eventLog?.events ?? [];
  }

  /**
   * The start of a free range of `size` bytes: inside guest RAM (adjacent regions count as one),
   * clear of every image placed or being placed, aligned, within [min, max). The highest such
   * start by default (from: "top"), the lowest with from: "bottom". Throws OUT_OF_RAM if there is
   * none. Nothing is reserved: place something there before the next load can take it.
   */
  findFree(size: number, opts: FindFreeOptions = {}): number {
    opts = options(opts);
    const where = { field: "size" };
    if (!Number.isSafeInteger(size) || size <= 0) {
      throw new GuestImageError("BAD_ARGUMENT", `findFree: size must be a positive integer, got ${String(size)}`, where);
    }
    const align = Math.max(checkAlignment(opts.align ?? 0x1000), 1);
    const min = checkAddress(opts.min ?? 0, "min");
    const max = opts.max === undefined ? MAX_SAFE : checkAddress(opts.max, "max");
    const from = opts.from ?? "top";
    if (opts.avoid !== undefined && !Array.isArray(opts.avoid)) throw new GuestImageError("BAD_ARGUMENT", "findFree: avoid must be an array of { base, size }", { field: "avoid" });
    const avoid = [...this.reserved, ...(opts.avoid ?? []).map((r, i) => ({ base: checkAddress(r?.base, `avoid[${i}].base`), size: checkAddress(r?.size, `avoid[${i}].size`) }))];
    // The first placed image, or else range to keep out of, that overlaps [start, start + size).
    const blocker = (start: number): { paddr: number; size: number } | undefined => {
      const o = this.ledger.overlapping(start, size);
      if (o) return o;
      const a = avoid.find((r) => r.size > 0 && start < r.base + r.size && r.base < start + size);
      return a && { paddr: a.base, size: a.size };
    };
    if (from !== "top" && from !== "bottom") throw new GuestImageError("BAD_ARGUMENT", `findFree: from must be "top" or "bottom", got ${String(from)}`, { field: "from" });
    // RAM as spans of guest-physically contiguous regions, in address order.
    const spans: Array<{ base: number; end: number }> = [];
    for (const r of [...this.ram.regions].sort((a, b) => a.base - b.base)) {
      const last = spans[spans.length - 1];
      if (last && last.end === r.base) last.end += r.size;
      else spans.push({ base: r.base, end: r.base + r.size });
    }
    const down = (v: number) => Number((BigInt(v) / BigInt(align)) * BigInt(align));
    const up = (v: number) => Number(((BigInt(v) + BigInt(align) - 1n) / BigInt(align)) * BigInt(align));
    if (from === "top") {
      for (const s of spans.reverse()) {
        const lo = Math.max(s.base, min);
        let hi = Math.min(s.end, max);
        while (hi - lo >= size) {
          const start = down(hi - size);
          if (start < lo) break;
          const o = blocker(start);
          if (!o) return start;
          hi = o.paddr; // nothing that overlaps o fits above it (see test/measure.test.ts)
        }
      }
    } else {
      for (const s of spans) {
        let lo = Math.max(s.base, min);
        const hi = Math.min(s.end, max);
        for (;;) {
          const start = up(lo);
          if (start > MAX_SAFE - size || start + size > hi) break;
          const o = blocker(start);
          if (!o) return start;
          lo = o.paddr + o.size;
        }
      }
    }
    throw new GuestImageError(
      "OUT_OF_RAM",
      `no free range of ${hex(size)} bytes aligned to ${hex(align)} in [${hex(min)}, ${max === MAX_SAFE ? "end" : hex(max)}) (RAM: ${this.ram.describe()}; placed: ${this.placed().map((p) => `"${p.name}" [${hex(p.paddr)}, ${hex(p.paddr + p.size)})`).join(", ") || "nothing"}${avoid.length ? `; kept out of: ${avoid.map((r) => `[${hex(r.base)}, ${hex(r.base + r.size)})`).join(", ")}` : ""})`,
      where,
    );
  }

  get memory(): WebAssembly.Memory {
    return this.ram.memory;
  }

  /** Images placed so far, in address order. */
  placed(): Placement[] {
    return this.ledger.placed();
  }

  /** Opens a file from the VM's source. */
  async open(name: string): Promise<ImageFile> {
    if (typeof name !== "string" || name === "") {
      throw new GuestImageError("BAD_ARGUMENT", `image name must be a non-empty string, got ${JSON.stringify(name)}`, { field: "name" });
    }
    if (!this.files) throw new GuestImageError("BAD_ARGUMENT", "this VM was created without `files`, so it cannot open images", { image: name });
    let file: ImageFile;
    try {
      file = await this.files.open(name);
    } catch (e) {
      throw asGuestImageError(e, name, "opening the file failed");
    }
    return guarded(file);
  }

  /** Loads a kernel: detects its format, places it, relocates it if it moved. */
  async loadKernel(name: string, opts: KernelLoadOptions = {}): Promise<LoadedKernel> {
    opts = options(opts, name);
    const align = checkAlignment(opts.align ?? 0, { image: name });
    const at = opts.at === undefined ? undefined : alignUp(checkAddress(opts.at, "load address", { image: name }), align, { image: name });
    return this.withFile(name, async (file, ctx) => {
      const plan = await planKernel(ctx(at, align, opts.relocs), file);
      try {
        const result = await this.run(plan, opts, name);
        return { name, format: result.format, paddr: plan.paddr, alignment: align, size: plan.size, entry: result.entry, arch: result.arch as KernelArch };
      } finally {
        // A decompressed payload (gzip, zboot, uImage) is a file of its own: end its stream too,
        // also after a dry run, which never reads it.
        if (plan.file !== file) await plan.file.close().catch(() => undefined);
      }
    });
  }

  /**
   * Loads a module (initrd, device tree, anything): the file verbatim at the load address,
   * unless its format says otherwise (a container whose payload is the module). A device tree's
   * header is checked first.
   */
  async loadModule(name: string, opts: ModuleLoadOptions = {}): Promise<LoadedImage> {
    opts = options(opts, name);
    const align = checkAlignment(opts?.align ?? 0, { image: name });
    const given = opts.at === undefined ? undefined : alignUp(checkAddress(opts.at, "load address", { image: name }), align, { image: name });
    return this.withFile(name, async (file, ctx) => {
      const { format, head } = await sniffNonEmpty(file);
      const planAt = async (at: number): Promise<LoadPlan<ModuleResult>> => {
        const c = ctx(at, align, undefined);
        c.head = head;
        if (format.planModule) return format.planModule(c);
        await format.checkModule?.(file);
        return { ...planRaw(file, at), result: { format: format.name } };
      };
      let plan: LoadPlan<ModuleResult>;
      if (given !== undefined) plan = await planAt(given);
      else {
        // A verbatim module occupies its file size. A container's size depends on its payload,
        // so only then is it planned once to learn the size, and again where it goes.
        const auto = opts.auto === true || opts.auto === undefined ? {} : opts.auto;
        const size = format.planModule
          ? (await planAt(alignUp(Math.min(...this.ram.regions.map((r) => r.base)), align, { image: name }))).size
          : file.size;
        const at = this.findFreeFor(name, Math.max(size, 1), { ...auto, align: auto.align ?? (align > 1 ? align : undefined) });
        plan = await planAt(at);
        if (plan.paddr !== at || plan.size !== size) {
          throw new GuestImageError("UNSUPPORTED", `format ${format.name} does not place a module where it is asked to, so it cannot be placed automatically`, { image: name, field: "auto" });
        }
      }
      const result = await this.run(plan, opts, name);
      return { name, format: result.format, paddr: plan.paddr, alignment: align, size: plan.size };
    });
  }

  /**
   * Places `bytes` (a zero page, a command line, a generated device tree…) at `at` rounded up to
   * `align`, through the same checks as a file: inside RAM, no overlap, recorded under `name`.
   */
  async place(name: string, bytes: Uint8Array, opts: ModuleLoadOptions = {}): Promise<LoadedImage> {
    opts = options(opts, name);
    if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
      throw new GuestImageError("BAD_ARGUMENT", "place() needs a non-empty Uint8Array", { image: name, field: "bytes" });
    }
    const align = checkAlignment(opts?.align ?? 0, { image: name });
    let at: number;
    if (opts.at !== undefined) at = alignUp(checkAddress(opts.at, "load address", { image: name }), align, { image: name });
    else {
      const auto = opts.auto === true || opts.auto === undefined ? {} : opts.auto;
      at = this.findFreeFor(name, bytes.length, { ...auto, align: auto.align ?? (align > 1 ? align : undefined) });
    }
    const plan = planRaw(bytesFile(name, bytes), at);
    const format = typeof opts.format === "string" && opts.format !== "" ? opts.format : "bytes";
    await this.run(plan, opts, name, format);
    return { name, format, paddr: at, alignment: align, size: bytes.length };
  }

  /** Opens `name`, hands the load a context factory, and closes every file it opened. */
  private async withFile<T>(
    name: string,
    body: (file: ImageFile, ctx: (at: number | undefined, align: number, relocs: string | undefined) => FormatContext) => Promise<T>,
  ): Promise<T> {
    const file = await this.open(name);
    const opened: ImageFile[] = [];
    const ctx = (at: number | undefined, align: number, relocs: string | undefined): FormatContext => {
      const c: FormatContext = {
        file, head: new Uint8Array(0), at, align, relocs, ram: this.ram, core: this.core,
        occupied: (paddr, size) => this.ledger.overlapping(paddr, size) !== undefined,
        open: async (n) => {
          const f = await this.open(n);
          opened.push(f);
          return f;
        },
        planKernel: (inner, override = {}) => planKernel({ ...c, file: inner, at: override.at ?? c.at }, inner, override.head),
      };
      return c;
    };
    try {
      return await body(file, ctx);
    } finally {
      for (const f of opened) await f.close();
      await file.close();
    }
  }

  /** findFree for an image: its errors name the image. */
  private findFreeFor(name: string, size: number, opts: FindFreeOptions): number {
    try {
      return this.findFree(size, opts);
    } catch (e) {
      if (e instanceof GuestImageError && e.image === undefined) throw new GuestImageError(e.code, e.message, { image: name, field: "auto", cause: e });
      throw e;
    }
  }

  /**
   * Measured boot: the step that hashes a load's range once it is complete in RAM and before it
   * is recorded, so a digest that fails undoes the load (nothing measured, written or recorded).
   * None for dry runs, which place nothing.
   */
  private measureStep(plan: LoadPlan<unknown>, name: string, format: string | undefined, opts: { dryRun?: boolean }, got?: (ev: MeasuredEvent) => void): (() => Promise<void>) | undefined {
    const log = this.eventLog;
    if (!log || opts.dryRun) return undefined;
    return async () => {
      const f = format ?? (plan.result as { format: string }).format;
      const ev = await log.measure(this.ram, { name, format: f, paddr: plan.paddr, size: plan.size });
      this.currentTx()?.events.push(ev);
      got?.(ev);
    };
  }


  /** The transaction this (bound) view of the VM belongs to, if any. */
  private currentTx(): Transaction | undefined {
    return (this as unknown as { [TX]?: Transaction })[TX];
  }

  private async run<R>(plan: LoadPlan<R>, opts: { dryRun?: boolean; onProgress?: ProgressCallback }, name: string, format?: string): Promise<R> {
    if (opts.onProgress !== undefined && typeof opts.onProgress !== "function") {
      throw new GuestImageError("BAD_ARGUMENT", `onProgress must be a function, got ${typeof opts.onProgress}`, { image: plan.name, field: "onProgress" });
    }
    // A dry run writes nothing, so relocation tables are checked as read from the file.
    if (opts.dryRun) await readRelocTables(plan);
    const checked = check(plan, this.ram, this.ledger, this.core);
    const tx = this.currentTx();
    tx?.tokens.push(checked.token);
    if (opts.dryRun) return commitWithoutWriting(checked, this.ledger);
    let digest: string | undefined;
    const result = await execute(checked, this.ram, this.ledger, this.core, opts.onProgress, tx?.journal, this.measureStep(plan, name, format, opts, (ev) => (digest = ev.digest)));
    if (this.resetState.keep) {
      // The kept copy for reset(): the image's range as placed (copies, zero fills, relocations).
      const f = format ?? (plan.result as { format: string }).format;
      this.resetState.images.set(checked.token, [{ name, format: f, paddr: plan.paddr, size: plan.size, bytes: this.ram.read(plan.paddr, plan.size), digest }]);
    }
    return result;
  }

  /** Images kept for reset(), in placement order (empty unless the VM is resettable). */
  keptImages(): KeptImage[] {
    return [...this.resetState.images.values()].flat();
  }

  /**
   * Writes every image placed in this VM back into guest RAM exactly as it was placed (the guest
   * has since overwritten them), optionally zeroes the rest of RAM, and returns the boot CPU state
   * of the last bootLinux (or prepared instance) again. Its device tree gets fresh rng-seed and
   * kaslr-seed values, unless `seed` is given (or the boot was given one: then that seed's).
   * Needs a VM created with `resettable: true` (or images from a prepareBoot template). Measured
   * VMs: the event log gets one new event per image written back (the device tree's digest over
   * its new seeds), as a new boot would. All checks and digests happen before the first write.
   */
  async reset(opts: ResetOptions = {}): Promise<ResetResult> {
    opts = options(opts);
    if (this.currentTx()) throw new GuestImageError("BAD_ARGUMENT", "reset() cannot run inside a transaction", { field: "reset" });
    const st = this.resetState;
    if (!st.keep && st.images.size === 0) {
      throw new GuestImageError("UNSUPPORTED", "this VM keeps no copy of its images: create it with resettable: true (or instantiate a prepareBoot template into it)", { field: "resettable" });
    }
    if (opts.zero !== undefined && typeof opts.zero !== "boolean") throw new GuestImageError("BAD_ARGUMENT", `zero must be true or false, got ${String(opts.zero)}`, { field: "zero" });
    const images = [...st.images.values()].flat();
    const boot = st.boot;
    // The seed fields, patched into a copy of the image holding them (checked before any write).
    let patched: { image: KeptImage; bytes: Uint8Array } | undefined;
    if (boot?.seedSites && boot.makeSeeds) {
      const { rng, kaslr } = boot.makeSeeds(opts.seed ?? boot.seed);
      const image = images.find((i) => boot.seedSites!.rng >= i.paddr && boot.seedSites!.rng + 32 <= i.paddr + i.size);
      if (image) {
        const bytes = image.bytes.slice();
        bytes.set(rng, boot.seedSites.rng - image.paddr);
        bytes.set(kaslr, boot.seedSites.kaslr - image.paddr);
        patched = { image, bytes };
      }
    } else if (opts.seed !== undefined) {
      boot?.makeSeeds?.(opts.seed); // checked; nothing to derive (no device tree, as on x86)
    }
    const events = this.eventLog
      ? await Promise.all(images.map(async (i) => ({ name: i.name, format: i.format, paddr: i.paddr, size: i.size, digest: i === patched?.image ? await digestHex([patched.bytes]) : i.digest ?? (await digestHex([i.bytes])) })))
      : [];
    let bytes = 0;
    this.ram.markTouched();
    const mem = new Uint8Array(this.ram.buffer);
    for (const i of images) {
      const src = i === patched?.image ? patched.bytes : i.bytes;
      let o = 0;
      for (const p of this.ram.map(i.paddr, i.size, "image", i.name)) {
        mem.set(src.subarray(o, o + p.len), p.lin);
        o += p.len;
      }
      bytes += i.size;
    }
    if (opts.zero) {
      // Every RAM byte outside the images: the gaps between them, region by region.
      const spans = images.map((i) => [i.paddr, i.paddr + i.size] as const).sort((a, b) => a[0] - b[0]);
      for (const r of this.ram.regions) {
        let at = r.base;
        const end = r.base + r.size;
        for (const [lo, hi] of spans) {
          if (hi <= at || lo >= end) continue;
          if (lo > at) this.zeroRange(at, lo - at);
          at = Math.max(at, hi);
        }
        if (at < end) this.zeroRange(at, end - at);
      }
    }
    this.eventLog?.append(events);
    return { cpu: boot && structuredClone(boot.cpu), images: images.length, bytes };
  }

  private zeroRange(paddr: number, len: number): void {
    for (const p of this.ram.map(paddr, len, "zero fill")) this.core.fill(p.lin, 0, p.len);
  }

  /**
   * Places a template's images (prepareBoot): reserves `ledger` (the template's ledger entries)
   * in one step, writes every image, with `patches` applied, records `events` (known digests).
   * Nothing can fail after the first write. The kept copies for reset() are the template's own
   * bytes (shared, not copied).
   * @internal
   */
  placeImages(images: readonly KeptImage[], ledger: readonly Placement[], patches: ReadonlyArray<{ paddr: number; bytes: Uint8Array }>, events: ReadonlyArray<Omit<MeasuredEvent, "index">>): void {
    for (const p of [...images, ...ledger]) this.ram.map(p.paddr, p.size, "image", p.name);
    const token = this.ledger.reserve([...ledger]);
    const tx = this.currentTx();
    tx?.tokens.push(token);
    this.ram.markTouched();
    const mem = new Uint8Array(this.ram.buffer);
    for (const i of images) {
      let o = 0;
      for (const p of this.ram.map(i.paddr, i.size, "image", i.name)) {
        if (tx) tx.journal.push({ lin: p.lin, len: p.len, old: mem.slice(p.lin, p.lin + p.len) });
        mem.set(i.bytes.subarray(o, o + p.len), p.lin);
        o += p.len;
      }
    }
    for (const q of patches) this.ram.write(q.paddr, q.bytes);
    this.ledger.commit(token);
    if (this.eventLog) {
      const evs = this.eventLog.append(events);
      tx?.events.push(...evs);
    }
    this.resetState.images.set(token, [...images]);
  }

  /**
   * Runs several loads as one. `fn` gets a view of this VM bound to the transaction: the loads
   * made through it (loadKernel, loadModule, place, and bootLinux given it) are undone together if
   * `fn` throws — guest RAM restored byte for byte, their ledger entries and event-log entries
   * removed — and the error is rethrown. Loads made on the VM itself meanwhile are not part of it.
   * bootLinux() uses this so a boot that cannot place its initrd leaves no kernel behind.
   */
  async transaction<T>(fn: (vm: Vm) => Promise<T>): Promise<T> {
    if (typeof fn !== "function") throw new GuestImageError("BAD_ARGUMENT", "transaction() needs a function", { field: "fn" });
    if (this.currentTx()) return fn(this); // nested: part of the enclosing transaction
    const tx: Transaction = { journal: [], tokens: [], events: [] };
    const bound = Object.create(this, { [TX]: { value: tx } }) as Vm;
    try {
      return await fn(bound);
    } catch (e) {
      restore(tx.journal, this.core);
      for (const t of tx.tokens) {
        this.ledger.release(t);
        this.resetState.images.delete(t);
      }
      this.eventLog?.remove(tx.events);
      throw e;
    }
  }
}

/**
 * Validates caller-given reserved ranges (createVm / bootLinux `reserved`): base and size exact
 * integers, size > 0, end ≤ 2^53 − 1, type an e820 type other than RAM (default 2). Throws
 * BAD_ARGUMENT naming `field[i]`.
 */
export function checkReserved(list: unknown, field: string): Required<ReservedRange>[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new GuestImageError("BAD_ARGUMENT", `${field} must be an array of { base, size, type? }, got ${typeof list}`, { field });
  return list.map((r: ReservedRange, i) => {
    const f = `${field}[${i}]`;
    if (!r || typeof r !== "object") throw new GuestImageError("BAD_ARGUMENT", `${f} must be an object { base, size, type? }, got ${String(r)}`, { field: f });
    const base = checkAddress(r.base, `${f}.base`);
    const size = checkAddress(r.size, `${f}.size`);
    if (size === 0) throw new GuestImageError("BAD_ARGUMENT", `${f}.size is 0: a reserved range must cover at least one byte`, { field: `${f}.size` });
    if (base > MAX_SAFE - size) throw new GuestImageError("BAD_ARGUMENT", `${f} [${hex(base)}, +${hex(size)}) ends past 2^53-1`, { field: `${f}.size` });
    const type = r.type ?? 2; // E820_TYPE_RESERVED
    if (!Number.isInteger(type) || type < 2 || type > 0xffffffff) {
      throw new GuestImageError("BAD_ARGUMENT", `${f}.type must be an e820 type from 2 to 0xffffffff (1 is RAM, not a reservation), got ${String(type)}`, { field: `${f}.type` });
    }
    return { base, size, type };
  });
}

/** Load options: undefined or null mean none; anything but an object is BAD_ARGUMENT. */
function options<T extends object>(opts: T | null | undefined, image?: string): T {
  if (opts === undefined || opts === null) return {} as T;
  if (typeof opts !== "object") throw new GuestImageError("BAD_ARGUMENT", `options must be an object, got ${typeof opts}`, { image, field: "options" });
  return opts;
}

/** Any failure as a GuestImageError: ours as they are, anything else from a source as IO. */
function asGuestImageError(e: unknown, image: string, what: string): GuestImageError {
  if (e instanceof GuestImageError) return e;
  return new GuestImageError("IO", `${what}: ${(e as Error)?.message ?? String(e)}`, { image, cause: e });
}

/**
 * A source's file with its failures typed: a read that throws anything but a GuestImageError
 * becomes IO; close() never throws (a read-only file that fails to close has lost nothing, and
 * must not turn a finished load, or the load's own error, into a different failure).
 */
function guarded(file: ImageFile): ImageFile {
  return {
    name: file.name,
    size: file.size,
    bytes: file.bytes,
    async read(dst, position) {
      try {
        await file.read(dst, position);
      } catch (e) {
        throw asGuestImageError(e, file.name, `reading ${dst.length} bytes at offset ${position} failed`);
      }
    },
    async close() {
      try {
        await file.close();
      } catch {
        // see above
      }
    },
  };
}

async function sniffNonEmpty(file: ImageFile) {
  if (file.size === 0) throw new GuestImageError("TRUNCATED", "file is empty", { image: file.name });
  return sniff(file);
}

/** Detects the format of `file` and plans it as a kernel. */
async function planKernel(ctx: FormatContext, file: ImageFile, head?: Uint8Array): Promise<LoadPlan<KernelResult>> {
  const sniffed = head ? { format: detect(head, file.size), head } : await sniffNonEmpty(file);
  const { format } = sniffed;
  if (!format.planKernel) {
    throw new GuestImageError("UNSUPPORTED", `file is ${format.notAKernel ?? `${format.description}, not a kernel`}`, { image: file.name });
  }
  return format.planKernel({ ...ctx, file, head: sniffed.head });
}

/** Creates a VM with guest RAM in a new or caller-owned WebAssembly.Memory. */
export async function createVm(opts: CreateVmOptions): Promise<Vm> {
  if (!opts || typeof opts !== "object") throw new GuestImageError("BAD_ARGUMENT", "createVm needs an options object with `ram`");
  if (!Array.isArray(opts.ram)) throw new GuestImageError("BAD_ARGUMENT", "ram must be an array of {base, size} regions", { field: "ram" });
  const memoryOffset = checkAddress(opts.memoryOffset ?? 0, "memoryOffset");
  const reserved = checkReserved(opts.reserved, "reserved");
  let memory = opts.memory;
  let scratch: number;
  if (!memory) {
    const ramBytes = (opts.ram ?? []).reduce((n, r) => n + (Number.isSafeInteger(r?.size) ? r.size : 0), 0);
    const pages = Math.ceil((memoryOffset + ramBytes + SCRATCH_BYTES) / PAGE);
    if (pages > MAX_PAGES) {
      throw new GuestImageError("TOO_LARGE", `guest RAM of ${hex(ramBytes)} bytes does not fit in one 4 GiB WebAssembly memory (with ${SCRATCH_BYTES} bytes of scratch)`, { field: "ram" });
    }
    try {
      memory = new WebAssembly.Memory({ initial: pages });
    } catch (e) {
      throw new GuestImageError("TOO_LARGE", `cannot allocate ${pages} pages of WebAssembly memory: ${(e as Error).message}`, { field: "ram", cause: e });
    }
    scratch = pages * PAGE - SCRATCH_BYTES;
  } else if (!(memory instanceof WebAssembly.Memory)) {
    throw new GuestImageError("BAD_ARGUMENT", "memory must be a WebAssembly.Memory", { field: "memory" });
  } else {
    scratch = -1;
  }
  const ram = new GuestRam(memory, opts.ram, memoryOffset);
  if (!opts.memory) ram.markFresh(); // a new WebAssembly.Memory is all zero
  if (opts.memory) {
    if (opts.scratchOffset !== undefined) {
      scratch = checkAddress(opts.scratchOffset, "scratchOffset");
      const end = scratch + SCRATCH_BYTES;
      if (end > memory.buffer.byteLength || (scratch < ram.linEnd && end > memoryOffset)) {
        throw new GuestImageError("BAD_ARGUMENT", `scratchOffset ${hex(scratch)} (+${SCRATCH_BYTES}) must lie inside the memory and outside guest RAM`, { field: "scratchOffset" });
      }
    } else {
      scratch = memory.buffer.byteLength;
      try {
        memory.grow(Math.ceil(SCRATCH_BYTES / PAGE));
      } catch (e) {
        throw new GuestImageError("TOO_LARGE", `cannot grow the memory for the loader's scratch area; pass scratchOffset`, { field: "memory", cause: e });
      }
    }
  }
  if (opts.measure) checkMeasureSupport();
  const core = await Core.create(memory, scratch);
  if (opts.resettable !== undefined && typeof opts.resettable !== "boolean") throw new GuestImageError("BAD_ARGUMENT", `resettable must be true or false, got ${String(opts.resettable)}`, { field: "resettable" });
  return new Vm(ram, core, opts.files, opts.measure === true, reserved, opts.resettable === true);
}
