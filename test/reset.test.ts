/**
 * vm.reset(): every placed image written back exactly as placed, RAM outside them zeroed on
 * request, the boot CPU state handed back, fresh device-tree seeds unless seeded. The reference
 * is bootLinux's own output in a fresh VM (same inputs, same seed) and node:crypto's SHA-256.
 */
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bootLinux, createVm, fromMap, prepareBoot, type Vm } from "../src/node.js";
import { readFixture } from "./qemu/fixtures.js";

const MiB = 0x100000;
const A64 = [{ base: 0x4000_0000, size: 128 * MiB }];
const X86 = [{ base: 0, size: 0x9fc00 }, { base: 0x100000, size: 127 * MiB }];
const TMP = mkdtempSync(join(tmpdir(), "guest-image-reset-"));

const files = () => fromMap({ k: readFixture("arm64/Image.gz"), i: readFixture("initrd/initrd.cpio.gz"), bz: readFixture("amd64/bzImage") });
const ramOf = (vm: Vm) => Buffer.concat(vm.ram.regions.map((r) => vm.ram.read(r.base, r.size)));
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** The guest at work: scribble over every region (its images included). */
function scribble(vm: Vm): void {
  for (const r of vm.ram.regions) {
    const v = vm.ram.view(r.base, r.size);
    for (let o = 0; o < v.length; o += 4093) v[o] = 0xa5;
  }
}

function fdtget(blob: Uint8Array, prop: string): string {
  const f = join(TMP, `${Math.random().toString(36).slice(2)}.dtb`);
  writeFileSync(f, blob);
  const r = spawnSync("fdtget", ["-t", "bx", f, "/chosen", prop], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim();
}

describe("vm.reset()", { timeout: 120_000 }, () => {
  it("arm64: seeded boot, guest scribbles, reset({ zero: true }) gives bootLinux's RAM again, byte for byte", async () => {
    const f = files();
    const opts = { arch: "arm64" as const, kernel: "k", initrd: "i", cmdline: "console=ttyAMA0", seed: 11 };
    const ref = await createVm({ ram: A64, files: f });
    const refBoot = await bootLinux(ref, opts);
    const vm = await createVm({ ram: A64, files: f, resettable: true, measure: true });
    await bootLinux(vm, opts);
    const events = vm.measurements().length;
    scribble(vm);
    const r = await vm.reset({ zero: true });
    expect(r.cpu).toEqual(refBoot.cpu);
    expect(r.images).toBe(vm.placed().length);
    expect(r.bytes).toBe(vm.placed().reduce((n, p) => n + p.size, 0));
    expect(Buffer.compare(ramOf(vm), ramOf(ref))).toBe(0);
    // A new boot's events: one per image, each the SHA-256 of what is now in RAM.
    const after = vm.measurements().slice(events);
    expect(after.map((e) => e.name)).toEqual(vm.measurements().slice(0, events).map((e) => e.name));
    for (const e of after) expect(e.digest).toBe(sha(vm.ram.read(e.paddr, e.size)));
  });

  it("without zero: images restored, the rest of RAM left as the guest left it", async () => {
    const vm = await createVm({ ram: A64, files: files(), resettable: true });
    await bootLinux(vm, { arch: "arm64", kernel: "k", initrd: "i", seed: 2 });
    const placed = vm.placed();
    const images = placed.map((p) => vm.ram.read(p.paddr, p.size));
    scribble(vm);
    const dirty = ramOf(vm);
    await vm.reset();
    placed.forEach((p, i) => expect(Buffer.compare(vm.ram.read(p.paddr, p.size), images[i]), p.name).toBe(0));
    const now = ramOf(vm);
    const base = A64[0].base;
    const inImage = (a: number) => placed.some((p) => a >= p.paddr - base && a < p.paddr - base + p.size);
    for (let o = 0; o < now.length; o += 4093) if (!inImage(o)) expect(now[o]).toBe(dirty[o]);
  });

  it("fresh seeds on every reset of an unseeded boot: only /chosen rng-seed and kaslr-seed change", async () => {
    const vm = await createVm({ ram: A64, files: files(), resettable: true });
    const b = await bootLinux(vm, { arch: "arm64", kernel: "k", initrd: "i" });
    const dtb0 = vm.ram.read(b.dtb!.paddr, b.dtb!.size);
    const ram0 = ramOf(vm);
    await vm.reset();
    const dtb1 = vm.ram.read(b.dtb!.paddr, b.dtb!.size);
    expect(fdtget(dtb1, "rng-seed")).not.toBe(fdtget(dtb0, "rng-seed"));
    expect(fdtget(dtb1, "kaslr-seed")).not.toBe(fdtget(dtb0, "kaslr-seed"));
    const ram1 = ramOf(vm);
    let differ = 0;
    for (let i = 0; i < ram0.length; i++) if (ram0[i] !== ram1[i]) differ++;
    expect(differ).toBeGreaterThan(20); // 40 random bytes: a few may match by chance
    expect(differ).toBeLessThanOrEqual(40);
    // A seed given to reset derives them, as bootLinux({ seed }) does.
    await vm.reset({ seed: 5 });
    const ref = await createVm({ ram: A64, files: files() });
    await bootLinux(ref, { arch: "arm64", kernel: "k", initrd: "i", seed: 5 });
    expect(Buffer.compare(ramOf(vm), ramOf(ref))).toBe(0);
  });

  it("x86_64 bzImage (64-bit entry, GDT, page tables): reset restores them all", async () => {
    const f = files();
    const ref = await createVm({ ram: X86, files: f });
    const rb = await bootLinux(ref, { arch: "x86_64", kernel: "bz", initrd: "i", cmdline: "console=ttyS0" });
    const vm = await createVm({ ram: X86, files: f, resettable: true });
    await bootLinux(vm, { arch: "x86_64", kernel: "bz", initrd: "i", cmdline: "console=ttyS0" });
    scribble(vm);
    const r = await vm.reset({ zero: true });
    expect(r.cpu).toEqual(rb.cpu);
    expect(Buffer.compare(ramOf(vm), ramOf(ref))).toBe(0);
  });

  it("a prepared instance resets from the template's bytes, in a VM that keeps no copy", async () => {
    const f = files();
    const t = await prepareBoot({ arch: "arm64", kernel: "k", initrd: "i", files: f, ram: A64 });
    const vm = await createVm({ ram: A64 });
    await t.instantiate(vm, { seed: 9 });
    const ref = await createVm({ ram: A64, files: f });
    await bootLinux(ref, { arch: "arm64", kernel: "k", initrd: "i", seed: 9 });
    scribble(vm);
    await vm.reset({ zero: true });
    expect(Buffer.compare(ramOf(vm), ramOf(ref))).toBe(0);
  });

  it("refusals: a VM that keeps nothing, bad options; a rolled-back load is not restored", async () => {
    const plain = await createVm({ ram: A64, files: files() });
    await bootLinux(plain, { arch: "arm64", kernel: "k" });
    await expect(plain.reset()).rejects.toMatchObject({ code: "UNSUPPORTED", field: "resettable" });
    const vm = await createVm({ ram: A64, files: files(), resettable: true });
    await vm.place("a", new Uint8Array([1, 2, 3]), { at: 0x4000_0000 });
    await expect(vm.reset({ zero: "yes" as unknown as boolean })).rejects.toMatchObject({ code: "BAD_ARGUMENT", field: "zero" });
    await expect(
      vm.transaction(async (t) => {
        await t.place("b", new Uint8Array([4, 5]), { at: 0x4000_1000 });
        throw new Error("undo");
      }),
    ).rejects.toThrow("undo");
    vm.ram.write(0x4000_1000, new Uint8Array([7, 7]));
    const r = await vm.reset();
    expect(r).toMatchObject({ images: 1, bytes: 3, cpu: undefined });
    expect([...vm.ram.read(0x4000_1000, 2)]).toEqual([7, 7]);
    expect([...vm.ram.read(0x4000_0000, 3)]).toEqual([1, 2, 3]);
  });
});
