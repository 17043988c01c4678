// guest-image/v86: boot a kernel in v86 (npm "v86", the JavaScript/Wasm x86 PC emulator) without
// a BIOS, from images guest-image reads straight into v86's own guest RAM.
//
// v86 has no public API for "here is guest RAM, start the CPU in this state": its typings
// (v86.d.ts) stop at the V86 constructor options. Its own Multiboot loader (src/cpu.js,
// load_multiboot_option_rom, "set state for multiboot") does exactly what this adapter needs
// through CPU fields that survive v86's npm build under their source names. This adapter uses
// those fields and nothing else, and checks each one before touching anything, so a v86 build
// that renames one fails with UNSUPPORTED naming it (never a TypeError half-way through):
//
//   emulator.v86.cpu                      the CPU object
//     wasm_memory                         v86's WebAssembly.Memory (guest RAM lives inside it)
//     mem8                                Uint8Array over guest RAM: byteOffset = guest physical 0
//     memory_size[0]                      guest RAM bytes
//     cr[0]                               CR0 (PE set, PG clear)
//     protected_mode[0], is_32[0], stack_size_32[0], cpl[0], flags[0]
//     sreg[i], segment_is_null[i], segment_offsets[i], segment_limits[i], segment_access_bytes[i]
//                                         per segment register, es cs ss ds fs gs = 0..5
//     reg32[i]                            eax ecx edx ebx esp ebp esi edi = 0..7
//     instruction_pointer[0]              linear address of the next instruction (CS base + EIP)
//     gdtr_offset[0], gdtr_size[0], idtr_offset[0], idtr_size[0]
//                                         descriptor table registers, when the state names them
//     update_state_flags()                refreshes the cached mode flags the JIT keys on
//     jit_clear_cache()                   (optional) drops compiled code
//     devices.vga.svga_memory             (optional) the SVGA framebuffer, a Uint8Array inside
//                                         wasm_memory, borrowed for the loader's scratch area
//   emulator.is_running()                 public: refuse an emulator that already runs
//
// Scratch: the loader needs SCRATCH_BYTES (348 KiB) of linear memory outside guest RAM. Every
// other byte of v86's memory belongs to v86's Rust allocator, so rather than grow v86's memory
// behind its back, the adapter borrows the start of the SVGA framebuffer (unused until the guest
// switches to a VBE graphics mode, which it cannot have done before it runs) and puts the bytes
// back before returning, on success and on failure. Without a VGA device (or with a framebuffer
// smaller than the scratch area) the memory is grown by six pages instead, which v86 tolerates
// (its views are rebuilt on access and its allocator grows from wherever the memory ends).
//
// Nothing here copies an image: the VM is created over v86's memory (guest physical 0 at
// mem8.byteOffset, ONE region [0, memory_size)), so every file is read straight into guest RAM.
// All checks (the emulator's fields and state, the kernel's headers, the room for every image) run
// before v86's state is touched; a failed placement is rolled back by the VM's transaction.
import { protectedModeState, type X86CpuState } from "../boot/cpu-x86.js";
import { bootLinux, type BootCpuState, type LinuxBoot } from "../boot/linux.js";
import { bootMultiboot2, type Multiboot2Boot } from "../boot/multiboot2.js";
import { buildMultibootInfo } from "../boot/multiboot-info.js";
import { SCRATCH_BYTES } from "../core/core.js";
import { GuestImageError } from "../errors.js";
import { MULTIBOOT_BOOTLOADER_MAGIC, type MultibootKernelArch } from "../formats/multiboot.js";
import { sniff } from "../formats/detect.js";
import { hex } from "../num.js";
import type { Placement } from "../ram/ledger.js";
import type { Source } from "../sources/source.js";
import { createVm, type LoadedImage, type LoadedKernel, type Vm } from "../vm.js";

/** The part of a v86 emulator (`new V86({ …, autostart: false })`) the adapter reads; see the header. */
export interface V86Emulator {
  v86?: { cpu?: unknown };
  is_running?(): boolean;
  // `any`: v86.d.ts types these generically per event name; the adapter only listens for "emulator-loaded".
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  add_listener?(event: any, fn: (...args: any[]) => void): void;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  remove_listener?(event: any, fn: (...args: any[]) => void): void;
}

export interface BootV86Options {
  /** Where images come from: fromUrl, fromFiles, fromMap, fromDirectory (Node), … */
  files: Source;
  /** Kernel file name: an x86 bzImage (Linux 32-bit boot protocol), a Multiboot 1 or a Multiboot 2 kernel. */
  kernel: string;
  /** Initial ramdisk (Linux) or the one boot module (Multiboot; Multiboot 2 without `modules`), its string its file name. */
  initrd?: string;
  /** Multiboot 2: the boot modules, in order, each with its string (tag 3); in place of `initrd`. */
  modules?: ReadonlyArray<{ name: string; cmdline?: string }>;
  /** Kernel command line. */
  cmdline?: string;
  /** "auto" (default): Multiboot 2 or Multiboot if detection finds that header, else Linux. */
  protocol?: "auto" | "linux" | "multiboot" | "multiboot2";
  /**
   * Linux: direct boot (bootLinux's x86Direct, src/boot/x86-direct.ts): the bzImage's payload is
   * decompressed on the host straight into v86's RAM and the kernel entered at its own startup_32,
   * skipping the guest's decompressor. `{ at }`: a relocatable kernel placed there instead.
   */
  direct?: boolean | { at: number };
  /**
   * Linear offset in v86's memory for the loader's scratch area (SCRATCH_BYTES), outside guest
   * RAM; "svga" (default when v86 has a VGA device): borrowed from the SVGA framebuffer and
   * restored; "grow": six pages appended to v86's memory.
   */
  scratch?: "svga" | "grow" | number;
  /** Progress of the copies into guest RAM (bytes done, bytes in all; Linux: summed over bootLinux's placements). */
  onProgress?: (loaded: number, total: number) => void;
}

/** One v86 CPU, as the adapter sees it: the fields listed in the header, typed. */
interface V86Cpu {
  wasm_memory: WebAssembly.Memory;
  mem8: Uint8Array;
  memory_size: Uint32Array | Int32Array;
  cr: Int32Array;
  protected_mode: Int32Array | Uint8Array;
  flags: Int32Array;
  is_32: Int32Array | Uint8Array;
  stack_size_32: Int32Array | Uint8Array;
  cpl: Uint8Array;
  sreg: Uint16Array;
  segment_is_null: Uint8Array;
  segment_offsets: Int32Array;
  segment_limits: Uint32Array;
  segment_access_bytes: Uint8Array;
  reg32: Int32Array;
  instruction_pointer: Int32Array;
  update_state_flags: () => void;
  jit_clear_cache?: () => void;
  devices?: { vga?: { svga_memory?: Uint8Array } };
}

export interface V86Boot {
  protocol: "linux" | "multiboot" | "multiboot2";
  /** Guest RAM as described to the kernel: one region [0, memory_size). */
  ram: { base: number; size: number };
  /** The entry state the CPU was put in (what setV86CpuState applied). */
  cpu: BootCpuState;
  /** The Linux boot record (protocol "linux"). */
  linux?: LinuxBoot;
  /** What was placed for a Multiboot kernel (protocol "multiboot"). */
  multiboot?: { kernel: LoadedKernel; module?: LoadedImage; info: { paddr: number; size: number } };
  /** What bootMultiboot2 placed (protocol "multiboot2"): kernel, modules, information structure, GDT. */
  multiboot2?: Multiboot2Boot;
  /** Everything placed, in address order (the VM's ledger). */
  placed: Placement[];
  /** Milliseconds spent checking and placing images (not booting). */
  placeMs: number;
  /** Where the scratch area was: "svga" (borrowed and restored), "grow" or the offset given. */
  scratch: "svga" | "grow" | number;
}

// Segment register indices in v86 (src/const.js): es cs ss ds fs gs.
const SEGS = { es: 0, cs: 1, ss: 2, ds: 3, fs: 4, gs: 5 } as const;
// General register indices in v86 (src/const.js, reg32): the x86 encoding order.
const REGS = { eax: 0, ecx: 1, edx: 2, ebx: 3, esp: 4, ebp: 5, esi: 6, edi: 7 } as const;
// Access bytes of flat ring-0 descriptors as Linux's boot GDT has them (arch/x86/boot/pm.c,
// GDT_ENTRY(0xc09b, 0, 0xfffff) / GDT_ENTRY(0xc093, …)): present, DPL 0, S, code exec/read or
// data read/write, accessed.
const ACCESS_CODE = 0x9b;
const ACCESS_DATA = 0x93;
/** EFLAGS with only the always-one bit 1 set: interrupts off (v86's FLAGS_DEFAULT). */
const FLAGS_DEFAULT = 0x2;
/** CR0.PE; PG (bit 31) clear: paging off. */
const CR0_PE = 0x1;
/** Selectors used when a protocol leaves them open (Multiboot): Linux's __BOOT_CS / __BOOT_DS. */
const BOOT_CS = 0x10n;
const BOOT_DS = 0x18n;
/** The boot loader name written to the Multiboot info structure (flag 9). */
const LOADER_NAME = "guest-image";
/** The only memory below 1 MiB the PC does not map elsewhere ends at 640 KiB (VGA from 0xA0000). */
const LOW_RAM_END = 0xa0000;
const MiB = 0x100000;

const unsupported = (field: string, msg: string) => new GuestImageError("UNSUPPORTED", msg, { image: "v86", field });
const badArg = (field: string, msg: string) => new GuestImageError("BAD_ARGUMENT", msg, { image: "v86", field });

const ARRAY_FIELDS = [
  "memory_size", "cr", "protected_mode", "flags", "is_32", "stack_size_32", "cpl", "sreg", "segment_is_null",
  "segment_offsets", "segment_limits", "segment_access_bytes", "reg32", "instruction_pointer",
] as const;

/**
 * A typed array, or what v86 puts in its place: src/lib.js `view()` returns a Proxy that builds a
 * fresh typed array over the memory's current buffer on every access (so it survives
 * memory.grow); neither `instanceof` nor ArrayBuffer.isView recognise it, its `length` does.
 */
function isView(v: unknown, min: number): boolean {
  return !!v && typeof v === "object" && typeof (v as { length?: unknown }).length === "number" && (v as { length: number }).length >= min;
}

/** The emulator's CPU with every field the adapter uses checked; UNSUPPORTED names the first one missing. */
export function v86Cpu(emulator: V86Emulator): V86Cpu {
  if (!emulator || typeof emulator !== "object") throw badArg("emulator", "bootV86 needs a V86 emulator object (new V86({ …, autostart: false }))");
  const v86 = emulator.v86;
  if (!v86 || typeof v86 !== "object") throw unsupported("emulator.v86", "this v86 build has no emulator.v86 (the emulator internals the adapter needs)");
  const cpu = v86.cpu as Record<string, unknown> | undefined;
  if (!cpu || typeof cpu !== "object") throw unsupported("emulator.v86.cpu", "this v86 build has no emulator.v86.cpu");
  if (!(cpu.wasm_memory instanceof WebAssembly.Memory)) throw unsupported("cpu.wasm_memory", "this v86 build has no cpu.wasm_memory (a WebAssembly.Memory)");
  if (!isView(cpu.mem8, 0) || typeof (cpu.mem8 as Uint8Array).byteOffset !== "number") throw unsupported("cpu.mem8", "this v86 build has no cpu.mem8 (a byte view of guest RAM)");
  for (const f of ARRAY_FIELDS) {
    if (!isView(cpu[f], 1)) throw unsupported(`cpu.${f}`, `this v86 build has no cpu.${f} (a typed array)`);
  }
  for (const [f, n] of [["sreg", 6], ["segment_is_null", 6], ["segment_offsets", 6], ["segment_limits", 6], ["segment_access_bytes", 6], ["reg32", 8]] as const) {
    if (!isView(cpu[f], n)) throw unsupported(`cpu.${f}`, `cpu.${f} has ${(cpu[f] as Uint8Array).length} entries, expected at least ${n}`);
  }
  if (typeof cpu.update_state_flags !== "function") throw unsupported("cpu.update_state_flags", "this v86 build has no cpu.update_state_flags()");
  return cpu as unknown as V86Cpu;
}

function isRunning(emulator: V86Emulator): boolean {
  if (typeof emulator.is_running === "function") return emulator.is_running();
  throw unsupported("emulator.is_running", "this v86 build has no emulator.is_running()");
}

/** v86 guest RAM: where guest physical 0 is in wasm_memory and how many bytes follow. */
function guestRam(cpu: V86Cpu): { offset: number; size: number } {
  const size = cpu.memory_size[0] >>> 0;
  const offset = cpu.mem8.byteOffset;
  if (size === 0) throw badArg("emulator", "v86 has not created guest RAM yet: call bootV86 after the emulator's \"emulator-ready\" event");
  if (cpu.mem8.buffer !== cpu.wasm_memory.buffer) {
    throw unsupported("cpu.mem8", "cpu.mem8 is not a view of cpu.wasm_memory");
  }
  if (offset + size > cpu.wasm_memory.buffer.byteLength) throw unsupported("cpu.mem8", `guest RAM [${hex(offset)}, +${hex(size)}) does not lie inside cpu.wasm_memory`);
  return { offset, size };
}

/**
 * Resolves once v86 has created its machine: `emulator.v86` appears only after v86's Wasm module
 * is compiled, and guest RAM is allocated during its init, both reported by "emulator-loaded".
 */
async function ready(emulator: V86Emulator): Promise<void> {
  const cpu = emulator.v86?.cpu as { memory_size?: ArrayLike<number> } | undefined;
  if (cpu?.memory_size && cpu.memory_size[0] !== 0) {
    // One turn of the microtask queue: v86 starts an autostart emulator synchronously right after
    // "emulator-ready", so a caller inside that event sees it running only after this.
    await Promise.resolve();
    return;
  }
  if (typeof emulator.add_listener !== "function") {
    v86Cpu(emulator); // names the missing internal
    throw unsupported("emulator.add_listener", "this v86 build has no emulator.add_listener()");
  }
  await new Promise<void>((resolve) => {
    const done = () => {
      emulator.remove_listener?.("emulator-loaded", done);
      resolve();
    };
    emulator.add_listener!("emulator-loaded", done);
  });
}

/**
 * Places `kernel` (and `initrd`, `cmdline`) in v86's guest RAM and puts v86's CPU in the boot
 * protocol's entry state; then call `emulator.run()`. The emulator must be created with
 * `autostart: false`; it may be called right after `new V86(…)` (it waits for
 * "emulator-loaded"). Every check runs before v86's memory or CPU is touched.
 */
export async function bootV86(emulator: V86Emulator, opts: BootV86Options): Promise<V86Boot> {
  if (!emulator || typeof emulator !== "object") throw badArg("emulator", "bootV86 needs a V86 emulator object (new V86({ …, autostart: false }))");
  if (emulator.v86) v86Cpu(emulator); // the fields, before waiting on anything
  await ready(emulator);
  const cpu = v86Cpu(emulator);
  if (isRunning(emulator)) {
    throw badArg("autostart", "the v86 emulator is already running: create it with autostart: false and call bootV86 before emulator.run()");
  }
  if (!opts || typeof opts !== "object") throw badArg("options", "bootV86 needs an options object");
  if (!opts.files || typeof (opts.files as Source).open !== "function") throw badArg("files", "files must be a source (fromUrl, fromFiles, fromMap, fromDirectory, …)");
  const protocol = opts.protocol ?? "auto";
  if (!["auto", "linux", "multiboot", "multiboot2"].includes(protocol)) throw badArg("protocol", `protocol must be "auto", "linux", "multiboot" or "multiboot2", got ${JSON.stringify(protocol)}`);
  const direct = opts.direct ?? false;
  if (typeof direct !== "boolean" && (typeof direct !== "object" || direct === null || !Number.isSafeInteger(direct.at) || direct.at < 0)) {
    throw badArg("direct", `direct must be true, false or { at: address }, got ${JSON.stringify(direct)}`);
  }
  if (opts.modules !== undefined && (!Array.isArray(opts.modules) || opts.initrd !== undefined)) {
    throw badArg("modules", "modules must be an array of { name, cmdline? }, given instead of initrd");
  }
  const { offset, size } = guestRam(cpu);
  const ram = { base: 0, size };

  // Scratch: borrowed from the SVGA framebuffer (saved, restored in finally), or as asked.
  let scratch: "svga" | "grow" | number = opts.scratch ?? "svga";
  let scratchOffset: number | undefined;
  let saved: Uint8Array | undefined;
  if (scratch === "svga") {
    const svga = cpu.devices?.vga?.svga_memory;
    if (isView(svga, SCRATCH_BYTES) && svga!.buffer === cpu.wasm_memory.buffer && typeof svga!.byteOffset === "number") {
      scratchOffset = svga!.byteOffset;
    } else {
      scratch = "grow";
    }
  } else if (typeof scratch === "number") {
    scratchOffset = scratch;
  } else if (scratch !== "grow") {
    throw badArg("scratch", `scratch must be "svga", "grow" or a linear offset, got ${JSON.stringify(scratch)}`);
  }

  const t0 = performance.now();
  if (scratch === "svga") saved = new Uint8Array(cpu.wasm_memory.buffer, scratchOffset, SCRATCH_BYTES).slice();
  let out: { result: Omit<V86Boot, "placeMs" | "scratch" | "placed" | "ram">; placed: Placement[]; apply: () => void };
  try {
    const vm = await createVm({ ram: [ram], memory: cpu.wasm_memory, memoryOffset: offset, scratchOffset, files: opts.files });
    // One transaction: if anything fails up to the CPU state being ready to apply (including the
    // state's own checks, or the emulator having been started meanwhile), guest RAM is restored.
    out = await vm.transaction(async (tvm) => {
      let use: "linux" | "multiboot" | "multiboot2" = protocol === "auto" ? "linux" : protocol;
      if (protocol === "auto") {
        const f = await tvm.open(opts.kernel);
        try {
          const name = (await sniff(f)).format.name;
          if (name === "multiboot" || name === "multiboot2") use = name;
        } finally {
          await f.close();
        }
      }
      if (direct !== false && use !== "linux") {
        throw badArg("direct", `direct boot is for Linux bzImages; ${opts.kernel} is booted by ${use === "multiboot" ? "Multiboot" : "Multiboot 2"}`);
      }
      if (opts.modules !== undefined && use !== "multiboot2") {
        throw badArg("modules", `modules (with their strings) are for Multiboot 2 kernels; ${opts.kernel} is booted by ${use === "multiboot" ? "Multiboot (one module: initrd)" : "Linux (initrd)"}`);
      }
      let result: Omit<V86Boot, "placeMs" | "scratch" | "placed" | "ram">;
      if (use === "multiboot") {
        result = await placeMultiboot(tvm, opts);
      } else if (use === "multiboot2") {
        // Spec 3.3: EAX = 0x36d76289, EBX = the information structure, flat 32-bit segments from
        // the GDT bootMultiboot2 places (v86 loads GDTR from the state), paging off.
        const modules = opts.modules ?? (opts.initrd !== undefined ? [{ name: opts.initrd, cmdline: opts.initrd }] : []);
        const mb2 = await bootMultiboot2(tvm, { kernel: opts.kernel, cmdline: opts.cmdline, modules, bootLoaderName: LOADER_NAME });
        result = { protocol: "multiboot2", cpu: mb2.cpu as BootCpuState, multiboot2: mb2 };
      } else {
        // boot.rst "32-bit Boot Protocol": v86 is a 32-bit CPU without PAE, so never "long".
        const linux = await bootLinux(tvm, { arch: "x86", kernel: opts.kernel, initrd: opts.initrd, cmdline: opts.cmdline, x86Mode: "protected", x86Direct: direct, onProgress: opts.onProgress });
        result = { protocol: "linux", cpu: linux.cpu, linux };
      }
      const apply = planV86CpuState(cpu, result.cpu);
      if (isRunning(emulator)) {
        throw badArg("autostart", "the v86 emulator started running while images were placed: create it with autostart: false and run it after bootV86");
      }
      return { result, placed: tvm.placed(), apply };
    });
  } finally {
    if (saved) new Uint8Array(cpu.wasm_memory.buffer, scratchOffset, SCRATCH_BYTES).set(saved);
  }
  const placeMs = performance.now() - t0;
  out.apply();
  return { ...out.result, ram, placed: out.placed, placeMs, scratch };
}

/** Multiboot 1 (spec 0.6.96): kernel by its header, the initrd as module 0, then the info structure. */
async function placeMultiboot(vm: Vm, opts: BootV86Options): Promise<Omit<V86Boot, "placeMs" | "scratch" | "placed" | "ram">> {
  return vm.transaction(async (tvm) => {
    const kernel = await tvm.loadKernel(opts.kernel, { onProgress: opts.onProgress });
    const mb = kernel.arch as MultibootKernelArch;
    if (mb.format !== "multiboot") {
      throw new GuestImageError("BAD_MAGIC", `protocol "multiboot" needs a Multiboot kernel, got ${kernel.format}`, { image: opts.kernel, field: "protocol" });
    }
    // Spec 3.1.2: a boot loader that cannot meet a requirement bit (0-15) "must fail". This one
    // sets no video mode (there is no BIOS to ask), so a kernel that requires one is refused.
    if (mb.requirements.video_mode) {
      throw new GuestImageError("UNSUPPORTED", `the Multiboot header requires video mode information (flags ${hex(mb.flags)}, bit 2), which guest-image/v86 does not provide`, { image: opts.kernel, field: "flags" });
    }
    let module: LoadedImage | undefined;
    if (opts.initrd !== undefined) {
      // Above the kernel and 1 MiB, page-aligned (spec 3.1.2 flags bit 0 asks for it; always harmless).
      module = await tvm.loadModule(opts.initrd, { auto: { from: "bottom", align: 0x1000, min: Math.max(MiB, kernel.paddr + kernel.size) }, onProgress: opts.onProgress });
    }
    const modules = module ? [{ paddr: module.paddr, size: module.size, cmdline: opts.initrd }] : undefined;
    const build = (at: number) =>
      buildMultibootInfo({ at, ram: tvm.ram.regions, cmdline: opts.cmdline ?? "", modules, bootLoaderName: LOADER_NAME, pageAlignModules: mb.requirements.page_align_modules });
    // Conventional memory, above the real-mode IVT/BDA page (v86 maps VGA from 0xA0000).
    const size = build(0).size;
    const at = tvm.findFree(size, { from: "bottom", align: 16, min: 0x1000, max: LOW_RAM_END });
    const info = build(at);
    const placedInfo = await tvm.place("multiboot-info", info.bytes, { at, format: "multiboot-info" });
    // Spec 3.2 "Machine state": EAX = magic, EBX = info, CS a flat 32-bit code segment, DS ES FS
    // GS SS flat data segments, A20 on, CR0 PG clear and PE set, EFLAGS VM and IF clear; GDTR
    // and the other registers undefined (the kernel loads its own GDT before any segment).
    const cpu = protectedModeState("x86", mb.entry, 0, null);
    cpu.regs.esi = 0n;
    cpu.regs.eax = BigInt(MULTIBOOT_BOOTLOADER_MAGIC);
    cpu.regs.ebx = BigInt(placedInfo.paddr);
    return { protocol: "multiboot" as const, cpu, multiboot: { kernel, module, info: { paddr: placedInfo.paddr, size: placedInfo.size } } };
  });
}

const u32 = (v: unknown, name: string): number => {
  if (typeof v !== "bigint" || v < 0n || v > 0xffffffffn) throw badArg(`cpu.${name}`, `${name} must be a 32-bit value, got ${String(v)}`);
  return Number(v);
};

/** What one v86 segment register gets: selector, hidden base/limit, access byte, and its D/B bit. */
interface SegmentLoad { selector: number; base: number; limit: number; access: number; db: boolean }

/** The segments of `state`: its X86CpuState `segments` when present, else flat ones with the selectors in `regs`. */
function segmentsOf(state: BootCpuState): SegmentLoad[] {
  const out: SegmentLoad[] = [];
  const x = state as Partial<X86CpuState>;
  for (const name of SEG_NAMES) {
    const s = x.segments?.[name];
    if (s) {
      if (s.unusable || !s.present) throw unsupported(`cpu.segments.${name}`, `segment ${name} is not usable: the 32-bit entry needs every segment present`);
      const limit = s.limit;
      if (!Number.isInteger(limit) || limit < 0 || limit > 0xffffffff) throw badArg(`cpu.segments.${name}.limit`, `segment ${name} limit must be a 32-bit value, got ${String(limit)}`);
      // The access byte of a descriptor is the low byte of the VMX access rights: type | S << 4 | DPL << 5 | P << 7.
      out.push({ selector: selectorOf(s.selector, name), base: u32(s.base, `segments.${name}.base`), limit, access: s.access & 0xff, db: s.db });
    } else {
      const r = (state.regs as Record<string, bigint> | undefined)?.[name];
      const selector = r === undefined ? Number(name === "cs" ? BOOT_CS : BOOT_DS) : selectorOf(u32(r, `regs.${name}`), name);
      out.push({ selector, base: 0, limit: 0xffffffff, access: name === "cs" ? ACCESS_CODE : ACCESS_DATA, db: true });
    }
  }
  return out;
}

function selectorOf(v: number, name: string): number {
  if (!Number.isInteger(v) || v < 4 || v > 0xffff) throw badArg(`cpu.regs.${name}`, `selector ${name} must be a non-null 16-bit selector, got ${hex(v)}`);
  return v;
}

/** es cs ss ds fs gs: v86's segment order (src/const.js REG_ES … REG_GS). */
const SEG_NAMES = ["es", "cs", "ss", "ds", "fs", "gs"] as const;

/**
 * Puts v86's CPU in the 32-bit protected-mode entry state of `state` — what v86's own Multiboot
 * path does: paging off, ring 0, the segment registers with their hidden parts (flat unless
 * `state.segments` says otherwise), EFLAGS (interrupts off), GDTR/IDTR when given, the general
 * registers (those not named are zeroed) and the instruction pointer. Everything is validated
 * before the first field is written.
 */
export function setV86CpuState(emulator: V86Emulator, state: BootCpuState): void {
  planV86CpuState(v86Cpu(emulator), state)();
}

/** Checks `state` against what v86 can enter; returns the function that writes it (no check can fail there). */
function planV86CpuState(cpu: V86Cpu, state: BootCpuState): () => void {
  if (!state || typeof state !== "object") throw badArg("cpu", "setV86CpuState needs a boot CPU state");
  if (state.arch !== "x86") throw unsupported("cpu.arch", `v86 is a 32-bit x86 CPU: cannot enter a ${String(state.arch)} kernel`);
  if (state.mode !== "protected") throw unsupported("cpu.mode", `v86 starts kernels in 32-bit protected mode only (no BIOS for "real", no long mode), got ${JSON.stringify(state.mode)}`);
  const x = state as Partial<X86CpuState>;
  const pc = u32(state.pc, "pc");
  const cr0 = x.cr0 === undefined ? CR0_PE : u32(x.cr0, "cr0");
  if ((cr0 & CR0_PE) === 0 || (cr0 & 0x8000_0000) !== 0) throw unsupported("cpu.cr0", `the 32-bit entry needs CR0.PE set and CR0.PG clear, got ${hex(cr0)}`);
  const flags = x.rflags === undefined ? FLAGS_DEFAULT : u32(x.rflags, "rflags");
  if ((x.cr4 !== undefined && x.cr4 !== 0n) || (x.efer !== undefined && x.efer !== 0n)) {
    throw unsupported("cpu.cr4", `v86 enters with CR4 = EFER = 0 (no PAE, no long mode), got cr4 ${String(x.cr4)} efer ${String(x.efer)}`);
  }
  const tables: Array<[string, { base: bigint; limit: number }]> = [];
  if (x.gdtr) tables.push(["gdtr", x.gdtr]);
  if (x.idtr) tables.push(["idtr", x.idtr]);
  const dt = cpu as unknown as Record<string, unknown>;
  for (const [name, t] of tables) {
    u32(t.base, `${name}.base`);
    if (!Number.isInteger(t.limit) || t.limit < 0 || t.limit > 0xffff) throw badArg(`cpu.${name}.limit`, `${name} limit must be 16-bit, got ${String(t.limit)}`);
    for (const f of [`${name}_offset`, `${name}_size`]) if (!isView(dt[f], 1)) throw unsupported(`cpu.${f}`, `this v86 build has no cpu.${f} (a typed array)`);
  }
  const segs = segmentsOf(state);
  const gp = new Array<number>(8).fill(0);
  for (const [name, value] of Object.entries((state.regs ?? {}) as Record<string, bigint>)) {
    if (name in REGS) gp[REGS[name as keyof typeof REGS]] = u32(value, `regs.${name}`);
    else if (!(name in SEGS)) throw unsupported(`cpu.regs.${name}`, `register ${name} cannot be set in v86 by this adapter`);
  }

  return () => {
    cpu.cr[0] = cr0 | 0;
    cpu.protected_mode[0] = 1;
    cpu.flags[0] = flags | 0;
    cpu.is_32[0] = segs[SEGS.cs].db ? 1 : 0;
    cpu.stack_size_32[0] = segs[SEGS.ss].db ? 1 : 0;
    cpu.cpl[0] = 0;
    for (let i = 0; i < 6; i++) {
      cpu.sreg[i] = segs[i].selector;
      cpu.segment_is_null[i] = 0;
      cpu.segment_offsets[i] = segs[i].base | 0;
      cpu.segment_limits[i] = segs[i].limit >>> 0;
      cpu.segment_access_bytes[i] = segs[i].access;
    }
    for (const [name, t] of tables) {
      (dt[`${name}_offset`] as Int32Array)[0] = Number(t.base) | 0;
      (dt[`${name}_size`] as Int32Array)[0] = t.limit;
    }
    for (let i = 0; i < 8; i++) cpu.reg32[i] = gp[i] | 0;
    cpu.instruction_pointer[0] = pc | 0; // linear: CS base + EIP (state.pc is linear already)
    cpu.update_state_flags();
    cpu.jit_clear_cache?.();
  };
}
