// bootLinux: everything a Linux kernel needs in guest RAM before its first instruction, and the
// register values that instruction must see. Kernel (any format the loader knows), initrd, device
// tree (patched: /chosen bootargs and initrd, /memory) or, on x86, command line and zero page,
// placed by the booting rules of each architecture (layout.ts says where and why):
//   arm64  Documentation/arch/arm64/booting.rst  x0 = DTB, x1 = x2 = x3 = 0, MMU off
//   arm    Documentation/arch/arm/booting.rst    r0 = 0, r1 = 0xffffffff (DT, no machine id), r2 = DTB, SVC, MMU off
//   riscv  Documentation/arch/riscv/boot.rst     a0 = hart id, a1 = DTB, S-mode, satp = 0
//   x86    Documentation/arch/x86/boot.rst       64/32-bit protocol: RSI/ESI = zero page; or real mode (QEMU's way)
// Every placement goes through the VM's checked path (vm.loadKernel / loadModule / place), so it
// is range- and overlap-checked, recorded in the ledger and, with measure: true, in the event log.
//
// Inputs are validated (files opened, the device tree parsed, the command line checked) before
// anything is placed. A failure after the first placement (e.g. no room left for the initrd)
// leaves what was already placed in the VM; the error names the step.
import { GuestImageError } from "../errors.js";
import { arm64ImageFormat, IMAGE_HEADER_SIZE, readArm64Header, readRiscvHeader } from "../formats/arm64-image.js";
import { inflatePrefix, readGzipMember } from "../compress/gunzip.js";
import { getInflater } from "../compress/inflate.js";
import type { ImageFile } from "../sources/source.js";
import { readBzImage, type BzImage, type BzImageKernelArch } from "../formats/bzimage.js";
import { sniff } from "../formats/detect.js";
import { machineName, readElf } from "../formats/elf.js";
import { SETUP_HEADER_OFFSET, XLF_CAN_BE_LOADED_ABOVE_4G, XLF_KERNEL_64 } from "../formats/bzimage.js";
import { hex } from "../num.js";
import type { ProgressCallback } from "../plan.js";
import type { Placement } from "../ram/ledger.js";
import { checkReserved, type BootRecord, type LoadedImage, type LoadedKernel, type ReservedRange, type Vm } from "../vm.js";
import { propertyOffsets } from "../fdt/locate.js";
import { applyLinuxEdits } from "../fdt/linux.js";
import { parseFdt, readFdt } from "../fdt/parse.js";
import { cellWidths, emptyFdt, ensureNode, setProp, u32Value, type Fdt } from "../fdt/tree.js";
import { writeFdt } from "../fdt/write.js";
import {
  alignDownN, ARM_ZIMAGE_OFFSET, below4g, GiB, KiB, mainRam, MiB, QEMU_ARM64_RAW_KERNEL_OFFSET, QEMU_ARM_BOOTLOADER_MAX_SIZE,
  QEMU_ARM_KERNEL_OFFSET, QEMU_GENERATED_DTB_SIZE, QEMU_TYPE_OF_LOADER, QEMU_X86_CMDLINE_ADDR, QEMU_X86_PROT_ADDR, QEMU_X86_REAL_ADDR,
  qemuArmDtbAddr, qemuArmInitrdAddr, qemuRiscvFdtAddr, qemuRiscvInitrdAddr, qemuUserDtbSize, qemuX86InitrdMax, riscvPmd, alignUpN,
  type Layout, type LinuxArch,
} from "./layout.js";
import { buildBootParams, ZERO_PAGE_SIZE } from "./x86-boot-params.js";
import { LEGACY_HOLE_END, LEGACY_HOLE_START } from "./x86-e820.js";
import { longModeState, protectedModeState, realModeState, type X86CpuState } from "./cpu-x86.js";
import { placeX86Tables, type PlacedTables } from "./x86-tables.js";
import { arm64Cpu, armCpu, riscvCpu, type ArmCpuStateVariant, type BootStub } from "./cpu-arm.js";
import { ARM64_STUB_ALIGN, arm64Stub } from "./stubs/arm64.js";
import { ARM_STUB_ALIGN, armStub } from "./stubs/arm.js";
import { RISCV_STUB_ALIGN, riscvStub } from "./stubs/riscv.js";
import { prepareUkiBoot, type PcrBank, type UkiBootInfo } from "./uki.js";
import { loadX86Direct } from "./x86-direct.js";
import { bootPvh, type PvhBoot } from "./pvh.js";
import { buildSetupData, checkSetupData, e820ExtData, setupDataSize, SETUP_DATA_FIELD, SETUP_DATA_PROTOCOL, SETUP_DTB, SETUP_E820_EXT, SETUP_RNG_SEED, type SetupDataEntry } from "./setup-data.js";
import { buildE820, E820_MAX_ENTRIES, type E820Map } from "./x86-e820.js";
import { readKernelInfo } from "../formats/kernel-info.js";
import { readBytes } from "../sources/source.js";

export type { Layout, LinuxArch } from "./layout.js";
export type { Arm64CpuState, ArmCpuState, RiscvCpuState, BootStub } from "./cpu-arm.js";

export interface BootLinuxOptions {
  arch: LinuxArch;
  /** Kernel file name in the VM's files: Image, Image.gz, zboot, zImage, uImage, ELF, bzImage, raw. */
  kernel: string;
  /** Initial ramdisk file name (placed verbatim; a ramdisk uImage's payload). */
  initrd?: string;
  /** Device tree: a file name or the blob. Omitted (arm, riscv): a minimal tree (cells, /chosen, /memory) is generated. */
  dtb?: string | Uint8Array;
  /** Kernel command line: /chosen bootargs, or the x86 command line. Omitted: bootargs left as in the tree. */
  cmdline?: string;
  /** "qemu": QEMU 7.2's addresses; "default": see layout.ts. */
  layout?: Layout;
  /** riscv: SBI firmware (e.g. OpenSBI fw_dynamic) loaded at the RAM base like QEMU's -bios; the CPU starts there. */
  firmware?: string;
  /**
   * riscv: the entry of an SBI firmware (OpenSBI fw_dynamic) that is already in the machine and
   * not placed by bootLinux (QEMU virt's own OpenSBI at 0x80000000 with its default -bios). The
   * CPU starts there in M-mode (with `stub`: the M-mode stub jumps there) with a0 = hart,
   * a1 = DTB, a2 = a fw_dynamic_info we place (next_addr = kernel, next_mode = S), as QEMU's
   * reset ROM does. Declare the firmware's memory in `reserved` so nothing is placed on it.
   * Not with `firmware`.
   */
  firmwareAt?: number;
  /** riscv: the boot hart's id, passed in a0 (default 0). */
  hartId?: number;
  /** Bytes of free space at the end of the written device tree, for firmware that edits it in place (default 64 KiB). */
  fdtFreeSpace?: number;
  /** x86 entry: "real" (QEMU's, needs a BIOS), "protected" (32-bit protocol), "long" (64-bit protocol). */
  x86Mode?: "real" | "protected" | "long";
  /**
   * x86 32/64-bit entries: place a GDT (__BOOT_CS 0x10, __BOOT_DS 0x18) and, for the 64-bit entry,
   * identity page tables (≥ 0–4 GiB), and report them in `cpu` (default true). false: the VMM
   * provides them (`cpu.gdtr` and, in long mode, `cpu.cr3` are then null).
   */
  x86Tables?: boolean;
  /**
   * x86 direct boot (src/boot/x86-direct.ts): decompress the bzImage's payload on the host, place
   * the vmlinux inside at its link address and enter it (startup_64 / startup_32) instead of the
   * bzImage's own decompressor. Default layout only; 64-bit entry on x86_64, 32-bit on x86.
   * `{ at }`: place it there instead (a relocatable kernel, `at` aligned to kernel_alignment; a
   * 32-bit kernel's relocations are applied).
   */
  x86Direct?: boolean | { at: number };
  /**
   * Ranges of guest RAM the guest must not use, in addition to the VM's own (createVm
   * `reserved`): e.g. an emulator's own blobs (QEMU virt's device tree, its OpenSBI). Every
   * placement keeps out of them: automatic ones look elsewhere, a layout's fixed address (arm
   * zImage at RAM + 0x8000, QEMU's addresses…) moves to the next suitable free address, and
   * what cannot move (an ELF or uImage kernel's own address, a compressed kernel, riscv
   * `firmware` at the RAM base) is refused with OVERLAP. x86: e820 entries (type default 2);
   * arm64, arm, riscv: /memreserve/ entries in the device tree (their parts inside RAM).
   */
  reserved?: ReservedRange[];
  /**
   * arm64, arm, riscv: place a boot stub (src/boot/stubs/) that loads the protocol's registers and
   * jumps to the kernel (riscv with firmware: to the firmware); cpu.pc is then the stub's address.
   * Refused (UNSUPPORTED) on x86.
   */
  stub?: boolean;
  /**
   * Device trees: /chosen rng-seed (32 bytes) and kaslr-seed (8 bytes) are fresh random bytes
   * (WebCrypto getRandomValues) for every boot. A seed (integer 0 … 2^64 − 1) derives them
   * instead, so the boot is reproducible byte for byte.
   */
  seed?: number | bigint;
  /**
   * x86 entry protocol: "linux" (boot.rst's 16/32/64-bit protocols, x86Mode; default) or "pvh"
   * (src/boot/pvh.ts): the kernel's XEN_ELFNOTE_PHYS32_ENTRY in 32-bit protected mode with EBX =
   * hvm_start_info; the kernel is an ELF vmlinux or a bzImage whose payload is decompressed on the host.
   */
  x86Entry?: "linux" | "pvh";
  /** PVH: the ACPI RSDP's physical address, for hvm_start_info.rsdp_paddr (omitted: 0). */
  rsdp?: number;
  /**
   * x86 (boot protocol 2.09+): the setup_data chain hooked into the zero page (src/boot/setup-data.ts).
   * `rngSeed`: a SETUP_RNG_SEED node of 32 random bytes (fresh every boot, or derived from `seed`);
   * `entries`: nodes of any type, refused when above the kernel's kernel_info.setup_type_max.
   * A `dtb` given on x86 becomes a SETUP_DTB node; an e820 map of more than 128 entries a SETUP_E820_EXT one.
   */
  setupData?: { rngSeed?: boolean; entries?: SetupDataEntry[] };
  /**
   * Unified Kernel Images (src/boot/uki.ts): the profile to boot, by number or by its ID= (default:
   * profile 0 when the UKI has profiles, as systemd-stub).
   */
  profile?: number | string;
  /** UKI: let `cmdline` replace the UKI's .cmdline (without it, giving both is refused). */
  cmdlineOverride?: boolean;
  /** UKI: compute the PCR 11 value systemd-stub would measure (result `uki.measured`). */
  measure?: boolean;
  /** UKI with measure: the PCR banks (default ["sha256"]). */
  pcrBanks?: PcrBank[];
  /**
   * Progress of the copies into guest RAM, summed over every placement of this boot (kernel,
   * initrd, device tree, zero page, tables…): `loaded` bytes copied so far, never decreasing;
   * `total` the bytes of the copies begun so far plus the initrd's file size until its copy
   * starts (the kernel's size is known only once its header is read, a device tree's once it is
   * written). The last call has loaded === total.
   */
  onProgress?: ProgressCallback;
}

export interface BootPlacement extends Placement {
  /** kernel, initrd, dtb, firmware, fw_dynamic_info, setup, cmdline, zero-page. */
  role: string;
  format: string;
}

/**
 * The state the first instruction sees: one variant per architecture, told apart by `arch`:
 * arm64/arm/riscv in src/boot/cpu-arm.ts, x86 in src/boot/cpu-x86.ts. Registers not listed are
 * don't-care (booting docs).
 */
export type BootCpuState = ArmCpuStateVariant | X86CpuState;

/** Kept for callers of the first version: the fields every variant has. */
export interface CommonCpuState {
  arch: LinuxArch;
  /** For people: "EL1h, MMU off…", "svc…", "S"/"M", "real"/"protected"/"long". */
  mode: string;
  /** Guest physical address of the first instruction. */
  pc: bigint;
  regs: Record<string, bigint>;
}

export interface LinuxBoot {
  arch: LinuxArch;
  layout: Layout;
  kernel: LoadedKernel;
  initrd?: LoadedImage;
  /** The device tree as written (arm, riscv). */
  dtb?: { paddr: number; size: number; fdt: Fdt };
  /** x86: where the zero page (or, in real mode, the setup code whose header the kernel reads) went. */
  zeroPage?: { paddr: number; size: number };
  cmdline?: { paddr: number; size: number };
  cpu: BootCpuState;
  /** Everything placed, in placement order. */
  placements: BootPlacement[];
  /** x86: the setup_data chain (head address in the zero page's setup_data), one node per entry. */
  setupData?: { paddr: number; size: number; nodes: Array<{ type: number; paddr: number; len: number }> };
  /** x86Entry "pvh": the note's entry and where hvm_start_info went. */
  pvh?: PvhBoot;
  /** When the kernel was a Unified Kernel Image: which sections and profile were used, and the measurements. */
  uki?: UkiBootInfo;
}

const ARCHES: readonly LinuxArch[] = ["arm64", "arm", "riscv64", "riscv32", "x86_64", "x86"];
/** Which detected kernel formats make sense per architecture (the rest are refused before loading). */
const KERNEL_FORMATS: Record<"arm64" | "arm" | "riscv" | "x86", readonly string[]> = {
  arm64: ["arm64-image", "gzip", "efi-zboot", "uimage", "elf", "raw"],
  arm: ["zimage", "uimage", "elf", "raw"],
  riscv: ["riscv-image", "uimage", "elf", "raw"],
  x86: ["bzimage"],
};
/** ELF e_machine names (src/formats/elf.ts MACHINES) per architecture. */
const ELF_MACHINES: Record<string, RegExp> = { arm64: /aarch64/i, arm: /^arm$/i, riscv: /risc-?v/i };

const DEFAULT_FDT_FREE_SPACE = 64 * KiB;
/**
 * arm64 booting.rst: "The device tree blob (dtb) must be placed on an 8-byte boundary and must not
 * exceed 2 megabytes in size." arm's booting.rst states no number, but arch/arm/kernel/head.S
 * maps the tree with two 1 MiB sections (ARM_DTB_WINDOW below): never more than 2 MiB either.
 */
const DTB_MAX: Partial<Record<LinuxArch, number>> = { arm64: 2 * MiB, arm: 2 * MiB };
/** arm: two 1 MiB sections from the tree's section start are mapped early (head.S). */
const ARM_DTB_WINDOW = 2 * MiB;
/** booting.rst: initrd and kernel "within a 1 GB aligned physical memory window of up to 32 GB in size". */
const ARM64_INITRD_WINDOW = 32 * GiB;

const bad = (field: string, msg: string) => new GuestImageError("BAD_ARGUMENT", msg, { field });
const family = (a: LinuxArch) => (a === "riscv64" || a === "riscv32" ? "riscv" : a === "x86_64" || a === "x86" ? "x86" : a);

/** Loads a Linux kernel with its initrd and device tree (or zero page) and returns the boot CPU state. */
export async function bootLinux(vm: Vm, opts: BootLinuxOptions): Promise<LinuxBoot> {
  // One transaction: a boot that fails at any step (no room for the initrd, a device tree that
  // does not fit) leaves guest RAM, the ledger and the event log as they were.
  const b = await vm.transaction((tvm) => boot(tvm, opts));
  vm.resetState.boot = bootRecord(vm, b, opts.seed);
  return b;
}

/**
 * What vm.reset() needs to hand this boot over again: its CPU state and where the device tree's
 * per-boot random values lie (read back from the tree as placed).
 */
function bootRecord(vm: Vm, b: LinuxBoot, seed: number | bigint | undefined): BootRecord {
  const rec: BootRecord = { cpu: structuredClone(b.cpu), seed, makeSeeds: seedBytes };
  if (b.dtb) {
    const sites = seedOffsets(vm.ram.read(b.dtb.paddr, b.dtb.size));
    if (sites) rec.seedSites = { rng: b.dtb.paddr + sites.rng, kaslr: b.dtb.paddr + sites.kaslr };
  }
  return rec;
}

/** Offsets of /chosen rng-seed (32 bytes) and kaslr-seed (8 bytes) values in a device tree blob. */
export function seedOffsets(blob: Uint8Array): { rng: number; kaslr: number } | undefined {
  const m = propertyOffsets(blob, "/chosen", ["rng-seed", "kaslr-seed"]);
  const rng = m.get("rng-seed");
  const kaslr = m.get("kaslr-seed");
  if (!rng || !kaslr || rng.len !== 32 || kaslr.len !== 8) return undefined;
  return { rng: rng.offset, kaslr: kaslr.offset };
}

/** The seed values as written into /chosen: rng-seed's 32 bytes, kaslr-seed as a big-endian u64. */
export function seedBytes(seed: number | bigint | undefined): { rng: Uint8Array; kaslr: Uint8Array } {
  const s = bootSeeds(seed);
  const kaslr = new Uint8Array(8);
  new DataView(kaslr.buffer).setBigUint64(0, s.kaslr, false);
  return { rng: s.rng, kaslr };
}

async function boot(vm: Vm, opts: BootLinuxOptions): Promise<LinuxBoot> {
  if (!opts || typeof opts !== "object") throw bad("options", "bootLinux needs an options object");
  if (!ARCHES.includes(opts.arch)) throw bad("arch", `arch must be one of ${ARCHES.join(", ")}, got ${JSON.stringify(opts.arch)}`);
  if (typeof opts.kernel !== "string" || opts.kernel === "") throw bad("kernel", "kernel must name a file");
  // A Unified Kernel Image: boot its .linux with its initrd, command line and device tree.
  const uki = await prepareUkiBoot(vm, opts);
  if (uki) {
    const r = await bootPlain(uki.vm, uki.opts);
    return { ...r, uki: uki.info };
  }
  return bootPlain(vm, opts);
}

async function bootPlain(vm: Vm, opts: BootLinuxOptions): Promise<LinuxBoot> {
  const arch = opts.arch;
  if (!ARCHES.includes(arch)) throw bad("arch", `arch must be one of ${ARCHES.join(", ")}, got ${JSON.stringify(arch)}`);
  const layout: Layout = opts.layout ?? "default";
  if (layout !== "qemu" && layout !== "default") throw bad("layout", `layout must be "qemu" or "default", got ${JSON.stringify(layout)}`);
  if (typeof opts.kernel !== "string" || opts.kernel === "") throw bad("kernel", "kernel must name a file");
  if (opts.initrd !== undefined && (typeof opts.initrd !== "string" || opts.initrd === "")) throw bad("initrd", "initrd must name a file");
  if (opts.cmdline !== undefined && (typeof opts.cmdline !== "string" || opts.cmdline.includes("\0"))) throw bad("cmdline", "cmdline must be a string without NUL");
  if (opts.firmware !== undefined && family(arch) !== "riscv") throw bad("firmware", "firmware is for riscv (SBI firmware such as OpenSBI)");
  checkReserved(opts.reserved, "reserved");
  if (opts.firmwareAt !== undefined) {
    if (family(arch) !== "riscv") throw bad("firmwareAt", "firmwareAt is for riscv (an SBI firmware already in the machine)");
    if (opts.firmware !== undefined) throw bad("firmwareAt", "firmwareAt names a firmware already in the machine: give it or firmware (one we place), not both");
    const max = arch === "riscv32" ? 0xffffffff : Number.MAX_SAFE_INTEGER;
    if (!Number.isSafeInteger(opts.firmwareAt) || opts.firmwareAt < 0 || opts.firmwareAt > max) {
      throw bad("firmwareAt", `firmwareAt must be an integer address from 0 to ${hex(max)}, got ${String(opts.firmwareAt)}`);
    }
  }
  // QEMU layout: the tree's free space is what QEMU leaves (its blob size, see layout.ts), unless asked for.
  const freeSpace = opts.fdtFreeSpace ?? (layout === "qemu" ? 0 : DEFAULT_FDT_FREE_SPACE);
  if (!Number.isSafeInteger(freeSpace) || freeSpace < 0) throw bad("fdtFreeSpace", `fdtFreeSpace must be a non-negative integer, got ${String(freeSpace)}`);
  const fam = family(arch);
  if (opts.x86Entry !== undefined && (fam !== "x86" || !["linux", "pvh"].includes(opts.x86Entry))) throw bad("x86Entry", `x86Entry is "linux" or "pvh", for x86 kernels; got ${JSON.stringify(opts.x86Entry)} for ${arch}`);
  if (fam !== "x86" && (opts.setupData !== undefined || opts.rsdp !== undefined)) throw bad(opts.rsdp !== undefined ? "rsdp" : "setupData", "setupData and rsdp are for x86 kernels");
  if (fam === "x86" && opts.dtb !== undefined && opts.x86Entry === "pvh") throw bad("dtb", "a PVH boot has no zero page to hang a SETUP_DTB off");
  if (opts.stub !== undefined && typeof opts.stub !== "boolean") throw bad("stub", `stub must be true or false, got ${String(opts.stub)}`);
  if (opts.stub && fam === "x86") {
    throw new GuestImageError("UNSUPPORTED", `no boot stub for ${arch}: stubs exist for arm64, arm, riscv64 and riscv32 (x86 hands over a full CPU state instead)`, { field: "stub" });
  }
  const seeds = fam === "x86" ? undefined : bootSeeds(opts.seed);

  // ── validate inputs before placing anything ──
  const kfile = await vm.open(opts.kernel);
  let kformat: string;
  let textOffset: bigint | null = null;
  let imageSize: bigint | null = null;
  let gzPayload: "arm64-image" | "raw" | null = null;
  const kernelFileSize = kfile.size;
  try {
    const { format } = await sniff(kfile);
    kformat = format.name;
    if (kformat === "arm64-image") ({ text_offset: textOffset, image_size: imageSize } = await readArm64Header(kfile));
    if (kformat === "riscv-image") ({ text_offset: textOffset, image_size: imageSize } = await readRiscvHeader(kfile));
    if (kformat === "elf") checkElfMachine(arch, opts.kernel, machineName((await readElf(kfile)).header.machine));
    // QEMU reads an arm64 Image.gz's header after decompressing it (hw/arm/boot.c
    // load_aarch64_image): its layout needs the payload's kind, text_offset and image_size.
    if (kformat === "gzip" && arch === "arm64") ({ payload: gzPayload, textOffset, imageSize } = await gzipPayloadHead(kfile));
  } finally {
    await kfile.close();
  }
  // The PVH entry also takes an ELF vmlinux (its note names the entry).
  const formats = fam === "x86" && opts.x86Entry === "pvh" ? [...KERNEL_FORMATS.x86, "elf"] : KERNEL_FORMATS[fam];
  if (!formats.includes(kformat)) {
    throw new GuestImageError("UNSUPPORTED", `kernel format ${kformat} cannot boot as ${arch} Linux (expected one of: ${formats.join(", ")})`, { image: opts.kernel, field: "kernel" });
  }
  let initrdSize = 0;
  if (opts.initrd !== undefined) {
    const f = await vm.open(opts.initrd);
    initrdSize = f.size;
    await f.close();
  }
  let fdt: Fdt | undefined;
  let dtbFileSize = 0;
  let x86Dtb: Uint8Array | undefined;
  if (fam === "x86" && opts.dtb !== undefined) x86Dtb = await x86DtbBytes(vm, opts.dtb);
  if (fam !== "x86") {
    if (opts.dtb instanceof Uint8Array) {
      fdt = parseFdt(opts.dtb, "dtb");
      dtbFileSize = opts.dtb.length;
    } else if (typeof opts.dtb === "string") {
      const f = await vm.open(opts.dtb);
      try {
        fdt = await readFdt(f);
        dtbFileSize = f.size;
      } finally {
        await f.close();
      }
    } else if (opts.dtb !== undefined) {
      throw bad("dtb", "dtb must be a file name or a Uint8Array");
    } else {
      fdt = minimalFdt();
    }
    // The root's cell widths size every value written into the tree: check them now, before
    // anything is placed, and name the device tree if they are unusable.
    try {
      cellWidths(fdt.root);
    } catch (e) {
      const name = typeof opts.dtb === "string" ? opts.dtb : "dtb";
      throw e instanceof GuestImageError ? new GuestImageError(e.code, e.message, { image: name, field: e.field }) : e;
    }
  }
  let firmwareIsElf = false;
  if (opts.firmware !== undefined) {
    const f = await vm.open(opts.firmware);
    try {
      firmwareIsElf = (await sniff(f)).format.name === "elf";
    } finally {
      await f.close();
    }
  }
  const hartId = opts.hartId ?? 0;
  if (!Number.isSafeInteger(hartId) || hartId < 0) throw bad("hartId", `hartId must be a non-negative integer, got ${String(hartId)}`);

  const placements: BootPlacement[] = [];
  const record = (role: string, x: { name: string; format: string; paddr: number; size: number }) => {
    placements.push({ role, name: x.name, format: x.format, paddr: x.paddr, size: x.size });
  };
  const step = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof GuestImageError && placements.length) {
        const done = placements.map((p) => `${p.role} at ${hex(p.paddr)}`).join(", ");
        const err = new GuestImageError(e.code, `${e.message} (while ${what}; already placed: ${done})`, { field: e.field, cause: e });
        Object.defineProperty(err, "image", { value: e.image, enumerable: true });
        throw err;
      }
      throw e;
    }
  };
  const ram = mainRam(vm.ram.regions);
  if (opts.onProgress !== undefined && typeof opts.onProgress !== "function") throw bad("onProgress", `onProgress must be a function, got ${typeof opts.onProgress}`);
  if (opts.onProgress) vm = summedProgress(vm, opts.onProgress, opts.initrd === undefined ? undefined : { name: opts.initrd, size: initrdSize });
  const ctx: Ctx = { vm, opts, arch, layout, ram, kformat, gzPayload, textOffset, imageSize, kernelFileSize, initrdSize, dtbFileSize, freeSpace, hartId, firmwareIsElf, seeds, record, step, x86Dtb };
  if (fam === "x86" && opts.x86Entry === "pvh") return bootPvh({ vm, opts, arch: arch as "x86_64" | "x86", kformat, record, step }, placements);
  if (fam === "x86") return bootX86(ctx, placements);
  return bootDt(ctx, fdt!, placements);
}

/**
 * bootLinux's onProgress: `vm` with every loadKernel, loadModule and place (the helpers'
 * placements too: x86 tables, direct boot) reporting its copy into one running sum. The initrd's
 * file size is in the total from the start, so a bar does not jump back when it begins.
 */
function summedProgress(vm: Vm, cb: ProgressCallback, initrd?: { name: string; size: number }): Vm {
  let done = 0; // bytes of the copies that finished
  let pending = initrd?.size ?? 0;
  const each = (name: string): ProgressCallback => (loaded, total) => {
    if (initrd && name === initrd.name) pending = 0;
    cb(done + loaded, done + total + pending);
    if (loaded === total) done += total;
  };
  const wrap = (m: "loadKernel" | "loadModule" | "place") => {
    const f = (vm[m] as (...a: unknown[]) => Promise<unknown>).bind(vm);
    const at = m === "place" ? 2 : 1; // the options argument
    return (...a: unknown[]) => {
      const o = (a[at] ?? {}) as { onProgress?: ProgressCallback };
      const own = o.onProgress;
      const mine = each(a[0] as string);
      a[at] = { ...o, onProgress: own ? (l: number, t: number) => (own(l, t), mine(l, t)) : mine };
      return f(...a);
    };
  };
  const methods = { loadKernel: wrap("loadKernel"), loadModule: wrap("loadModule"), place: wrap("place") } as Record<string, unknown>;
  return new Proxy(vm, {
    get(target, key) {
      if (typeof key === "string" && key in methods) return methods[key];
      const v = Reflect.get(target, key, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

interface Ctx {
  vm: Vm;
  opts: BootLinuxOptions;
  arch: LinuxArch;
  layout: Layout;
  ram: { base: number; size: number };
  kformat: string;
  /** arm64 gzip kernel: what its decompressed payload is (textOffset/imageSize are then the payload's). */
  gzPayload: "arm64-image" | "raw" | null;
  textOffset: bigint | null;
  imageSize: bigint | null;
  kernelFileSize: number;
  initrdSize: number;
  dtbFileSize: number;
  freeSpace: number;
  hartId: number;
  firmwareIsElf: boolean;
  /** Device trees: fresh (or seeded) /chosen rng-seed and kaslr-seed. */
  seeds?: { rng: Uint8Array; kaslr: bigint };
  record(role: string, x: { name: string; format: string; paddr: number; size: number }): void;
  step<T>(what: string, fn: () => Promise<T>): Promise<T>;
  /** x86: the device tree for a SETUP_DTB node, checked. */
  x86Dtb?: Uint8Array;
}

/** What bootLinux hands the kernel when no tree is given: §3 of the spec's required minimum we can know. */
function minimalFdt(): Fdt {
  const t = emptyFdt();
  setProp(t.root, "#address-cells", u32Value(2));
  setProp(t.root, "#size-cells", u32Value(2));
  ensureNode(t, "/chosen");
  return t;
}

// ── arm64, arm, riscv: kernel + initrd + device tree ──

async function bootDt(c: Ctx, fdt: Fdt, placements: BootPlacement[]): Promise<LinuxBoot> {
  const { vm, opts, arch, layout, ram } = c;
  const riscv = arch === "riscv64" || arch === "riscv32";
  const qemu = layout === "qemu";

  // Reserved ranges (the VM's, kept out of by findFree itself, and this boot's): no placement
  // lands on them, and the tree lists them (/memreserve/, below).
  const extra = checkReserved(opts.reserved, "reserved");
  const reserved = [...vm.reserved, ...extra];
  const hit = (base: number, size: number) => reserved.find((r) => base < r.base + r.size && r.base < base + size);
  const span = (base: number, size: number) => `[${hex(base)}, ${hex(base + size)})`;
  // A layout's fixed address, or where a reserved range is in the way, the next suitable free
  // address above it (down: the highest below it, for what the layout puts at the top of RAM).
  const clearOf = (at: number, size: number, o: { align: number; down?: boolean; max?: number }): number => {
    if (size <= 0 || !hit(at, size)) return at;
    return o.down
      ? vm.findFree(size, { align: o.align, from: "top", max: at + size, avoid: extra })
      : vm.findFree(size, { align: o.align, from: "bottom", min: at, max: o.max, avoid: extra });
  };
  // What cannot move (an address fixed by the image's own header, a compressed kernel whose size
  // is known only once unpacked, firmware at the RAM base) is refused.
  const refuse = (what: string, image: string, base: number, size: number, why: string) => {
    const r = hit(base, size);
    if (r) {
      throw new GuestImageError("OVERLAP", `${what} ${span(base, size)} overlaps the reserved range ${span(r.base, r.size)}; ${why}`, { image, field: "reserved" });
    }
  };

  // Firmware (riscv): at the RAM base, as QEMU's -bios (an ELF goes where it is linked).
  let firmware: LoadedKernel | undefined;
  if (opts.firmware !== undefined) {
    if (!c.firmwareIsElf) refuse("firmware at the RAM base", opts.firmware, ram.base, 1, "it goes where QEMU's -bios goes; for a firmware already in the machine use firmwareAt");
    firmware = await c.step("placing the firmware", () => vm.loadKernel(opts.firmware!, c.firmwareIsElf ? {} : { at: ram.base }));
    c.record("firmware", firmware);
    refuse("the firmware", firmware.name, firmware.paddr, firmware.size, "it cannot move");
  }

  // Kernel: the layout's address, moved past reserved ranges where its format allows.
  const kernelAt = await c.step("placing the kernel", async () => movedKernelAddress(c, kernelAddress(c, firmware), hit, clearOf));
  const kernel = await c.step("placing the kernel", () => vm.loadKernel(opts.kernel, { at: kernelAt }));
  c.record("kernel", kernel);
  refuse("the kernel", kernel.name, kernel.paddr, kernel.size,
    kernelAt === undefined ? `its header fixes its address (${kernel.format})` : `a ${kernel.format} kernel is not moved (its extent is known only once it is unpacked, or its address is fixed by the protocol)`);
  const kernelEnd = kernel.paddr + kernel.size;

  // Device tree edits that do not depend on addresses, then a size estimate for placement.
  const memory = layout === "qemu" ? [{ base: ram.base, size: ram.size }] : vm.ram.regions.map(({ base, size }) => ({ base, size }));
  // QEMU's riscv boot code leaves /memory of a user tree alone (its own generated tree has the real RAM).
  const rewriteMemory = !(qemu && riscv && opts.dtb !== undefined);
  const qemuSize = qemu ? (opts.dtb === undefined ? QEMU_GENERATED_DTB_SIZE : qemuUserDtbSize(c.dtbFileSize)) : 0;
  const edits = (initrd?: { start: number; end: number }, cells?: number) => {
    applyLinuxEdits(fdt, {
      bootargs: opts.cmdline,
      initrd,
      // QEMU 7.2 writes both as one u32 cell (qemu_fdt_setprop_cell) on arm and riscv alike.
      initrdCells: cells ?? (qemu ? 1 : undefined),
      memory: rewriteMemory ? memory : undefined,
      memoryMode: qemu ? "qemu" : "exact",
      seeds: c.seeds,
    });
  };
  // The reserved ranges' parts inside RAM as /memreserve/ entries: Linux keeps its allocator off
  // them (memblock_reserve) from its first steps, on every architecture, without unmapping them
  // (a firmware that needs no-map adds its own /reserved-memory node, as OpenSBI does).
  for (const r of reserved) {
    for (const g of vm.ram.regions) {
      const lo = Math.max(r.base, g.base);
      const hi = Math.min(r.base + r.size, g.base + g.size);
      if (hi <= lo) continue;
      const e = { address: BigInt(lo), size: BigInt(hi - lo) };
      if (!fdt.reservations.some((x) => x.address === e.address && x.size === e.size)) fdt.reservations.push(e);
    }
  }
  // Draft with 2-cell initrd values: the largest the tree can get, so the final blob fits its slot.
  edits(c.opts.initrd !== undefined ? { start: 0, end: 0 } : undefined, c.opts.initrd !== undefined && !qemu ? 2 : undefined);
  // Free space (ours, or QEMU's 2 × (size + 10000)) never pushes the tree past the architecture's
  // limit: the padding shrinks; only a tree whose content alone is too large is refused.
  const limit = DTB_MAX[arch];
  const content = writeFdt(fdt).length;
  if (limit !== undefined && content > limit) {
    const name = typeof opts.dtb === "string" ? opts.dtb : "dtb";
    const rule = arch === "arm64" ? "arm64 booting.rst allows" : "arm's head.S maps";
    throw new GuestImageError("TOO_LARGE", `the device tree's content is ${hex(content)} bytes (totalsize without free space); ${rule} at most ${hex(limit)} (2 MiB)`, { image: name, field: "totalsize" });
  }
  let freeSpace = c.freeSpace;
  let dtbSize = Math.max(content + freeSpace, qemuSize);
  if (limit !== undefined && dtbSize > limit) {
    dtbSize = limit;
    freeSpace = Math.min(freeSpace, limit - content);
  }

  // Initrd and device tree addresses.
  let initrdAt: number | undefined;
  let dtbAt: number;
  const initrdAuto = { align: 4 * KiB, avoid: extra };
  let initrd: LoadedImage | undefined;
  const loadInitrd = async (o: { at?: number; auto?: object }) => {
    if (opts.initrd === undefined) return;
    initrd = await c.step("placing the initrd", () => vm.loadModule(opts.initrd!, o));
    c.record("initrd", initrd);
  };
  if (qemu) {
    if (riscv) {
      initrdAt = await c.step("placing the initrd", async () => clearOf(qemuRiscvInitrdAddr(ram, kernel.paddr), c.initrdSize, { align: 4 * KiB }));
      await loadInitrd({ at: initrdAt });
      dtbAt = await c.step("placing the device tree", async () => clearOf(qemuRiscvFdtAddr(ram, dtbSize), dtbSize, { align: 2 * MiB, down: true }));
    } else {
      const a = arch as "arm64" | "arm";
      initrdAt = await c.step("placing the initrd", async () => clearOf(qemuArmInitrdAddr(ram, kernel.format === "elf" ? kernelEnd : 0), c.initrdSize, { align: 4 * KiB }));
      await loadInitrd({ at: initrdAt });
      const at = qemuArmDtbAddr(a, initrdAt, initrd?.size ?? 0);
      dtbAt = await c.step("placing the device tree", async () => clearOf(at, dtbSize, { align: a === "arm64" ? 2 * MiB : 4 * KiB }));
    }
  } else if (arch === "arm") {
    const low = qemuArmInitrdAddr(ram, kernelEnd);
    await loadInitrd({ auto: { ...initrdAuto, from: "bottom", min: low } });
    dtbAt = await c.step("placing the device tree", async () => vm.findFree(dtbSize, { align: 4 * KiB, from: "bottom", min: initrd ? initrd.paddr + initrd.size : low, avoid: extra }));
  } else {
    // arm64 / riscv: device tree at the top (2 MiB aligned), initrd as high as possible below it.
    const window = arch === "arm64" ? alignDownN(kernel.paddr, GiB) : 0;
    const windowEnd = arch === "arm64" ? window + ARM64_INITRD_WINDOW : undefined;
    const fdtMax = arch === "riscv32" ? 3 * GiB : undefined; // rv32: the linear map ends there (QEMU's cap)
    dtbAt = await c.step("placing the device tree", async () => vm.findFree(dtbSize, { align: 2 * MiB, from: "top", min: kernelEnd, max: fdtMax, avoid: extra }));
    await loadInitrd({ auto: { ...initrdAuto, from: "top", min: Math.max(window, kernelEnd), max: Math.min(dtbAt, windowEnd ?? dtbAt) } });
  }

  if (arch === "arm") {
    // arch/arm/kernel/head.S maps the tree with two 1 MiB sections from its section's start ("We
    // map 2 sections in case the ATAGs/DTB crosses a section boundary"): it must end within 2 MiB
    // of the 1 MiB boundary below it. Shrink the padding to that; refuse only content beyond it.
    const room = ARM_DTB_WINDOW - (dtbAt % MiB);
    if (content > room) {
      const name = typeof opts.dtb === "string" ? opts.dtb : "dtb";
      throw new GuestImageError("TOO_LARGE", `the device tree's content (${hex(content)} bytes) at ${hex(dtbAt)} would end past the 2 MiB the arm kernel maps from ${hex(alignDownN(dtbAt, MiB))} (arch/arm/kernel/head.S)`, { image: name, field: "totalsize" });
    }
    if (dtbSize > room) {
      dtbSize = room;
      freeSpace = Math.min(freeSpace, room - content);
    }
  }

  // Final tree: initrd addresses filled in; padded to the slot size computed above.
  edits(initrd ? { start: initrd.paddr, end: initrd.paddr + initrd.size } : undefined);
  const blob = writeFdt(fdt, { freeSpace, minTotalsize: dtbSize });
  const dtbName = riscv ? "fdt" : "dtb"; // QEMU's ROM blob names
  const dtb = await c.step("placing the device tree", () => vm.place(dtbName, blob, { at: dtbAt, align: 8, format: "fdt" }));
  c.record("dtb", dtb);

  // CPU state, and the stub that sets it when asked for.
  const d = BigInt(dtb.paddr);
  let target: bigint;
  let fwInfo: bigint | undefined;
  if (arch === "arm64") target = kernel.entry;
  else if (arch === "arm") target = kernel.entry & ~1n; // booting.rst: ARM state (a zImage entry is A32 code)
  else {
    // riscv: the kernel's entry is its lowest address (QEMU passes the lowest PT_LOAD for an ELF).
    const kernelEntry = kernel.format === "elf" ? BigInt(kernel.paddr) : kernel.entry;
    target = kernelEntry;
    if (firmware || opts.firmwareAt !== undefined) {
      // The firmware (ours, or one already in the machine at firmwareAt) enters the kernel in
      // S-mode at next_addr: it learns that from the fw_dynamic_info we place.
      const info = fwDynamicInfo(arch as "riscv64" | "riscv32", kernelEntry, c.hartId);
      const placedInfo = await c.step("placing fw_dynamic_info", () => vm.place("fw_dynamic_info", info, { auto: { align: 8, from: "top", avoid: extra }, format: "fw_dynamic_info" }));
      c.record("fw_dynamic_info", placedInfo);
      target = firmware ? firmware.entry : BigInt(opts.firmwareAt!);
      fwInfo = BigInt(placedInfo.paddr);
    }
  }
  let stub: BootStub | undefined;
  if (opts.stub) {
    const bits32 = arch === "arm" || arch === "riscv32";
    if (bits32 && (target > 0xffffffffn || d > 0xffffffffn)) {
      throw new GuestImageError("BAD_ADDRESS", `the ${arch} stub holds 32-bit addresses: entry ${hex(target)} or device tree ${hex(d)} is above 4 GiB`, { field: "stub" });
    }
    const bytes = arch === "arm64" ? arm64Stub({ dtb: d, entry: target })
      : arch === "arm" ? armStub({ dtb: d, entry: target })
        : riscvStub({ xlen: arch === "riscv64" ? 64 : 32, priv: fwInfo !== undefined ? "M" : "S", hart: BigInt(c.hartId), dtb: d, a2: fwInfo ?? 0n, target });
    const align = arch === "arm64" ? ARM64_STUB_ALIGN : arch === "arm" ? ARM_STUB_ALIGN : RISCV_STUB_ALIGN;
    // At the top of RAM: clear of the RAM base, where emulators tend to put their own blobs
    // (QEMU virt: its 1 MiB device tree on arm), so the stub and the kernel's pieces load around them.
    const placed = await c.step("placing the boot stub", () =>
      vm.place("stub", bytes, { auto: { align: Math.max(align, 16), from: "top", max: bits32 ? 4 * GiB : undefined, avoid: extra }, format: "boot-stub" }));
    c.record("stub", placed);
    stub = { paddr: placed.paddr, size: placed.size };
  }
  const pc = stub ? BigInt(stub.paddr) : target;
  const cpu: BootCpuState = arch === "arm64" ? arm64Cpu({ pc, target, dtb: d, stub })
    : arch === "arm" ? armCpu({ pc, target, dtb: d, stub })
      : riscvCpu({ arch: arch as "riscv64" | "riscv32", pc, target, hart: BigInt(c.hartId), dtb: d, fwInfo, firmware: firmware ? "placed" : "external", stub });
  return { arch, layout, kernel, initrd, dtb: { paddr: dtb.paddr, size: dtb.size, fdt }, cpu, placements };
}

/** Where the kernel goes, by layout and format (undefined: where the image asks to be). */
function kernelAddress(c: Ctx, firmware: LoadedKernel | undefined): number | undefined {
  const { arch, layout, ram, kformat } = c;
  if (kformat === "uimage" || kformat === "elf") return undefined; // their headers fix the address
  const textOffset = c.textOffset === null ? 0 : Number(c.textOffset);
  if (arch === "arm64") {
    if (layout === "default") return ram.base; // the format adds text_offset to the 2 MiB-aligned base
    // QEMU (hw/arm/boot.c load_aarch64_image): gunzip first, then text_offset < 4 KiB (and
    // image_size ≠ 0) → +2 MiB; no Image magic → +0x80000. An Image.gz lands where the Image does.
    // (An EFI zboot is not unpacked by QEMU 7.2; newer QEMU's rule for it is the Image's, and
    // Linux has text_offset 0 since 5.8, so +2 MiB.)
    const kind = kformat === "gzip" ? c.gzPayload : kformat;
    if (kind === "raw") return ram.base + QEMU_ARM64_RAW_KERNEL_OFFSET;
    if (kind === "arm64-image" && (c.imageSize === 0n || textOffset >= QEMU_ARM_BOOTLOADER_MAX_SIZE)) return ram.base;
    return ram.base + 2 * MiB;
  }
  if (arch === "arm") return ram.base + (layout === "qemu" ? QEMU_ARM_KERNEL_OFFSET : ARM_ZIMAGE_OFFSET);
  // riscv
  const pmd = riscvPmd(arch as "riscv64" | "riscv32");
  // QEMU layout without a firmware: as QEMU with its default OpenSBI fw_dynamic (< 2 MiB at the RAM
  // base), so the kernel still lands at RAM + 2 MiB and an SBI the emulator brings has its room.
  const fwEnd = firmware ? firmware.paddr + firmware.size : layout === "qemu" ? ram.base + 1 : ram.base;
  let target = alignUpN(fwEnd, pmd);
  if (layout === "default" && kformat === "riscv-image") target = Math.max(target, ram.base + textOffset);
  // The riscv-image format puts the image at a PMD-aligned base + text_offset: ask for the base that gives `target`.
  if (kformat === "riscv-image") {
    if (target - textOffset < 0) {
      throw new GuestImageError("BAD_ADDRESS", `the kernel must start at ${hex(target)}, below its text_offset ${hex(textOffset)}`, { image: c.opts.kernel, field: "text_offset" });
    }
    return target - textOffset;
  }
  return target;
}

/**
 * The kernel's load address with reserved ranges honoured: where the layout's address would put
 * the kernel on one, the next suitable free address above it, by the booting rules:
 *   arm64 Image  a 2 MiB-aligned base + text_offset (booting.rst), image_size bytes from there
 *   riscv Image  a PMD-aligned (2 MiB rv64, 4 MiB rv32) start, image_size bytes
 *   arm zImage   any page in the first 128 MiB of RAM (start 0: position independent; booting.rst
 *                "placed in the first 128MiB of RAM"; the decompressor finds PHYS_OFFSET from its
 *                own address rounded down to 128 MiB and moves itself if the kernel it unpacks
 *                would overwrite it)
 * Other formats keep their address (the caller refuses them if they land on a reserved range).
 */
function movedKernelAddress(
  c: Ctx,
  at: number | undefined,
  hit: (base: number, size: number) => unknown,
  clearOf: (at: number, size: number, o: { align: number; max?: number }) => number,
): number | undefined {
  if (at === undefined) return at;
  const file = c.kernelFileSize;
  const imageSize = c.imageSize ?? 0n;
  if (imageSize > BigInt(Number.MAX_SAFE_INTEGER)) return at; // the format refuses it
  const size = Math.max(file, Number(imageSize));
  // An arm64 Image.gz: its decompressed header (read before placing) gives the footprint; without
  // image_size (pre-3.17) the unpacked size is unknown and it is not moved.
  const gzImage = c.kformat === "gzip" && c.gzPayload === "arm64-image" && imageSize > 0n;
  if (c.kformat === "arm64-image" || gzImage) {
    // Pre-3.17 images (image_size 0) run at 0x80000 (booting.rst; the format applies the same rule).
    const t = imageSize === 0n ? 0x80000 : Number(c.textOffset ?? 0n);
    const base = alignUpN(at, 2 * MiB);
    return hit(base + t, size) ? clearOf(base, t + size, { align: 2 * MiB }) : at;
  }
  if (c.kformat === "riscv-image") {
    const t = Number(c.textOffset ?? 0n);
    const start = at + t;
    return hit(start, size) ? clearOf(start, size, { align: riscvPmd(c.arch as "riscv64" | "riscv32") }) - t : at;
  }
  if (c.kformat === "zimage") {
    const block = alignDownN(c.ram.base, 128 * MiB);
    return clearOf(at, file, { align: 4 * KiB, max: block + 128 * MiB - 1 + file }); // the start within the first 128 MiB
  }
  return at;
}

/** The first bytes of a gzip kernel's payload: an arm64 Image (and its header fields) or not. */
async function gzipPayloadHead(file: ImageFile): Promise<{ payload: "arm64-image" | "raw"; textOffset: bigint | null; imageSize: bigint | null }> {
  const m = await readGzipMember({ file, start: 0, end: file.size, name: file.name, what: "gzip data" });
  // A payload that does not inflate is reported by the load itself, with the full checks.
  const head = await inflatePrefix(m, file, getInflater(), IMAGE_HEADER_SIZE).catch(() => new Uint8Array(0));
  if (!arm64ImageFormat.test(head, head.length)) return { payload: "raw", textOffset: null, imageSize: null };
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  return { payload: "arm64-image", textOffset: dv.getBigUint64(0x08, true), imageSize: dv.getBigUint64(0x10, true) };
}

function checkElfMachine(arch: LinuxArch, image: string, machine: string): void {
  const re = ELF_MACHINES[family(arch)];
  if (re && !re.test(machine)) {
    throw new GuestImageError("UNSUPPORTED", `the ELF kernel is for ${machine} (e_machine), not ${arch}`, { image, field: "e_machine" });
  }
}

/**
 * OpenSBI's struct fw_dynamic_info (include/sbi/fw_dynamic.h, version 2): magic "OSBI"
 * 0x4942534f, version, next_addr, next_mode (1 = S-mode), options, boot_hart; each an xlen word.
 */
function fwDynamicInfo(arch: "riscv64" | "riscv32", next: bigint, hart: number): Uint8Array {
  const w = arch === "riscv64" ? 8 : 4;
  const out = new Uint8Array(6 * w);
  const dv = new DataView(out.buffer);
  [0x4942534fn, 2n, next, 1n, 0n, BigInt(hart)].forEach((v, i) => {
    if (w === 8) dv.setBigUint64(i * 8, v, true);
    else dv.setUint32(i * 4, Number(v & 0xffffffffn), true);
  });
  return out;
}

/**
 * /chosen rng-seed (32 bytes, as QEMU writes) and kaslr-seed (a u64): from WebCrypto for every
 * boot, or derived from `seed` with splitmix64 (a reproducible boot, not a secret).
 */
function bootSeeds(seed: number | bigint | undefined): { rng: Uint8Array; kaslr: bigint } {
  const bytes = new Uint8Array(40);
  const dv = new DataView(bytes.buffer);
  if (seed === undefined) {
    const crypto = (globalThis as { crypto?: { getRandomValues?(a: Uint8Array): Uint8Array } }).crypto;
    if (typeof crypto?.getRandomValues !== "function") {
      throw new GuestImageError("UNSUPPORTED", "fresh device tree seeds need WebCrypto (crypto.getRandomValues); pass a seed for a reproducible boot", { field: "seed" });
    }
    crypto.getRandomValues(bytes);
  } else {
    if (!(typeof seed === "bigint" || Number.isSafeInteger(seed)) || BigInt(seed) < 0n || BigInt(seed) > 0xffffffffffffffffn) {
      throw bad("seed", `seed must be an integer from 0 to 2^64 - 1, got ${String(seed)}`);
    }
    // splitmix64 (Steele, Lea, Flood 2014): one 64-bit output per 8 bytes.
    const M = (1n << 64n) - 1n;
    let x = BigInt(seed);
    for (let o = 0; o < bytes.length; o += 8) {
      x = (x + 0x9e3779b97f4a7c15n) & M;
      let z = x;
      z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
      z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
      dv.setBigUint64(o, z ^ (z >> 31n), true);
    }
  }
  return { rng: bytes.slice(0, 32), kaslr: dv.getBigUint64(32, false) };
}

// ── x86: bzImage + command line + zero page ──

/**
 * layout "default", x86 kernel. boot.rst, pref_address: "If nonzero, represents a preferred load
 * address for the kernel. A relocating bootloader should attempt to load at this address if
 * possible." So a relocatable bzImage with a pref_address goes there first. If that range is
 * taken or not RAM, the fallback is what boot.rst allows a relocatable kernel: any address, the
 * kernel realigning itself to kernel_alignment; since it never runs below pref_address (init_size:
 * runtime_start = align_up(max(load, pref_address), kernel_alignment)), we take the lowest
 * kernel_alignment-aligned free range at or above pref_address that holds both the kernel and
 * its init_size window (below 4 GiB unless XLF_CAN_BE_LOADED_ABOVE_4G). Everything else (no
 * pref_address, not relocatable, not a bzImage) goes where its header asks (code32_start).
 */
async function loadX86KernelDefault(vm: Vm, name: string, kformat: string): Promise<LoadedKernel> {
  if (kformat !== "bzimage") return vm.loadKernel(name, {});
  const f = await vm.open(name);
  let bz: BzImage;
  try {
    bz = await readBzImage(f);
  } finally {
    await f.close();
  }
  const h = bz.header;
  const pref = h.pref_address ?? 0n;
  if (!bz.relocatable || pref === 0n || pref > BigInt(Number.MAX_SAFE_INTEGER)) return vm.loadKernel(name, {});
  try {
    return await vm.loadKernel(name, { at: Number(pref) });
  } catch (e) {
    if (!(e instanceof GuestImageError) || !["OVERLAP", "OUT_OF_RAM", "BAD_ADDRESS"].includes(e.code)) throw e;
    const span = Math.max(bz.kernelSize, h.init_size ?? 0);
    const above4g = (bz.xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G) !== 0;
    let at: number;
    try {
      at = vm.findFree(span, { align: h.kernel_alignment ?? 4 * KiB, min: Number(pref), max: above4g ? undefined : 4 * GiB, from: "bottom" });
    } catch {
      throw e; // nowhere at or above pref_address: the first refusal says why pref_address failed
    }
    return vm.loadKernel(name, { at });
  }
}

async function bootX86(c: Ctx, placements: BootPlacement[]): Promise<LinuxBoot> {
  const { vm, opts, layout } = c;
  const arch = c.arch as X86CpuState["arch"];
  const qemu = layout === "qemu";
  const mode = opts.x86Mode ?? (qemu ? "real" : undefined);
  if (mode !== undefined && !["real", "protected", "long"].includes(mode)) throw bad("x86Mode", `x86Mode must be "real", "protected" or "long", got ${JSON.stringify(mode)}`);

  // The e820 map's reserved ranges (the VM's and this boot's) and the PC's legacy area
  // 0x9FC00–0x100000 (x86-e820.ts) are kept out of by every automatic placement.
  const reserved = [...vm.reserved, ...checkReserved(opts.reserved, "reserved")];
  const avoid = [...reserved, { base: LEGACY_HOLE_START, size: LEGACY_HOLE_END - LEGACY_HOLE_START }];

  const directOpt = opts.x86Direct ?? false;
  const directAt = typeof directOpt === "object" && directOpt !== null ? directOpt.at : undefined;
  if (typeof directOpt !== "boolean" && (typeof directOpt !== "object" || directOpt === null || !Number.isSafeInteger(directAt) || directAt! < 0)) {
    throw bad("x86Direct", `x86Direct must be true, false or { at: address }, got ${JSON.stringify(directOpt)}`);
  }
  const direct = directOpt !== false;
  if (direct && (qemu || mode === "real")) {
    throw bad("x86Direct", "direct boot enters the decompressed kernel itself, which has no real-mode entry: use the default layout and the 64-bit (x86_64) or 32-bit (x86) entry");
  }
  if (direct && arch === "x86_64" && mode === "protected") {
    throw new GuestImageError("UNSUPPORTED", 'direct boot of an x86_64 kernel enters startup_64 (an x86_64 vmlinux has no 32-bit entry): use x86Mode "long"', { image: opts.kernel, field: "x86Mode" });
  }
  const kernel = direct
    ? await c.step("decompressing and placing the kernel (direct boot)", () => loadX86Direct(vm, opts.kernel, { arch: arch as "x86" | "x86_64", at: directAt }))
    : await c.step("placing the kernel", () => (qemu ? vm.loadKernel(opts.kernel, { at: QEMU_X86_PROT_ADDR }) : loadX86KernelDefault(vm, opts.kernel, c.kformat)));
  c.record("kernel", kernel);
  const k = kernel.arch as unknown as BzImageKernelArch;
  const h = k.setup_header;
  const above4g = (k.xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G) !== 0;
  const has64 = (k.xloadflags & XLF_KERNEL_64) !== 0;
  const entryMode = mode ?? (arch === "x86_64" && has64 ? "long" : "protected");
  if (entryMode === "long" && !has64) {
    throw new GuestImageError("UNSUPPORTED", `x86Mode "long" needs a kernel with XLF_KERNEL_64 (xloadflags ${hex(k.xloadflags)})`, { image: kernel.name, field: "xloadflags" });
  }
  const cmdBytes = new TextEncoder().encode((opts.cmdline ?? "") + "\0");
  const x86Tables = opts.x86Tables ?? true;
  if (typeof x86Tables !== "boolean") throw bad("x86Tables", `x86Tables must be true or false, got ${JSON.stringify(x86Tables)}`);
  // The 32-bit entry: the kernel, zero page, command line and initrd must be reachable with
  // 32-bit pointers (esi, cmd_line_ptr, ramdisk_image without ext_*): below 4 GiB.
  const lowMax = entryMode === "long" && !x86Tables ? undefined : 4 * GiB;
  const why = entryMode === "long" ? "the 64-bit entry with library page tables, which map from 0 and are themselves below 4 GiB" : "the 32-bit entry: esi and cmd_line_ptr are 32-bit pointers";
  const below4G = async (what: string, fn: () => Promise<LoadedImage>): Promise<LoadedImage> => {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof GuestImageError) || e.code !== "OUT_OF_RAM" || lowMax === undefined) throw e;
      throw new GuestImageError("OUT_OF_RAM", `must lie below 4 GiB for ${why}, and there is no free RAM there: ${e.message}`, { image: what, field: e.field, cause: e });
    }
  };
  if (entryMode === "protected") {
    const end = kernel.paddr + Math.max(kernel.size, k.init_size ?? 0);
    if (end > 4 * GiB) {
      throw new GuestImageError("OUT_OF_RAM", `the 32-bit entry runs the kernel where it was loaded, [${hex(kernel.paddr)}, ${hex(end)}) (init_size), which is not below 4 GiB: load it lower or use the 64-bit entry`, { image: kernel.name, field: "code32_start" });
    }
  }

  // Command line.
  const cmdline = await c.step("placing the command line", () =>
    below4G("cmdline", () => vm.place("cmdline", cmdBytes, { ...(qemu ? { at: QEMU_X86_CMDLINE_ADDR } : { auto: { from: "bottom", min: 0x1000, align: 16, max: lowMax, avoid } }), format: "cmdline" })));
  c.record("cmdline", cmdline);

  // Initrd: as high as the kernel can reach (boot.rst, initrd_addr_max).
  let initrd: LoadedImage | undefined;
  if (opts.initrd !== undefined) {
    const addrMax = h.initrd_addr_max ?? 0x37ffffff;
    if (qemu) {
      const max = qemuX86InitrdMax({ above4g, initrdAddrMax: addrMax, below4g: below4g(vm.ram.regions) });
      if (c.initrdSize >= max) {
        throw new GuestImageError("TOO_LARGE", `initrd of ${hex(c.initrdSize)} bytes does not fit below initrd_max ${hex(max)}`, { image: opts.initrd, field: "initrd_addr_max" });
      }
      const at = (max - c.initrdSize) & ~0xfff;
      initrd = await c.step("placing the initrd", () => vm.loadModule(opts.initrd!, { at: at >>> 0 }));
    } else {
      const max = above4g && entryMode === "long" ? undefined : Math.min(addrMax + 1, 4 * GiB);
      initrd = await c.step("placing the initrd", () => vm.loadModule(opts.initrd!, { auto: { from: "top", align: 4 * KiB, min: 0x100000, max, avoid } }));
    }
    c.record("initrd", initrd);
  }

  // setup_data chain (setup-data.ts): SETUP_E820_EXT for maps past 128 entries, SETUP_DTB, SETUP_RNG_SEED, the caller's.
  const e820 = buildE820(vm.ram.regions, reserved, Number.MAX_SAFE_INTEGER);
  const chain = await c.step("placing the setup_data chain", () => placeSetupData(c, k, e820, avoid, lowMax));
  if (chain) c.record("setup_data", chain.placed);

  // Zero page (boot_params), or for a real-mode start the setup code with its header filled in.
  const real = entryMode === "real";
  const page = buildBootParams({
    e820,
    kernel: k,
    cmdline: { paddr: cmdline.paddr, length: cmdBytes.length - 1 },
    ramdisk: initrd && { paddr: initrd.paddr, size: initrd.size },
    ram: vm.ram.regions,
    reserved,
    typeOfLoader: qemu ? QEMU_TYPE_OF_LOADER : undefined,
    // QEMU: heap_end_ptr = cmdline_addr − real_addr − 0x200 (the heap runs up to the command line).
    heapEnd: real ? QEMU_X86_CMDLINE_ADDR - QEMU_X86_REAL_ADDR : undefined,
  });
  if (chain) new DataView(page.buffer).setBigUint64(SETUP_DATA_FIELD, BigInt(chain.placed.paddr), true);
  let zp: LoadedImage;
  if (real) {
    if (!qemu) throw bad("x86Mode", 'x86Mode "real" places the setup code at QEMU\'s addresses: use layout "qemu"');
    const setup = k.setup_bytes.slice(0, k.setup_size);
    setup.set(page.subarray(SETUP_HEADER_OFFSET, k.header_end), SETUP_HEADER_OFFSET);
    zp = await c.step("placing the setup code", () => vm.place("setup", setup, { at: QEMU_X86_REAL_ADDR, format: "x86-setup" }));
    c.record("setup", zp);
  } else {
    // esi/rsi is a 32-bit value for the 32-bit entry; the 64-bit entry finds it through our identity map (≤ 4 GiB here too).
    zp = await c.step("placing the zero page", () =>
      below4G("zero-page", () => vm.place("zero-page", page, { auto: { from: "bottom", min: 0x1000, align: 4 * KiB, max: lowMax, avoid }, format: "boot_params" })));
    c.record("zero-page", zp);
  }

  // GDT and page tables (x86-tables.ts), unless the VMM provides them.
  let tables: PlacedTables | undefined;
  if (!real && x86Tables) {
    // boot.rst 64-bit: identity-map the kernel's init_size range from its load address, the zero page and the command line.
    const map = [{ base: kernel.paddr, size: Math.max(kernel.size, k.init_size ?? 0) }, { base: zp.paddr, size: zp.size }, { base: cmdline.paddr, size: cmdline.size }];
    tables = await c.step("placing the GDT and page tables", () => placeX86Tables(vm, { long: entryMode === "long", map, avoid }));
    c.record("gdt", tables.gdt);
    if (tables.pageTables) c.record("page tables", tables.pageTables);
  }

  let cpu: BootCpuState;
  if (real) {
    // QEMU linuxboot_dma.c: segments = setup_addr >> 4, esp = cmdline_addr − setup_addr − 16, far jump to seg+0x20:0.
    cpu = realModeState(arch as "x86" | "x86_64", QEMU_X86_REAL_ADDR, QEMU_X86_CMDLINE_ADDR - QEMU_X86_REAL_ADDR - 16);
  } else if (entryMode === "long") {
    // boot.rst "64-bit Boot Protocol": rsi = boot_params, paging on with the kernel, zero page and
    // command line identity-mapped, CS = __BOOT_CS (0x10), DS/ES/SS = __BOOT_DS (0x18), interrupts off.
    cpu = longModeState(arch as "x86" | "x86_64", k.entry64!, zp.paddr, tables ? { gdt: tables.gdt.paddr, gdtLimit: tables.gdtLimit, cr3: tables.pageTables!.paddr } : null);
  } else {
    // boot.rst "32-bit Boot Protocol": esi = boot_params, flat segments __BOOT_CS/__BOOT_DS, ebp = edi = ebx = 0, paging off.
    cpu = protectedModeState(arch as "x86" | "x86_64", k.entry32, zp.paddr, tables ? { base: tables.gdt.paddr, limit: tables.gdtLimit } : null);
  }
  const setupData = chain && { paddr: chain.placed.paddr, size: chain.placed.size, nodes: chain.nodes };
  return { arch, layout, kernel, initrd, zeroPage: { paddr: zp.paddr, size: zp.size }, cmdline: { paddr: cmdline.paddr, size: cmdline.size }, cpu, placements, ...(setupData ? { setupData } : {}) };
}

/** x86 `dtb`: a file name or the blob, parsed (libfdt's header checks) before anything is placed. */
async function x86DtbBytes(vm: Vm, dtb: string | Uint8Array): Promise<Uint8Array> {
  if (dtb instanceof Uint8Array) {
    parseFdt(dtb, "dtb");
    return dtb;
  }
  if (typeof dtb !== "string") throw bad("dtb", "dtb must be a file name or a Uint8Array");
  const f = await vm.open(dtb);
  try {
    const bytes = await readBytes(f, 0, f.size);
    parseFdt(bytes, dtb);
    return bytes;
  } finally {
    await f.close();
  }
}

/**
 * The setup_data entries this boot hands over, checked against the kernel (protocol 2.09+,
 * kernel_info.setup_type_max) and placed as one blob; null when there are none. The zero page's
 * e820_table takes the map's first 128 entries; the rest go in SETUP_E820_EXT.
 */
async function placeSetupData(c: Ctx, k: BzImageKernelArch, e820: E820Map, avoid: ReservedRange[], max: number | undefined): Promise<{ placed: LoadedImage; nodes: Array<{ type: number; paddr: number; len: number }> } | null> {
  const { vm, opts } = c;
  const sd = opts.setupData ?? {};
  if (typeof sd !== "object" || sd === null) throw bad("setupData", "setupData must be { rngSeed?, entries? }");
  if (sd.rngSeed !== undefined && typeof sd.rngSeed !== "boolean") throw bad("setupData.rngSeed", `setupData.rngSeed must be true or false, got ${String(sd.rngSeed)}`);
  const entries: SetupDataEntry[] = [];
  if (e820.entries.length > E820_MAX_ENTRIES) entries.push({ type: SETUP_E820_EXT, data: e820ExtData(e820.entries.slice(E820_MAX_ENTRIES)) });
  if (c.x86Dtb) entries.push({ type: SETUP_DTB, data: c.x86Dtb });
  if (sd.rngSeed) entries.push({ type: SETUP_RNG_SEED, data: bootSeeds(opts.seed).rng });
  if (sd.entries !== undefined && !Array.isArray(sd.entries)) throw bad("setupData.entries", "setupData.entries must be an array of { type, data }");
  entries.push(...(sd.entries ?? []));
  if (entries.length === 0) return null;
  // kernel_info (protocol 2.15) states the highest type the kernel knows.
  const f = await vm.open(opts.kernel);
  let info;
  try {
    info = await readKernelInfo(f, await readBzImage(f));
  } finally {
    await f.close();
  }
  if (e820.entries.length > E820_MAX_ENTRIES && k.protocol_version < SETUP_DATA_PROTOCOL) {
    throw new GuestImageError("TOO_LARGE", `the e820 map needs ${e820.entries.length} entries; the zero page holds ${E820_MAX_ENTRIES} and this kernel (protocol ${k.protocol}) predates setup_data SETUP_E820_EXT (2.09)`, { image: opts.kernel, field: "e820_table" });
  }
  checkSetupData(entries, { protocol_version: k.protocol_version, setup_type_max: info?.setup_type_max ?? null, image: opts.kernel });
  const size = setupDataSize(entries);
  const at = vm.findFree(size, { from: "bottom", min: 0x1000, align: 8, max, avoid });
  const chain = buildSetupData(entries, at);
  const placed = await vm.place("setup_data", chain.bytes, { at, format: "setup_data" });
  return { placed, nodes: chain.nodes };
}
