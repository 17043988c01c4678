// Conformance against QEMU 7.2 (qemu-system-aarch64 -M virt, hw/arm/boot.c) on Debian 12's
// arm64 kernel and fixtures derived from it (scripts/fetch-fixtures.sh). For each case QEMU runs
// paused, `info roms` says where it put each blob, `pmemsave` dumps the range, and our load at
// the same address must give the same bytes (and the entry QEMU's boot stub jumps to).
//
// Differences between QEMU and our placement rules, each asserted below:
//  - arm64 Image: QEMU puts it at RAM base + text_offset + 2 MiB when text_offset < 4 KiB (its
//    boot stub sits at the RAM base), so Debian's Image (text_offset 0) lands at 0x40200000. Our
//    rule (booting.rst) with no address: base = RAM base rounded up to 2 MiB, image at
//    base + text_offset = 0x40000000. Loaded with at = 0x40200000, ours matches QEMU byte for byte.
//  - arm64 Image size: QEMU's ROM blob is the file (0x1f6dfc0 bytes); we reserve and zero
//    max(file, image_size) (0x2010000), the kernel's BSS included. QEMU's RAM past the blob is
//    fresh (zero) RAM, so the dumps compare equal over the whole reserved range.
//  - uImage kernel_noload: QEMU loads the payload at RAM base + 32 MiB + 64 (KERNEL_NOLOAD_ADDR,
//    as if the whole file sat at RAM base + 32 MiB); we put it at B.
//  - device tree: QEMU edits its copy (adds /psci and /chosen linux,initrd-*, rewrites /memory
//    reg, re-opens it at 2*(size+10000) bytes); a module is placed verbatim by us (the VMM builds
//    its own tree). Compared property by property.
import { describe, expect, it } from "vitest";
import { runQemu, romNamed, type RomBlob } from "../helpers/qemu.js";
import { fdtProperties } from "./fdt-walk.js";
import { be32, expectSameBytes, fixture, fixtureVm, hex, le32, le64, ramBytes, readFixture, requireFormat } from "./fixtures.js";

const MiB = 0x100000;
const RAM = { base: 0x4000_0000, size: 256 * MiB };
const QEMU_ARGS = ["-M", "virt", "-cpu", "cortex-a57", "-m", "256M"];

interface Capture {
  roms: RomBlob[];
  dumps: Uint8Array[];
  /** The kernel entry QEMU's aarch64 boot stub jumps to (literal at +32 of the 40-byte "bootloader"). */
  stubEntry: bigint;
}

/** Runs QEMU with `args`, then dumps the ranges `ranges(roms)` chooses. */
async function capture(args: string[], ranges: (roms: RomBlob[]) => Array<[bigint, number]>): Promise<Capture> {
  return runQemu({ arch: "aarch64", args: [...QEMU_ARGS, ...args] }, async (q) => {
    const roms = await q.roms();
    const boot = romNamed(roms, "bootloader");
    expect(boot.addr).toBe(BigInt(RAM.base));
    const stub = await q.read(boot.addr, boot.size);
    // hw/arm/boot.c bootloader_aarch64: ldr x0,=dtb; mov x1..x3,xzr; ldr x4,=entry; br x4; literals.
    expect(stub.length).toBe(40);
    expect(le32(stub, 16), "stub +16: ldr x4, entry").toBe(0x58000084);
    expect(le32(stub, 20), "stub +20: br x4").toBe(0xd61f0080);
    const dumps: Uint8Array[] = [];
    for (const [addr, size] of ranges(roms)) dumps.push(await q.read(addr, size));
    return { roms, dumps, stubEntry: le64(stub, 32) };
  });
}

/** QEMU with `-kernel Image`, the Image's reserved range dumped: shared by the tests that need it. */
let imageCapture: Promise<Capture> | undefined;
function captureImage(): Promise<Capture> {
  const reserve = imageHeader(readFixture("arm64/Image")).reserve;
  imageCapture ??= capture(["-kernel", fixture("arm64/Image")], (roms) => [[romNamed(roms, "arm64/Image").addr, reserve]]);
  return imageCapture;
}

/** arm64 Image header fields (booting.rst): text_offset at 0x8, image_size at 0x10. */
function imageHeader(bytes: Uint8Array) {
  expect(le32(bytes, 0x38), "arm64 Image magic").toBe(0x644d5241);
  const textOffset = le64(bytes, 0x08);
  const imageSize = le64(bytes, 0x10);
  return { textOffset, imageSize, reserve: Math.max(bytes.length, Number(imageSize)) };
}

/** U-Boot include/image.h legacy header, big-endian. */
function uImageHeader(bytes: Uint8Array) {
  expect(be32(bytes, 0), "uImage magic").toBe(0x27051956);
  return { size: be32(bytes, 0x0c), load: be32(bytes, 0x10), ep: be32(bytes, 0x14), type: bytes[0x1e], comp: bytes[0x1f] };
}

describe.concurrent("arm64 Image (Debian 12 linux-image-arm64)", () => {
  it("ours at QEMU's address gives QEMU's bytes, entry and (BSS included) range", async () => {
    requireFormat("arm64-image");
    const file = readFixture("arm64/Image");
    const hdr = imageHeader(file);
    const q = await captureImage();
    const rom = romNamed(q.roms, "arm64/Image");
    // QEMU's blob is the file, unchanged in size.
    expect(rom.size).toBe(file.length);
    expect(q.stubEntry).toBe(rom.addr);

    const vm = await fixtureVm(RAM);
    const k = await vm.loadKernel("arm64/Image", { at: Number(rom.addr - hdr.textOffset) });
    expect(k.format).toBe("arm64-image");
    expect(hex(k.paddr)).toBe(hex(rom.addr));
    expect(hex(k.entry)).toBe(hex(q.stubEntry));
    // Difference: we reserve max(file, image_size) (BSS), QEMU's blob is the file only.
    expect(hex(k.size)).toBe(hex(hdr.reserve));
    expectSameBytes(ramBytes(vm, rom.addr, hdr.reserve), q.dumps[0], "arm64 Image", Number(rom.addr));
  });

  it("default placement: booting.rst's base + text_offset; QEMU adds 2 MiB when text_offset < 4 KiB", async () => {
    requireFormat("arm64-image");
    const hdr = imageHeader(readFixture("arm64/Image"));
    const q = await captureImage();
    const rom = romNamed(q.roms, "arm64/Image");
    const vm = await fixtureVm(RAM);
    const k = await vm.loadKernel("arm64/Image");
    // Our rule, with no address: base = RAM base rounded up to 2 MiB, image at base + text_offset.
    const base = Math.ceil(RAM.base / (2 * MiB)) * 2 * MiB;
    expect(hex(k.paddr)).toBe(hex(base + Number(hdr.textOffset)));
    // QEMU's rule (hw/arm/boot.c): + 2 MiB when text_offset < 4 KiB (its stub is at the RAM base).
    expect(hex(Number(rom.addr) - k.paddr)).toBe(hex(hdr.textOffset < 4096n ? 2 * MiB : 0));
  });

  it("Image.gz: QEMU gunzips and places it like the Image; so do we", async () => {
    requireFormat("gzip", "kernel");
    requireFormat("arm64-image");
    const image = readFixture("arm64/Image");
    const hdr = imageHeader(image);
    const q = await capture(["-kernel", fixture("arm64/Image.gz")], (roms) => [[romNamed(roms, "arm64/Image.gz").addr, hdr.reserve]]);
    const rom = romNamed(q.roms, "arm64/Image.gz");
    expect(rom.size).toBe(image.length); // QEMU's blob is the decompressed Image
    const vm = await fixtureVm(RAM);
    const k = await vm.loadKernel("arm64/Image.gz", { at: Number(rom.addr - hdr.textOffset) });
    expect(k.format).toBe("arm64-image"); // the format of what was inside
    expect(k.arch).toMatchObject({ format: "arm64-image", compression: "gzip" });
    expect(hex(k.paddr)).toBe(hex(rom.addr));
    expect(hex(k.entry)).toBe(hex(q.stubEntry));
    expect(hex(k.size)).toBe(hex(hdr.reserve));
    expectSameBytes(ramBytes(vm, rom.addr, hdr.reserve), q.dumps[0], "gunzipped arm64 Image", Number(rom.addr));
  });
});

describe.concurrent("EFI zboot (synthesized around Image.gz: QEMU 7.2 cannot load zboot)", () => {
  // QEMU learnt EFI zboot (unpack_efi_zboot_image) after 7.2, so Debian 12's QEMU loads such a
  // file as a raw blob. The reference is therefore QEMU's placement of the Image inside: an
  // unwrapped zboot must give the same bytes as the plain Image QEMU placed.
  it("unwrapped and placed like the Image QEMU placed", async () => {
    requireFormat("efi-zboot");
    const image = readFixture("arm64/Image");
    const gz = readFixture("arm64/Image.gz");
    const hdr = imageHeader(image);
    // drivers/firmware/efi/libstub/zboot-header.S: "MZ", "zimg", payload offset/size, "gzip", Linux PE magic.
    const zboot = new Uint8Array(64 + gz.length);
    const dv = new DataView(zboot.buffer);
    zboot.set([0x4d, 0x5a], 0);
    zboot.set(new TextEncoder().encode("zimg"), 4);
    dv.setUint32(0x08, 64, true);
    dv.setUint32(0x0c, gz.length, true);
    zboot.set(new TextEncoder().encode("gzip"), 0x18);
    dv.setUint32(0x38, 0x818223cd, true);
    zboot.set(gz, 64);
    const q = await captureImage();
    const rom = romNamed(q.roms, "arm64/Image");
    const { createVm, fromMap } = await import("../../src/node.js");
    const vm = await createVm({ ram: [RAM], files: fromMap({ "vmlinuz.efi": zboot }) });
    const k = await vm.loadKernel("vmlinuz.efi", { at: Number(rom.addr - hdr.textOffset) });
    expect(k.arch).toMatchObject({ format: "arm64-image", container: "efi-zboot" });
    expect(hex(k.paddr)).toBe(hex(rom.addr));
    expect(hex(k.entry)).toBe(hex(q.stubEntry));
    expectSameBytes(ramBytes(vm, rom.addr, hdr.reserve), q.dumps[0], "unwrapped zboot vs QEMU's Image", Number(rom.addr));
  });
});

describe.concurrent("U-Boot uImage (mkimage from the arm64 Image)", () => {
  for (const [name, what] of [
    ["arm64/uImage", "-T kernel -C none"],
    ["arm64/uImage.gz", "-T kernel -C gzip"],
  ] as const) {
    it(`${what}: payload at ih_load, entry ih_ep, as QEMU`, async () => {
      requireFormat("uimage");
      if (name.endsWith(".gz")) requireFormat("gzip", "kernel");
      const u = uImageHeader(readFixture(name));
      const payloadLen = readFixture("arm64/Image").length;
      const q = await capture(["-kernel", fixture(name)], (roms) => [[romNamed(roms, name).addr, payloadLen]]);
      const rom = romNamed(q.roms, name);
      expect(hex(rom.addr)).toBe(hex(u.load));
      expect(rom.size).toBe(payloadLen);
      expect(hex(q.stubEntry)).toBe(hex(u.ep));
      const vm = await fixtureVm(RAM);
      const k = await vm.loadKernel(name);
      expect(k.format).toBe("uimage");
      expect(hex(k.paddr)).toBe(hex(rom.addr));
      expect(hex(k.entry)).toBe(hex(q.stubEntry));
      expectSameBytes(ramBytes(vm, rom.addr, payloadLen), q.dumps[0], `${name} payload`, Number(rom.addr));
    });
  }

  it("-T kernel_noload: QEMU at RAM base + 32 MiB + 64, ours at B; same bytes where QEMU put them", async () => {
    requireFormat("uimage");
    const name = "arm64/uImage-noload";
    const file = readFixture(name);
    const u = uImageHeader(file);
    expect(u.type).toBe(14); // IH_TYPE_KERNEL_NOLOAD
    const q = await capture(["-kernel", fixture(name)], (roms) => [[romNamed(roms, name).addr, u.size]]);
    const rom = romNamed(q.roms, name);
    // hw/arm/boot.c: loadaddr = RAM base + KERNEL_NOLOAD_ADDR (32 MiB); hw/core/loader.c: ih_load = loadaddr + 64.
    expect(hex(rom.addr)).toBe(hex(RAM.base + 32 * MiB + 64));
    expect(hex(q.stubEntry)).toBe(hex(rom.addr + BigInt(u.ep)));
    const vm = await fixtureVm(RAM);
    const k = await vm.loadKernel(name, { at: Number(rom.addr) });
    expect(k.format).toBe("uimage");
    expect(hex(k.paddr)).toBe(hex(rom.addr));
    expect(hex(k.entry)).toBe(hex(q.stubEntry));
    expectSameBytes(ramBytes(vm, rom.addr, u.size), q.dumps[0], `${name} payload`, Number(rom.addr));
  });
});

describe.concurrent("initrd (-initrd) and device tree (-dtb) next to the arm64 Image", () => {
  for (const [name, format] of [
    ["initrd/initrd.cpio", null],
    ["initrd/initrd.cpio.gz", null],
    ["initrd/uInitrd", "uimage"],
  ] as const) {
    it(`${name}: placed where QEMU placed it, same bytes${format ? " (the ramdisk uImage's payload only)" : " (verbatim)"}`, async () => {
      if (format) requireFormat(format, "module");
      const file = readFixture(name);
      const payload = format ? file.subarray(64, 64 + uImageHeader(file).size) : file;
      const q = await capture(["-kernel", fixture("arm64/Image"), "-initrd", fixture(name)], (roms) => [[romNamed(roms, name).addr, payload.length]]);
      const rom = romNamed(q.roms, name);
      // qemu-reference.md: initrd at RAM base + min(RAM/2, 128 MiB) = 0x48000000 for 256M.
      expect(hex(rom.addr)).toBe(hex(RAM.base + 128 * MiB));
      expect(rom.size).toBe(payload.length);
      expectSameBytes(q.dumps[0], payload, `${name}: QEMU's copy vs the file's payload`);
      const vm = await fixtureVm(RAM);
      const m = await vm.loadModule(name, { at: Number(rom.addr) });
      if (format) expect(m.format).toBe(format);
      expect(hex(m.paddr)).toBe(hex(rom.addr));
      expect(m.size).toBe(payload.length);
      expectSameBytes(ramBytes(vm, rom.addr, payload.length), q.dumps[0], name, Number(rom.addr));
    });
  }

  it("a user dtb: ours verbatim; QEMU's copy = the same tree plus its documented edits", async () => {
    const dtbFile = readFixture("dtb/tiny-arm.dtb");
    const q = await capture(["-kernel", fixture("arm64/Image"), "-initrd", fixture("initrd/initrd.cpio"), "-dtb", fixture("dtb/tiny-arm.dtb")], (roms) => {
      const d = romNamed(roms, "dtb");
      return [[d.addr, d.size]];
    });
    const rom = romNamed(q.roms, "dtb");
    const initrd = romNamed(q.roms, "initrd/initrd.cpio");
    // hw/arm/boot.c re-opens a user dtb at 2 * (file size + 10000) bytes; that is its totalsize.
    expect(rom.size).toBe(2 * (dtbFile.length + 10000));
    expect(be32(q.dumps[0], 4)).toBe(rom.size);
    // aarch64: dtb right after the initrd, aligned to 2 MiB.
    expect(hex(rom.addr)).toBe(hex(Math.ceil((Number(initrd.addr) + initrd.size) / (2 * MiB)) * 2 * MiB));

    const vm = await fixtureVm(RAM);
    const m = await vm.loadModule("dtb/tiny-arm.dtb", { at: Number(rom.addr) });
    expect(m.format).toBe("fdt");
    expect(m.size).toBe(dtbFile.length);
    expectSameBytes(ramBytes(vm, rom.addr, dtbFile.length), dtbFile, "our dtb copy vs the file");

    const ours = fdtProperties(ramBytes(vm, rom.addr, dtbFile.length));
    const theirs = fdtProperties(q.dumps[0]);
    const edited = new Map<string, string>();
    for (const [k, v] of theirs) if (ours.get(k) !== v) edited.set(k, v);
    for (const k of ours.keys()) expect(theirs.has(k), `QEMU's tree keeps ${k}`).toBe(true);
    const cell = (n: number | bigint) => BigInt(n).toString(16).padStart(16, "0");
    // The edits QEMU makes (hw/arm/boot.c arm_load_dtb, virt's PSCI node), and nothing else.
    const expected = new Map<string, string>([
      ["/memory@40000000:reg", cell(RAM.base) + cell(RAM.size)],
      ["/chosen:linux,initrd-start", initrd.addr.toString(16).padStart(8, "0")],
      ["/chosen:linux,initrd-end", (initrd.addr + BigInt(initrd.size)).toString(16).padStart(8, "0")],
    ]);
    for (const [k, v] of expected) expect(edited.get(k), k).toBe(v);
    const others = [...edited.keys()].filter((k) => !expected.has(k));
    expect(others.every((k) => k === "/psci" || k.startsWith("/psci:")), `unexpected QEMU edits: ${others.join(", ")}`).toBe(true);
  });
});
