// bootLinux's onProgress (summed over every placement of the boot). Expected byte counts come
// from the inputs and boot.rst, not from the library: a bzImage's protected-mode kernel is the
// file after its (setup_sects + 1) × 512 bytes of real-mode setup (setup_sects at 0x1F1), the
// initrd is copied whole, the command line with its NUL, and the zero page (boot_params) is one
// 4 KiB page; with x86Tables: false nothing else is placed. Direct boot copies the vmlinux laid
// out from its lowest p_paddr to its highest p_paddr + p_memsz: `xz -dc` of the payload (boot.rst
// offsets) and readelf's program headers say how much that is.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bootLinux, createVm, fromMap, GuestImageError } from "../../src/node.js";
import { readFixture } from "../qemu/fixtures.js";

const MiB = 1024 * 1024;

function initrdBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 9)) & 0xff;
  return b;
}

/** Every call, and checks that hold for any sequence: loaded never falls, never passes total. */
function recorder() {
  const calls: Array<[number, number]> = [];
  const cb = (loaded: number, total: number) => {
    const prev = calls[calls.length - 1];
    if (prev && loaded < prev[0]) throw new Error(`loaded went back from ${prev[0]} to ${loaded}`);
    if (loaded > total) throw new Error(`loaded ${loaded} > total ${total}`);
    calls.push([loaded, total]);
  };
  return { calls, cb };
}

/** Bytes from the lowest p_paddr to the highest p_paddr + p_memsz of the bzImage's vmlinux, by xz-utils and readelf. */
function vmlinuxSpan(bz: Uint8Array): number {
  const dv = new DataView(bz.buffer, bz.byteOffset, bz.length);
  const start = (bz[0x1f1]! + 1) * 512 + dv.getUint32(0x248, true); // setup_sects, payload_offset
  const payload = bz.subarray(start, start + dv.getUint32(0x24c, true)); // payload_length
  const dir = mkdtempSync(join(tmpdir(), "progress-"));
  try {
    writeFileSync(join(dir, "vmlinux"), execFileSync("xz", ["-dc", "--single-stream"], { input: payload, maxBuffer: 1 << 30 }));
    const text = execFileSync("readelf", ["-lW", join(dir, "vmlinux")], { encoding: "utf8" });
    // LOAD Offset VirtAddr PhysAddr FileSiz MemSiz
    const loads = [...text.matchAll(/^\s+LOAD\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)/gm)].map((m) => [Number(m[1]), Number(m[2])]);
    return Math.max(...loads.map(([p, m]) => p + m)) - Math.min(...loads.map(([p]) => p));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("bootLinux onProgress", () => {
  it("x86 bzImage + initrd: the sum of the kernel, initrd, command line and zero page copies, the initrd counted from the first call", async () => {
    const bz = readFixture("amd64/bzImage");
    const initrd = initrdBytes(300_001);
    const cmdline = "console=ttyS0 progress=1";
    const kernelBytes = bz.length - (bz[0x1f1]! + 1) * 512;
    const vm = await createVm({ ram: [{ base: 0, size: 256 * MiB }], files: fromMap({ bzImage: bz, initrd }) });
    const { calls, cb } = recorder();
    await bootLinux(vm, { arch: "x86_64", kernel: "bzImage", initrd: "initrd", cmdline, x86Tables: false, x86Mode: "protected", onProgress: cb });
    const expected = kernelBytes + initrd.length + cmdline.length + 1 + 4096;
    expect(calls.length).toBeGreaterThan(2);
    // The kernel goes first; from its first chunk the total already holds the initrd.
    expect(calls[0][1]).toBe(kernelBytes + initrd.length);
    expect(calls[calls.length - 1]).toEqual([expected, expected]);
    // The total only grows (by the small placements as they start).
    for (let i = 1; i < calls.length; i++) expect(calls[i][1]).toBeGreaterThanOrEqual(calls[i - 1][1]);
  });

  it("arm64 Image + initrd + generated device tree: ends at loaded === total, covering the kernel file and the initrd", async () => {
    const image = readFixture("arm64/Image");
    const initrd = initrdBytes(70_000);
    const vm = await createVm({ ram: [{ base: 0x4000_0000, size: 512 * MiB }], files: fromMap({ Image: image, initrd }) });
    const { calls, cb } = recorder();
    const boot = await bootLinux(vm, { arch: "arm64", kernel: "Image", initrd: "initrd", cmdline: "console=ttyAMA0", onProgress: cb });
    const [loaded, total] = calls[calls.length - 1];
    expect(loaded).toBe(total);
    // The Image file and the initrd are copied whole; the device tree is the one bytes count we take from the boot record.
    expect(loaded).toBe(image.length + initrd.length + boot.dtb!.size);
  });

  it("x86 direct boot reports the decompressed kernel's copy too", async () => {
    const bz = readFixture("i386/bzImage");
    const vm = await createVm({ ram: [{ base: 0, size: 256 * MiB }], files: fromMap({ bzImage: bz }) });
    const { calls, cb } = recorder();
    const boot = await bootLinux(vm, { arch: "x86", kernel: "bzImage", x86Direct: true, x86Tables: false, onProgress: cb });
    const [loaded, total] = calls[calls.length - 1];
    expect(loaded).toBe(total);
    expect(loaded).toBe(vmlinuxSpan(bz) + 1 + 4096); // + the empty command line's NUL + the zero page
    expect(boot.kernel.format).toBe("vmlinux (direct)");
  });

  it("a non-function onProgress is refused before anything is placed", async () => {
    const vm = await createVm({ ram: [{ base: 0, size: 64 * MiB }], files: fromMap({ bzImage: readFixture("amd64/bzImage") }) });
    const e = await bootLinux(vm, { arch: "x86_64", kernel: "bzImage", onProgress: 5 as unknown as () => void }).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(GuestImageError);
    expect([(e as GuestImageError).code, (e as GuestImageError).field]).toEqual(["BAD_ARGUMENT", "onProgress"]);
    expect(vm.placed()).toEqual([]);
  });
});
