/**
 * vm.findFree (automatic placement) and measured boot (src/measure.ts, the vm.ts hooks).
 * Oracles: a brute-force scan of every aligned start for findFree; `sha256sum` / `openssl dgst`
 * for digests, of the file for a raw module and of the RAM range rebuilt from readelf's program
 * headers for an ELF.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { GuestImageError } from "../src/errors.js";
import { fromMap } from "../src/sources/memory.js";
import { createVm, type Vm } from "../src/vm.js";
import { readelfSegments } from "./helpers/readelf.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const KERNEL = path.join(ROOT, "examples/images/linux");
const INITRD = path.join(ROOT, "examples/images/rootfs.cpio.gz");
const DTB = path.join(ROOT, "examples/images/linux.dtb");
const read = (p: string) => new Uint8Array(fs.readFileSync(p));

function sha256sum(bytes: Uint8Array): string {
  const r = spawnSync("sha256sum", ["-b", "-"], { input: bytes, encoding: "utf8" });
  expect(r.status).toBe(0);
  return r.stdout.split(" ")[0];
}
function opensslDgst(file: string): string {
  const r = spawnSync("openssl", ["dgst", "-sha256", "-r", file], { encoding: "utf8" });
  expect(r.status).toBe(0);
  return r.stdout.split(" ")[0];
}

async function expectCode(p: () => unknown, code: string, re?: RegExp): Promise<GuestImageError> {
  try {
    await p();
  } catch (e) {
    expect(e).toBeInstanceOf(GuestImageError);
    expect((e as GuestImageError).code).toBe(code);
    if (re) expect((e as GuestImageError).message).toMatch(re);
    return e as GuestImageError;
  }
  throw new Error(`expected ${code}`);
}

// ── findFree ──

/** Every aligned start in RAM, checked byte range by byte range against RAM and the ledger. */
function bruteForce(vm: Vm, size: number, align: number, min: number, max: number, from: "top" | "bottom"): number | undefined {
  const regions = [...vm.ram.regions].sort((a, b) => a.base - b.base);
  const inRam = (a: number, n: number) => {
    // [a, a+n) covered by regions with no gap
    let q = a;
    for (;;) {
      const r = regions.find((x) => x.base <= q && q < x.base + x.size);
      if (!r) return false;
      q = r.base + r.size;
      if (q >= a + n) return true;
    }
  };
  const placed = vm.placed();
  const free = (a: number) => placed.every((p) => p.size === 0 || a + size <= p.paddr || p.paddr + p.size <= a);
  const lo = Math.min(...regions.map((r) => r.base));
  const hi = Math.max(...regions.map((r) => r.base + r.size));
  const starts: number[] = [];
  for (let a = Math.ceil(Math.max(lo, min) / align) * align; a + size <= Math.min(hi, max); a += align) starts.push(a);
  if (from === "top") starts.reverse();
  return starts.find((a) => inRam(a, size) && free(a));
}

describe("vm.findFree", () => {
  it("top-down and bottom-up, around placed images, in a RAM with a hole and two adjacent regions", async () => {
    const vm = await createVm({ ram: [{ base: 0x10000, size: 0x10000 }, { base: 0x40000, size: 0x8000 }, { base: 0x48000, size: 0x8000 }], files: fromMap({ a: new Uint8Array(0x3000), b: new Uint8Array(0x100) }) });
    expect(vm.findFree(0x1000)).toBe(0x4f000); // highest page
    expect(vm.findFree(0x1000, { from: "bottom" })).toBe(0x10000);
    expect(vm.findFree(0x9000, { align: 0x1000 })).toBe(0x47000); // spans the two adjacent regions
    await vm.loadModule("a", { at: 0x4d000 });
    expect(vm.findFree(0x1000)).toBe(0x4c000);
    expect(vm.findFree(0x3000, { max: 0x4d000 })).toBe(0x4a000);
    // above min 0x4c800 the only free page-aligned start would be 0x4c000 (< min): none
    await expectCode(() => vm.findFree(0x1000, { min: 0x4c800 }), "OUT_OF_RAM");
    expect(vm.findFree(0x100, { align: 0x100, from: "bottom", min: 0x4c000 })).toBe(0x4c000);
    await expectCode(() => vm.findFree(0x100, { align: 0x100, from: "bottom", min: 0x4d000 }), "OUT_OF_RAM");
    expect(vm.findFree(0x10000, { align: 0x10000 })).toBe(0x10000); // only the first region fits it aligned
    await expectCode(() => vm.findFree(0x11000), "OUT_OF_RAM", /no free range of 0x11000 bytes.*"a" \[0x4d000, 0x50000\)/);
    // findFree reserves nothing: asking twice gives the same answer
    expect(vm.findFree(0x1000)).toBe(vm.findFree(0x1000));
  });

  it("argument checks", async () => {
    const vm = await createVm({ ram: [{ base: 0, size: 0x10000 }] });
    await expectCode(() => vm.findFree(0), "BAD_ARGUMENT", /size/);
    await expectCode(() => vm.findFree(1.5), "BAD_ARGUMENT");
    await expectCode(() => vm.findFree(0x100, { align: 3 }), "BAD_ALIGNMENT");
    await expectCode(() => vm.findFree(0x100, { min: -1 }), "BAD_ARGUMENT");
    await expectCode(() => vm.findFree(0x100, { from: "middle" as never }), "BAD_ARGUMENT");
    await expectCode(() => vm.findFree(0x100, { min: 0x8000, max: 0x8080 }), "OUT_OF_RAM");
  });

  it("agrees with a brute-force scan on 400 random RAM maps and ledgers", async () => {
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
    for (let round = 0; round < 400; round++) {
      const ram = [];
      let base = rnd(4) * 0x1000;
      for (let i = 0, k = 1 + rnd(3); i < k; i++) {
        const size = (1 + rnd(16)) * 0x1000;
        ram.push({ base, size });
        base += size + (rnd(2) ? 0 : (1 + rnd(4)) * 0x1000);
      }
      const files: Record<string, Uint8Array> = {};
      const vm = await createVm({ ram, files: fromMap(files) });
      for (let i = 0, k = rnd(5); i < k; i++) {
        const size = (1 + rnd(8)) * 0x400;
        const at = ram[rnd(ram.length)].base + rnd(16) * 0x400;
        await vm.place(`p${i}`, new Uint8Array(size), { at }).catch(() => undefined);
      }
      const size = (1 + rnd(12)) * 0x400;
      const align = [1, 0x400, 0x1000, 0x2000][rnd(4)];
      const min = rnd(3) ? 0 : rnd(16) * 0x1000;
      const max = rnd(3) ? Number.MAX_SAFE_INTEGER : rnd(40) * 0x1000;
      for (const from of ["top", "bottom"] as const) {
        const want = bruteForce(vm, size, align, min, max, from);
        let got: number | undefined;
        try {
          got = vm.findFree(size, { align, min, max: max === Number.MAX_SAFE_INTEGER ? undefined : max, from });
        } catch (e) {
          expect((e as GuestImageError).code).toBe("OUT_OF_RAM");
        }
        expect(got, `round ${round} ${from} size ${size} align ${align} min ${min} max ${max} ram ${JSON.stringify(ram)} placed ${JSON.stringify(vm.placed())}`).toBe(want);
      }
    }
  });
});

describe("automatic placement (auto)", () => {
  it("loadModule and place without an address go to findFree's range", async () => {
    const vm = await createVm({ ram: [{ base: 0x40000000, size: 0x100000 }], files: fromMap({ initrd: read(INITRD), dtb: read(DTB) }) });
    const i = await vm.loadModule("initrd", { auto: true });
    expect(i.paddr).toBe(0x40100000 - 0x1000); // the highest page (the file is < 4 KiB)
    const d = await vm.loadModule("dtb", { auto: { from: "bottom", align: 8 } });
    expect(d.paddr).toBe(0x40000000);
    expect(d.format).toBe("fdt");
    const p = await vm.place("zp", new Uint8Array(0x1000), { auto: { from: "top" } });
    expect(p.paddr).toBe(0x40100000 - 0x2000);
    expect(p.format).toBe("bytes");
    const q = await vm.place("x", new Uint8Array(16), { auto: true, align: 0x10000, format: "cmdline" });
    expect(q.paddr).toBe(0x400f0000); // highest 64 KiB boundary below the page at 0x400fe000
    expect(q.format).toBe("cmdline");
    // No address and no options at all: the same automatic placement (the highest free page).
    const r = await vm.place("y", new Uint8Array(1));
    expect(r.paddr).toBe(0x400fd000);
    await expectCode(() => vm.place("y", new Uint8Array(0x200000), { auto: true }), "OUT_OF_RAM");
  });
});

// ── measured boot ──

describe("measured boot", () => {
  it("off by default: no event log, loads unchanged", async () => {
    const vm = await createVm({ ram: [{ base: 0x40000000, size: 0x10000000 }], files: fromMap({ initrd: read(INITRD) }) });
    expect(vm.eventLog).toBeUndefined();
    await vm.loadModule("initrd", { at: 0x48000000 });
    expect(vm.measurements()).toEqual([]);
  });

  for (const impl of ["WebCrypto (main entry)", "node:crypto (Node entry)"]) {
    it(`${impl}: raw module = sha256sum of the file; ELF = sha256 of its RAM range rebuilt from readelf; DTB = openssl dgst`, async () => {
      if (impl.startsWith("node")) await import("../src/node.js"); // installs node:crypto (src/measure-node.ts)
      const vm = await createVm({ ram: [{ base: 0x40000000, size: 0x10000000 }], files: fromMap({ kernel: read(KERNEL), initrd: read(INITRD), dtb: read(DTB) }), measure: true });
      const k = await vm.loadKernel("kernel");
      const i = await vm.loadModule("initrd", { at: 0x4d700000, align: 0x1000 });
      const d = await vm.loadModule("dtb", { at: 0x4f000000 });
      await vm.loadModule("initrd", { at: 0x4e000000, dryRun: true });
      // ELF: lowest p_paddr to highest p_paddr + p_memsz, file bytes at their p_paddr, the rest zero.
      const segs = readelfSegments(KERNEL).filter((s) => s.type === "LOAD" && s.memsz > 0n);
      const lo = Number(segs.reduce((m, s) => (s.paddr < m ? s.paddr : m), segs[0].paddr));
      const hi = Number(segs.reduce((m, s) => (s.paddr + s.memsz > m ? s.paddr + s.memsz : m), 0n));
      const elfRange = new Uint8Array(hi - lo);
      const file = read(KERNEL);
      for (const s of segs) elfRange.set(file.subarray(Number(s.offset), Number(s.offset + s.filesz)), Number(s.paddr) - lo);
      const ev = vm.measurements();
      expect(ev).toEqual([
        { index: 0, name: "kernel", format: "elf", paddr: lo, size: hi - lo, digest: sha256sum(elfRange) },
        { index: 1, name: "initrd", format: "gzip", paddr: 0x4d700000, size: fs.statSync(INITRD).size, digest: sha256sum(read(INITRD)) },
        { index: 2, name: "dtb", format: "fdt", paddr: 0x4f000000, size: fs.statSync(DTB).size, digest: opensslDgst(DTB) },
      ]);
      expect([k.paddr, i.paddr, d.paddr]).toEqual([lo, 0x4d700000, 0x4f000000]);
      expect(JSON.parse(JSON.stringify(vm.eventLog))).toEqual({ hash: "sha256", events: ev });
    });
  }

  it("placed bytes, an image spanning two RAM regions, and a failed load (not measured)", async () => {
    const bytes = new Uint8Array(0x3000).map((_, j) => (j * 7) & 0xff);
    const vm = await createVm({ ram: [{ base: 0x1000, size: 0x2000 }, { base: 0x3000, size: 0x2000 }], files: fromMap({ big: bytes }), measure: true });
    await vm.place("zero-page", bytes.subarray(0, 0x100), { at: 0x1000, format: "boot_params" });
    await vm.loadModule("big", { at: 0x1800 }); // [0x1800, 0x4800): two regions
    await expectCode(() => vm.loadModule("big", { at: 0x2000 }), "OVERLAP");
    expect(vm.measurements().map((e) => [e.index, e.name, e.format, e.digest])).toEqual([
      [0, "zero-page", "boot_params", sha256sum(bytes.subarray(0, 0x100))],
      [1, "big", "raw", sha256sum(bytes)],
    ]);
  });
});

describe("CLI load --measure", () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, ["dist/cli/main.js", ...args], { cwd: ROOT, encoding: "utf8" });
  const base = ["load", "--ram", "0x40000000:256M", "--kernel", "examples/images/linux", "--module", "examples/images/rootfs.cpio.gz@0x4d700000:0x1000", "--json"];
  it("adds an events key only with --measure; everything else is the same", () => {
    const plain = cli(...base);
    expect(plain.status, plain.stderr).toBe(0);
    const measured = cli(...base, "--measure");
    expect(measured.status, measured.stderr).toBe(0);
    const a = JSON.parse(plain.stdout);
    const b = JSON.parse(measured.stdout);
    expect("events" in a).toBe(false);
    const { events, ...rest } = b;
    expect(rest).toEqual(a);
    expect(events[1]).toEqual({ index: 1, name: "examples/images/rootfs.cpio.gz", format: "gzip", paddr: "0x4d700000", size: `0x${fs.statSync(INITRD).size.toString(16)}`, digest: sha256sum(read(INITRD)) });
    expect(events[0].name).toBe("examples/images/linux");
    const text = cli(...base.filter((x) => x !== "--json"), "--measure");
    expect(text.stdout).toContain(sha256sum(read(INITRD)));
  });
});
