// The x86 zero page (struct boot_params). Offsets come from Linux
// Documentation/arch/x86/zero-page.rst (ext_ramdisk_image 0x0C0, ext_ramdisk_size 0x0C4,
// ext_cmd_line_ptr 0x0C8, e820_entries 0x1E8, sentinel 0x1EF, e820_table 0x2D0 / 0xA00 bytes)
// and Documentation/arch/x86/boot.rst (setup header at 0x1F1: type_of_loader 0x210, loadflags
// 0x211, code32_start 0x214, ramdisk_image 0x218, ramdisk_size 0x21C, heap_end_ptr 0x224,
// cmd_line_ptr 0x228, initrd_addr_max 0x22C, cmdline_size 0x238); QEMU's patching from
// reference/qemu-reference.md ("Header fields QEMU patches").
import { describe, expect, it } from "vitest";
import { buildBootParams } from "../../src/boot/x86-boot-params.js";
import type { BzImageKernelArch } from "../../src/formats/bzimage.js";
import { createVm, fromMap, GuestImageError } from "../../src/node.js";

const MiB = 0x10_0000;
const GiB = 0x4000_0000;

/** boot.rst header table: end of the last field of each version (real kernels jump right past it). */
const HEADER_END: Record<number, number> = { 0x202: 0x22c, 0x203: 0x230, 0x205: 0x238, 0x206: 0x23c, 0x20c: 0x268, 0x20f: 0x26c };

interface K {
  version?: number;
  xloadflags?: number;
  cmdlineSize?: number;
  initrdAddrMax?: number;
}

/** A bzImage per boot.rst: 4 setup sectors (header at 0x1F1), then 0x3000 bytes of kernel. */
function bzImage(k: K = {}): Uint8Array {
  const version = k.version ?? 0x20f;
  const b = new Uint8Array(0xa00 + 0x3000);
  for (let i = 0; i < b.length; i++) b[i] = (i * 13 + 1) & 0xff; // every byte non-trivial, so a stray copy shows
  const dv = new DataView(b.buffer);
  b.fill(0, 0x1f1, 0x290);
  dv.setUint8(0x1f1, 4); // setup_sects
  dv.setUint32(0x1f4, 0x300, true); // syssize
  dv.setUint16(0x1fa, 0xffff, true); // vid_mode
  dv.setUint16(0x1fe, 0xaa55, true); // boot_flag
  dv.setUint8(0x200, 0xeb); // jump
  dv.setUint8(0x201, HEADER_END[version] - 0x202);
  dv.setUint32(0x202, 0x53726448, true); // "HdrS"
  dv.setUint16(0x206, version, true); // version
  dv.setUint16(0x20e, 0x100, true); // kernel_version
  dv.setUint8(0x211, 0x01); // loadflags: LOADED_HIGH
  dv.setUint32(0x214, 0x100000, true); // code32_start
  if (version >= 0x203) dv.setUint32(0x22c, k.initrdAddrMax ?? 0x7fffffff, true); // initrd_addr_max
  if (version >= 0x205) {
    dv.setUint32(0x230, 0x200000, true); // kernel_alignment
    dv.setUint8(0x234, 1); // relocatable_kernel
  }
  if (version >= 0x206) dv.setUint32(0x238, k.cmdlineSize ?? 0x7ff, true); // cmdline_size
  if (version >= 0x20c) dv.setUint16(0x236, k.xloadflags ?? 0x03, true); // xloadflags
  if (version >= 0x20f) {
    dv.setBigUint64(0x258, 0x1000000n, true); // pref_address
    dv.setUint32(0x260, 4 * MiB, true); // init_size
    dv.setUint32(0x268, 0x2000, true); // kernel_info_offset
  }
  return b;
}

async function loaded(k: K = {}, at?: number, ram = [{ base: 0, size: 64 * MiB }]) {
  const bytes = bzImage(k);
  const vm = await createVm({ ram, files: fromMap({ bzImage: bytes }) });
  const kernel = await vm.loadKernel("bzImage", at === undefined ? {} : { at });
  return { vm, bytes, arch: kernel.arch as unknown as BzImageKernelArch };
}

const u8 = (p: Uint8Array, o: number) => p[o];
const u16 = (p: Uint8Array, o: number) => new DataView(p.buffer, p.byteOffset).getUint16(o, true);
const u32 = (p: Uint8Array, o: number) => new DataView(p.buffer, p.byteOffset).getUint32(o, true);
const u64 = (p: Uint8Array, o: number) => new DataView(p.buffer, p.byteOffset).getBigUint64(o, true);

function expectError(f: () => unknown, code: string, field: string) {
  let e: unknown;
  try {
    f();
  } catch (x) {
    e = x;
  }
  expect(e).toBeInstanceOf(GuestImageError);
  expect((e as GuestImageError).code).toBe(code);
  expect((e as GuestImageError).field).toBe(field);
  expect((e as GuestImageError).message).toContain(field);
  return e as GuestImageError;
}

describe("zero page layout", () => {
  it("4096 bytes: zeros, the file's setup header at 0x1F1 up to 0x202 + byte@0x201, then the written fields", async () => {
    const { vm, bytes, arch } = await loaded({}, 0x400000);
    const p = buildBootParams({ kernel: arch, ram: vm.ram.regions, cmdline: { paddr: 0x20000, length: 10 }, ramdisk: { paddr: 0x3000000, size: 0x12345 } });
    expect(p.length).toBe(4096);
    const written = new Set([0x210, 0x214, 0x215, 0x216, 0x217, 0x218, 0x219, 0x21a, 0x21b, 0x21c, 0x21d, 0x21e, 0x21f, 0x228, 0x229, 0x22a, 0x22b]);
    for (let o = 0x1f1; o < 0x26c; o++) if (!written.has(o)) expect(u8(p, o), `byte ${o.toString(16)}`).toBe(bytes[o]);
    for (let o = 0; o < 0x1f1; o++) if (o !== 0x1e8 && !(o >= 0x1e0 && o < 0x1e4)) expect(u8(p, o), `byte ${o.toString(16)}`).toBe(0);
    for (let o = 0x26c; o < 0x2d0; o++) expect(u8(p, o)).toBe(0);
    // 64 MiB from 0: three e820 entries (RAM, the legacy 0x9FC00–1 MiB reserved, RAM; test/boot/x86-e820.test.ts)
    expect(u8(p, 0x1e8)).toBe(3);
    for (let o = 0x2d0 + 3 * 20; o < 4096; o++) expect(u8(p, o)).toBe(0);
    expect(u8(p, 0x1ef)).toBe(0); // sentinel: not copied from the boot sector
    expect(u8(p, 0x210)).toBe(0xff); // type_of_loader default: undefined
    expect(u8(p, 0x211)).toBe(0x01); // loadflags unchanged without heapEnd
    expect(u32(p, 0x214)).toBe(0x400000); // code32_start = B
    expect(u32(p, 0x218)).toBe(0x3000000); // ramdisk_image
    expect(u32(p, 0x21c)).toBe(0x12345); // ramdisk_size
    expect(u32(p, 0x228)).toBe(0x20000); // cmd_line_ptr
  });

  it("heapEnd: loadflags |= CAN_USE_HEAP (0x80), heap_end_ptr = heapEnd − 0x200", async () => {
    const { vm, arch } = await loaded();
    const p = buildBootParams({ kernel: arch, ram: vm.ram.regions, heapEnd: 0xe000 });
    expect(u8(p, 0x211)).toBe(0x81);
    expect(u16(p, 0x224)).toBe(0xde00);
  });

  it("heapEnd inside the real-mode code or past its 64 KiB segment: BAD_ARGUMENT", async () => {
    const { vm, arch } = await loaded();
    expectError(() => buildBootParams({ kernel: arch, ram: vm.ram.regions, heapEnd: 0x800 }), "BAD_ARGUMENT", "heapEnd");
    expectError(() => buildBootParams({ kernel: arch, ram: vm.ram.regions, heapEnd: 0x10001 }), "BAD_ARGUMENT", "heapEnd");
  });

  it("e820 from the RAM regions: type 1, in address order, e820_entries at 0x1E8", async () => {
    const ram = [{ base: 0x1_0000_0000, size: 16 * MiB }, { base: 0, size: 0x9f000 }, { base: 0x100000, size: 63 * MiB }];
    const { vm, arch } = await loaded({}, undefined, ram);
    const p = buildBootParams({ kernel: arch, ram: vm.ram.regions });
    expect(u8(p, 0x1e8)).toBe(3);
    const e = (i: number) => ({ addr: u64(p, 0x2d0 + 20 * i), size: u64(p, 0x2d0 + 20 * i + 8), type: u32(p, 0x2d0 + 20 * i + 16) });
    expect([e(0), e(1), e(2)]).toEqual([
      { addr: 0n, size: 0x9f000n, type: 1 },
      { addr: 0x100000n, size: BigInt(63 * MiB), type: 1 },
      { addr: 0x1_0000_0000n, size: BigInt(16 * MiB), type: 1 },
    ]);
    expect(e(3)).toEqual({ addr: 0n, size: 0n, type: 0 });
  });

  it("more than 128 (E820_MAX_ENTRIES_ZEROPAGE) regions: TOO_LARGE", async () => {
    const { vm, arch } = await loaded();
    const ram = Array.from({ length: 129 }, (_, i) => ({ base: i * 0x2000, size: 0x1000 }));
    expectError(() => buildBootParams({ kernel: arch, ram }), "TOO_LARGE", "e820_table");
    const ok = buildBootParams({ kernel: arch, ram: ram.slice(0, 128) });
    expect(u8(ok, 0x1e8)).toBe(128);
    expect(u64(ok, 0x2d0 + 127 * 20)).toBe(BigInt(127 * 0x2000));
    void vm;
  });
});

describe("command line", () => {
  it("2.06+: cmdline_size from the header (0x7ff here) bounds the length without the NUL", async () => {
    const { vm, arch } = await loaded();
    expect(u32(buildBootParams({ kernel: arch, ram: vm.ram.regions, cmdline: { paddr: 0x20000, length: 0x7ff } }), 0x228)).toBe(0x20000);
    const e = expectError(() => buildBootParams({ kernel: arch, ram: vm.ram.regions, cmdline: { paddr: 0x20000, length: 0x800 } }), "TOO_LARGE", "cmdline_size");
    expect(e.message).toContain("2047");
  });

  it("2.06 with a small cmdline_size: that value, not 255", async () => {
    const { vm, arch } = await loaded({ version: 0x206, cmdlineSize: 100 });
    expectError(() => buildBootParams({ kernel: arch, ram: vm.ram.regions, cmdline: { paddr: 0x20000, length: 101 } }), "TOO_LARGE", "cmdline_size");
    buildBootParams({ kernel: arch, ram: vm.ram.regions, cmdline: { paddr: 0x20000, length: 100 } });
  });

  it("2.05 and older: 255", async () => {
    const { vm, arch } = await loaded({ version: 0x205 });
    buildBootParams({ kernel: arch, ram: vm.ram.regions, cmdline: { paddr: 0x20000, length: 255 } });
    expectError(() => buildBootParams({ kernel: arch, ram: vm.ram.regions, cmdline: { paddr: 0x20000, length: 256 } }), "TOO_LARGE", "cmdline_size");
  });

  it("above 4 GiB: only with XLF_CAN_BE_LOADED_ABOVE_4G, high half in ext_cmd_line_ptr (0x0C8)", async () => {
    const a = await loaded();
    const p = buildBootParams({ kernel: a.arch, ram: a.vm.ram.regions, cmdline: { paddr: 0x1_2345_6000, length: 10 } });
    expect(u32(p, 0x228)).toBe(0x2345_6000);
    expect(u32(p, 0x0c8)).toBe(1);
    const b = await loaded({ xloadflags: 0x01 });
    expectError(() => buildBootParams({ kernel: b.arch, ram: b.vm.ram.regions, cmdline: { paddr: 0x1_2345_6000, length: 10 } }), "BAD_ADDRESS", "cmd_line_ptr");
    // Its NUL must also be below 4 GiB.
    expectError(() => buildBootParams({ kernel: b.arch, ram: b.vm.ram.regions, cmdline: { paddr: 4 * GiB - 10, length: 10 } }), "BAD_ADDRESS", "cmd_line_ptr");
    expect(u32(buildBootParams({ kernel: b.arch, ram: b.vm.ram.regions, cmdline: { paddr: 4 * GiB - 11, length: 10 } }), 0x0c8)).toBe(0);
  });
});

describe("ramdisk", () => {
  it("must end at or below initrd_addr_max (the highest safe byte)", async () => {
    const { vm, arch } = await loaded({ xloadflags: 0x01, initrdAddrMax: 0x37ffffff });
    // boot.rst's own example: 131072 bytes at 0x37FE0000 with initrd_addr_max 0x37FFFFFF.
    const p = buildBootParams({ kernel: arch, ram: vm.ram.regions, ramdisk: { paddr: 0x37fe0000, size: 131072 } });
    expect(u32(p, 0x218)).toBe(0x37fe0000);
    expect(u32(p, 0x21c)).toBe(131072);
    const e = expectError(() => buildBootParams({ kernel: arch, ram: vm.ram.regions, ramdisk: { paddr: 0x37fe0001, size: 131072 } }), "BAD_ADDRESS", "initrd_addr_max");
    expect(e.message).toContain("0x37ffffff");
  });

  it("before 2.03 the limit is 0x37FFFFFF", async () => {
    const { vm, arch } = await loaded({ version: 0x202 });
    expectError(() => buildBootParams({ kernel: arch, ram: vm.ram.regions, ramdisk: { paddr: 0x38000000, size: 0x1000 } }), "BAD_ADDRESS", "initrd_addr_max");
  });

  it("with XLF_CAN_BE_LOADED_ABOVE_4G: anywhere, high halves in ext_ramdisk_image/size (0x0C0/0x0C4)", async () => {
    const { vm, arch } = await loaded();
    const p = buildBootParams({ kernel: arch, ram: vm.ram.regions, ramdisk: { paddr: 0x2_0000_1000, size: 0x1_0000_0010 } });
    expect([u32(p, 0x218), u32(p, 0x21c), u32(p, 0x0c0), u32(p, 0x0c4)]).toEqual([0x1000, 0x10, 2, 1]);
  });

  it("size 0: BAD_ARGUMENT", async () => {
    const { vm, arch } = await loaded();
    expectError(() => buildBootParams({ kernel: arch, ram: vm.ram.regions, ramdisk: { paddr: 0x1000000, size: 0 } }), "BAD_ARGUMENT", "ramdisk.size");
  });
});

describe("arguments", () => {
  it("a kernel record that is not a bzImage's: BAD_ARGUMENT", async () => {
    expectError(() => buildBootParams({ kernel: { format: "elf" } as unknown as BzImageKernelArch, ram: [] }), "BAD_ARGUMENT", "kernel");
  });
  it("type_of_loader must be a byte", async () => {
    const { vm, arch } = await loaded();
    expectError(() => buildBootParams({ kernel: arch, ram: vm.ram.regions, typeOfLoader: 0x100 }), "BAD_ARGUMENT", "typeOfLoader");
  });
  it("protocol 2.01 and older have no cmd_line_ptr: UNSUPPORTED", async () => {
    const { vm, arch } = await loaded({ version: 0x202 });
    const old = { ...arch, protocol_version: 0x201, protocol: "2.01" };
    expectError(() => buildBootParams({ kernel: old, ram: vm.ram.regions, cmdline: { paddr: 0x20000, length: 1 } }), "UNSUPPORTED", "cmd_line_ptr");
  });
  it("code32_start is left as in the file for a kernel loaded at or above 4 GiB", async () => {
    const { vm, arch } = await loaded({}, 4 * GiB, [{ base: 4 * GiB, size: 16 * MiB }]);
    expect(u32(buildBootParams({ kernel: arch, ram: vm.ram.regions }), 0x214)).toBe(0x100000);
  });
});

describe("QEMU's reference patching (qemu-reference.md, x86 -kernel)", () => {
  it("typeOfLoader 0xB0, heap end = cmdline − real-mode base, cmdline at 0x20000, initrd top-down: the same 11 header bytes", async () => {
    // QEMU pc-i440fx-7.2, -m 128M: setup at 0x10000, cmdline at 0x20000, heap_end_ptr = 0x20000 −
    // 0x10000 − 0x200 = 0xfe00; initrd_max = min(XLF_CAN_BE_LOADED_ABOVE_4G ? 0xffffffff :
    // initrd_addr_max, 128M − acpi_data_size 0x20000 − 1) = 0x7fdffff; initrd at (max − size) & ~0xfff.
    const { vm, bytes, arch } = await loaded({}, undefined, [{ base: 0, size: 128 * MiB }]);
    const initrdSize = 0x12345;
    const initrdAddr = (0x7fdffff - initrdSize) & ~0xfff;
    expect(initrdAddr).toBe(0x7fcd000);
    const cmdline = new TextEncoder().encode("console=ttyS0 root=/dev/vda\0");
    // QEMU's patch of the file's header, byte for byte as qemu-reference.md lists it.
    const qemu = bytes.slice(0, 0x290);
    const qv = new DataView(qemu.buffer);
    qv.setUint8(0x210, 0xb0); // type_of_loader
    qv.setUint8(0x211, qv.getUint8(0x211) | 0x80); // loadflags |= CAN_USE_HEAP
    qv.setUint16(0x224, 0x20000 - 0x10000 - 0x200, true); // heap_end_ptr
    qv.setUint32(0x228, 0x20000, true); // cmd_line_ptr
    qv.setUint32(0x218, initrdAddr, true); // ramdisk_image
    qv.setUint32(0x21c, initrdSize, true); // ramdisk_size

    await vm.place("cmdline", cmdline, { at: 0x20000 });
    const p = buildBootParams({
      kernel: arch, ram: vm.ram.regions, typeOfLoader: 0xb0, heapEnd: 0x20000 - 0x10000,
      cmdline: { paddr: 0x20000, length: cmdline.length - 1 }, ramdisk: { paddr: initrdAddr, size: initrdSize },
    });
    expect(Buffer.from(p.subarray(0x1f1, 0x26c)).equals(Buffer.from(qemu.subarray(0x1f1, 0x26c)))).toBe(true);

    // The page goes into guest RAM through the same checked path as a file.
    const zp = await vm.place("zero page", p, { at: 0x7000 });
    expect(zp).toMatchObject({ paddr: 0x7000, size: 4096 });
    expect(Buffer.from(vm.ram.read(0x7000, 4096)).equals(Buffer.from(p))).toBe(true);
    expect(vm.placed().map((x) => x.name)).toEqual(["zero page", "cmdline", "bzImage", "bzImage (decompression window)"]);
  });

  it("the zero page cannot be placed in the kernel's decompression window", async () => {
    const { vm, arch } = await loaded();
    const p = buildBootParams({ kernel: arch, ram: vm.ram.regions });
    const e = await vm.place("zero page", p, { at: 0x1100000 }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: "OVERLAP" });
    expect((e as Error).message).toContain('"bzImage (decompression window)"');
  });
});
