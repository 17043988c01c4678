// bootLinux's PVH entry (x86Entry: "pvh"): the kernel proper is entered at its
// XEN_ELFNOTE_PHYS32_ENTRY in 32-bit protected mode with EBX = hvm_start_info — no real-mode
// setup, no zero page from the loader (the kernel builds its own from the start info), no
// bzImage decompressor.
//
// The kernel is either an ELF vmlinux (loaded at its p_paddr by the ELF loader), or a bzImage
// whose payload the library decompresses on the host (x86-direct.ts) and whose vmlinux is then
// laid out at its link address: the PVH note lives in that vmlinux. A kernel without the note
// (built without CONFIG_PVH) is refused, naming the option. The PVH entry runs at the link
// address (Linux's pvh_start_xen addresses its GDT and page tables absolutely), so the kernel is
// never moved.
import { GuestImageError } from "../errors.js";
import { findPvhEntry } from "../formats/elf-notes.js";
import { readElf, type ElfImage } from "../formats/elf.js";
import { hex } from "../num.js";
import { bytesFile } from "../sources/source.js";
import { checkReserved, type LoadedImage, type LoadedKernel, type ReservedRange, type Vm } from "../vm.js";
import type { BootLinuxOptions, BootPlacement, LinuxBoot } from "./linux.js";
import { buildStartInfo, pvhMemmap, pvhState, startInfoSize } from "./pvh-start-info.js";
import { LEGACY_HOLE_END, LEGACY_HOLE_START } from "./x86-e820.js";
import { placeX86Tables, type PlacedTables } from "./x86-tables.js";
import { prepareX86Direct } from "./x86-direct.js";

const FOUR_GIB = 2 ** 32;
const KiB = 1024;
/** ELF e_machine: EM_386, EM_X86_64. */
const EM_386 = 3;
const EM_X86_64 = 62;

export interface PvhContext {
  vm: Vm;
  opts: BootLinuxOptions;
  arch: "x86_64" | "x86";
  /** The kernel file's detected format: "bzimage" or "elf". */
  kformat: string;
  record(role: string, x: { name: string; format: string; paddr: number; size: number }): void;
  step<T>(what: string, fn: () => Promise<T>): Promise<T>;
}

export interface PvhBoot {
  /** The physical entry the note names. */
  entry: number;
  /** File offset (in the vmlinux: the decompressed payload for a bzImage) of the note. */
  noteOffset: number;
  /** Where hvm_start_info (with its module list and memory map) went; EBX holds `paddr`. */
  startInfo: { paddr: number; size: number; memmapEntries: number; modules: number };
}

const bad = (field: string, msg: string) => new GuestImageError("BAD_ARGUMENT", msg, { field });

export async function bootPvh(c: PvhContext, placements: BootPlacement[]): Promise<LinuxBoot & { pvh: PvhBoot }> {
  const { vm, opts, arch } = c;
  if ((opts.layout ?? "default") !== "default") throw bad("layout", 'the PVH entry uses the default layout (QEMU\'s -kernel PVH path has its own firmware): drop layout "qemu"');
  if (opts.x86Mode !== undefined && opts.x86Mode !== "protected") {
    throw bad("x86Mode", `the PVH entry is 32-bit protected mode with paging off; x86Mode ${JSON.stringify(opts.x86Mode)} contradicts it`);
  }
  if (opts.x86Direct !== undefined && typeof opts.x86Direct !== "boolean") {
    throw bad("x86Direct", "the PVH entry runs the kernel at its link address (Linux's pvh_start_xen is not position-independent): x86Direct { at } cannot move it");
  }
  if (opts.setupData !== undefined) throw bad("setupData", "setup_data hangs off the zero page, which a PVH boot does not hand over (the kernel builds its own from hvm_start_info)");
  if (opts.rsdp !== undefined && (!Number.isSafeInteger(opts.rsdp) || opts.rsdp <= 0)) throw bad("rsdp", `rsdp must be a positive integer address, got ${String(opts.rsdp)}`);
  const x86Tables = opts.x86Tables ?? true;
  if (typeof x86Tables !== "boolean") throw bad("x86Tables", `x86Tables must be true or false, got ${JSON.stringify(x86Tables)}`);
  const reserved = [...vm.reserved, ...checkReserved(opts.reserved as ReservedRange[] | undefined, "reserved")];
  const avoid = [...reserved, { base: LEGACY_HOLE_START, size: LEGACY_HOLE_END - LEGACY_HOLE_START }];
  // The memory map is known now: its size fixes the start info's, and a map Linux cannot take is refused before placing anything.
  const memmap = pvhMemmap(vm.ram.regions, reserved);

  // ── the kernel and its note ──
  const wantMachine = arch === "x86_64" ? EM_X86_64 : EM_386;
  const machineCheck = (elf: ElfImage, what: string) => {
    if (elf.header.machine !== wantMachine) {
      throw new GuestImageError("UNSUPPORTED", `${what} is an ELF for machine ${elf.header.machine}, not ${arch === "x86_64" ? "x86-64 (62)" : "i386 (3)"}`, { image: opts.kernel, field: "e_machine" });
    }
  };
  const noNote = () => new GuestImageError("UNSUPPORTED", "the kernel has no XEN_ELFNOTE_PHYS32_ENTRY note (type 18, owner \"Xen\") in any PT_NOTE segment or note section: it was built without CONFIG_PVH, so it has no PVH entry", { image: opts.kernel, field: "XEN_ELFNOTE_PHYS32_ENTRY" });
  let kernel: LoadedKernel;
  let entry: number;
  let noteOffset: number;
  let spans: Array<{ lo: bigint; hi: bigint }>;
  if (c.kformat === "bzimage") {
    const d = await c.step("decompressing the kernel (PVH)", () => prepareX86Direct(vm, opts.kernel, { arch }));
    const file = bytesFile(`${opts.kernel} (decompressed vmlinux)`, d.vmlinux);
    const elf = await readElf(file);
    machineCheck(elf, "the decompressed kernel");
    const pvh = await findPvhEntry(file, elf);
    if (!pvh) throw noNote();
    entry = pvh.entry;
    noteOffset = pvh.note.offset;
    spans = [{ lo: BigInt(d.paddr), hi: BigInt(d.paddr + d.image.length) }];
    const placed = await c.step("placing the kernel", () => vm.place(opts.kernel, d.image, { at: d.paddr, format: "vmlinux (pvh)" }));
    kernel = { ...placed, entry: BigInt(entry), arch: d.arch };
  } else if (c.kformat === "elf") {
    const f = await vm.open(opts.kernel);
    let pvh;
    let elf: ElfImage;
    try {
      elf = await readElf(f);
      machineCheck(elf, "the kernel");
      pvh = await findPvhEntry(f, elf);
    } finally {
      await f.close();
    }
    if (!pvh) throw noNote();
    entry = pvh.entry;
    noteOffset = pvh.note.offset;
    spans = elf.loads.map((s) => ({ lo: s.paddr, hi: s.paddr + s.memsz }));
    kernel = await c.step("placing the kernel", () => vm.loadKernel(opts.kernel, {}));
    if (kernel.paddr !== Number(spans.reduce((m, s) => (s.lo < m ? s.lo : m), spans[0].lo))) {
      throw new GuestImageError("BAD_ADDRESS", `the ELF kernel went to ${hex(kernel.paddr)}, not its lowest p_paddr: the PVH entry's address would be wrong`, { image: opts.kernel, field: "p_paddr" });
    }
    kernel = { ...kernel, entry: BigInt(entry) };
  } else {
    throw new GuestImageError("UNSUPPORTED", `the PVH entry needs an ELF vmlinux or a bzImage (whose payload holds one), not ${c.kformat}`, { image: opts.kernel, field: "kernel" });
  }
  if (!spans.some((s) => BigInt(entry) >= s.lo && BigInt(entry) < s.hi)) {
    throw new GuestImageError("BAD_HEADER", `XEN_ELFNOTE_PHYS32_ENTRY ${hex(entry)} is inside none of the kernel's loaded segments`, { image: opts.kernel, field: "XEN_ELFNOTE_PHYS32_ENTRY" });
  }
  c.record("kernel", kernel);

  // ── command line and initrd, below 4 GiB (the start info's 64-bit fields would allow more,
  // but Linux copies them into 32-bit boot_params fields first) ──
  const cmdBytes = new TextEncoder().encode((opts.cmdline ?? "") + "\0");
  const cmdline = await c.step("placing the command line", () => vm.place("cmdline", cmdBytes, { auto: { from: "bottom", min: 0x1000, align: 16, max: FOUR_GIB, avoid }, format: "cmdline" }));
  c.record("cmdline", cmdline);
  let initrd: LoadedImage | undefined;
  if (opts.initrd !== undefined) {
    initrd = await c.step("placing the initrd", () => vm.loadModule(opts.initrd!, { auto: { from: "top", align: 4 * KiB, min: 0x100000, max: FOUR_GIB, avoid } }));
    c.record("initrd", initrd);
  }

  // ── hvm_start_info ──
  const modules = initrd ? [{ paddr: initrd.paddr, size: initrd.size }] : [];
  const size = startInfoSize(modules.length, memmap.length);
  const at = await c.step("placing the PVH start info", async () => vm.findFree(size, { from: "bottom", min: 0x1000, align: 8, max: FOUR_GIB, avoid }));
  const info = buildStartInfo({ paddr: at, cmdlinePaddr: cmdline.paddr, modules, ram: vm.ram.regions, reserved, rsdp: opts.rsdp });
  const si = await c.step("placing the PVH start info", () => vm.place("start_info", info.bytes, { at, format: "hvm_start_info" }));
  c.record("start_info", si);

  // ── GDT (flat 32-bit __BOOT_CS/__BOOT_DS) ──
  let tables: PlacedTables | undefined;
  if (x86Tables) {
    tables = await c.step("placing the GDT", () => placeX86Tables(vm, { long: false, map: [], avoid }));
    c.record("gdt", tables.gdt);
  }
  const cpu = pvhState(arch, entry, si.paddr, tables ? { base: tables.gdt.paddr, limit: tables.gdtLimit } : null);
  return {
    arch, layout: "default", kernel, initrd, cmdline: { paddr: cmdline.paddr, size: cmdline.size }, cpu, placements,
    pvh: { entry, noteOffset, startInfo: { paddr: si.paddr, size: si.size, memmapEntries: info.memmap.length, modules: modules.length } },
  };
}
