// Where bootLinux puts things: the address rules, as pure functions of the machine (RAM) and of
// what was placed before. Two layouts:
//
// "qemu" — QEMU 7.2's addresses, so a user moving from `qemu-system-* -kernel … -initrd … -dtb …`
// gets the same memory map (shared/reference/qemu-reference.md; hw/arm/boot.c, hw/riscv/boot.c,
// hw/i386/x86.c):
//   arm64  kernel  Image: RAM + text_offset, + 2 MiB when text_offset < 4 KiB and image_size ≠ 0
//                  (QEMU's boot stub owns the RAM base); a raw or image_size-0 file: RAM + 0x80000.
//                  An Image.gz by the header of what it decompresses to (QEMU gunzips first).
//   arm    kernel  zImage/raw: RAM + 0x10000 (KERNEL_LOAD_ADDR)
//   arm*   initrd  page_align(max(RAM + min(RAM size / 2, 128 MiB), ELF high address))
//   arm*   dtb     align_up(initrd end, 2 MiB on arm64 / 4 KiB on arm); no initrd: the initrd address
//   riscv  kernel  align_up(firmware end, 2 MiB rv64 / 4 MiB rv32); with no firmware given, as with
//                  QEMU's default OpenSBI (under 2 MiB at the RAM base): RAM + 2 MiB / 4 MiB. The
//                  Image header is not read (QEMU does not read it)
//   riscv  initrd  kernel start (lowest address) + min(RAM size / 2, 128 MiB)
//   riscv  fdt     align_down(min(RAM end, 3 GiB) − fdt size, 2 MiB)
//   x86    setup   0x10000, (setup_sects + 1) × 512 bytes, header patched; cmdline 0x20000;
//                  kernel 0x100000; initrd (initrd_max − size) & ~0xfff, initrd_max =
//                  min(XLF_CAN_BE_LOADED_ABOVE_4G ? 0xffffffff : initrd_addr_max,
//                      RAM below 4 GiB − acpi_data_size 0x20000 − 1); real-mode entry 1020:0000
//
// "default" — what the booting documents allow, chosen so that more kernels and initrds fit:
//   arm64  kernel at RAM + text_offset (booting.rst: "text_offset bytes from a 2MB aligned base
//          address anywhere in usable system RAM"): we have no boot stub to keep at the RAM
//          base, so QEMU's extra 2 MiB is given back. DTB at the top of RAM, 2 MiB aligned
//          (booting.rst: "must not exceed 2 megabytes … mapped cacheably using blocks of up to
//          2 megabytes", so a 2 MiB block of its own is always safe), initrd highest below it
//          inside the kernel's 1 GiB-aligned window of up to 32 GiB (booting.rst, initrd rule).
//          QEMU's fixed RAM + 128 MiB caps the kernel's image_size and the initrd's size
//          (RAM − 128 MiB); top-down leaves all of RAM between kernel and initrd.
//   arm    kernel at RAM + 0x8000 (booting.rst convention); initrd and DTB as QEMU does (above
//          RAM + min(RAM/2, 128 MiB)): Documentation/arch/arm/booting.rst asks for exactly
//          that ("A safe location is just above the 128MiB boundary from start of RAM") and
//          they must stay in lowmem, so top-of-RAM would be wrong here; but the next free
//          range from there, not a fixed address.
//   riscv  kernel at max(RAM + text_offset, align_up(firmware end, PMD)) — the Image header's
//          text_offset (0x200000) exists to leave room for SBI firmware; fdt at the top of RAM
//          2 MiB aligned (as QEMU, without the 3 GiB cap, which exists for rv32 and old
//          kernels' linear map; rv32 keeps it), initrd highest below it: QEMU's kernel +
//          min(RAM/2, 128 MiB) collides with large kernels in small RAM.
//   x86    64-bit boot protocol when the kernel has XLF_KERNEL_64 (else 32-bit): no real-mode
//          code runs, so no BIOS is needed. Zero page and command line in low memory (lowest
//          free pages from 0x1000, below 0x9fc00: identity-mapped by any loader page table; the
//          GDT at the lowest free address, 0 when free, and the 64-bit page tables after them,
//          x86-tables.ts; automatic placement keeps out of 0x9fc00–0x100000, x86-e820.ts),
//          kernel: a relocatable bzImage at pref_address (boot.rst: "a relocating bootloader
//          should attempt to load at this address if possible"), else the lowest free
//          kernel_alignment-aligned range above it; any other kernel where its header asks
//          (code32_start); initrd as high as possible below initrd_addr_max (boot.rst: "as
//          high in memory as possible"), without
//          QEMU's ACPI carve-out (we write no ACPI tables; place yours first and they are avoided).
import type { RamRegion } from "../ram/guest-ram.js";

export type LinuxArch = "arm64" | "arm" | "riscv64" | "riscv32" | "x86_64" | "x86";
export type Layout = "qemu" | "default";

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** hw/arm/boot.c: KERNEL_LOAD_ADDR (arm) and KERNEL64_LOAD_ADDR (aarch64 without an Image header). */
export const QEMU_ARM_KERNEL_OFFSET = 0x10000;
export const QEMU_ARM64_RAW_KERNEL_OFFSET = 0x80000;
/** hw/arm/boot.c BOOTLOADER_MAX_SIZE: below this text_offset the Image moves up 2 MiB. */
export const QEMU_ARM_BOOTLOADER_MAX_SIZE = 4 * KiB;
/** Documentation/arch/arm/booting.rst: "loaded at the base of physical RAM plus an offset of 0x8000". */
export const ARM_ZIMAGE_OFFSET = 0x8000;
/** hw/i386/x86.c (protocol ≥ 2.02, LOADED_HIGH): real-mode setup, command line, protected-mode kernel. */
export const QEMU_X86_REAL_ADDR = 0x10000;
export const QEMU_X86_CMDLINE_ADDR = 0x20000;
export const QEMU_X86_PROT_ADDR = 0x100000;
/** pc-i440fx-7.2 acpi_data_size (measured against QEMU, qemu-reference.md). */
export const QEMU_X86_ACPI_DATA_SIZE = 0x20000;
/** QEMU's type_of_loader (boot.rst loader id table: 0xB "Qemu"). */
export const QEMU_TYPE_OF_LOADER = 0xb0;

export const alignUpN = (v: number, a: number) => Math.ceil(v / a) * a;
export const alignDownN = (v: number, a: number) => Math.floor(v / a) * a;

/** The region QEMU's rules speak of ("RAM"): the lowest one. */
export function mainRam(ram: readonly RamRegion[]): RamRegion {
  return [...ram].sort((a, b) => a.base - b.base)[0];
}

/** hw/arm/boot.c arm_setup_direct_kernel_boot: where the initrd goes. */
export function qemuArmInitrdAddr(ram: RamRegion, imageHighAddr = 0): number {
  const start = Math.max(ram.base + Math.min(Math.floor(ram.size / 2), 128 * MiB), imageHighAddr);
  return alignUpN(start, 4 * KiB); // TARGET_PAGE_ALIGN
}

/** hw/arm/boot.c: "Place the DTB after the initrd in memory with alignment." */
export function qemuArmDtbAddr(arch: "arm64" | "arm", initrdStart: number, initrdSize: number): number {
  return alignUpN(initrdStart + initrdSize, arch === "arm64" ? 2 * MiB : 4 * KiB);
}

/** hw/riscv/boot.c riscv_calc_kernel_start_addr: firmware end rounded up to 2 MiB (rv64) / 4 MiB (rv32). */
export function riscvPmd(arch: "riscv64" | "riscv32"): number {
  return arch === "riscv64" ? 2 * MiB : 4 * MiB;
}

/** hw/riscv/boot.c riscv_load_initrd (7.2): kernel start + min(RAM / 2, 128 MiB). */
export function qemuRiscvInitrdAddr(ram: RamRegion, kernelStart: number): number {
  return kernelStart + Math.min(Math.floor(ram.size / 2), 128 * MiB);
}

/** hw/riscv/boot.c riscv_load_fdt (7.2): align_down(min(RAM end, 3 GiB) − fdt size, 2 MiB). */
export function qemuRiscvFdtAddr(ram: RamRegion, fdtSize: number): number {
  return alignDownN(Math.min(ram.base + ram.size, 3 * GiB) - fdtSize, 2 * MiB);
}

/** QEMU's device_tree.c load_device_tree: a user DTB is opened into 2 × (file size + 10000) bytes. */
export const qemuUserDtbSize = (fileSize: number) => 2 * (fileSize + 10000);
/** hw/arm/virt.c / hw/riscv/virt.c create the generated tree with FDT_MAX_SIZE (1 MiB). */
export const QEMU_GENERATED_DTB_SIZE = 0x100000;

/** hw/i386/x86.c x86_load_linux: the highest byte the initrd may use. */
export function qemuX86InitrdMax(opts: { above4g: boolean; initrdAddrMax: number; below4g: number }): number {
  let max = opts.above4g ? 0xffffffff : opts.initrdAddrMax;
  if (max >= opts.below4g - QEMU_X86_ACPI_DATA_SIZE) max = opts.below4g - QEMU_X86_ACPI_DATA_SIZE - 1;
  return max;
}

/**
 * The end of RAM contiguous from address 0, capped at 4 GiB (QEMU's below_4g_mem_size for a pc).
 * A gap inside the PC's legacy area 0xA0000–0x100000 does not end it: QEMU's pc RAM runs through
 * there (the VGA window and ROMs only cover it), so a PC map given as `0:0xa0000` + `0x100000:…`
 * is the same machine.
 */
export function below4g(ram: readonly RamRegion[]): number {
  let end = 0;
  for (const r of [...ram].sort((a, b) => a.base - b.base)) {
    const legacyGap = end >= 0xa0000 && end < 0x100000 && r.base > end && r.base <= 0x100000;
    if (r.base !== end && !legacyGap) break;
    end = r.base + r.size;
  }
  return Math.min(end, 4 * GiB);
}
