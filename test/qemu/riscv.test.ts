// Conformance against QEMU 7.2 (qemu-system-riscv64 -M virt, hw/riscv/boot.c) on synthesized
// RISC-V Images: Debian 12 ships no riscv64 kernel, so the fixture is a header written from
// Documentation/arch/riscv/boot-image-header.rst plus a deterministic payload.
//
// Difference: QEMU does not read the RISC-V Image header at all. It puts any kernel at the end of
// its firmware (OpenSBI at the RAM base) rounded up to 2 MiB: 0x80200000. Our rule: base = B
// rounded up to 2 MiB, image at base + text_offset. With Linux's usual text_offset 0x200000 and
// no address the two agree (by coincidence, not by rule); with text_offset 0 ours goes to the
// RAM base, where QEMU keeps OpenSBI, and has to be given QEMU's address.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createVm, fromMap } from "../../src/node.js";
import { runQemu, romNamed } from "../helpers/qemu.js";
import { expectSameBytes, hex, le64, ramBytes, requireFormat } from "./fixtures.js";

const MiB = 0x100000;
const RAM = { base: 0x8000_0000, size: 256 * MiB };

const dir = mkdtempSync(join(tmpdir(), "guest-image-riscv-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A RISC-V Image: boot-image-header.rst fields, then `payload` bytes of an xorshift stream. */
function riscvImage(textOffset: bigint, payload: number, bss: number): Uint8Array {
  const b = new Uint8Array(64 + payload);
  const dv = new DataView(b.buffer);
  dv.setUint32(0x00, 0x0000006f, true); // code0: j . (any code; only the loader's view matters)
  dv.setBigUint64(0x08, textOffset, true);
  dv.setBigUint64(0x10, BigInt(b.length + bss), true); // image_size
  dv.setBigUint64(0x18, 0n, true); // flags: little-endian
  dv.setUint32(0x20, 0x2, true); // version 0.2
  dv.setBigUint64(0x30, 0x5643534952n, true); // "RISCV" (deprecated magic)
  dv.setUint32(0x38, 0x05435352, true); // magic2 "RSC\x05"
  let x = 0x12345678;
  for (let i = 64; i < b.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

async function capture(path: string, size: number) {
  return runQemu({ arch: "riscv64", args: ["-M", "virt", "-m", "256M", "-kernel", path] }, async (q) => {
    const roms = await q.roms();
    const k = romNamed(roms, path.split("/").pop()!);
    // mrom.finfo: struct fw_dynamic_info { magic, version, next_addr, next_mode, options, boot_hart }, xlen words.
    const finfo = romNamed(roms, "mrom.finfo");
    const info = await q.read(finfo.addr, 48);
    expect(hex(le64(info, 0))).toBe("0x4942534f"); // FW_DYNAMIC_INFO_MAGIC "OSBI"
    return { roms, kernel: k, dump: await q.read(k.addr, size), nextAddr: le64(info, 16) };
  });
}

describe.concurrent("RISC-V Image (synthesized from boot-image-header.rst)", () => {
  for (const textOffset of [0x200000n, 0n]) {
    it(`text_offset ${hex(textOffset)}: ours at QEMU's address gives QEMU's bytes and entry`, async () => {
      requireFormat("riscv-image");
      const bss = 0x8000;
      const bytes = riscvImage(textOffset, 512 * 1024 - 64, bss);
      const path = join(dir, `Image-${textOffset.toString(16)}`);
      writeFileSync(path, bytes);
      const reserve = bytes.length + bss;
      const q = await capture(path, reserve);
      // hw/riscv/boot.c: firmware end rounded up to 2 MiB, whatever the header says.
      expect(hex(q.kernel.addr)).toBe(hex(RAM.base + 2 * MiB));
      expect(q.kernel.size).toBe(bytes.length);
      expect(hex(q.nextAddr)).toBe(hex(q.kernel.addr));

      const vm = await createVm({ ram: [RAM], files: fromMap({ Image: bytes }) });
      const k = await vm.loadKernel("Image", { at: Number(q.kernel.addr - textOffset) });
      expect(k.format).toBe("riscv-image");
      expect(hex(k.paddr)).toBe(hex(q.kernel.addr));
      expect(hex(k.entry)).toBe(hex(q.nextAddr));
      expect(k.size).toBe(reserve); // ours: image_size (BSS); QEMU's blob: the file
      expectSameBytes(ramBytes(vm, q.kernel.addr, reserve), q.dump, "RISC-V Image", Number(q.kernel.addr));

      // With no address: our rule puts it at RAM base (2 MiB aligned) + text_offset.
      const d = await (await createVm({ ram: [RAM], files: fromMap({ Image: bytes }) })).loadKernel("Image");
      expect(hex(d.paddr)).toBe(hex(RAM.base + Number(textOffset)));
    });
  }
});
