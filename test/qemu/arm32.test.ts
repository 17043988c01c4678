// Conformance against QEMU 7.2 (qemu-system-arm -M virt, hw/arm/boot.c) on Debian 12's armhf
// armmp zImage and a uImage wrapping it (scripts/fetch-fixtures.sh).
//
// Difference: QEMU 7.2 does not parse the zImage header and loads any non-ELF, non-uImage
// 32-bit kernel raw at RAM base + 0x10000 (KERNEL_LOAD_ADDR). Our rule for a
// position-independent zImage (start 0) is "at B" when an address is given, else RAM base +
// 0x8000 (booting.rst's convention). Loaded at QEMU's address, the bytes are the same.
import { describe, expect, it } from "vitest";
import { runQemu, romNamed, type RomBlob } from "../helpers/qemu.js";
import { be32, expectSameBytes, fixture, fixtureVm, hex, le32, ramBytes, readFixture, requireFormat } from "./fixtures.js";

const MiB = 0x100000;
const RAM = { base: 0x4000_0000, size: 256 * MiB };

async function capture(kernel: string, ranges: (roms: RomBlob[]) => Array<[bigint, number]>) {
  return runQemu({ arch: "arm", args: ["-M", "virt", "-cpu", "cortex-a15", "-m", "256M", "-kernel", fixture(kernel)] }, async (q) => {
    const roms = await q.roms();
    const boot = romNamed(roms, "bootloader");
    expect(boot.addr).toBe(BigInt(RAM.base));
    const stub = await q.read(boot.addr, boot.size);
    // hw/arm/boot.c bootloader[]: mov r0,#0; ldr r1,[pc,#4]; ldr r2,[pc,#4]; ldr pc,[pc,#4];
    // then the literals board id (0xffffffff: DT boot), dtb address, entry.
    expect([...Array(4)].map((_, i) => hex(le32(stub, 4 * i)))).toEqual(["0xe3a00000", "0xe59f1004", "0xe59f2004", "0xe59ff004"]);
    const dumps: Uint8Array[] = [];
    for (const [a, s] of ranges(roms)) dumps.push(await q.read(a, s));
    return { roms, dumps, stubEntry: le32(stub, 24) };
  });
}

describe.concurrent("ARM zImage (Debian 12 linux-image-armmp)", () => {
  it("QEMU loads it raw at RAM base + 0x10000; ours at that address gives the same bytes and entry", async () => {
    requireFormat("zimage");
    const name = "armhf/zImage";
    const file = readFixture(name);
    expect(hex(le32(file, 0x24)), "zImage magic").toBe("0x16f2818");
    expect(le32(file, 0x28), "start (0: position independent)").toBe(0);
    const q = await capture(name, (roms) => [[romNamed(roms, name).addr, file.length]]);
    const rom = romNamed(q.roms, name);
    expect(hex(rom.addr)).toBe(hex(RAM.base + 0x10000));
    expect(rom.size).toBe(file.length);
    expect(hex(q.stubEntry)).toBe(hex(rom.addr));
    expectSameBytes(q.dumps[0], file, "QEMU's zImage copy vs the file");

    const vm = await fixtureVm(RAM);
    const k = await vm.loadKernel(name, { at: Number(rom.addr) });
    expect(k.format).toBe("zimage");
    expect(hex(k.paddr)).toBe(hex(rom.addr));
    expect(hex(k.entry)).toBe(hex(q.stubEntry));
    expect(k.size).toBe(file.length);
    expectSameBytes(ramBytes(vm, rom.addr, file.length), q.dumps[0], "zImage", Number(rom.addr));
  });

  it("default placement: booting.rst's RAM base + 0x8000, where QEMU uses + 0x10000", async () => {
    requireFormat("zimage");
    const vm = await fixtureVm(RAM);
    const k = await vm.loadKernel("armhf/zImage");
    expect(hex(k.paddr)).toBe(hex(RAM.base + 0x8000));
    const at = await (await fixtureVm(RAM)).loadKernel("armhf/zImage", { at: RAM.base });
    expect(hex(at.paddr)).toBe(hex(RAM.base)); // start 0 ⇒ at B
  });
});

describe.concurrent("ARM uImage wrapping the zImage (mkimage -A arm -T kernel -C none)", () => {
  it("payload at ih_load, entry ih_ep, as QEMU", async () => {
    requireFormat("uimage");
    const name = "armhf/uImage";
    const file = readFixture(name);
    expect(be32(file, 0)).toBe(0x27051956);
    const load = be32(file, 0x10);
    const ep = be32(file, 0x14);
    const size = be32(file, 0x0c);
    const q = await capture(name, (roms) => [[romNamed(roms, name).addr, size]]);
    const rom = romNamed(q.roms, name);
    expect(hex(rom.addr)).toBe(hex(load));
    expect(hex(q.stubEntry)).toBe(hex(ep));
    expectSameBytes(q.dumps[0], file.subarray(64), "QEMU's copy vs the uImage payload");
    const vm = await fixtureVm(RAM);
    const k = await vm.loadKernel(name);
    expect(k.format).toBe("uimage");
    expect(hex(k.paddr)).toBe(hex(rom.addr));
    expect(hex(k.entry)).toBe(hex(q.stubEntry));
    expectSameBytes(ramBytes(vm, rom.addr, size), q.dumps[0], "uImage payload", Number(rom.addr));
  });
});
