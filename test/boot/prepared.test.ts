/**
 * prepareBoot: an instance is byte-identical to bootLinux of the same inputs (the reference
 * implementation) for every architecture and kernel format: all of guest RAM, the ledger, the
 * measured-boot event log (SHA-256 digests) and the returned boot. With no seed, the only bytes
 * that differ are the device tree's /chosen rng-seed and kaslr-seed values, located independently
 * with dtc's fdtget.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bootLinux, createVm, fromMap, GuestImageError, prepareBoot, PreparedBoot, SCRATCH_BYTES, type BootLinuxOptions, type Vm } from "../../src/node.js";
import { codeLike, gzipMember } from "../helpers/gzip.js";
import { writeElf } from "../helpers/elf-writer.js";
import { readFixture } from "../qemu/fixtures.js";

const MiB = 0x100000;
const ROOT = new URL("../..", import.meta.url).pathname;
const TMP = spawnSync("mktemp", ["-d"], { encoding: "utf8" }).stdout.trim();
const fixtureOr = (rel: string) => readFixture(rel); // a missing fixture fails the test (never skips)

type Case = { name: string; ram: Array<{ base: number; size: number }>; files: () => Record<string, Uint8Array>; opts: Omit<BootLinuxOptions, "seed"> };

/** drivers/firmware/efi/libstub/zboot-header.S: "MZ", "zimg", payload offset/size, "gzip", LINUX_PE_MAGIC. */
function zboot(gz: Uint8Array): Uint8Array {
  const z = new Uint8Array(64 + gz.length);
  const dv = new DataView(z.buffer);
  z.set([0x4d, 0x5a], 0);
  z.set(new TextEncoder().encode("zimg"), 4);
  dv.setUint32(0x08, 64, true);
  dv.setUint32(0x0c, gz.length, true);
  z.set(new TextEncoder().encode("gzip"), 0x18);
  dv.setUint32(0x38, 0x818223cd, true);
  z.set(gz, 64);
  return z;
}

/** mkimage (u-boot-tools) wraps a kernel as a uImage. */
function mkimage(arch: string, load: number, payload: Uint8Array): Uint8Array {
  const i = join(TMP, `k-${arch}-${load}`), o = `${i}.uimg`;
  writeFileSync(i, payload);
  const r = spawnSync("mkimage", ["-A", arch, "-O", "linux", "-T", "kernel", "-C", "none", "-a", `0x${load.toString(16)}`, "-e", `0x${load.toString(16)}`, "-d", i, o], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
  return new Uint8Array(readFileSync(o));
}

const elf = (cls: 32 | 64, machine: number, at: number) => writeElf({
  class: cls, machine, entry: BigInt(at),
  segments: [{ vaddr: BigInt(at), paddr: BigInt(at), data: codeLike(0x30000, 5), memsz: 0x40000n }, { vaddr: BigInt(at + 0x50000), paddr: BigInt(at + 0x50000), data: codeLike(0x8000, 6) }],
});

const initrd = () => fixtureOr("initrd/initrd.cpio.gz");
const A64 = [{ base: 0x4000_0000, size: 256 * MiB }];
const RV = [{ base: 0x8000_0000, size: 256 * MiB }];
const X86 = [{ base: 0, size: 0x9fc00 }, { base: 0x100000, size: 255 * MiB }];
const raw = () => codeLike(0x40000, 9);

const CASES: Case[] = [
  { name: "arm64 Image", ram: A64, files: () => ({ k: fixtureOr("arm64/Image"), i: initrd() }), opts: { arch: "arm64", kernel: "k", initrd: "i", cmdline: "console=ttyAMA0" } },
  { name: "arm64 Image, qemu layout, stub", ram: A64, files: () => ({ k: fixtureOr("arm64/Image"), i: initrd(), d: fixtureOr("dtb/tiny-arm.dtb") }), opts: { arch: "arm64", kernel: "k", initrd: "i", dtb: "d", cmdline: "x", layout: "qemu", stub: true } },
  { name: "arm64 Image.gz", ram: A64, files: () => ({ k: fixtureOr("arm64/Image.gz"), i: initrd() }), opts: { arch: "arm64", kernel: "k", initrd: "i" } },
  { name: "arm64 EFI zboot", ram: A64, files: () => ({ k: zboot(fixtureOr("arm64/Image.gz")) }), opts: { arch: "arm64", kernel: "k", cmdline: "quiet" } },
  { name: "arm64 uImage", ram: A64, files: () => ({ k: fixtureOr("arm64/uImage"), i: initrd() }), opts: { arch: "arm64", kernel: "k", initrd: "i" } },
  { name: "arm64 uImage.gz", ram: A64, files: () => ({ k: fixtureOr("arm64/uImage.gz") }), opts: { arch: "arm64", kernel: "k" } },
  { name: "arm64 ELF", ram: A64, files: () => ({ k: new Uint8Array(readFileSync(join(ROOT, "examples/images/linux"))) }), opts: { arch: "arm64", kernel: "k" } },
  { name: "arm64 raw", ram: A64, files: () => ({ k: raw(), i: initrd() }), opts: { arch: "arm64", kernel: "k", initrd: "i" } },
  { name: "arm zImage", ram: A64, files: () => ({ k: fixtureOr("armhf/zImage"), i: initrd() }), opts: { arch: "arm", kernel: "k", initrd: "i", cmdline: "console=ttyAMA0" } },
  { name: "arm zImage, qemu layout, stub", ram: A64, files: () => ({ k: fixtureOr("armhf/zImage"), i: initrd() }), opts: { arch: "arm", kernel: "k", initrd: "i", layout: "qemu", stub: true } },
  { name: "arm uImage", ram: A64, files: () => ({ k: fixtureOr("armhf/uImage") }), opts: { arch: "arm", kernel: "k" } },
  { name: "arm ELF", ram: A64, files: () => ({ k: elf(32, 40, 0x4000_8000) }), opts: { arch: "arm", kernel: "k" } },
  { name: "arm raw", ram: A64, files: () => ({ k: raw() }), opts: { arch: "arm", kernel: "k" } },
  { name: "riscv64 Image", ram: RV, files: () => ({ k: fixtureOr("riscv64/Image"), i: initrd() }), opts: { arch: "riscv64", kernel: "k", initrd: "i", cmdline: "console=ttyS0" } },
  {
    name: "riscv64 Image + OpenSBI fw_dynamic, stub", ram: RV,
    files: () => ({ k: fixtureOr("riscv64/Image"), f: new Uint8Array(readFileSync("/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin")) }),
    opts: { arch: "riscv64", kernel: "k", firmware: "f", stub: true, layout: "qemu" },
  },
  { name: "riscv64 uImage", ram: RV, files: () => ({ k: mkimage("riscv", 0x8020_0000, fixtureOr("riscv64/Image")) }), opts: { arch: "riscv64", kernel: "k" } },
  { name: "riscv64 ELF", ram: RV, files: () => ({ k: elf(64, 243, 0x8020_0000) }), opts: { arch: "riscv64", kernel: "k" } },
  { name: "riscv32 raw", ram: RV, files: () => ({ k: raw() }), opts: { arch: "riscv32", kernel: "k" } },
  { name: "x86_64 bzImage, 64-bit entry", ram: X86, files: () => ({ k: fixtureOr("amd64/bzImage"), i: initrd() }), opts: { arch: "x86_64", kernel: "k", initrd: "i", cmdline: "console=ttyS0" } },
  { name: "x86_64 bzImage, 32-bit entry", ram: X86, files: () => ({ k: fixtureOr("amd64/bzImage") }), opts: { arch: "x86_64", kernel: "k", x86Mode: "protected" } },
  { name: "x86_64 bzImage, qemu layout, real mode", ram: X86, files: () => ({ k: fixtureOr("amd64/bzImage"), i: initrd() }), opts: { arch: "x86_64", kernel: "k", initrd: "i", layout: "qemu" } },
  { name: "x86_64 xz bzImage, direct boot", ram: X86, files: () => ({ k: fixtureOr("amd64/bzImage"), i: initrd() }), opts: { arch: "x86_64", kernel: "k", initrd: "i", cmdline: "console=ttyS0", x86Direct: true } },
  { name: "x86 (i386) xz bzImage, direct boot moved to 32 MiB (relocations)", ram: X86, files: () => ({ k: fixtureOr("i386/bzImage") }), opts: { arch: "x86", kernel: "k", x86Direct: { at: 32 * MiB } } },
  { name: "x86 (i386) bzImage", ram: X86, files: () => ({ k: fixtureOr("i386/bzImage"), i: initrd() }), opts: { arch: "x86", kernel: "k", initrd: "i", cmdline: "console=ttyS0" } },
];

const buf = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.length);
const views = (vm: Vm) => vm.ram.regions.map((r) => buf(vm.ram.view(r.base, r.size)));

function sameRam(a: Vm, b: Vm): void {
  const va = views(a), vb = views(b);
  va.forEach((x, i) => expect(Buffer.compare(x, vb[i]), `RAM region ${i}`).toBe(0));
}

/** Guest physical addresses where two VMs' RAM differ (64 KiB blocks compared first). */
function diffs(a: Vm, b: Vm): number[] {
  const out: number[] = [];
  const vb = views(b);
  views(a).forEach((x, n) => {
    const y = vb[n], base = a.ram.regions[n].base;
    for (let o = 0; o < x.length; o += 0x10000) {
      const e = Math.min(o + 0x10000, x.length);
      if (Buffer.compare(x.subarray(o, e), y.subarray(o, e)) === 0) continue;
      for (let i = o; i < e; i++) if (x[i] !== y[i]) out.push(base + i);
      if (out.length > 1000) return;
    }
  });
  return out;
}

/** fdtget -t bx: a property's bytes, read by libfdt's tool (the independent locator). */
function fdtgetBytes(blob: Uint8Array, prop: string): number[] {
  const f = join(TMP, `d${Math.random().toString(36).slice(2)}.dtb`);
  writeFileSync(f, blob);
  const r = spawnSync("fdtget", ["-t", "bx", f, "/chosen", prop], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim().split(/\s+/).map((h) => parseInt(h, 16));
}

describe("prepareBoot: instances are bootLinux's bytes", { timeout: 120_000 }, () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const files = fromMap(c.files());
      const t = await prepareBoot({ ...c.opts, files, ram: c.ram });
      // Reference: bootLinux itself, same inputs, same seed.
      const ref = await createVm({ ram: c.ram, files, measure: true });
      const refBoot = await bootLinux(ref, { ...c.opts, seed: 7 });
      const inst = await createVm({ ram: c.ram, measure: true });
      const boot = await t.instantiate(inst, { seed: 7 });
      sameRam(inst, ref);
      expect(inst.placed()).toEqual(ref.placed());
      expect(inst.measurements()).toEqual(ref.measurements());
      // The returned boot: equal, with a direct boot's laid-out kernel (megabytes) compared as bytes.
      const image = (x: object) => (x as { kernel: { direct?: { image?: Uint8Array } } }).kernel.direct?.image;
      const strip = (x: typeof boot) => (image(x) ? { ...x, kernel: { ...x.kernel, direct: { ...(x.kernel as { direct: object }).direct, image: null } } } : x);
      if (image(refBoot)) expect(Buffer.compare(buf(image(boot)!), buf(image(refBoot)!))).toBe(0);
      expect(strip(boot)).toEqual(strip(refBoot));
      // Template memory: its placed bytes (the bound: placed + 1 MiB).
      const placed = ref.placed().reduce((n, p) => n + p.size, 0);
      expect(t.bytes).toBeLessThanOrEqual(placed + MiB);

      // Fresh seeds: only /chosen rng-seed and kaslr-seed differ, where fdtget finds them.
      const fresh = await createVm({ ram: c.ram, measure: true });
      const b2 = await t.instantiate(fresh);
      const d = diffs(fresh, ref);
      if (!refBoot.dtb) {
        expect(d).toEqual([]);
        expect(fresh.measurements()).toEqual(ref.measurements());
        return;
      }
      expect(d.length).toBeGreaterThan(0);
      const blob = fresh.ram.read(b2.dtb!.paddr, b2.dtb!.size);
      const rng = fdtgetBytes(blob, "rng-seed"), kaslr = fdtgetBytes(blob, "kaslr-seed");
      expect(rng.length).toBe(32);
      expect(kaslr.length).toBe(8);
      // Each differing byte lies in one of the two values; find the values' offsets by content.
      const sites = (vals: number[]) => {
        for (let o = 0; o + vals.length <= blob.length; o++) if (vals.every((v, i) => blob[o + i] === v)) return b2.dtb!.paddr + o;
        throw new Error("value not found");
      };
      const rAt = sites(rng), kAt = sites(kaslr);
      for (const p of d) expect((p >= rAt && p < rAt + 32) || (p >= kAt && p < kAt + 8), `byte at 0x${p.toString(16)} differs outside the seeds`).toBe(true);
      expect(b2.cpu).toEqual(refBoot.cpu);
      // The device tree's event is measured over its new seeds.
      const ev = fresh.measurements().find((e) => e.paddr === b2.dtb!.paddr)!;
      const { createHash } = await import("node:crypto");
      expect(ev.digest).toBe(createHash("sha256").update(blob).digest("hex"));
    });
  }
});

describe("prepareBoot: instances share one memory at different offsets", { timeout: 120_000 }, () => {
  it("three arm64 instances in one WebAssembly.Memory, each the reference's bytes, posted as data", async () => {
    const files = fromMap({ k: readFixture("arm64/Image"), i: initrd() });
    const opts = { arch: "arm64" as const, kernel: "k", initrd: "i", cmdline: "console=ttyAMA0" };
    const ram = [{ base: 0x4000_0000, size: 64 * MiB }];
    const t = PreparedBoot.fromData(structuredClone((await prepareBoot({ ...opts, files, ram })).toData(true)));
    const ref = await createVm({ ram, files });
    await bootLinux(ref, { ...opts, seed: 3 });
    const memory = new WebAssembly.Memory({ initial: (3 * 64 * MiB) / 65536 + Math.ceil((3 * SCRATCH_BYTES) / 65536) });
    const vms = [];
    for (let n = 0; n < 3; n++) {
      const vm = await createVm({ ram, memory, memoryOffset: n * 64 * MiB, scratchOffset: 3 * 64 * MiB + n * SCRATCH_BYTES });
      await t.instantiate(vm, { seed: 3 });
      vms.push(vm);
    }
    for (const vm of vms) sameRam(vm, ref);
  });

  it("refuses a VM with another RAM map, a bad seed, and an overlap, changing nothing", async () => {
    const files = fromMap({ k: raw() });
    const t = await prepareBoot({ arch: "arm64", kernel: "k", files, ram: A64 });
    const other = await createVm({ ram: [{ base: 0x4000_0000, size: 128 * MiB }] });
    await expect(t.instantiate(other)).rejects.toMatchObject({ code: "BAD_ARGUMENT", field: "ram" });
    expect(other.placed()).toEqual([]);
    const x = await prepareBoot({ arch: "x86_64", kernel: "k", files: fromMap({ k: readFixture("amd64/bzImage") }), ram: X86 });
    const vm = await createVm({ ram: X86 });
    const e = await x.instantiate(vm, { seed: -1 }).catch((err) => err);
    expect(e).toBeInstanceOf(GuestImageError);
    expect(e).toMatchObject({ code: "BAD_ARGUMENT", field: "seed" });
    expect(vm.placed()).toEqual([]);
    // Overlap with something already placed: refused before any write.
    const busy = await createVm({ ram: A64 });
    await busy.place("mine", new Uint8Array([1, 2, 3]), { at: t.images[0].paddr + 16 });
    await expect(t.instantiate(busy)).rejects.toMatchObject({ code: "OVERLAP" });
    expect(busy.placed().map((p) => p.name)).toEqual(["mine"]);
    expect(busy.ram.read(t.images[0].paddr, 16).every((b) => b === 0)).toBe(true);
  });
});
