// bzImage direct boot's host side (src/boot/x86-direct.ts) on Debian's kernels: what lands in
// guest RAM is checked against an independent decompression and ELF reading — `xz -dc` of the
// payload (offsets from boot.rst: setup_sects 0x1F1, payload_offset 0x248, payload_length 0x24C)
// and `readelf -lhW` of the result — and every refusal leaves RAM and the ledger untouched.
// (The proof that the kernel runs is test/realboot/x86-direct.test.ts.)
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { prepareX86Direct } from "../../src/boot/x86-direct.js";
import { parseArgs, UsageError } from "../../src/cli/args.js";
import { bootLinux, createVm, fromMap, GuestImageError, type Vm } from "../../src/node.js";
import { readFixture } from "../qemu/fixtures.js";

const MiB = 1024 * 1024;

/** The payload per boot.rst, decompressed by xz-utils, and readelf's view of it. */
function reference(bz: Uint8Array) {
  const dv = new DataView(bz.buffer, bz.byteOffset, bz.length);
  const start = (bz[0x1f1]! + 1) * 512 + dv.getUint32(0x248, true);
  const payload = bz.subarray(start, start + dv.getUint32(0x24c, true));
  const vmlinux = new Uint8Array(execFileSync("xz", ["-dc", "--single-stream"], { input: payload, maxBuffer: 1 << 30 }));
  const dir = mkdtempSync(join(tmpdir(), "direct-"));
  writeFileSync(join(dir, "vmlinux"), vmlinux);
  const text = execFileSync("readelf", ["-lhW", join(dir, "vmlinux")], { encoding: "utf8" });
  rmSync(dir, { recursive: true });
  const entry = BigInt(text.match(/Entry point address:\s+(0x[0-9a-f]+)/)![1]!);
  // LOAD  Offset VirtAddr PhysAddr FileSiz MemSiz Flg Align
  const loads = [...text.matchAll(/^\s+LOAD\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)/gm)].map((m) => ({
    offset: Number(m[1]), paddr: Number(m[3]), filesz: Number(m[4]), memsz: Number(m[5]),
  }));
  return { vmlinux, entry, loads };
}

async function vmWith(bz: Uint8Array): Promise<Vm> {
  return createVm({ ram: [{ base: 0, size: 256 * MiB }], files: fromMap({ bzImage: bz }) });
}

/** Runs `fn`, expects a GuestImageError with `code`, and that nothing was placed or written. */
async function refused(vm: Vm, fn: () => Promise<unknown>, code: string, field?: RegExp): Promise<GuestImageError> {
  const before = vm.ram.read(0x1000000, 0x10000).slice();
  const e = await fn().then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(GuestImageError);
  const g = e as GuestImageError;
  expect(g.code, g.message).toBe(code);
  if (field) expect(g.field ?? "").toMatch(field);
  expect(vm.placed()).toEqual([]);
  expect(Buffer.compare(vm.ram.read(0x1000000, 0x10000), before)).toBe(0);
  return g;
}

describe("direct boot: the laid-out vmlinux equals readelf's segments of xz -dc's payload", () => {
  for (const [arch, fixture] of [["x86_64", "amd64/bzImage"], ["x86", "i386/bzImage"]] as const) {
    it(`${fixture} (${arch}) at its link address`, { timeout: 300_000 }, async () => {
      const bz = readFixture(fixture);
      const ref = reference(bz);
      const vm = await vmWith(bz);
      const b = await bootLinux(vm, { arch, kernel: "bzImage", cmdline: "console=ttyS0", x86Direct: true });
      const lo = Math.min(...ref.loads.map((l) => l.paddr));
      const hi = Math.max(...ref.loads.map((l) => l.paddr + l.memsz));
      const k = b.placements.find((p) => p.role === "kernel")!;
      expect([k.paddr, k.size]).toEqual([lo, hi - lo]);
      expect(b.cpu.pc).toBe(ref.entry);
      for (const l of ref.loads) {
        const ram = vm.ram.read(l.paddr, l.memsz);
        expect(Buffer.compare(ram.subarray(0, l.filesz), ref.vmlinux.subarray(l.offset, l.offset + l.filesz)), `segment at ${l.paddr.toString(16)}`).toBe(0);
        expect(ram.subarray(l.filesz).every((x) => x === 0), `BSS of the segment at ${l.paddr.toString(16)}`).toBe(true);
      }
      // The zero page is the normal boot's: the bzImage's setup header (boot.rst: 0x1F1 up to the header end).
      const zp = vm.ram.read(b.zeroPage!.paddr, 0x1000);
      expect(zp[0x1f1]).toBe(bz[0x1f1]);
      expect(Buffer.compare(zp.subarray(0x202, 0x206), bz.subarray(0x202, 0x206))).toBe(0); // "HdrS"
    });
  }

  it("moving the 686 kernel by 16 MiB: every byte that changes belongs to a 32-bit word moved by exactly 16 MiB", { timeout: 300_000 }, async () => {
    const bz = readFixture("i386/bzImage");
    const vm = await vmWith(bz);
    const at = await prepareX86Direct(vm, "bzImage", { arch: "x86" });
    const moved = await prepareX86Direct(vm, "bzImage", { arch: "x86", at: 0x2000000 });
    expect(at.relocations).toBe(0);
    expect(moved.relocations).toBeGreaterThan(10000);
    // Each differing 4-byte word differs by exactly the 16 MiB move, and there are as many as sites.
    const a = new DataView(at.image.buffer), m = new DataView(moved.image.buffer);
    let words = 0;
    for (let i = 0; i + 4 <= at.image.length; i += 1) {
      if (at.image[i] === moved.image[i]) continue;
      const o = i & ~3;
      const d = (m.getUint32(o, true) - a.getUint32(o, true)) >>> 0;
      if (d !== 0x1000000) {
        // A site need not be 4-aligned: check the unaligned word starting a few bytes earlier.
        let ok = false;
        for (let s = Math.max(0, i - 3); s <= i; s++) if (((m.getUint32(s, true) - a.getUint32(s, true)) >>> 0) === 0x1000000) ok = true;
        expect(ok, `byte ${i.toString(16)} changed by something other than the move`).toBe(true);
      }
      words++;
      i = o + 3;
    }
    expect(words).toBeGreaterThan(0);
    expect(moved.entry).toBe(at.entry + 0x1000000n);
  });
});

describe("direct boot: refusals, before anything is written", () => {
  it("a bzImage without a payload (payload_offset 0)", async () => {
    const bz = readFixture("amd64/bzImage").slice();
    new DataView(bz.buffer).setUint32(0x248, 0, true);
    const vm = await vmWith(bz);
    const e = await refused(vm, () => bootLinux(vm, { arch: "x86_64", kernel: "bzImage", x86Direct: true }), "UNSUPPORTED", /payload_offset/);
    expect(e.message).toMatch(/payload_offset/);
  });

  it("a payload in a compression direct boot cannot decode, named by its first bytes", async () => {
    const bz = readFixture("amd64/bzImage").slice();
    const dv = new DataView(bz.buffer);
    bz[(bz[0x1f1]! + 1) * 512 + dv.getUint32(0x248, true)] = 0x00;
    const vm = await vmWith(bz);
    const e = await refused(vm, () => bootLinux(vm, { arch: "x86_64", kernel: "bzImage", x86Direct: true }), "UNSUPPORTED", /payload/);
    expect(e.message).toMatch(/00 37 7a 58 5a 00/);
  });

  it("a corrupt payload (a flipped byte inside the xz data): BAD_CHECKSUM or BAD_HEADER naming the offset", { timeout: 120_000 }, async () => {
    const bz = readFixture("amd64/bzImage").slice();
    const dv = new DataView(bz.buffer);
    bz[(bz[0x1f1]! + 1) * 512 + dv.getUint32(0x248, true) + 4_000_000] ^= 0x20;
    const vm = await vmWith(bz);
    const err = await fnErr(() => bootLinux(vm, { arch: "x86_64", kernel: "bzImage", x86Direct: true }));
    expect(["BAD_CHECKSUM", "BAD_HEADER"]).toContain(err.code);
    expect(err.message).toMatch(/payload at offset 0x/);
    expect(vm.placed()).toEqual([]);
  });

  it("an x86_64 vmlinux asked for as x86, the 32-bit entry of x86_64, QEMU's layout, a bad x86Direct", async () => {
    const vm = await vmWith(readFixture("amd64/bzImage"));
    await refused(vm, () => bootLinux(vm, { arch: "x86", kernel: "bzImage", x86Direct: true, x86Mode: "protected" }), "UNSUPPORTED", /payload/);
    await refused(vm, () => bootLinux(vm, { arch: "x86_64", kernel: "bzImage", x86Direct: true, x86Mode: "protected" }), "UNSUPPORTED", /x86Mode/);
    await refused(vm, () => bootLinux(vm, { arch: "x86_64", kernel: "bzImage", x86Direct: true, layout: "qemu" }), "BAD_ARGUMENT", /x86Direct/);
    await refused(vm, () => bootLinux(vm, { arch: "x86_64", kernel: "bzImage", x86Direct: { at: -1 } as never }), "BAD_ARGUMENT", /x86Direct/);
  });

  it("a move of a non-relocatable kernel, or to an address not aligned to kernel_alignment", async () => {
    const fixed = readFixture("amd64/bzImage").slice();
    fixed[0x234] = 0; // relocatable_kernel (boot.rst)
    const vm1 = await vmWith(fixed);
    await refused(vm1, () => bootLinux(vm1, { arch: "x86_64", kernel: "bzImage", x86Direct: { at: 0x2000000 } }), "BAD_ADDRESS", /load_address/);
    const vm2 = await vmWith(readFixture("amd64/bzImage"));
    const e = await refused(vm2, () => bootLinux(vm2, { arch: "x86_64", kernel: "bzImage", x86Direct: { at: 0x2100000 } }), "BAD_ADDRESS", /load_address/);
    expect(e.message).toMatch(/kernel_alignment 0x200000/);
  });
});

describe("direct boot: CLI options", () => {
  const base = ["boot", "--arch", "x86_64", "--ram", "0:256M", "--kernel", "bzImage"];
  it("--direct and --direct-at <addr> become x86Direct; other architectures and both at once are usage errors", () => {
    expect(parseArgs([...base, "--direct"])).toMatchObject({ direct: true });
    expect(parseArgs([...base, "--direct-at", "0x2000000"])).toMatchObject({ direct: { at: 0x2000000 } });
    expect(() => parseArgs([...base, "--direct", "--direct-at", "32M"])).toThrow(UsageError);
    expect(() => parseArgs(["boot", "--arch", "arm64", "--ram", "0:256M", "--kernel", "Image", "--direct"])).toThrow(/--direct is for --arch x86/);
  });
});

async function fnErr(fn: () => Promise<unknown>): Promise<GuestImageError> {
  const e = await fn().then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(GuestImageError);
  return e as GuestImageError;
}
