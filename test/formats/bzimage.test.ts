// x86 bzImage: files built field by field from Linux Documentation/arch/x86/boot.rst ("The
// Real-Mode Kernel Header" table; offsets below are that table's), expected placements from its
// "Loading The Rest of The Kernel", "32-bit/64-bit Boot Protocol" sections and the init_size
// runtime_start algorithm (as updated Nov 2024) — never from running the loader.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { createVm, fromMap, GuestImageError, inspectFile, vm_load_guest_kernel } from "../../src/node.js";
import { bzImageFormat, type BzImageKernelArch } from "../../src/formats/bzimage.js";
import { detect } from "../../src/formats/detect.js";
import { bytesFile } from "../../src/sources/source.js";

const MiB = 0x10_0000;
const GiB = 0x4000_0000;

/**
 * boot.rst header table: the end of the last field each protocol version defines. A real
 * kernel's jump (0xEB, offset at 0x201) lands right after its header (header.S: start_of_setup).
 * 2.05's header was padded to 0x238 (pad2/pad3 before cmdline_size existed).
 */
const HEADER_END: Record<number, number> = {
  0x200: 0x224, 0x201: 0x226, 0x202: 0x22c, 0x203: 0x230, 0x204: 0x230, 0x205: 0x238, 0x206: 0x23c,
  0x207: 0x248, 0x208: 0x250, 0x209: 0x258, 0x20a: 0x264, 0x20b: 0x268, 0x20c: 0x268, 0x20d: 0x268, 0x20f: 0x26c,
};

const KVER = "6.1.0-test (guest-image@example) #1";

interface BzFields {
  version?: number;
  /** Value of setup_sects (0x1F1). */
  setupSects?: number;
  /** Sectors actually written after the boot sector (default: setup_sects, 0 read as 4). */
  sectors?: number;
  kernelSize?: number;
  syssize?: number;
  loadflags?: number;
  code32Start?: number;
  relocatable?: number;
  kernelAlignment?: number;
  xloadflags?: number;
  cmdlineSize?: number;
  initrdAddrMax?: number;
  prefAddress?: bigint;
  initSize?: number;
  jumpOp?: number;
  jumpOffset?: number;
  bootFlag?: number;
  magic?: number;
  payloadOffset?: number;
  payloadLength?: number;
  /** Cut the file to this many bytes. */
  fileSize?: number;
}

/** A bzImage: boot sector + setup sectors with the header at 0x1F1, then the protected-mode kernel. */
function bzImage(f: BzFields = {}): Uint8Array {
  const version = f.version ?? 0x020f;
  const setupSects = f.setupSects ?? 4;
  const sectors = f.sectors ?? (setupSects === 0 ? 4 : setupSects);
  const setupSize = (sectors + 1) * 512;
  const kernelSize = f.kernelSize ?? 0x3000;
  const b = new Uint8Array(setupSize + kernelSize);
  for (let i = 0; i < 0x1f1; i++) b[i] = 0xcc; // boot sector filler (ignored by loaders)
  for (let i = setupSize; i < b.length; i++) b[i] = (i * 7 + 3) & 0xff; // the protected-mode kernel
  const dv = new DataView(b.buffer);
  dv.setUint8(0x1f1, setupSects); // setup_sects
  dv.setUint16(0x1f2, 1, true); // root_flags
  if (version >= 0x204) dv.setUint32(0x1f4, f.syssize ?? Math.ceil(kernelSize / 16), true); // syssize (4 bytes from 2.04)
  else dv.setUint16(0x1f4, f.syssize ?? Math.ceil(kernelSize / 16) & 0xffff, true);
  dv.setUint16(0x1fa, 0xffff, true); // vid_mode: normal
  dv.setUint16(0x1fe, f.bootFlag ?? 0xaa55, true); // boot_flag
  dv.setUint8(0x200, f.jumpOp ?? 0xeb); // jump: short jmp …
  dv.setUint8(0x201, f.jumpOffset ?? (HEADER_END[version] ?? 0x26c) - 0x202); // … to the end of the header
  dv.setUint32(0x202, f.magic ?? 0x53726448, true); // header "HdrS"
  dv.setUint16(0x206, version, true); // version
  dv.setUint16(0x20c, 0x1000, true); // start_sys_seg
  dv.setUint16(0x20e, 0x400 - 0x200, true); // kernel_version: string at 0x400
  for (let i = 0; i < KVER.length; i++) b[0x400 + i] = KVER.charCodeAt(i);
  b[0x400 + KVER.length] = 0;
  dv.setUint8(0x211, f.loadflags ?? 0x01); // loadflags: LOADED_HIGH
  dv.setUint32(0x214, f.code32Start ?? 0x100000, true); // code32_start
  if (version >= 0x203) dv.setUint32(0x22c, f.initrdAddrMax ?? 0x7fffffff, true); // initrd_addr_max
  if (version >= 0x205) {
    dv.setUint32(0x230, f.kernelAlignment ?? 0x200000, true); // kernel_alignment
    dv.setUint8(0x234, f.relocatable ?? 1); // relocatable_kernel
  }
  if (version >= 0x20a) dv.setUint8(0x235, 21); // min_alignment
  if (version >= 0x20c) dv.setUint16(0x236, f.xloadflags ?? 0x03, true); // xloadflags: KERNEL_64 | CAN_BE_LOADED_ABOVE_4G
  if (version >= 0x206) dv.setUint32(0x238, f.cmdlineSize ?? 0x7ff, true); // cmdline_size
  if (version >= 0x208) {
    dv.setUint32(0x248, f.payloadOffset ?? 0x200, true); // payload_offset
    dv.setUint32(0x24c, f.payloadLength ?? kernelSize - 0x400, true); // payload_length
  }
  if (version >= 0x20a) {
    dv.setBigUint64(0x258, f.prefAddress ?? 0x1000000n, true); // pref_address
    dv.setUint32(0x260, f.initSize ?? 4 * MiB, true); // init_size
  }
  if (version >= 0x20b) dv.setUint32(0x264, 0x190, true); // handover_offset
  if (version >= 0x20f) dv.setUint32(0x268, 0x2000, true); // kernel_info_offset
  return f.fileSize === undefined ? b : b.slice(0, f.fileSize);
}

const setupSizeOf = (b: Uint8Array) => ((b[0x1f1] || 4) + 1) * 512;

async function vmWith(bytes: Uint8Array, ram = [{ base: 0, size: 64 * MiB }], more: Record<string, Uint8Array> = {}) {
  const vm = await createVm({ ram, files: fromMap({ bzImage: bytes, ...more }) });
  for (const r of ram) vm.ram.view(r.base, r.size).fill(0xee);
  return vm;
}

const archOf = (a: unknown) => a as BzImageKernelArch;
const eq = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const all = (a: Uint8Array, v: number) => a.every((x) => x === v);

type Vm = Awaited<ReturnType<typeof createVm>>;

async function expectRefused(vm: Vm, load: () => Promise<unknown>, code: string, field: string | undefined) {
  const snaps = vm.ram.regions.map((r) => vm.ram.read(r.base, r.size).slice());
  const placed = vm.placed();
  const e = await load().then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(GuestImageError);
  const err = e as GuestImageError;
  expect(err.code).toBe(code);
  if (field !== undefined) {
    expect(err.field).toBe(field);
    expect(err.message).toContain(field);
  }
  expect(vm.placed()).toEqual(placed);
  vm.ram.regions.forEach((r, i) => expect(eq(vm.ram.read(r.base, r.size), snaps[i])).toBe(true));
  return err;
}

async function refusedKernel(bytes: Uint8Array, code: string, field: string, at?: number) {
  const vm = await vmWith(bytes);
  return expectRefused(vm, () => vm.loadKernel("bzImage", at === undefined ? {} : { at }), code, field);
}

describe("bzImage detection", () => {
  it('"HdrS" at 0x202 with boot_flag 0xAA55 is a bzImage', async () => {
    const info = await inspectFile(bytesFile("bzImage", bzImage()));
    expect(info).toMatchObject({ format: "bzimage", machine: "x86_64", endian: "little", protocol: "2.15", setup_sects: 4, setup_size: 0xa00, kernel_size: 0x3000, header_end: 0x26c, relocatable: true, kernel_version_string: KVER });
    expect(info.setup_header).toMatchObject({ setup_sects: 4, boot_flag: 0xaa55, header: 0x53726448, version: 0x20f, loadflags: 1, code32_start: 0x100000, kernel_alignment: 0x200000, relocatable_kernel: 1, min_alignment: 21, xloadflags: 3, cmdline_size: 0x7ff, pref_address: 0x1000000n, init_size: 4 * MiB, kernel_info_offset: 0x2000 });
  });

  it("a boot sector with 0xAA55 but no HdrS (old zImage, or any boot sector) stays raw", async () => {
    expect(await inspectFile(bytesFile("k", bzImage({ magic: 0 })))).toMatchObject({ format: "raw" });
  });

  it("needs the 0x206 bytes up to and including HdrS", () => {
    const b = bzImage();
    expect(detect(b.subarray(0, 0x205), 0x205).name).toBe("raw");
    expect(detect(b.subarray(0, 0x206), 0x206).name).toBe("bzimage");
  });

  it("fields a protocol version does not define are null (2.05: no cmdline_size, pref_address, init_size, xloadflags)", async () => {
    const info = await inspectFile(bytesFile("k", bzImage({ version: 0x205 })));
    expect(info).toMatchObject({ protocol: "2.05", machine: "x86" });
    expect(info.setup_header).toMatchObject({ kernel_alignment: 0x200000, relocatable_kernel: 1, cmdline_size: null, min_alignment: null, xloadflags: null, payload_offset: null, setup_data: null, pref_address: null, init_size: null, handover_offset: null, kernel_info_offset: null });
  });
});

describe("bzImage header checks (each refused while planning: RAM and ledger untouched)", () => {
  it("boot_flag ≠ 0xAA55: BAD_MAGIC", async () => {
    const err = await refusedKernel(bzImage({ bootFlag: 0x1234 }), "BAD_MAGIC", "boot_flag");
    expect(err.message).toContain("0x1234");
  });

  it('no "HdrS" (format forced): BAD_MAGIC naming header', async () => {
    const f = bytesFile("k", bzImage({ magic: 0x12345678 }));
    const e = await bzImageFormat.inspect!(f, new Uint8Array(0)).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: "BAD_MAGIC", field: "header" });
    expect((e as Error).message).toContain("0x12345678");
  });

  it("version < 2.00: UNSUPPORTED (old zImage)", async () => {
    const err = await refusedKernel(bzImage({ version: 0x1ff, jumpOffset: 0x22 }), "UNSUPPORTED", "version");
    expect(err.message).toContain("0x1ff");
  });

  it("LOADED_HIGH clear: UNSUPPORTED (zImage loaded low)", async () => {
    const err = await refusedKernel(bzImage({ loadflags: 0x80 }), "UNSUPPORTED", "loadflags");
    expect(err.message).toContain("LOADED_HIGH");
  });

  it("setup larger than the file: TRUNCATED (setup_sects)", async () => {
    // setup_sects 30 → 31 × 512 = 0x3e00 bytes of real-mode code, in a 0x3000-byte file.
    await refusedKernel(bzImage({ setupSects: 30, sectors: 4, kernelSize: 0x3000 - 0xa00 }), "TRUNCATED", "setup_sects");
  });

  it("a file that is only the setup (no protected-mode kernel): TRUNCATED (setup_sects)", async () => {
    await refusedKernel(bzImage({ kernelSize: 0x400, fileSize: 0xa00, version: 0x203 }), "TRUNCATED", "setup_sects");
  });

  it("syssize × 16 larger than the protected-mode part: TRUNCATED (syssize)", async () => {
    const err = await refusedKernel(bzImage({ kernelSize: 0x3000, syssize: 0x301 }), "TRUNCATED", "syssize");
    expect(err.message).toContain("0x3010");
  });

  it("before 2.04 syssize is 2 bytes and not trusted: not checked", async () => {
    const vm = await vmWith(bzImage({ version: 0x203, syssize: 0xffff }));
    expect((await vm.loadKernel("bzImage")).format).toBe("bzimage");
  });

  it("payload_offset + payload_length past the protected-mode part: TRUNCATED (payload_length)", async () => {
    await refusedKernel(bzImage({ payloadOffset: 0x200, payloadLength: 0x2e01 }), "TRUNCATED", "payload_length");
  });

  it("jump not 0xEB: BAD_HEADER (jump)", async () => {
    await refusedKernel(bzImage({ jumpOp: 0xe9 }), "BAD_HEADER", "jump");
  });

  it("header end 0x202 + byte@0x201 past the setup header's hole in the zero page (a backward jump): BAD_HEADER (jump)", async () => {
    const err = await refusedKernel(bzImage({ jumpOffset: 0x90 }), "BAD_HEADER", "jump");
    expect(err.message).toContain("0x292");
  });

  it("header end before the fields its own version defines: BAD_HEADER (jump)", async () => {
    // Protocol 2.15 defines kernel_info_offset at 0x268/4; a header ending at 0x268 lacks it.
    const err = await refusedKernel(bzImage({ jumpOffset: 0x66 }), "BAD_HEADER", "jump");
    expect(err.message).toContain("0x26c");
  });

  it("relocatable with kernel_alignment not a power of two: BAD_HEADER", async () => {
    await refusedKernel(bzImage({ kernelAlignment: 0x300000 }), "BAD_HEADER", "kernel_alignment");
  });

  it("XLF_KERNEL_64 with no byte at +0x200: TRUNCATED (xloadflags)", async () => {
    await refusedKernel(bzImage({ kernelSize: 0x200, payloadOffset: 0, syssize: 0x20 }), "TRUNCATED", "xloadflags");
  });

  it("relocs data is refused (a bzImage relocates itself)", async () => {
    const vm = await vmWith(bzImage());
    await expectRefused(vm, () => vm.loadKernel("bzImage", { relocs: "bzImage" }), "BAD_ARGUMENT", "relocs");
  });
});

describe("bzImage placement", () => {
  it("no address: code32_start 0x100000; window [pref_address 16 MiB, +init_size) reserved with it", async () => {
    const bytes = bzImage();
    const vm = await vmWith(bytes);
    const k = await vm.loadKernel("bzImage");
    // runtime_start = align_up(max(0x100000, pref_address 0x1000000), 0x200000) = 0x1000000.
    expect(k).toMatchObject({ format: "bzimage", paddr: 0x100000, size: 0x3000, entry: 0x100200n });
    // The kernel and, apart from it, the window it decompresses into: both kept free.
    expect(vm.placed()).toEqual([{ name: "bzImage", paddr: 0x100000, size: 0x3000 }, { name: "bzImage (decompression window)", paddr: 0x1000000, size: 4 * MiB }]);
    expect(eq(vm.ram.read(0x100000, 0x3000), bytes.subarray(0xa00))).toBe(true);
    expect(all(vm.ram.read(0xff000, 0x1000), 0xee)).toBe(true); // the setup is not placed
    expect(all(vm.ram.read(0x103000, 0x1000), 0xee)).toBe(true); // nothing written past the kernel
    expect(all(vm.ram.read(0x1000000, 4 * MiB), 0xee)).toBe(true); // the window is reserved, not written
    const a = archOf(k.arch);
    expect(a).toMatchObject({
      format: "bzimage", entry: 0x100200n, entry32: 0x100000n, entry64: 0x100200n, protocol: "2.15", protocol_version: 0x20f,
      code32_start: 0x100000, setup_sects: 4, setup_size: 0xa00, header_end: 0x26c, kernel_size: 0x3000, relocatable: true,
      kernel_alignment: 0x200000, pref_address: 0x1000000n, runtime_start: 0x1000000, init_size: 4 * MiB, xloadflags: 3, kernel_version_string: KVER,
    });
    expect(eq(a.setup_bytes, bytes.subarray(0, 0xa00))).toBe(true);
    expect(a.setup_header.code32_start).toBe(0x100000); // the file's value
  });

  it("relocatable at any B (not aligned): the copy goes to B, runtime_start = align_up(B, kernel_alignment) above pref_address", async () => {
    const bytes = bzImage();
    const vm = await vmWith(bytes);
    const B = 0x2345678;
    const k = await vm.loadKernel("bzImage", { at: B });
    const rs = 0x2400000; // align_up(0x2345678, 0x200000)
    expect(k).toMatchObject({ paddr: B, size: 0x3000, entry: BigInt(B + 0x200) });
    expect(vm.placed()).toEqual([{ name: "bzImage", paddr: B, size: 0x3000 }, { name: "bzImage (decompression window)", paddr: rs, size: 4 * MiB }]);
    expect(archOf(k.arch)).toMatchObject({ code32_start: B, entry32: BigInt(B), entry64: BigInt(B + 0x200), runtime_start: rs });
    expect(eq(vm.ram.read(B, 0x3000), bytes.subarray(0xa00))).toBe(true);
    expect(all(vm.ram.read(B - 16, 16), 0xee)).toBe(true);
  });

  it("relocatable below pref_address: the window starts at pref_address (boot.rst, Nov 2024 init_size text)", async () => {
    const vm = await vmWith(bzImage());
    const k = await vm.loadKernel("bzImage", { at: 0x200000 });
    expect(k).toMatchObject({ paddr: 0x200000, size: 0x3000 });
    expect(vm.placed()[1]).toEqual({ name: "bzImage (decompression window)", paddr: 0x1000000, size: 4 * MiB });
    expect(archOf(k.arch).runtime_start).toBe(0x1000000);
  });

  it("a window that is not RAM is refused (OUT_OF_RAM), nothing written", async () => {
    const vm = await vmWith(bzImage(), [{ base: 0, size: 8 * MiB }]);
    const err = await expectRefused(vm, () => vm.loadKernel("bzImage"), "OUT_OF_RAM", "init_size");
    expect(err.message).toContain("0x1000000");
  });

  it("a module placed into the init_size window: OVERLAP naming the kernel; just past it: fine", async () => {
    const vm = await vmWith(bzImage(), undefined, { initrd: new Uint8Array(0x1000).fill(0x5a), initrd2: new Uint8Array(0x1000).fill(0x5b) });
    await vm.loadKernel("bzImage");
    const err = await expectRefused(vm, () => vm.loadModule("initrd", { at: 0x1200000 }), "OVERLAP", undefined);
    expect(err.message).toContain('"bzImage (decompression window)"');
    const err2 = await expectRefused(vm, () => vm.place("zero page", new Uint8Array(4096), { at: 0x13ff000 }), "OVERLAP", undefined);
    expect(err2.message).toContain('"bzImage (decompression window)"');
    // The gap between the kernel's end and the window stays free.
    const gap = await vm.loadModule("initrd", { at: 0x800000 });
    expect(gap.paddr).toBe(0x800000);
    // The loaded kernel itself is kept too.
    const err3 = await expectRefused(vm, () => vm.place("zero page", new Uint8Array(4096), { at: 0x102000 }), "OVERLAP", undefined);
    expect(err3.message).toContain('"bzImage"');
    const m = await vm.loadModule("initrd2", { at: 0x1400000 });
    expect(m.paddr).toBe(0x1400000);
  });

  it("non-relocatable: only at code32_start; the window is at pref_address", async () => {
    const bytes = bzImage({ relocatable: 0 });
    const vm = await vmWith(bytes);
    const err = await expectRefused(vm, () => vm.loadKernel("bzImage", { at: 0x200000 }), "BAD_ADDRESS", "load_address");
    expect(err.message).toContain("0x200000");
    expect(err.message).toContain("0x100000");
    const k = await vm.loadKernel("bzImage", { at: 0x100000 });
    expect(k).toMatchObject({ paddr: 0x100000, size: 0x3000 });
    expect(vm.placed()[1]).toEqual({ name: "bzImage (decompression window)", paddr: 0x1000000, size: 4 * MiB });
    expect(archOf(k.arch)).toMatchObject({ relocatable: false, runtime_start: 0x1000000, code32_start: 0x100000 });
  });

  it("non-relocatable: an alignment that moves code32_start is refused", async () => {
    const vm = await vmWith(bzImage({ relocatable: 0 }));
    await expectRefused(vm, () => vm.loadKernel("bzImage", { align: 0x200000 }), "BAD_ADDRESS", "load_address");
  });

  it("protocol 2.04 (no relocatable_kernel field): non-relocatable, and no init_size window", async () => {
    const vm = await vmWith(bzImage({ version: 0x204 }));
    await expectRefused(vm, () => vm.loadKernel("bzImage", { at: 0x400000 }), "BAD_ADDRESS", "load_address");
    const k = await vm.loadKernel("bzImage");
    expect(k).toMatchObject({ paddr: 0x100000, size: 0x3000, entry: 0x100000n });
    expect(archOf(k.arch)).toMatchObject({ relocatable: false, runtime_start: null, init_size: null, entry64: null, xloadflags: 0 });
  });

  it("setup_sects 0 means 4: the kernel starts at file offset 5 × 512", async () => {
    const bytes = bzImage({ setupSects: 0 });
    expect(setupSizeOf(bytes)).toBe(0xa00);
    const vm = await vmWith(bytes);
    const k = await vm.loadKernel("bzImage");
    expect(archOf(k.arch)).toMatchObject({ setup_sects: 4, setup_size: 0xa00, kernel_size: 0x3000 });
    expect(archOf(k.arch).setup_header.setup_sects).toBe(0);
    expect(eq(vm.ram.read(0x100000, 0x3000), bytes.subarray(0xa00))).toBe(true);
  });

  it("a large setup (setup_sects 39, as Debian's): the payload starts at 0x5000", async () => {
    const bytes = bzImage({ setupSects: 39 });
    const vm = await vmWith(bytes);
    const k = await vm.loadKernel("bzImage");
    expect(eq(vm.ram.read(0x100000, 0x3000), bytes.subarray(0x5000))).toBe(true);
    expect(archOf(k.arch).setup_bytes.length).toBe(0x5000);
  });

  it("entry without XLF_KERNEL_64 is the 32-bit entry B; entry64 null", async () => {
    const vm = await vmWith(bzImage({ xloadflags: 0 }));
    const k = await vm.loadKernel("bzImage", { at: 0x400000 });
    expect(k.entry).toBe(0x400000n);
    expect(archOf(k.arch)).toMatchObject({ entry32: 0x400000n, entry64: null });
  });

  it("before 2.12 the bytes at 0x236 are padding, not xloadflags: no 64-bit entry", async () => {
    const bytes = bzImage({ version: 0x20b });
    bytes[0x236] = 0x03;
    const vm = await vmWith(bytes);
    const k = await vm.loadKernel("bzImage");
    expect(k.entry).toBe(0x100000n);
    expect(archOf(k.arch)).toMatchObject({ entry64: null, xloadflags: 0 });
    expect(archOf(k.arch).setup_header.xloadflags).toBeNull();
  });

  it("above 4 GiB without XLF_CAN_BE_LOADED_ABOVE_4G: BAD_ADDRESS", async () => {
    const vm = await vmWith(bzImage({ xloadflags: 0x01 }));
    await expectRefused(vm, () => vm.loadKernel("bzImage", { at: 4 * GiB - 0x200000 }), "BAD_ADDRESS", "load_address");
  });

  it("above 4 GiB with XLF_CAN_BE_LOADED_ABOVE_4G: placed there, 64-bit entry", async () => {
    const bytes = bzImage();
    const vm = await vmWith(bytes, [{ base: 4 * GiB, size: 16 * MiB }]);
    const k = await vm.loadKernel("bzImage", { at: 4 * GiB });
    // runtime_start = align_up(4 GiB, 2 MiB) = 4 GiB (above pref_address).
    expect(k).toMatchObject({ paddr: 4 * GiB, size: 0x3000, entry: BigInt(4 * GiB + 0x200) });
    // The window starts where the kernel is, so the two are one reserved range.
    expect(vm.placed()).toEqual([{ name: "bzImage", paddr: 4 * GiB, size: 4 * MiB }]);
    expect(eq(vm.ram.read(4 * GiB, 0x3000), bytes.subarray(0xa00))).toBe(true);
  });

  it("dry run: checked and recorded, nothing written", async () => {
    const vm = await vmWith(bzImage());
    const k = await vm.loadKernel("bzImage", { dryRun: true });
    expect(k.paddr).toBe(0x100000);
    expect(vm.placed()).toEqual([{ name: "bzImage", paddr: 0x100000, size: 0x3000 }, { name: "bzImage (decompression window)", paddr: 0x1000000, size: 4 * MiB }]);
    expect(all(vm.ram.read(0x100000, 0x3000), 0xee)).toBe(true);
  });
});

describe("bzImage through the seL4 API", () => {
  it("vm_load_guest_kernel: load_paddr, size, kernel_image_arch", async () => {
    const bytes = bzImage();
    const vm = await vmWith(bytes);
    const g = await vm_load_guest_kernel(vm, "bzImage", 0x300000, 0x200000);
    // 0x300000 rounded up to 2 MiB = 0x400000; runtime_start = align_up(max(0x400000, 0x1000000), 2 MiB).
    expect(g.kernel_image).toEqual({ load_paddr: 0x400000, alignment: 0x200000, size: 0x3000 });
    expect(g.kernel_image_arch).toMatchObject({ format: "bzimage", entry: 0x400200n, code32_start: 0x400000, entry32: 0x400000n });
    expect(eq(vm.ram.read(0x400000, 0x3000), bytes.subarray(0xa00))).toBe(true);
  });

  it("vm_load_guest_kernel refuses a non-relocatable kernel elsewhere than code32_start", async () => {
    const vm = await vmWith(bzImage({ relocatable: 0 }));
    await expectRefused(vm, () => vm_load_guest_kernel(vm, "bzImage", 0x400000, 0), "BAD_ADDRESS", "load_address");
  });
});

describe("bzImage CLI", () => {
  const ROOT = fileURLToPath(new URL("../..", import.meta.url));
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  const file = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), "guest-image-bz-"));
    dirs.push(d);
    const f = path.join(d, "bzImage");
    fs.writeFileSync(f, bzImage());
    return f;
  };
  const run = (...args: string[]) => spawnSync(process.execPath, ["dist/cli/main.js", ...args], { cwd: ROOT, encoding: "utf8" });

  it("load --json: format, load_paddr, entry", () => {
    const f = file();
    const r = run("load", "--ram", "0:64M", "--kernel", f, "--json");
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const o = JSON.parse(r.stdout);
    expect(o.kernel).toMatchObject({ format: "bzimage", load_paddr: "0x100000", entry: "0x100200", size: "0x3000" });
    expect(o.placed).toEqual([{ name: f, paddr: "0x100000", size: "0x3000" }, { name: `${f} (decompression window)`, paddr: "0x1000000", size: "0x400000" }]);
    expect(o.kernel.arch).toMatchObject({ format: "bzimage", code32_start: "0x100000", runtime_start: "0x1000000", protocol: "2.15" });
  });

  it("load --kernel-addr: a relocatable kernel goes there", () => {
    const f = file();
    const o = JSON.parse(run("load", "--ram", "0:64M", "--kernel", f, "--kernel-addr", "0x400000", "--json").stdout);
    expect(o.kernel).toMatchObject({ load_paddr: "0x400000", entry: "0x400200" });
  });

  it("inspect --json", () => {
    const f = file();
    const o = JSON.parse(run("inspect", f, "--json").stdout);
    expect(o).toMatchObject({ format: "bzimage", protocol: "2.15", setup_size: "0xa00" });
  });
});
