// hvm_start_info and the setup_data chain, byte by byte against the layouts in their headers
// (Xen xen/include/public/arch-x86/hvm/start_info.h; Linux arch/x86/include/uapi/asm/bootparam.h
// and Documentation/arch/x86/boot.rst), written out here as the spec's offsets — not read from
// our own constants. The booted kernels are the oracle in test/realboot/{pvh,setup-data}.test.ts.
import { describe, expect, it } from "vitest";
import { buildStartInfo, pvhState } from "../../src/boot/pvh-start-info.js";
import { buildSetupData, checkSetupData } from "../../src/boot/setup-data.js";
import { bootLinux, createVm, fromMap, GuestImageError } from "../../src/node.js";
import * as b from "../../fuzz/builders.mjs";

const MiB = 1024 * 1024;
const u32 = (u: Uint8Array, o: number) => new DataView(u.buffer, u.byteOffset).getUint32(o, true);
const u64 = (u: Uint8Array, o: number) => new DataView(u.buffer, u.byteOffset).getBigUint64(o, true);

describe("hvm_start_info (start_info.h, version 1)", () => {
  it("magic, version, nr_modules, the 64-bit pointers, memmap entries (24 bytes: addr, size, type, reserved)", () => {
    const si = buildStartInfo({ paddr: 0x6000, cmdlinePaddr: 0x5000, modules: [{ paddr: 0x800000, size: 0x1234, cmdlinePaddr: 0x5100 }], ram: [{ base: 0, size: 256 * MiB }], rsdp: 0xf5a0 });
    const x = si.bytes;
    expect(u32(x, 0x00)).toBe(0x336ec578); // XEN_HVM_START_MAGIC_VALUE
    expect(u32(x, 0x04)).toBe(1);
    expect(u32(x, 0x08)).toBe(0); // flags
    expect(u32(x, 0x0c)).toBe(1); // nr_modules
    const modlist = Number(u64(x, 0x10)) - 0x6000;
    expect(u64(x, 0x18)).toBe(0x5000n); // cmdline_paddr
    expect(u64(x, 0x20)).toBe(0xf5a0n); // rsdp_paddr
    const memmap = Number(u64(x, 0x28)) - 0x6000;
    const n = u32(x, 0x30);
    expect(u32(x, 0x34)).toBe(0); // reserved
    // hvm_modlist_entry: paddr, size, cmdline_paddr, reserved (u64 each).
    expect([u64(x, modlist), u64(x, modlist + 8), u64(x, modlist + 16), u64(x, modlist + 24)]).toEqual([0x800000n, 0x1234n, 0x5100n, 0n]);
    // The e820-style map for 256 MiB at 0 (x86-e820.ts: the PC's legacy area reserved).
    const entries = Array.from({ length: n }, (_, i) => [u64(x, memmap + i * 24), u64(x, memmap + i * 24 + 8), u32(x, memmap + i * 24 + 16), u32(x, memmap + i * 24 + 20)]);
    expect(entries).toEqual([[0n, 0x9fc00n, 1, 0], [0x9fc00n, 0x60400n, 2, 0], [0x100000n, 0xff00000n, 1, 0]]);
    expect(modlist % 8).toBe(0);
    expect(memmap % 8).toBe(0);
    expect(x.length).toBe(memmap + n * 24);
  });

  it("refuses a start info that would end above 4 GiB (EBX is 32-bit)", () => {
    expect(() => buildStartInfo({ paddr: 0xffffffc0, cmdlinePaddr: 0, ram: [{ base: 0, size: 16 * MiB }] })).toThrow(GuestImageError);
  });

  it("entry state (pvh.rst): CR0.PE only, CR4 0, EBX = start info, TR limit 0x67, flat 32-bit CS/DS", () => {
    const s = pvhState("x86_64", 0x1000850, 0x6000, { base: 0, limit: 31 });
    expect(s.mode).toBe("protected");
    expect(s.cr0 & 0x8000_0001n).toBe(1n);
    expect(s.cr4).toBe(0n);
    expect(s.regs.ebx).toBe(0x6000n);
    expect(s.regs.esi).toBe(0n);
    expect(s.segments.tr.limit).toBe(0x67);
    expect(s.segments.cs.db && s.segments.cs.g && s.segments.cs.base === 0n && s.segments.cs.limit === 0xffffffff).toBe(true);
    expect(s.segments.ds.base === 0n && s.segments.ds.limit === 0xffffffff).toBe(true);
  });
});

describe("setup_data chain (bootparam.h struct setup_data: u64 next, u32 type, u32 len, data)", () => {
  it("links the nodes by absolute address, 8-aligned, the last next = 0", () => {
    const { bytes, nodes } = buildSetupData([{ type: 2, data: new Uint8Array(5).fill(1) }, { type: 9, data: new Uint8Array(32).fill(2) }, { type: 5, data: new Uint8Array(0) }], 0x10000);
    expect(nodes.map((n) => n.paddr)).toEqual([0x10000, 0x10000 + 24, 0x10000 + 24 + 48]);
    expect(u64(bytes, 0)).toBe(BigInt(0x10000 + 24));
    expect([u32(bytes, 8), u32(bytes, 12)]).toEqual([2, 5]);
    expect(bytes.subarray(16, 21)).toEqual(new Uint8Array(5).fill(1));
    expect(u64(bytes, 24)).toBe(BigInt(0x10000 + 72));
    expect([u32(bytes, 32), u32(bytes, 36)]).toEqual([9, 32]);
    expect(u64(bytes, 72)).toBe(0n);
    expect([u32(bytes, 80), u32(bytes, 84)]).toEqual([5, 0]);
    expect(bytes.length).toBe(88);
  });

  it.each([
    [10, 0x80000009, "UNSUPPORTED"], // above SETUP_ENUM_MAX
    [0x80000001, 0x00000009, "UNSUPPORTED"], // SETUP_INDIRECT not in setup_type_max
    [0, null, "BAD_ARGUMENT"], // SETUP_NONE
    [2 ** 32, null, "BAD_ARGUMENT"],
  ])("type %s with setup_type_max %s → %s", (type, max, code) => {
    try {
      checkSetupData([{ type, data: new Uint8Array(1) }], { protocol_version: 0x20f, setup_type_max: max });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(GuestImageError);
      expect((e as GuestImageError).code).toBe(code);
    }
  });

  it("types up to setup_type_max pass, SETUP_INDIRECT ones when the kernel has the bit; any type before 2.15", () => {
    expect(() => checkSetupData([{ type: 9, data: new Uint8Array(1) }, { type: 0x80000009, data: new Uint8Array(1) }], { protocol_version: 0x20f, setup_type_max: 0x80000009 })).not.toThrow();
    expect(() => checkSetupData([{ type: 0x1234, data: new Uint8Array(1) }], { protocol_version: 0x20e, setup_type_max: null })).not.toThrow();
    expect(() => checkSetupData([{ type: 1, data: new Uint8Array(1) }], { protocol_version: 0x208, setup_type_max: null })).toThrow(/2\.09/);
  });

  it("bootLinux: a kernel_info that states setup_type_max 5 refuses SETUP_RNG_SEED (9) and places nothing; a protocol 2.08 kernel refuses any chain", async () => {
    const low = b.bzImage({ kernelInfo: { setup_type_max: 5 } }).bytes as Uint8Array;
    const old = b.bzImage({ version: 0x208 }).bytes as Uint8Array;
    const vm = await createVm({ ram: [{ base: 0, size: 64 * MiB }], files: fromMap({ low, old }) });
    for (const kernel of ["low", "old"]) {
      const e = await bootLinux(vm, { arch: "x86_64", kernel, setupData: { rngSeed: true } }).catch((x) => x);
      expect(e).toBeInstanceOf(GuestImageError);
      expect(e.code).toBe("UNSUPPORTED");
      expect(e.message).toMatch(kernel === "low" ? /setup_type_max is 0x5/ : /2\.09/);
      expect(vm.placed()).toEqual([]);
    }
    const ok = await bootLinux(vm, { arch: "x86_64", kernel: "low", setupData: { entries: [{ type: 5, data: new Uint8Array(3) }] } });
    expect(ok.setupData!.nodes.map((n) => n.type)).toEqual([5]);
  });

  it("a kernel_info whose magic is wrong, whose size_total runs past the file or whose size is too small: typed errors (inspect reports them; a setup_data boot fails with them)", async () => {
    const { inspectFile } = await import("../../src/inspect.js");
    const { bytesFile } = await import("../../src/sources/source.js");
    const k = b.bzImage({ kernelInfo: {} });
    const field = (name: string) => k.fields.find((f: { name: string }) => f.name === name)!.off as number;
    const bad1 = (k.bytes as Uint8Array).slice();
    bad1[field("kernel_info.size") - 4] ^= 0xff;
    const bad2 = (k.bytes as Uint8Array).slice();
    new DataView(bad2.buffer).setUint32(field("kernel_info.size_total"), 0x100000, true);
    const bad3 = (k.bytes as Uint8Array).slice();
    new DataView(bad3.buffer).setUint32(field("kernel_info.size"), 4, true);
    const codes = [];
    for (const x of [bad1, bad2, bad3]) {
      const info = await inspectFile(bytesFile("k", x));
      expect(info.kernel_info).toBeNull();
      codes.push((info.kernel_info_error as { code: string }).code);
      const vm = await createVm({ ram: [{ base: 0, size: 64 * MiB }], files: fromMap({ k: x }) });
      const e = await bootLinux(vm, { arch: "x86_64", kernel: "k", setupData: { rngSeed: true } }).catch((err) => err);
      expect(e.code).toBe(codes[codes.length - 1]);
      expect(vm.placed()).toEqual([]);
    }
    expect(codes).toEqual(["BAD_MAGIC", "TRUNCATED", "BAD_HEADER"]);
  });
});
