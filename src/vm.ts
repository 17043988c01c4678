// The VM: guest RAM in a WebAssembly.Memory, the ledger of placed images, the Wasm core, and
// the source images are read from. Loads go through plan → check → execute → record.
import { Core, SCRATCH_BYTES } from "./core/core.js";
import { GuestImageError } from "./errors.js";
import { detect, sniff } from "./formats/detect.js";
import type { Arm64ImageArch, RiscvImageArch } from "./formats/arm64-image.js";
import type { BzImageKernelArch } from "./formats/bzimage.js";
import type { ElfKernelArch } from "./formats/elf.js";
import type { MultibootKernelArch } from "./formats/multiboot.js";
import type { UImageKernelArch } from "./formats/uimage.js";
import type { ZImageArch } from "./formats/zimage.js";
import type { FormatContext, KernelResult, ModuleResult } from "./formats/format.js";
import { planRaw, type RawKernelArch } from "./formats/raw.js";
import { alignUp, checkAddress, checkAlignment, hex } from "./num.js";
import { check, commitWithoutWriting, execute, type LoadPlan, type ProgressCallback } from "./plan.js";
import { GuestRam, type RamRegion } from "./ram/guest-ram.js";
import { Ledger, type Placement } from "./ram/ledger.js";
import { bytesFile, type ImageFile, type Source } from "./sources/source.js";

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
   * 76 KiB: CRC table, relocation batches). Default: the memory is grown by two pages and the
   * new pages are used.
   */
  scratchOffset?: number;
  /** Where images are read from. */
  files?: Source;
}

/** kernel_image_arch: one record per kernel format, told apart by `format`. */
export type KernelArch = ElfKernelArch | RawKernelArch | Arm64ImageArch | RiscvImageArch | ZImageArch | MultibootKernelArch | BzImageKernelArch | UImageKernelArch;

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
  /** Load address; rounded up to `align`. */
  at: number;
  align?: number;
  dryRun?: boolean;
  onProgress?: ProgressCallback;
}

export class Vm {
  readonly ram: GuestRam;
  readonly ledger = new Ledger();
  readonly files: Source | undefined;
  /** @internal */
  readonly core: Core;

  /** @internal use createVm() */
  constructor(ram: GuestRam, core: Core, files: Source | undefined) {
    this.ram = ram;
    this.core = core;
    this.files = files;
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
    const align = checkAlignment(opts.align ?? 0, { image: name });
    const at = opts.at === undefined ? undefined : alignUp(checkAddress(opts.at, "load address", { image: name }), align, { image: name });
    return this.withFile(name, async (file, ctx) => {
      const plan = await planKernel(ctx(at, align, opts.relocs), file);
      const result = await this.run(plan, opts);
      return { name, format: result.format, paddr: plan.paddr, alignment: align, size: plan.size, entry: result.entry, arch: result.arch as KernelArch };
    });
  }

  /**
   * Loads a module (initrd, device tree, anything): the file verbatim at the load address,
   * unless its format says otherwise (a container whose payload is the module). A device tree's
   * header is checked first.
   */
  async loadModule(name: string, opts: ModuleLoadOptions): Promise<LoadedImage> {
    const align = checkAlignment(opts?.align ?? 0, { image: name });
    if (opts?.at === undefined) {
      throw new GuestImageError("BAD_ARGUMENT", "a module has no load address of its own: pass one (at / load_address)", { image: name, field: "at" });
    }
    const at = alignUp(checkAddress(opts.at, "load address", { image: name }), align, { image: name });
    return this.withFile(name, async (file, ctx) => {
      const c = ctx(at, align, undefined);
      const { format, head } = await sniffNonEmpty(file);
      c.head = head;
      let plan: LoadPlan<ModuleResult>;
      if (format.planModule) plan = await format.planModule(c);
      else {
        await format.checkModule?.(file);
        plan = { ...planRaw(file, at), result: { format: format.name } };
      }
      const result = await this.run(plan, opts);
      return { name, format: result.format, paddr: plan.paddr, alignment: align, size: plan.size };
    });
  }

  /**
   * Places `bytes` (a zero page, a command line, a generated device tree…) at `at` rounded up to
   * `align`, through the same checks as a file: inside RAM, no overlap, recorded under `name`.
   */
  async place(name: string, bytes: Uint8Array, opts: ModuleLoadOptions): Promise<LoadedImage> {
    if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
      throw new GuestImageError("BAD_ARGUMENT", "place() needs a non-empty Uint8Array", { image: name, field: "bytes" });
    }
    const align = checkAlignment(opts?.align ?? 0, { image: name });
    if (opts?.at === undefined) throw new GuestImageError("BAD_ARGUMENT", "place() needs an address (at)", { image: name, field: "at" });
    const at = alignUp(checkAddress(opts.at, "load address", { image: name }), align, { image: name });
    const plan = planRaw(bytesFile(name, bytes), at);
    await this.run(plan, opts);
    return { name, format: "bytes", paddr: at, alignment: align, size: bytes.length };
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

  private async run<R>(plan: LoadPlan<R>, opts: { dryRun?: boolean; onProgress?: ProgressCallback }): Promise<R> {
    const checked = check(plan, this.ram, this.ledger, this.core);
    return opts.dryRun ? commitWithoutWriting(checked, this.ledger) : execute(checked, this.ram, this.ledger, this.core, opts.onProgress);
  }
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
  const memoryOffset = checkAddress(opts.memoryOffset ?? 0, "memoryOffset");
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
  const core = await Core.create(memory, scratch);
  return new Vm(ram, core, opts.files);
}
