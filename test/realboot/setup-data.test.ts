// Proof by booting (issue 14 §4): the setup_data chain hooked into the zero page reaches the
// kernel. Debian's amd64 bzImage boots from our RAM in QEMU 7.2 (64-bit protocol, no -kernel)
// and its /init lists /sys/kernel/boot_params/setup_data/*/type (arch/x86/kernel/ksysfs.c, one
// directory per node in list order, type printed "0x%x"); the SETUP_RNG_SEED node is consumed
// — arch/x86/kernel/setup.c parse_setup_data zeroes its data and len ("Zero seed for forward
// secrecy") — which we read back from guest RAM with QEMU's monitor (pmemsave) after the
// marker, while a caller node's bytes are read back unchanged.
// Negative control: the same RAM with the zero page's setup_data field (0x250) cleared: the
// kernel lists no node and the seed stays in RAM as we wrote it.
// Oracle for kernel_info: the bytes at the offsets boot.rst gives, read with od, not our parser.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { bootLinux, createVm, fromMap, GuestImageError } from "../../src/node.js";
import type { X86CpuState } from "../../src/boot/cpu-x86.js";
import { inspectFile } from "../../src/inspect.js";
import { bytesFile } from "../../src/sources/source.js";
import { fixture, readFixture } from "../qemu/fixtures.js";
import { markerInitrd } from "./initrd.js";
import { bootX86 } from "./x86-qemu.js";

const MiB = 1024 * 1024;
const MARKER = "GUEST-IMAGE-SETUP-DATA-OK";
const CMDLINE = "console=ttyS0 panic=-1";
const SCRIPT = 'for d in /sys/kernel/boot_params/setup_data/*; do [ -e "$d/type" ] && echo "SETUP-DATA $(basename $d) $(cat $d/type) $(wc -c < $d/data)"; done; echo SETUP-DATA-END';
const CALLER = new TextEncoder().encode("guest-image caller setup_data node\n");
const work = mkdtempSync(join(tmpdir(), "gi-setup-data-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A small device tree compiled by dtc (the reference compiler), for the SETUP_DTB node. */
function tinyDtb(): Uint8Array {
  const src = join(work, "x86.dts");
  writeFileSync(src, '/dts-v1/;\n/ { #address-cells = <1>; #size-cells = <1>; compatible = "guest-image,x86-setup-data-test"; };\n');
  const r = spawnSync("dtc", ["-I", "dts", "-O", "dtb", "-o", join(work, "x86.dtb"), src], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return new Uint8Array(readFileSync(join(work, "x86.dtb")));
}

async function boot(opts: { seed?: number } = {}) {
  const vm = await createVm({
    ram: [{ base: 0, size: 256 * MiB }],
    files: fromMap({ bzImage: readFixture("amd64/bzImage"), initrd: markerInitrd("amd64", { marker: MARKER, script: SCRIPT }) }),
  });
  const b = await bootLinux(vm, {
    arch: "x86_64", kernel: "bzImage", initrd: "initrd", cmdline: CMDLINE, dtb: tinyDtb(), seed: opts.seed,
    setupData: { rngSeed: true, entries: [{ type: 5, data: CALLER }] },
  });
  return { vm, boot: b, cpu: b.cpu as X86CpuState };
}

const listed = (serial: string) => [...serial.matchAll(/^SETUP-DATA (\d+) (0x[0-9a-f]+) (\d+)\r?$/gm)].map((m) => ({ index: Number(m[1]), type: Number(m[2]), size: Number(m[3]) }));

describe.concurrent("x86 setup_data chain", () => {
  it("the booted kernel lists SETUP_DTB, SETUP_RNG_SEED and the caller's node, consumes the seed and leaves the caller's bytes", async () => {
    const { vm, boot: b, cpu } = await boot();
    const nodes = b.setupData!.nodes;
    expect(nodes.map((n) => n.type)).toEqual([2, 9, 5]);
    const seedNode = nodes[1];
    const before = vm.ram.read(seedNode.paddr, 16 + seedNode.len);
    expect(new DataView(before.buffer, before.byteOffset).getUint32(12, true)).toBe(32);
    expect(before.subarray(16).some((x) => x !== 0)).toBe(true);
    // The zero page's setup_data field (boot.rst 0x250) points at the first node.
    const zp = vm.ram.read(b.zeroPage!.paddr, 4096);
    expect(new DataView(zp.buffer, zp.byteOffset).getBigUint64(0x250, true)).toBe(BigInt(nodes[0].paddr));
    const pieces = vm.placed().map((p) => ({ paddr: p.paddr, bytes: vm.ram.read(p.paddr, p.size) }));
    const callerNode = nodes[2];
    const r = await bootX86({ cpu, pieces, marker: MARKER, timeoutMs: 200_000, serialFile: true, readBack: [{ paddr: seedNode.paddr, size: 16 + 32 }, { paddr: callerNode.paddr, size: 16 + CALLER.length }] });
    if (!r.marker) throw new Error(`no marker; serial tail:\n${r.serial.slice(-3000)}`);
    // wc -c of sysfs "data" is the node's len: the seed's was zeroed by the kernel before sysfs came up.
    expect(listed(r.serial)).toEqual([{ index: 0, type: 2, size: nodes[0].len }, { index: 1, type: 9, size: 0 }, { index: 2, type: 5, size: CALLER.length }]);
    const [seedAfter, callerAfter] = r.memory;
    expect(seedAfter.subarray(0, 8)).toEqual(before.subarray(0, 8)); // next pointer kept
    expect(new DataView(seedAfter.buffer, seedAfter.byteOffset).getUint32(8, true)).toBe(9); // type kept
    expect(new DataView(seedAfter.buffer, seedAfter.byteOffset).getUint32(12, true)).toBe(0); // len zeroed
    expect([...seedAfter.subarray(16, 48)].every((x) => x === 0)).toBe(true); // seed zeroed
    expect(callerAfter.subarray(16)).toEqual(CALLER);
  }, 600_000);

  it("negative control: setup_data field cleared in the zero page: the kernel lists nothing and the seed stays", async () => {
    const { vm, boot: b, cpu } = await boot();
    const seedNode = b.setupData!.nodes[1];
    const before = vm.ram.read(seedNode.paddr, 48).slice();
    const pieces = vm.placed().map((p) => {
      const bytes = vm.ram.read(p.paddr, p.size).slice();
      if (p.paddr === b.zeroPage!.paddr) bytes.fill(0, 0x250, 0x258);
      return { paddr: p.paddr, bytes };
    });
    const r = await bootX86({ cpu, pieces, marker: MARKER, timeoutMs: 200_000, serialFile: true, readBack: [{ paddr: seedNode.paddr, size: 48 }] });
    if (!r.marker) throw new Error(`no marker; serial tail:\n${r.serial.slice(-3000)}`);
    expect(r.serial).toMatch(/^SETUP-DATA-END/m);
    expect(listed(r.serial)).toEqual([]);
    expect(r.memory[0]).toEqual(before);
  }, 600_000);

  it("an e820 map of more than 128 entries: the rest go in SETUP_E820_EXT, and the kernel prints them as its extended map", async () => {
    // 70 reserved pages scattered through RAM: 2 entries each, ~143 in all.
    const reserved = Array.from({ length: 70 }, (_, i) => ({ base: 0x8000000 + i * 0x10000, size: 0x1000 }));
    const vm = await createVm({
      ram: [{ base: 0, size: 256 * MiB }],
      files: fromMap({ bzImage: readFixture("amd64/bzImage"), initrd: markerInitrd("amd64", { marker: MARKER }) }),
    });
    const b = await bootLinux(vm, { arch: "x86_64", kernel: "bzImage", initrd: "initrd", cmdline: CMDLINE, reserved });
    const ext = b.setupData!.nodes.find((n) => n.type === 1)!;
    expect(ext.len % 20).toBe(0);
    const raw = vm.ram.read(ext.paddr + 16, ext.len);
    const dv = new DataView(raw.buffer, raw.byteOffset);
    const mine = Array.from({ length: ext.len / 20 }, (_, i) => {
      const addr = dv.getBigUint64(i * 20, true);
      const size = dv.getBigUint64(i * 20 + 8, true);
      return `${addr.toString(16).padStart(16, "0")}-${(addr + size - 1n).toString(16).padStart(16, "0")} ${dv.getUint32(i * 20 + 16, true) === 1 ? "usable" : "reserved"}`;
    });
    const zp = vm.ram.read(b.zeroPage!.paddr, 4096);
    expect(zp[0x1e8]).toBe(128); // e820_entries: the zero page is full
    const pieces = vm.placed().map((p) => ({ paddr: p.paddr, bytes: vm.ram.read(p.paddr, p.size) }));
    const r = await bootX86({ cpu: b.cpu as X86CpuState, pieces, marker: MARKER, timeoutMs: 200_000, serialFile: true });
    if (!r.marker) throw new Error(`no marker; serial tail:\n${r.serial.slice(-3000)}`);
    // arch/x86/kernel/e820.c e820__memory_setup_extended: "extended physical RAM map:", then e820__print_table("extended").
    const printed = [...r.serial.matchAll(/extended: \[mem 0x([0-9a-f]+)-0x([0-9a-f]+)\] (\w+)/g)].map((m) => `${m[1]}-${m[2]} ${m[3]}`);
    expect(printed.length).toBeGreaterThan(128);
    for (const e of mine) expect(printed).toContain(e);
  }, 600_000);

  it("the seed is fresh every boot and reproducible with `seed`", async () => {
    const seedOf = async (seed?: number) => {
      const { vm, boot: b } = await boot({ seed });
      const n = b.setupData!.nodes[1];
      return vm.ram.read(n.paddr + 16, 32).slice();
    };
    const [a, b2, c, d] = [await seedOf(), await seedOf(), await seedOf(7), await seedOf(7)];
    expect(a).not.toEqual(b2);
    expect(c).toEqual(d);
    expect(c).not.toEqual(await seedOf(8));
  }, 120_000);

  it("kernel_info: inspect reports setup_type_max as the bytes at setup_sects/kernel_info_offset say (od), and a type above it is refused, changing nothing", async () => {
    const path = fixture("amd64/bzImage");
    const od = (off: number, n: number) => {
      const r = spawnSync("od", ["-An", "-tx1", "-v", "-j", String(off), "-N", String(n), path], { encoding: "utf8" });
      return r.stdout.trim().split(/\s+/).map((x) => parseInt(x, 16));
    };
    const le32 = (b: number[]) => (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
    // boot.rst: setup_sects at 0x1F1 (0 means 4); kernel_info_offset at 0x268, from the protected-mode code at (setup_sects + 1) × 512.
    const setupSects = od(0x1f1, 1)[0] || 4;
    const at = (setupSects + 1) * 512 + le32(od(0x268, 4));
    const ki = od(at, 16);
    expect(String.fromCharCode(...ki.slice(0, 4))).toBe("LToP");
    const info = await inspectFile(bytesFile("bzImage", readFixture("amd64/bzImage")));
    const k = info.kernel_info as { setup_type_max: number; size: number; size_total: number };
    expect(k.setup_type_max).toBe(le32(ki.slice(12, 16)));
    expect(k.size).toBe(le32(ki.slice(4, 8)));
    expect(k.size_total).toBe(le32(ki.slice(8, 12)));

    const vm = await createVm({ ram: [{ base: 0, size: 256 * MiB }], files: fromMap({ bzImage: readFixture("amd64/bzImage") }) });
    const tooHigh = (k.setup_type_max & 0x7fffffff) + 1;
    const e = await bootLinux(vm, { arch: "x86_64", kernel: "bzImage", cmdline: CMDLINE, setupData: { entries: [{ type: tooHigh, data: CALLER }] } }).catch((x) => x);
    expect(e).toBeInstanceOf(GuestImageError);
    expect(e.code).toBe("UNSUPPORTED");
    expect(e.field).toBe("setup_type_max");
    expect(vm.placed()).toEqual([]);
  }, 120_000);
});
