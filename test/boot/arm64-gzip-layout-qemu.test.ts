// bootLinux(layout: "qemu") with an arm64 Image.gz whose text_offset is ≥ 4 KiB: QEMU 7.2
// gunzips first and reads the header of what comes out (hw/arm/boot.c load_aarch64_image), so
// an Image.gz lands exactly where the same Image uncompressed does. Oracle: QEMU's `info roms`
// for `-kernel` given each file (paused, -S), and the bytes it placed.
//
// Inputs: Debian's arm64 Image (text_offset 0) with text_offset patched per booting.rst's header
// layout (u64 at 0x08, little-endian), then gzip'd with the system's `gzip -1 -n`; one copy with
// the "ARM\x64" magic (0x38) cleared, which QEMU treats as a raw kernel (RAM + 0x80000).
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { bootLinux, createVm, fromPaths } from "../../src/node.js";
import { romNamed, runQemu } from "../helpers/qemu.js";
import { expectSameBytes, hex, ramBytes, readFixture } from "../qemu/fixtures.js";

const MiB = 0x100000;
const RAM = { base: 0x4000_0000, size: 256 * MiB };
const dir = mkdtempSync(join(tmpdir(), "guest-image-gzlayout-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function variant(name: string, textOffset: bigint | null): { raw: string; gz: string } {
  const img = readFixture("arm64/Image").slice();
  const dv = new DataView(img.buffer);
  if (textOffset === null) dv.setUint32(0x38, 0, true); // no "ARM\x64": QEMU loads it as a raw kernel
  else dv.setBigUint64(0x08, textOffset, true);
  const raw = join(dir, name);
  writeFileSync(raw, img);
  const r = spawnSync("gzip", ["-1", "-n", "-k", "-f", raw]);
  if (r.status !== 0) throw new Error(`gzip failed: ${r.stderr}`);
  return { raw, gz: `${raw}.gz` };
}

async function qemuKernel(file: string) {
  return runQemu({ arch: "aarch64", args: ["-M", "virt", "-cpu", "cortex-a57", "-m", `${RAM.size / MiB}M`, "-kernel", file], timeoutMs: 60_000 }, async (q) => {
    const k = romNamed(await q.roms(), file.split("/").pop()!);
    const head = await q.read(k.addr, 0x1000);
    const tail = await q.read(k.addr + BigInt(k.size - 0x1000), 0x1000);
    return { addr: k.addr, size: k.size, head, tail };
  });
}

async function oursKernel(file: string) {
  const vm = await createVm({ ram: [RAM], files: fromPaths() });
  const b = await bootLinux(vm, { arch: "arm64", kernel: file, cmdline: "console=ttyAMA0", layout: "qemu" });
  const k = b.placements.find((p) => p.role === "kernel")!;
  return { vm, paddr: k.paddr, pc: b.cpu.pc };
}

describe.concurrent("layout qemu: an arm64 Image.gz lands where QEMU puts it, which is where the Image goes", () => {
  const cases: Array<[string, bigint | null, number]> = [
    // [name, text_offset (null: no Image magic), QEMU's offset from the RAM base per hw/arm/boot.c]
    ["to-80000", 0x80000n, 0x80000],
    ["to-1000", 0x1000n, 0x1000], // exactly BOOTLOADER_MAX_SIZE: no extra 2 MiB
    ["to-fff", 0xfffn, 2 * MiB + 0xfff], // just below it: + 2 MiB
    ["no-magic", null, 0x80000],
  ];
  for (const [name, to, offset] of cases) {
    it(`text_offset ${to === null ? "(no Image magic)" : hex(to)}: Image and Image.gz at RAM + ${hex(offset)}`, async () => {
      const f = variant(name, to);
      const [qRaw, qGz] = await Promise.all([qemuKernel(f.raw), qemuKernel(f.gz)]);
      // QEMU's own verdict: the same address for both, the one its rule gives.
      expect(hex(qGz.addr)).toBe(hex(qRaw.addr));
      expect(hex(qRaw.addr)).toBe(hex(RAM.base + offset));
      const [oRaw, oGz] = await Promise.all([oursKernel(f.raw), oursKernel(f.gz)]);
      expect(hex(oRaw.paddr), "Image").toBe(hex(qRaw.addr));
      expect(hex(oGz.paddr), "Image.gz").toBe(hex(qGz.addr));
      expect(oGz.pc).toBe(qGz.addr);
      // And the decompressed bytes QEMU placed are ours at that address.
      expectSameBytes(ramBytes(oGz.vm, qGz.addr, 0x1000), qGz.head, "Image.gz head", Number(qGz.addr));
      expectSameBytes(ramBytes(oGz.vm, qGz.addr + BigInt(qGz.size - 0x1000), 0x1000), qGz.tail, "Image.gz tail");
    }, 240_000); // four at once, each gzip of a 32 MiB Image and two QEMUs: slow on a shared 2-core machine
  }
});
