// Conformance against QEMU 7.2's generic loader (`-device loader,file=…`, hw/core/generic-loader.c
// → load_elf_as) on the cross ELF fixtures (test/helpers/cross-elf.ts): every PT_LOAD QEMU
// places ("<path> ELF program header segment <i>", size p_memsz, at p_paddr) must be where we
// put segment i, with the same bytes (file part, then zeros to p_memsz).
//
// Machines: `-M none -m 64M` puts RAM at 0 on every target and needs no CPU for an ELF load.
// QEMU applies no relocations; RELA RELATIVE sites, which we patch at the link address too, are
// compared with readelf's addends instead.
// The generic loader loads any e_machine as long as the byte order is the target's, so the
// big-endian MIPS ELF goes through qemu-system-m68k (Debian 12 puts qemu-system-mips in a
// package of its own; qemu-system-misc has m68k).
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { createVm, fromMap } from "../../src/node.js";
import type { ElfKernelArch } from "../../src/formats/elf.js";
import { buildCrossElfs, CROSS_ARCHES, type CrossArch, type CrossElf } from "../helpers/cross-elf.js";
import { readelfRelocs } from "../helpers/readelf.js";
import { haveQemu, runQemu, type RomBlob } from "../helpers/qemu.js";
import { expectSameBytes, hex, ramBytes } from "./fixtures.js";

const QEMU_FOR: Record<CrossArch, string> = {
  x86_64: "x86_64",
  i686: "i386",
  aarch64: "aarch64",
  riscv64: "riscv64",
  arm: "arm",
  mips: "m68k",
  // Debian 12 has no qemu-system-ppc/-sparc64 in qemu-system-misc: a target of the same byte
  // order loads them (as for MIPS).
  s390x: "s390x",
  ppc64: "s390x",
  ppc64le: "x86_64",
  ppc: "m68k",
  sparc64: "s390x",
};
const RAM = { base: 0, size: 64 * 0x100000 };

let fixtures: CrossElf[] = [];
beforeAll(() => {
  fixtures = buildCrossElfs();
});

describe("ELF via QEMU's generic loader", () => {
  it("has a fixture and a QEMU for every architecture (CI installs both)", () => {
    expect(fixtures.map((f) => f.arch).filter((a, i, all) => all.indexOf(a) === i)).toEqual([...CROSS_ARCHES]);
    for (const a of Object.values(QEMU_FOR)) expect(haveQemu(a), `qemu-system-${a}`).toBe(true);
  });

  it.concurrent.each(CROSS_ARCHES.flatMap((a) => [`${a}/exec`, `${a}/pie`]))("%s", async (id) => {
    const [arch, kind] = id.split("/") as [CrossArch, "exec" | "pie"];
    const f = fixtures.find((x) => x.arch === arch && x.kind === kind);
    if (!f) {
      // MIPS has no PIE fixture by design (cross-elf.ts); anything else missing is a failure.
      expect(id).toBe("mips/pie");
      return;
    }
    const segName = /^(.*) ELF program header segment (\d+)$/;
    const { blobs, dumps } = await runQemu(
      { arch: QEMU_FOR[arch], args: ["-M", "none", "-m", "64M", "-device", `loader,file=${f.path}`] },
      async (q) => {
        const blobs = (await q.roms()).filter((r): r is RomBlob & { addr: bigint } => r.addr !== undefined && r.name.startsWith(f.path));
        const dumps: Uint8Array[] = [];
        for (const b of blobs) dumps.push(await q.read(b.addr, b.size));
        return { blobs, dumps };
      },
    );
    expect(blobs.length).toBeGreaterThan(0);

    const bytes = new Uint8Array(readFileSync(f.path));
    const vm = await createVm({ ram: [RAM], files: fromMap({ k: bytes }) });
    // RAM pre-filled so that zero-filled BSS is visibly written, not just fresh.
    vm.ram.view(RAM.base, RAM.size).fill(0xee);
    const k = await vm.loadKernel("k");
    expect(k.format).toBe("elf");
    const segs = (k.arch as ElfKernelArch).segments;
    // The same segments (by program header index), at the same addresses, of the same sizes.
    expect(segs.map((s) => ({ index: s.index, addr: hex(s.load_paddr), size: hex(s.memsz) }))).toEqual(
      blobs.map((b) => ({ index: Number(segName.exec(b.name)![2]), addr: hex(b.addr), size: hex(b.size) })),
    );
    // QEMU applies no relocations. We apply RELA RELATIVE ones at the link address too (B + A,
    // B = 0: GNU ld for RISC-V, like lld, leaves those sites 0): there the reference is readelf's
    // addend, everywhere else QEMU's bytes.
    const relocs = kind === "pie" ? readelfRelocs(f.path).filter((r) => r.addend !== null) : [];
    const width = f.class === 64 ? 8 : 4;
    blobs.forEach((b, i) => {
      const want = dumps[i].slice();
      const dv = new DataView(want.buffer);
      for (const r of relocs) {
        const o = Number(r.offset - b.addr);
        if (o < 0 || o + width > want.length) continue;
        if (width === 8) dv.setBigUint64(o, BigInt.asUintN(64, r.addend!), f.endian === "little");
        else dv.setUint32(o, Number(BigInt.asUintN(32, r.addend!)), f.endian === "little");
      }
      expectSameBytes(ramBytes(vm, b.addr, b.size), want, `${id} segment ${segName.exec(b.name)![2]}`, Number(b.addr));
    });
  });
});
