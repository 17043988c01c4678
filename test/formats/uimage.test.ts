// U-Boot legacy uImages: headers written field by field from U-Boot include/image.h (64 bytes,
// big-endian; IH_* numbers by their enum position), CRCs computed with node:zlib's crc32 (the
// zlib/IEEE CRC-32 U-Boot uses) following boot/image.c image_check_hcrc/image_check_dcrc.
// Placement expectations follow QEMU's load_uboot_image (hw/core/loader.c). When mkimage
// (u-boot-tools) is installed, images it makes are loaded too, with `mkimage -l` as the reference.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { inspectFile, vm_load_guest_kernel, vm_load_guest_module } from "../../src/node.js";
import { bytesFile } from "../../src/sources/source.js";
import { codeLike, eqBytes, gzipMember } from "../helpers/gzip.js";
import { expectRefused, INFLATERS, MiB, RAM_BASE, vmWith, withInflater } from "../helpers/vm.js";


// include/image.h
const IH_MAGIC = 0x27051956;
const IH_OS_LINUX = 5;
const IH_ARCH_ARM64 = 22;
const IH_TYPE = { STANDALONE: 1, KERNEL: 2, RAMDISK: 3, MULTI: 4, FIRMWARE: 5, SCRIPT: 6, FILESYSTEM: 7, FLATDT: 8, KERNEL_NOLOAD: 14 };
const IH_COMP = { NONE: 0, GZIP: 1, BZIP2: 2, LZMA: 3, LZO: 4, LZ4: 5, ZSTD: 6 };

interface UImageSpec {
  data: Uint8Array;
  magic?: number;
  time?: number;
  /** Overrides ih_size (default: data length). */
  size?: number;
  load?: number;
  ep?: number;
  os?: number;
  arch?: number;
  type?: number;
  comp?: number;
  name?: string;
  /** Overrides of the computed CRCs. */
  hcrc?: number;
  dcrc?: number;
}

function uimage(s: UImageSpec): Uint8Array {
  const b = new Uint8Array(64 + s.data.length);
  const dv = new DataView(b.buffer);
  dv.setUint32(0x00, s.magic ?? IH_MAGIC, false); // ih_magic
  dv.setUint32(0x08, s.time ?? 0x6543_2100, false); // ih_time
  dv.setUint32(0x0c, s.size ?? s.data.length, false); // ih_size
  dv.setUint32(0x10, s.load ?? 0x4008_0000, false); // ih_load
  dv.setUint32(0x14, s.ep ?? 0x4008_0000, false); // ih_ep
  dv.setUint32(0x18, s.dcrc ?? zlib.crc32(s.data), false); // ih_dcrc: CRC-32 of the data
  b[0x1c] = s.os ?? IH_OS_LINUX; // ih_os
  b[0x1d] = s.arch ?? IH_ARCH_ARM64; // ih_arch
  b[0x1e] = s.type ?? IH_TYPE.KERNEL; // ih_type
  b[0x1f] = s.comp ?? IH_COMP.NONE; // ih_comp
  b.set(Uint8Array.from(s.name ?? "Linux-6.1", (c) => c.charCodeAt(0)).subarray(0, 32), 0x20); // ih_name
  // ih_hcrc: CRC-32 of the 64-byte header with ih_hcrc = 0
  dv.setUint32(0x04, s.hcrc ?? zlib.crc32(b.subarray(0, 64)), false);
  b.set(s.data, 64);
  return b;
}

/** A minimal flattened device tree (Devicetree Specification §5): header, empty rsvmap, root node. */
function tinyDtb(): Uint8Array {
  const b = new Uint8Array(72);
  const dv = new DataView(b.buffer);
  const w = (o: number, v: number) => dv.setUint32(o, v, false);
  w(0x00, 0xd00dfeed); w(0x04, 72); w(0x08, 56); w(0x0c, 72); w(0x10, 40); w(0x14, 17); w(0x18, 16); w(0x1c, 0); w(0x20, 0); w(0x24, 16);
  // 40..56: memory reservation terminator (0, 0); 56: FDT_BEGIN_NODE "" ; FDT_END_NODE; FDT_END
  w(56, 1); w(60, 0); w(64, 2); w(68, 9);
  return b;
}

describe("uImage detection and inspect", () => {
  it("the magic 0x27051956 (big-endian) at 0 is a uImage; inspect reports the header by name and number", async () => {
    const data = codeLike(0x1000);
    const info = await inspectFile(bytesFile("uImage", uimage({ data, name: "Linux-6.1\x01", time: 0x6543_2100 })));
    expect(info.format).toBe("uimage");
    expect(info.machine).toBe("arm64");
    expect(info.entry).toBe(0x4008_0000n);
    expect(info).toMatchObject({
      ih_magic: IH_MAGIC, ih_time: 0x6543_2100, ih_size: 0x1000, ih_load: 0x4008_0000, ih_ep: 0x4008_0000, ih_dcrc: zlib.crc32(data),
      ih_os: 5, ih_os_name: "linux", ih_arch: 22, ih_arch_name: "arm64", ih_type: 2, ih_type_name: "kernel", ih_comp: 0, ih_comp_name: "none",
      ih_name: "Linux-6.1\\x01",
    });
  });

  it("ih_name fills all 32 bytes when it has no NUL", async () => {
    const info = await inspectFile(bytesFile("u", uimage({ data: codeLike(16), name: "A".repeat(40) })));
    expect(info.ih_name).toBe("A".repeat(32));
  });
});

describe("uImage kernels (uncompressed)", () => {
  const data = codeLike(0x6000, 17);

  it("KERNEL: the data at ih_load, entry ih_ep, size ih_size; arch reports the header", async () => {
    const vm = await vmWith({ uImage: uimage({ data, load: 0x4008_0000, ep: 0x4008_0040 }) });
    const k = await vm.loadKernel("uImage");
    expect(k).toMatchObject({ format: "uimage", paddr: 0x4008_0000, size: 0x6000, entry: 0x4008_0040n });
    expect(k.arch).toMatchObject({ format: "uimage", entry: 0x4008_0040n, ih_load: 0x4008_0000, ih_ep: 0x4008_0040, ih_os_name: "linux", ih_arch_name: "arm64", ih_type_name: "kernel", compression: "none" });
    expect(eqBytes(vm.ram.read(0x4008_0000, data.length), data)).toBe(true);
    expect(vm.ram.read(0x4008_0000 - 64, 64).every((b) => b === 0xee)).toBe(true); // header not placed
    expect(vm.placed()).toEqual([{ name: "uImage", paddr: 0x4008_0000, size: 0x6000 }]);
  });

  it("KERNEL through the seL4 API with load_address = ih_load", async () => {
    const vm = await vmWith({ uImage: uimage({ data, load: 0x4020_0000, ep: 0x4020_0000 }) });
    const g = await vm_load_guest_kernel(vm, "uImage", 0x4020_0000, 0x20_0000);
    expect(g.kernel_image).toEqual({ load_paddr: 0x4020_0000, alignment: 0x20_0000, size: 0x6000 });
    expect(g.kernel_image_arch).toMatchObject({ format: "uimage", entry: 0x4020_0000n });
  });

  it("KERNEL at an address other than ih_load: BAD_ADDRESS naming both", async () => {
    const vm = await vmWith({ uImage: uimage({ data, load: 0x4008_0000 }) });
    const e = await expectRefused(vm, () => vm.loadKernel("uImage", { at: 0x4100_0000 }), "BAD_ADDRESS", "ih_load");
    expect(e.message).toContain("0x40080000");
    expect(e.message).toContain("0x41000000");
    await expectRefused(vm, () => vm.loadKernel("uImage", { align: 0x20_0000 }), "BAD_ADDRESS", "ih_load");
  });

  it("KERNEL_NOLOAD: the data at B, entry = B + ih_ep (QEMU: ih_ep += load address)", async () => {
    const vm = await vmWith({ uImage: uimage({ data, type: IH_TYPE.KERNEL_NOLOAD, load: 0, ep: 0x40 }) });
    const k = await vm.loadKernel("uImage", { at: 0x4100_0001, align: 0x1000 });
    expect(k).toMatchObject({ format: "uimage", paddr: 0x4100_1000, size: 0x6000, entry: 0x4100_1040n });
    expect(eqBytes(vm.ram.read(0x4100_1000, data.length), data)).toBe(true);
  });

  it("KERNEL_NOLOAD with no address: BAD_ARGUMENT", async () => {
    const vm = await vmWith({ uImage: uimage({ data, type: IH_TYPE.KERNEL_NOLOAD }) });
    await expectRefused(vm, () => vm.loadKernel("uImage"), "BAD_ARGUMENT", "at");
  });

  it("a wrong header CRC: BAD_CHECKSUM before anything is written", async () => {
    const vm = await vmWith({ uImage: uimage({ data, hcrc: 0x1234_5678 }) });
    const e = await expectRefused(vm, () => vm.loadKernel("uImage"), "BAD_CHECKSUM", "ih_hcrc");
    expect(e.message).toContain("0x12345678");
  });

  it("a wrong data CRC: BAD_CHECKSUM, the copied data rolled back", async () => {
    const vm = await vmWith({ uImage: uimage({ data, dcrc: zlib.crc32(data) ^ 1 }) });
    await expectRefused(vm, () => vm.loadKernel("uImage"), "BAD_CHECKSUM", "ih_dcrc");
  });

  it("a payload shorter than ih_size: TRUNCATED", async () => {
    const vm = await vmWith({ uImage: uimage({ data, size: data.length + 1 }) });
    await expectRefused(vm, () => vm.loadKernel("uImage"), "TRUNCATED", "ih_size");
  });

  it("a file shorter than the header: TRUNCATED", async () => {
    const vm = await vmWith({ uImage: uimage({ data }).slice(0, 40) });
    await expectRefused(vm, () => vm.loadKernel("uImage"), "TRUNCATED", "ih_magic");
  });

  it("ih_size 0: BAD_HEADER", async () => {
    const vm = await vmWith({ uImage: uimage({ data: new Uint8Array(0) }) });
    await expectRefused(vm, () => vm.loadKernel("uImage"), "BAD_HEADER", "ih_size");
  });

  it("ih_load outside RAM: OUT_OF_RAM", async () => {
    const vm = await vmWith({ uImage: uimage({ data, load: 0x1000, ep: 0x1000 }) });
    const r = vm.ram.regions[0];
    const before = vm.ram.read(r.base, r.size);
    await expect(vm.loadKernel("uImage")).rejects.toMatchObject({ code: "OUT_OF_RAM" });
    expect(eqBytes(vm.ram.read(r.base, r.size), before)).toBe(true);
  });

  // Data really compressed that way loads (test/formats/compressed.test.ts, images made by mkimage -C).
  it.each(Object.entries(IH_COMP).filter(([, v]) => v > 1))("compression %s over data that is not compressed: refused naming the codec, nothing written", async (name, comp) => {
    const vm = await vmWith({ uImage: uimage({ data, comp }) });
    const e = await expectRefused(vm, () => vm.loadKernel("uImage"), "BAD_HEADER", name.toLowerCase());
    expect(e.message).toContain("uImage data");
  });

  it("an undefined compression number: UNSUPPORTED", async () => {
    const vm = await vmWith({ uImage: uimage({ data, comp: 9 }) });
    await expectRefused(vm, () => vm.loadKernel("uImage"), "UNSUPPORTED", "ih_comp");
  });

  it.each([["ramdisk", IH_TYPE.RAMDISK], ["flat_dt", IH_TYPE.FLATDT]])("a %s uImage as the kernel: UNSUPPORTED, load it as a module", async (name, type) => {
    const vm = await vmWith({ uImage: uimage({ data, type }) });
    const e = await expectRefused(vm, () => vm.loadKernel("uImage"), "UNSUPPORTED", "ih_type");
    expect(e.message).toContain(name);
    expect(e.message).toContain("module");
  });

  it.each([["standalone", IH_TYPE.STANDALONE], ["multi", IH_TYPE.MULTI], ["script", IH_TYPE.SCRIPT], ["firmware", IH_TYPE.FIRMWARE]])(
    "type %s: UNSUPPORTED naming it",
    async (name, type) => {
      const vm = await vmWith({ uImage: uimage({ data, type }) });
      const e = await expectRefused(vm, () => vm.loadKernel("uImage"), "UNSUPPORTED", "ih_type");
      expect(e.message).toContain(name);
    },
  );

  it("relocs data is refused (ELF only)", async () => {
    const vm = await vmWith({ uImage: uimage({ data }) });
    await expectRefused(vm, () => vm.loadKernel("uImage", { relocs: "uImage" }), "BAD_ARGUMENT", "relocs");
  });
});

describe.each(INFLATERS)("uImage kernels with gzip data, $name inflater", (inflater) => {
  withInflater(inflater);
  const plain = codeLike(0x30000, 23);
  const gz = gzipMember(plain, { fname: "Image" });

  it("the data decompressed at ih_load; size is the decompressed size", async () => {
    const vm = await vmWith({ uImage: uimage({ data: gz, comp: IH_COMP.GZIP, load: 0x4020_0000, ep: 0x4020_0000 }) });
    const k = await vm.loadKernel("uImage");
    expect(k).toMatchObject({ format: "uimage", paddr: 0x4020_0000, size: plain.length, entry: 0x4020_0000n });
    expect(k.arch).toMatchObject({ compression: "gzip", ih_comp: 1, ih_comp_name: "gzip", ih_size: gz.length });
    expect(eqBytes(vm.ram.read(0x4020_0000, plain.length), plain)).toBe(true);
  });

  it("KERNEL_NOLOAD with gzip data: decompressed at B", async () => {
    const vm = await vmWith({ uImage: uimage({ data: gz, comp: IH_COMP.GZIP, type: IH_TYPE.KERNEL_NOLOAD, load: 0, ep: 0 }) });
    const k = await vm.loadKernel("uImage", { at: 0x4100_0000 });
    expect(k).toMatchObject({ paddr: 0x4100_0000, size: plain.length, entry: 0x4100_0000n });
    expect(eqBytes(vm.ram.read(0x4100_0000, plain.length), plain)).toBe(true);
  });

  it("a wrong data CRC (over the compressed bytes): BAD_CHECKSUM, rolled back", async () => {
    const vm = await vmWith({ uImage: uimage({ data: gz, comp: IH_COMP.GZIP, dcrc: zlib.crc32(gz) ^ 0x8000 }) });
    await expectRefused(vm, () => vm.loadKernel("uImage"), "BAD_CHECKSUM", "ih_dcrc");
  });

  it("decompressed data larger than the RAM from ih_load: TOO_LARGE before writing", async () => {
    const bomb = new Uint8Array(zlib.gzipSync(new Uint8Array(32 * MiB)));
    const vm = await vmWith({ uImage: uimage({ data: bomb, comp: IH_COMP.GZIP, load: RAM_BASE + 15 * MiB }) }, 16 * MiB);
    await expectRefused(vm, () => vm.loadKernel("uImage"), "TOO_LARGE", "ISIZE");
  });

  it("gzip data that is not gzip: BAD_MAGIC", async () => {
    const vm = await vmWith({ uImage: uimage({ data: plain, comp: IH_COMP.GZIP }) });
    await expectRefused(vm, () => vm.loadKernel("uImage"), "BAD_MAGIC", "ID1");
  });
});

describe("uImage modules", () => {
  it("RAMDISK: the data at B (header stripped), size = ih_size, data CRC checked, through both APIs", async () => {
    const initrd = codeLike(0x2345, 31);
    const u = uimage({ data: initrd, type: IH_TYPE.RAMDISK, load: 0, ep: 0 });
    const vm = await vmWith({ uInitrd: u, uInitrd2: u });
    const m = await vm.loadModule("uInitrd", { at: 0x4200_0000 });
    expect(m).toEqual({ name: "uInitrd", format: "uimage", paddr: 0x4200_0000, alignment: 0, size: 0x2345 });
    expect(eqBytes(vm.ram.read(0x4200_0000, initrd.length), initrd)).toBe(true);
    const g = await vm_load_guest_module(vm, "uInitrd2", 0x4300_0001, 0x1000);
    expect(g).toEqual({ load_paddr: 0x4300_1000, alignment: 0x1000, size: 0x2345 });
  });

  it("RAMDISK with gzip data: passed on compressed, as U-Boot and QEMU do (the kernel unpacks it)", async () => {
    const cpioGz = gzipMember(codeLike(0x5000, 2));
    const vm = await vmWith({ uInitrd: uimage({ data: cpioGz, type: IH_TYPE.RAMDISK, comp: IH_COMP.GZIP }) });
    const m = await vm.loadModule("uInitrd", { at: 0x4200_0000 });
    expect(m.size).toBe(cpioGz.length);
    expect(eqBytes(vm.ram.read(0x4200_0000, cpioGz.length), cpioGz)).toBe(true);
  });

  it("RAMDISK with a wrong data CRC: BAD_CHECKSUM, rolled back", async () => {
    const initrd = codeLike(0x2345, 31);
    const vm = await vmWith({ uInitrd: uimage({ data: initrd, type: IH_TYPE.RAMDISK, dcrc: 7 }) });
    await expectRefused(vm, () => vm.loadModule("uInitrd", { at: 0x4200_0000 }), "BAD_CHECKSUM", "ih_dcrc");
  });

  it("FLATDT: the device tree at B", async () => {
    const dtb = tinyDtb();
    const vm = await vmWith({ "dtb.uimg": uimage({ data: dtb, type: IH_TYPE.FLATDT }) });
    const m = await vm.loadModule("dtb.uimg", { at: 0x4300_0000 });
    expect(m).toMatchObject({ format: "uimage", paddr: 0x4300_0000, size: dtb.length });
    expect(eqBytes(vm.ram.read(0x4300_0000, dtb.length), dtb)).toBe(true);
  });

  it("FLATDT compressed: UNSUPPORTED (U-Boot: \"uImage is compressed\")", async () => {
    const vm = await vmWith({ "dtb.uimg": uimage({ data: gzipMember(tinyDtb()), type: IH_TYPE.FLATDT, comp: IH_COMP.GZIP }) });
    await expectRefused(vm, () => vm.loadModule("dtb.uimg", { at: 0x4300_0000 }), "UNSUPPORTED", "ih_comp");
  });

  it("FLATDT whose data is not a device tree: BAD_MAGIC", async () => {
    const vm = await vmWith({ "dtb.uimg": uimage({ data: codeLike(100), type: IH_TYPE.FLATDT }) });
    await expectRefused(vm, () => vm.loadModule("dtb.uimg", { at: 0x4300_0000 }), "BAD_MAGIC", "magic");
  });

  it.each([["kernel", IH_TYPE.KERNEL], ["standalone", IH_TYPE.STANDALONE], ["multi", IH_TYPE.MULTI], ["script", IH_TYPE.SCRIPT], ["filesystem", IH_TYPE.FILESYSTEM]])(
    "a %s uImage as a module: UNSUPPORTED naming the type",
    async (name, type) => {
      const vm = await vmWith({ u: uimage({ data: codeLike(64), type }) });
      const e = await expectRefused(vm, () => vm.loadModule("u", { at: 0x4200_0000 }), "UNSUPPORTED", "ih_type");
      expect(e.message).toContain(name);
    },
  );

  it("a wrong header CRC on a module: BAD_CHECKSUM", async () => {
    const vm = await vmWith({ u: uimage({ data: codeLike(64), type: IH_TYPE.RAMDISK, hcrc: 0 }) });
    await expectRefused(vm, () => vm.loadModule("u", { at: 0x4200_0000 }), "BAD_CHECKSUM", "ih_hcrc");
  });
});

const haveMkimage = spawnSync("mkimage", ["-V"], { encoding: "utf8" }).status === 0;

describe.skipIf(!haveMkimage)("uImages made by mkimage (u-boot-tools), `mkimage -l` as the reference", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "guest-image-mkimage-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function mkimage(args: string[], payload: Uint8Array, name: string): { bytes: Uint8Array; load: number; entry: number; size: number } {
    const src = path.join(dir, `${name}.in`);
    const out = path.join(dir, name);
    fs.writeFileSync(src, payload);
    const env = { ...process.env, SOURCE_DATE_EPOCH: "0" };
    const r = spawnSync("mkimage", [...args, "-n", name, "-d", src, out], { encoding: "utf8", env });
    expect(r.status, r.stderr).toBe(0);
    const l = spawnSync("mkimage", ["-l", out], { encoding: "utf8", env }).stdout;
    const hexField = (label: string) => parseInt(new RegExp(`${label}:\\s*([0-9a-fA-F]+)`).exec(l)?.[1] ?? "NaN", 16);
    const size = parseInt(/Data Size:\s*(\d+) Bytes/.exec(l)?.[1] ?? "NaN", 10);
    return { bytes: new Uint8Array(fs.readFileSync(out)), load: hexField("Load Address"), entry: hexField("Entry Point"), size };
  }

  it("-T kernel -C none: the payload at the Load Address, entry at the Entry Point", async () => {
    const payload = codeLike(0x9000, 41);
    const u = mkimage(["-A", "arm64", "-O", "linux", "-T", "kernel", "-C", "none", "-a", "0x40080000", "-e", "0x40080000"], payload, "kernel-none");
    expect(u).toMatchObject({ load: 0x4008_0000, entry: 0x4008_0000, size: payload.length });
    const vm = await vmWith({ uImage: u.bytes });
    const k = await vm.loadKernel("uImage");
    expect(k).toMatchObject({ format: "uimage", paddr: u.load, entry: BigInt(u.entry), size: u.size });
    expect(eqBytes(vm.ram.read(u.load, payload.length), payload)).toBe(true);
  });

  it("-T kernel -C gzip: the gzip'd payload decompressed at the Load Address", async () => {
    const payload = codeLike(0x40000, 43);
    const u = mkimage(["-A", "arm64", "-O", "linux", "-T", "kernel", "-C", "gzip", "-a", "0x40200000", "-e", "0x40200000"], new Uint8Array(zlib.gzipSync(payload)), "kernel-gzip");
    const vm = await vmWith({ uImage: u.bytes });
    const k = await vm.loadKernel("uImage");
    expect(k).toMatchObject({ format: "uimage", paddr: u.load, entry: BigInt(u.entry), size: payload.length });
    expect(k.arch).toMatchObject({ compression: "gzip", ih_size: u.size });
    expect(eqBytes(vm.ram.read(u.load, payload.length), payload)).toBe(true);
  });

  it("-T ramdisk: the payload at B as a module", async () => {
    const payload = new Uint8Array(zlib.gzipSync(codeLike(0x3000, 47)));
    const u = mkimage(["-A", "arm64", "-O", "linux", "-T", "ramdisk", "-C", "gzip"], payload, "ramdisk");
    expect(u.size).toBe(payload.length);
    const vm = await vmWith({ uInitrd: u.bytes });
    const m = await vm.loadModule("uInitrd", { at: 0x4200_0000 });
    expect(m).toMatchObject({ format: "uimage", paddr: 0x4200_0000, size: u.size });
    expect(eqBytes(vm.ram.read(0x4200_0000, payload.length), payload)).toBe(true);
  });

  it("-T kernel_noload: at B, entry B + Entry Point", async () => {
    const payload = codeLike(0x2000, 53);
    const u = mkimage(["-A", "arm64", "-O", "linux", "-T", "kernel_noload", "-C", "none", "-a", "0", "-e", "0x100"], payload, "noload");
    const vm = await vmWith({ uImage: u.bytes });
    const k = await vm.loadKernel("uImage", { at: 0x4100_0000 });
    expect(k).toMatchObject({ paddr: 0x4100_0000, entry: BigInt(0x4100_0000 + u.entry), size: u.size });
  });
});

describe("uImage through the CLI", () => {
  const ROOT = fileURLToPath(new URL("../..", import.meta.url));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "guest-image-uimage-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cli = (...args: string[]) => spawnSync(process.execPath, ["dist/cli/main.js", ...args], { cwd: ROOT, encoding: "utf8" });

  it("load --json reports format, load_paddr, entry and the header fields", () => {
    const k = path.join(dir, "uImage");
    const m = path.join(dir, "uInitrd");
    fs.writeFileSync(k, uimage({ data: codeLike(0x4000), load: 0x4008_0000, ep: 0x4008_0100 }));
    fs.writeFileSync(m, uimage({ data: codeLike(0x800), type: IH_TYPE.RAMDISK }));
    const r = cli("load", "--ram", "0x40000000:64M", "--kernel", k, "--module", `${m}@0x42000000`, "--json");
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.kernel).toMatchObject({ format: "uimage", load_paddr: "0x40080000", entry: "0x40080100", size: "0x4000" });
    expect(j.kernel.arch).toMatchObject({ format: "uimage", ih_type_name: "kernel", ih_arch_name: "arm64", ih_name: "Linux-6.1" });
    expect(JSON.stringify(j.modules ?? j)).toContain("0x42000000");
  });

  it("a bad header CRC fails with BAD_CHECKSUM", () => {
    const k = path.join(dir, "bad");
    fs.writeFileSync(k, uimage({ data: codeLike(0x100), hcrc: 1 }));
    const r = cli("load", "--ram", "0x40000000:64M", "--kernel", k, "--json");
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout).error.code).toBe("BAD_CHECKSUM");
  });
});
