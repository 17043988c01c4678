// x86 bzImage conformance on Debian 12's amd64 kernel (scripts/fetch-fixtures.sh).
//
// 1. Against the boot protocol (Linux Documentation/arch/x86/boot.rst): the protected-mode kernel
//    is the file after the real-mode part, (setup_sects + 1) × 512 bytes (setup_sects 0 ⇒ 4), and
//    goes at B (0x100000 for a LOADED_HIGH kernel).
// 2. Against QEMU 7.2 (`qemu-system-x86_64 -M pc -kernel … -initrd … -append …`): QEMU passes
//    the kernel by fw_cfg and its option ROM (linuxboot_dma.bin) copies it into RAM, so nothing
//    is in RAM at -S. A gdbstub hardware breakpoint at the real-mode setup entry (0x10200 =
//    1020:0000) stops the guest once SeaBIOS and the option ROM have placed everything; then the
//    protected-mode kernel at 0x100000, the setup at 0x10000 (with the 11 header bytes QEMU
//    patches), the command line at 0x20000 and the initrd are dumped.
//    Our zero page (src/boot/x86-boot-params.ts) given QEMU's choices (type_of_loader 0xB0,
//    heap end, command line and initrd addresses) must carry the same setup header bytes.
import { describe, expect, it } from "vitest";
import type { BzImageKernelArch } from "../../src/formats/bzimage.js";
import { runQemu } from "../helpers/qemu.js";
import { expectSameBytes, fixture, fixtureVm, hex, le32, ramBytes, readFixture, requireFormat } from "./fixtures.js";

const MiB = 0x100000;
const RAM = { base: 0, size: 256 * MiB };
const CMDLINE = "console=ttyS0 guest-image-conformance";

/** boot.rst setup header fields used here (offsets in the file = offsets in boot_params). */
function setupHeader(file: Uint8Array) {
  expect(le32(file, 0x202), 'setup header magic "HdrS"').toBe(0x53726448);
  const setupSects = file[0x1f1] === 0 ? 4 : file[0x1f1];
  const setupSize = (setupSects + 1) * 512;
  return {
    setupSects,
    setupSize,
    version: file[0x206] | (file[0x207] << 8),
    loadflags: file[0x211],
    headerEnd: 0x202 + file[0x201],
    initrdAddrMax: le32(file, 0x22c),
    xloadflags: file[0x236] | (file[0x237] << 8),
    payload: file.subarray(setupSize),
  };
}

/** The bzImage arch record of a load (checked at run time, so the cast below is honest). */
function bzArch(k: { format: string; arch: { format: string } }): BzImageKernelArch {
  expect(k.format).toBe("bzimage");
  expect(k.arch.format).toBe("bzimage");
  return k.arch as unknown as BzImageKernelArch;
}

describe.concurrent("x86 bzImage (Debian 12 linux-image-amd64)", () => {
  it("boot.rst: the protected-mode kernel (file after (setup_sects+1)*512) at B", async () => {
    requireFormat("bzimage");
    const file = readFixture("amd64/bzImage");
    const s = setupHeader(file);
    expect(s.loadflags & 1, "LOADED_HIGH").toBe(1);
    const vm = await fixtureVm(RAM);
    const k = await vm.loadKernel("amd64/bzImage", { at: 0x100000 });
    const arch = bzArch(k);
    expect(arch.entry32).toBe(0x100000n);
    expect(arch.setup_size).toBe(s.setupSize);
    expectSameBytes(ramBytes(vm, 0x100000, s.payload.length), s.payload, "protected-mode kernel", 0x100000);
    // Nothing of the real-mode part lands below it.
    expect(ramBytes(vm, 0x100000 - 4096, 4096).every((b) => b === 0)).toBe(true);
  });

  it("QEMU: what SeaBIOS + linuxboot_dma placed, at the setup entry, equals our load", async () => {
    requireFormat("bzimage");
    const file = readFixture("amd64/bzImage");
    const initrd = readFixture("initrd/initrd.cpio");
    const s = setupHeader(file);
    const q = await runQemu(
      {
        arch: "x86_64",
        gdb: true,
        args: ["-M", "pc", "-m", "256M", "-kernel", fixture("amd64/bzImage"), "-initrd", fixture("initrd/initrd.cpio"), "-append", CMDLINE],
      },
      async (q) => {
        const roms = await q.roms();
        // Nothing of the kernel is in RAM at -S: only fw_cfg blobs and the BIOS.
        expect(roms.filter((r) => r.addr !== undefined && r.name.includes("bzImage"))).toEqual([]);
        await q.runTo(0x10200);
        const setup = await q.read(0x10000, s.setupSize);
        const ramdiskImage = le32(setup, 0x218);
        const ramdiskSize = le32(setup, 0x21c);
        return {
          setup,
          payload: await q.read(0x100000, s.payload.length),
          cmdline: await q.read(le32(setup, 0x228), CMDLINE.length + 1),
          initrd: await q.read(ramdiskImage, ramdiskSize),
          ramdiskImage,
        };
      },
    );
    // QEMU's copies against the file and boot.rst.
    expectSameBytes(q.payload, s.payload, "QEMU's protected-mode kernel vs the file after the setup", 0x100000);
    expect(new TextDecoder().decode(q.cmdline)).toBe(`${CMDLINE}\0`);
    expectSameBytes(q.initrd, initrd, "QEMU's initrd vs the file");
    // QEMU's initrd rule (hw/i386/x86.c): (initrd_max - size) & ~0xfff, initrd_max = min(0xffffffff
    // with XLF_CAN_BE_LOADED_ABOVE_4G else initrd_addr_max, below-4G RAM - acpi_data_size(0x20000) - 1).
    const initrdMax = Math.min(s.xloadflags & 2 ? 0xffffffff : s.initrdAddrMax, RAM.size - 0x20000 - 1);
    expect(hex(q.ramdiskImage)).toBe(hex((initrdMax - initrd.length) & ~0xfff));

    // Ours at QEMU's addresses.
    const vm = await fixtureVm(RAM);
    const k = await vm.loadKernel("amd64/bzImage", { at: 0x100000 });
    expectSameBytes(ramBytes(vm, 0x100000, s.payload.length), q.payload, "bzImage protected-mode kernel", 0x100000);
    const m = await vm.loadModule("initrd/initrd.cpio", { at: q.ramdiskImage });
    expectSameBytes(ramBytes(vm, m.paddr, m.size), q.initrd, "initrd", q.ramdiskImage);

    // The real-mode part QEMU placed is the file's, except inside the setup header it patches.
    const outside = (b: Uint8Array) => [b.subarray(0, 0x1f1), b.subarray(s.headerEnd)];
    outside(q.setup).forEach((part, i) => expectSameBytes(part, outside(file.subarray(0, s.setupSize))[i], `setup outside the header (part ${i})`));
    // Our zero page given QEMU's choices carries the same setup header.
    const { buildBootParams } = await import("../../src/boot/x86-boot-params.js");
    const page = buildBootParams({
      kernel: bzArch(k),
      ram: vm.ram.regions,
      typeOfLoader: 0xb0, // QEMU's loader id
      heapEnd: 0x10000, // QEMU: heap_end_ptr = cmdline_addr - real_addr - 0x200 = 0xfe00
      cmdline: { paddr: le32(q.setup, 0x228), length: CMDLINE.length },
      ramdisk: { paddr: m.paddr, size: m.size },
    });
    expectSameBytes(page.subarray(0x1f1, s.headerEnd), q.setup.subarray(0x1f1, s.headerEnd), "setup header (ours vs QEMU's patched copy)", 0x1f1);
  });
});

// Multiboot 1 (a.out kludge, synthesized from the Multiboot 0.6.96 spec, section 3.1): QEMU's
// hw/i386/multiboot.c builds the image in a buffer (BSS zeroed) and passes it by fw_cfg; its
// option ROM (multiboot_dma.bin) copies it and the modules into RAM and jumps to the entry with
// EAX = 0x2BADB002, EBX = the info structure. A breakpoint at the entry captures that state.
// QEMU chooses module addresses itself (page-aligned after the kernel); we take the caller's, so
// the module is compared at QEMU's address (from the info structure's module list).
describe.concurrent("Multiboot (a.out kludge, synthesized)", () => {
  it("kernel (BSS zeroed) and module where QEMU's multiboot ROM put them", async () => {
    requireFormat("multiboot");
    const LOAD = 0x200000;
    const BSS = 0x3000;
    const file = new Uint8Array(0x3000);
    const dv = new DataView(file.buffer);
    const magic = 0x1badb002;
    const flags = 0x00010000; // bit 16: address fields valid
    dv.setUint32(0, magic, true);
    dv.setUint32(4, flags, true);
    dv.setUint32(8, (0x1_0000_0000 - ((magic + flags) % 0x1_0000_0000)) % 0x1_0000_0000, true);
    dv.setUint32(12, LOAD, true); // header_addr (header at file offset 0)
    dv.setUint32(16, LOAD, true); // load_addr
    dv.setUint32(20, LOAD + file.length, true); // load_end_addr
    dv.setUint32(24, LOAD + file.length + BSS, true); // bss_end_addr
    dv.setUint32(28, LOAD + 0x20, true); // entry_addr
    file.set([0xeb, 0xfe], 0x20); // jmp $
    for (let i = 0x22; i < file.length; i++) file[i] = (i * 131 + 7) & 0xff;
    const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const dir = mkdtempSync(`${tmpdir()}/guest-image-mb-`);
    try {
      const path = `${dir}/mb.bin`;
      writeFileSync(path, file);
      const module = readFixture("initrd/initrd.cpio");
      const q = await runQemu(
        { arch: "x86_64", gdb: true, args: ["-M", "pc", "-m", "256M", "-kernel", path, "-initrd", `${fixture("initrd/initrd.cpio")} modarg`, "-append", "mbcmd"] },
        async (q) => {
          await q.runTo(LOAD + 0x20);
          const regs = await q.hmp("info registers");
          const reg = (n: string) => parseInt(new RegExp(`${n}=([0-9a-f]+)`).exec(regs)![1], 16);
          const mbi = await q.read(reg("EBX"), 88);
          const mods = await q.read(le32(mbi, 24), 16 * le32(mbi, 20));
          return {
            eax: reg("EAX"), eip: reg("EIP"), mbi, mods,
            kernel: await q.read(LOAD, file.length + BSS),
            module: await q.read(le32(mods, 0), le32(mods, 4) - le32(mods, 0)),
          };
        },
      );
      expect(hex(q.eax)).toBe("0x2badb002");
      expect(le32(q.mbi, 20)).toBe(1); // mods_count
      expectSameBytes(q.module, module, "QEMU's module copy vs the file");

      const { createVm, fromMap } = await import("../../src/node.js");
      const vm = await createVm({ ram: [RAM], files: fromMap({ "mb.bin": file, mod: module }) });
      vm.ram.view(LOAD, file.length + BSS).fill(0xee); // so the BSS zeroing shows
      const k = await vm.loadKernel("mb.bin");
      expect(k.format).toBe("multiboot");
      expect(hex(k.paddr)).toBe(hex(LOAD));
      expect(hex(k.entry)).toBe(hex(q.eip));
      expect(k.size).toBe(file.length + BSS);
      expectSameBytes(ramBytes(vm, LOAD, file.length + BSS), q.kernel, "multiboot kernel + BSS", LOAD);
      const m = await vm.loadModule("mod", { at: le32(q.mods, 0) });
      expectSameBytes(ramBytes(vm, m.paddr, m.size), q.module, "multiboot module", m.paddr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
