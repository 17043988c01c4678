// ARM zImage: headers built word by word as arch/arm/boot/compressed/head.S lays them out
// (0x24 magic 0x016f2818, 0x28 start, 0x2c end, 0x30 endianness flag 0x04030201), expected
// placements from Documentation/arch/arm/booting.rst (start 0: position independent, loaded at
// the caller's address or, by convention, RAM base + 0x8000) — not from running the loader.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { createVm, fromMap, GuestImageError, inspectFile, vm_load_guest_kernel } from "../../src/node.js";
import type { ZImageArch } from "../../src/formats/zimage.js";
import { bytesFile } from "../../src/sources/source.js";
import { expectRefused, vmWith as vmWithFiles } from "../helpers/vm.js";

const MiB = 0x10_0000;
const RAM_BASE = 0x4000_0000;

interface ZFields {
  start?: number;
  end?: number;
  /** Bytes after `end − start` (e.g. an appended DTB). */
  tail?: Uint8Array;
  /** File size override (to truncate). */
  size?: number;
  endianFlag?: number | null;
  magic?: number;
}

function zImage(f: ZFields = {}): Uint8Array {
  const start = f.start ?? 0;
  const end = f.end ?? start + 0x3000;
  const body = end - start;
  const tail = f.tail ?? new Uint8Array(0);
  const size = f.size ?? Math.max(body, 0) + tail.length;
  const b = new Uint8Array(size);
  for (let i = 0x40; i < size; i++) b[i] = (i * 5 + 11) & 0xff;
  const dv = new DataView(b.buffer);
  for (let i = 0; i < 8; i++) dv.setUint32(i * 4, 0xe1a00000, true); // head.S: 8 × "mov r0, r0"
  dv.setUint32(0x20, 0xea00000f, true); // b 1f
  dv.setUint32(0x24, f.magic ?? 0x016f2818, true); // magic
  dv.setUint32(0x28, start, true); // start: absolute load/run address (0 = position independent)
  dv.setUint32(0x2c, end, true); // end
  if (f.endianFlag !== null) dv.setUint32(0x30, f.endianFlag ?? 0x04030201, true); // endianness flag, stored as a LE kernel writes it
  else dv.setUint32(0x30, 0xe1a00000, true); // an old kernel: code where the flag would be
  if (size >= 0x3c) {
    dv.setUint32(0x34, 0x45454545, true); // "another magic number"
    dv.setUint32(0x38, 0, true); // _magic_table
  }
  if (body >= 0 && body + tail.length <= size) b.set(tail, body);
  return b;
}

/** A minimal DTB header (Devicetree Specification §5.2): big-endian magic and totalsize. */
function dtb(size = 0x100): Uint8Array {
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, 0xd00dfeed, false);
  dv.setUint32(4, size, false);
  return b;
}

const vmWith = (bytes: Uint8Array, ramSize = 16 * MiB, ramBase = RAM_BASE) => vmWithFiles({ zImage: bytes }, ramSize, ramBase);

const archOf = (a: unknown) => a as ZImageArch;
const eq = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));


describe("zImage detection", () => {
  it("recognises the magic at 0x24", async () => {
    const info = await inspectFile(bytesFile("zImage", zImage()));
    expect(info).toMatchObject({ format: "zimage", machine: "arm", endian: "little", magic: 0x016f2818, start: 0, end: 0x3000, endian_flag: 0x04030201, position_independent: true, appended_dtb: false });
  });

  it("a file too short for the start/end words is raw", async () => {
    expect((await inspectFile(bytesFile("z", zImage({ size: 0x40 }).slice(0, 0x2f))))).toMatchObject({ format: "raw" });
  });
});

describe("zImage placement, position independent (start 0)", () => {
  it("no address: RAM base + 0x8000 (booting.rst convention; QEMU uses +0x10000)", async () => {
    const bytes = zImage();
    const vm = await vmWith(bytes);
    const k = await vm.loadKernel("zImage");
    expect(k.format).toBe("zimage");
    expect(k.paddr).toBe(RAM_BASE + 0x8000);
    expect(k.entry).toBe(BigInt(RAM_BASE + 0x8000));
    expect(k.size).toBe(0x3000);
    expect(eq(vm.ram.read(RAM_BASE + 0x8000, 0x3000), bytes)).toBe(true);
    expect(vm.ram.read(RAM_BASE + 0x7ff0, 16).every((x) => x === 0xee)).toBe(true);
    expect(vm.ram.read(RAM_BASE + 0xb000, 16).every((x) => x === 0xee)).toBe(true);
    expect(archOf(k.arch)).toMatchObject({ format: "zimage", entry: BigInt(RAM_BASE + 0x8000), start: 0, end: 0x3000, position_independent: true, endian: "little" });
  });

  it("no address, an alignment asked for: RAM base + 0x8000 rounded up", async () => {
    const vm = await vmWith(zImage());
    expect((await vm.loadKernel("zImage", { align: 0x10000 })).paddr).toBe(RAM_BASE + 0x10000);
  });

  it("goes exactly to B when given (QEMU's RAM base + 0x10000 here)", async () => {
    const vm = await vmWith(zImage());
    expect((await vm.loadKernel("zImage", { at: RAM_BASE + 0x10000 })).paddr).toBe(RAM_BASE + 0x10000);
  });

  it("seL4 API: at load_address rounded up to alignment (libsel4vm would add 0x8000)", async () => {
    const vm = await vmWith(zImage());
    const g = await vm_load_guest_kernel(vm, "zImage", RAM_BASE + 1, 0x1000);
    expect(g.kernel_image).toEqual({ load_paddr: RAM_BASE + 0x1000, alignment: 0x1000, size: 0x3000 });
    expect(g.kernel_image_arch).toMatchObject({ format: "zimage", entry: BigInt(RAM_BASE + 0x1000), start: 0, end: 0x3000 });
  });

  it("an appended DTB after `end` is copied with the zImage and reported", async () => {
    const d = dtb(0x200);
    const bytes = zImage({ tail: d });
    const vm = await vmWith(bytes);
    const k = await vm.loadKernel("zImage", { at: RAM_BASE + 0x8000 });
    expect(k.size).toBe(0x3200);
    expect(archOf(k.arch).appended_dtb).toBe(true);
    expect(eq(vm.ram.read(RAM_BASE + 0x8000 + 0x3000, 0x200), d)).toBe(true);
    expect(vm.placed()).toEqual([{ name: "zImage", paddr: RAM_BASE + 0x8000, size: 0x3200 }]);
  });

  it("trailing bytes that are not a DTB: appended_dtb false, still copied", async () => {
    const vm = await vmWith(zImage({ tail: new Uint8Array(0x10).fill(1) }));
    const k = await vm.loadKernel("zImage");
    expect(k.size).toBe(0x3010);
    expect(archOf(k.arch).appended_dtb).toBe(false);
  });

  it("no endianness flag (older kernels): loaded, endian unknown", async () => {
    const vm = await vmWith(zImage({ endianFlag: null }));
    const a = archOf((await vm.loadKernel("zImage")).arch);
    expect(a.endian).toBe("unknown");
    expect(a.endian_flag).toBe(0xe1a00000);
  });

  it("a zImage that would end above 4 GiB → BAD_ADDRESS", async () => {
    const vm = await vmWith(zImage(), 2 * MiB, 0xfff0_0000);
    await expectRefused(vm, () => vm.loadKernel("zImage", { at: 0xffff_e000 }), "BAD_ADDRESS", "at");
  });
});

describe("zImage placement, fixed address (start ≠ 0)", () => {
  const START = RAM_BASE + 0x20_8000;

  it("no address: loaded at start", async () => {
    const bytes = zImage({ start: START, end: START + 0x2000 });
    const vm = await vmWith(bytes);
    const k = await vm.loadKernel("zImage");
    expect(k.paddr).toBe(START);
    expect(k.entry).toBe(BigInt(START));
    expect(k.size).toBe(0x2000);
    expect(eq(vm.ram.read(START, 0x2000), bytes)).toBe(true);
    expect(archOf(k.arch)).toMatchObject({ start: START, end: START + 0x2000, position_independent: false });
  });

  it("the same address given: accepted (seL4 API too)", async () => {
    const vm = await vmWith(zImage({ start: START, end: START + 0x2000 }));
    const g = await vm_load_guest_kernel(vm, "zImage", START, 0x1000);
    expect(g.kernel_image).toEqual({ load_paddr: START, alignment: 0x1000, size: 0x2000 });
  });

  it("a different address → BAD_ADDRESS naming both", async () => {
    const vm = await vmWith(zImage({ start: START, end: START + 0x2000 }));
    const e = await expectRefused(vm, () => vm.loadKernel("zImage", { at: RAM_BASE }), "BAD_ADDRESS", "start");
    expect(e.message).toContain("0x40208000");
    expect(e.message).toContain("0x40000000");
  });

  it("a different address through the seL4 API → BAD_ADDRESS", async () => {
    const vm = await vmWith(zImage({ start: START, end: START + 0x2000 }));
    await expectRefused(vm, () => vm_load_guest_kernel(vm, "zImage", RAM_BASE, 0), "BAD_ADDRESS", "start");
  });

  it("start not on the alignment asked for (the image cannot move) → BAD_ADDRESS", async () => {
    const vm = await vmWith(zImage({ start: START, end: START + 0x2000 }));
    await expectRefused(vm, () => vm.loadKernel("zImage", { align: 0x10000 }), "BAD_ADDRESS", "start");
  });
});

describe("zImage header checks", () => {
  it("end < start → BAD_HEADER", async () => {
    const vm = await vmWith(zImage({ start: 0x4000_8000, end: 0x4000_7000, size: 0x1000 }));
    const e = await expectRefused(vm, () => vm.loadKernel("zImage"), "BAD_HEADER", "end");
    expect(e.message).toContain("0x40007000");
  });

  it("end − start larger than the file → TRUNCATED", async () => {
    const vm = await vmWith(zImage({ end: 0x3000, size: 0x2fff }));
    const e = await expectRefused(vm, () => vm.loadKernel("zImage"), "TRUNCATED", "end");
    expect(e.message).toContain("0x3000");
  });

  it("end − start smaller than the header itself → BAD_HEADER", async () => {
    const vm = await vmWith(zImage({ end: 0x20, size: 0x100 }));
    await expectRefused(vm, () => vm.loadKernel("zImage"), "BAD_HEADER", "end");
  });

  it("big-endian endianness flag (0x01020304 read little-endian) → UNSUPPORTED", async () => {
    const vm = await vmWith(zImage({ endianFlag: 0x01020304 }));
    const e = await expectRefused(vm, () => vm.loadKernel("zImage"), "UNSUPPORTED", "endian_flag");
    expect(e.message).toContain("big-endian");
  });

  it("inspect still reports a big-endian zImage's header", async () => {
    expect(await inspectFile(bytesFile("z", zImage({ endianFlag: 0x01020304 })))).toMatchObject({ format: "zimage", endian: "big", endian_flag: 0x01020304 });
  });
});

describe("zImage through the CLI", () => {
  const ROOT = fileURLToPath(new URL("../..", import.meta.url));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "guest-image-zimage-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("load --json with no address: RAM base + 0x8000", () => {
    const f = path.join(dir, "zImage");
    fs.writeFileSync(f, zImage());
    const r = spawnSync(process.execPath, ["dist/cli/main.js", "load", "--ram", "0x40000000:16M", "--kernel", f, "--json"], { cwd: ROOT, encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.kernel).toMatchObject({ format: "zimage", load_paddr: "0x40008000", entry: "0x40008000", size: "0x3000" });
    expect(j.kernel.arch).toMatchObject({ format: "zimage", start: "0x0", end: "0x3000", position_independent: true, endian: "little" });
  });

  it("a fixed-address zImage at another --kernel-addr fails with BAD_ADDRESS", () => {
    const f = path.join(dir, "zImage-fixed");
    fs.writeFileSync(f, zImage({ start: 0x4020_8000, end: 0x4020_b000 }));
    const r = spawnSync(process.execPath, ["dist/cli/main.js", "load", "--ram", "0x40000000:16M", "--kernel", f, "--kernel-addr", "0x40000000", "--json"], { cwd: ROOT, encoding: "utf8" });
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout).error.code).toBe("BAD_ADDRESS");
  });
});
