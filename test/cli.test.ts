/**
 * CLI contract tests for `guest-image` (dist/cli/main.js; `npm test` builds it first).
 *
 * Contract (from the project's issue):
 *   guest-image inspect <file> [--json]
 *   guest-image load --ram <base>:<size> [--ram <base>:<size> …]
 *                    [--kernel <file> [--kernel-addr <addr>] [--kernel-align <n>] [--relocs <file>]]
 *                    [--module <file>@<addr>[:<align>] …] [--dry-run] [--json] [--dump-ram <out>]
 *
 * Every expected value comes from an independent oracle: GNU readelf (via test/helpers/readelf.ts)
 * for the ELF's header and program headers, the raw file bytes (fs.readFileSync) at the offsets
 * readelf reports, and fs.statSync for file sizes. Nothing here imports src/ or dist/.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { readelfHeader, readelfSegments } from "./helpers/readelf.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLI = "dist/cli/main.js";

// Relative paths, exactly as a user would type them from the repo root (the CLI echoes them as names).
const KERNEL = "examples/images/linux";
const INITRD = "examples/images/rootfs.cpio.gz";
const DTB = "examples/images/linux.dtb";

const abs = (p: string) => path.join(ROOT, p);

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function cli(...args: string[]): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: "utf8", timeout: 30_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a command that must succeed with --json and returns the parsed object. */
function cliJson(...args: string[]): any {
  const r = cli(...args);
  expect(r.stderr, `stderr of ${args.join(" ")}`).toBe("");
  expect(r.status, `exit status of ${args.join(" ")}`).toBe(0);
  const lines = r.stdout.split("\n").filter((l) => l !== "");
  expect(lines, "--json prints exactly one line (one object)").toHaveLength(1);
  return JSON.parse(lines[0]);
}

/** Asserts the contract of a failed load / inspect: exit 1, one stderr line, and the JSON error. */
function expectFailure(r: Run, code: string, json = true): { code: string; message: string } {
  expect(r.status, `stderr: ${r.stderr}`).toBe(1);
  const errLines = r.stderr.split("\n").filter((l) => l !== "");
  expect(errLines, `stderr must be exactly one line, got ${JSON.stringify(r.stderr)}`).toHaveLength(1);
  expect(r.stderr.endsWith("\n")).toBe(true);
  expect(errLines[0]).toContain(code);
  if (!json) {
    expect(r.stdout).toBe("");
    return { code, message: "" };
  }
  const outLines = r.stdout.split("\n").filter((l) => l !== "");
  expect(outLines).toHaveLength(1);
  const obj = JSON.parse(outLines[0]);
  expect(Object.keys(obj)).toEqual(["error"]);
  expect(Object.keys(obj.error).sort()).toEqual(["code", "message"]);
  expect(obj.error.code).toBe(code);
  expect(typeof obj.error.message).toBe("string");
  expect(obj.error.message.length).toBeGreaterThan(0);
  return obj.error;
}

const tmpDirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "guest-image-cli-"));
  tmpDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

const hx = (v: bigint | number) => "0x" + BigInt(v).toString(16);
const HEX = /^0x[0-9a-f]+$/;

// ---------------------------------------------------------------------------------------------
// The oracle: readelf's view of the sample kernel, and the raw bytes of every sample file.
// ---------------------------------------------------------------------------------------------

const hdr = readelfHeader(abs(KERNEL));
const segs = readelfSegments(abs(KERNEL));
const loads = segs.filter((s) => s.type === "LOAD" && s.memsz > 0n);
const linkPaddr = loads.reduce((m, s) => (s.paddr < m ? s.paddr : m), loads[0]!.paddr);
const linkEnd = loads.reduce((m, s) => (s.paddr + s.memsz > m ? s.paddr + s.memsz : m), 0n);
const kernelSize = linkEnd - linkPaddr;
const kernelBytes = fs.readFileSync(abs(KERNEL));
const initrdBytes = fs.readFileSync(abs(INITRD));
const dtbBytes = fs.readFileSync(abs(DTB));
const initrdSize = BigInt(fs.statSync(abs(INITRD)).size);
const dtbSize = BigInt(fs.statSync(abs(DTB)).size);

/** readelf's "Machine:" text → the short names the contract uses. */
const MACHINE: Record<string, string> = {
  AArch64: "aarch64",
  "Advanced Micro Devices X86-64": "x86_64",
  "Intel 80386": "i386",
  ARM: "arm",
  "RISC-V": "riscv",
};

interface Region {
  base: bigint;
  size: bigint;
}

/** Writes `bytes` at guest physical `paddr` into a dump laid out as `regions` concatenated in order. */
function put(dump: Buffer, regions: Region[], paddr: bigint, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) {
    const p = paddr + BigInt(done);
    let lin = 0n;
    let hit: Region | undefined;
    for (const r of regions) {
      if (p >= r.base && p < r.base + r.size) {
        hit = r;
        break;
      }
      lin += r.size;
    }
    if (!hit) throw new Error(`test bug: ${hx(p)} is in no region`);
    const n = Math.min(bytes.length - done, Number(hit.base + hit.size - p));
    dump.set(bytes.subarray(done, done + n), Number(lin + (p - hit.base)));
    done += n;
  }
}

/** The RAM dump the contract predicts: each PT_LOAD's file bytes at (paddr + delta), zeros to memsz, raw modules verbatim. */
function expectedDump(regions: Region[], kernelAt: bigint | null, modules: Array<{ bytes: Uint8Array; at: bigint }>): Buffer {
  const dump = Buffer.alloc(Number(regions.reduce((n, r) => n + r.size, 0n)));
  if (kernelAt !== null) {
    const delta = kernelAt - linkPaddr;
    for (const s of loads) {
      // File bytes first; the (memsz − filesz) tail stays zero in the expected buffer.
      put(dump, regions, s.paddr + delta, kernelBytes.subarray(Number(s.offset), Number(s.offset + s.filesz)));
    }
  }
  for (const m of modules) put(dump, regions, m.at, m.bytes);
  return dump;
}

/** null when equal, else a description of the first difference (no 9 MiB diffs in the output). */
function firstDiff(actual: Buffer, expected: Buffer): string | null {
  if (actual.length !== expected.length) return `length ${actual.length} != expected ${expected.length}`;
  if (actual.equals(expected)) return null;
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) return `first difference at dump offset ${hx(i)}: ${actual[i]} != expected ${expected[i]}`;
  }
  return "unreachable";
}

function allZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

describe("oracle sanity (the sample kernel has the shape these tests rely on)", () => {
  it("readelf sees an AArch64 ELF64 with two PT_LOADs, one with a BSS tail", () => {
    expect(hdr.class).toBe("ELF64");
    expect(MACHINE[hdr.machine]).toBe("aarch64");
    expect(loads.length).toBe(2);
    expect(loads.some((s) => s.memsz > s.filesz)).toBe(true);
    expect(segs.length).toBe(hdr.phnum);
    expect(kernelSize).toBeGreaterThan(0n);
  });
});

// ---------------------------------------------------------------------------------------------
// inspect
// ---------------------------------------------------------------------------------------------

describe("guest-image inspect", () => {
  it("--json on the ELF kernel matches readelf -hW / -lW", () => {
    const j = cliJson("inspect", KERNEL, "--json");
    expect(j.format).toBe("elf");
    // README: "plus name and size"
    expect(j.name).toBe(KERNEL);
    expect(j.size).toBe(hx(kernelBytes.length));
    expect(j.machine).toBe("aarch64");
    expect(j.machine).toBe(MACHINE[hdr.machine]);
    expect(j.class).toBe(hdr.class);
    expect(j.endian).toBe(hdr.endian);
    expect(j.entry).toBe(hx(hdr.entry));
    expect(Array.isArray(j.segments)).toBe(true);
    expect(j.segments).toHaveLength(segs.length);
    j.segments.forEach((s: any, i: number) => {
      const o = segs[i]!;
      for (const k of ["offset", "vaddr", "paddr", "filesz", "memsz"] as const) {
        expect(s[k], `segment ${i} ${k}`).toMatch(HEX);
      }
      expect(s).toEqual({
        type: o.type,
        offset: hx(o.offset),
        vaddr: hx(o.vaddr),
        paddr: hx(o.paddr),
        filesz: hx(o.filesz),
        memsz: hx(o.memsz),
      });
    });
  });

  it("--json on the device tree and on the gzip'd initrd names their formats, without segments", () => {
    for (const [file, format] of [
      [DTB, "fdt"],
      [INITRD, "gzip"],
    ] as const) {
      const j = cliJson("inspect", file, "--json");
      expect(j.format).toBe(format);
      for (const k of ["machine", "class", "endian", "entry"]) expect(j, `${file}: key ${k}`).toHaveProperty(k);
      expect(j.segments).toBeUndefined();
      expect(j.name).toBe(file);
      expect(j.size).toBe(hx(fs.statSync(abs(file)).size));
    }
  });

  it("text mode exits 0 and shows the machine, class and entry", () => {
    const r = cli("inspect", KERNEL);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain("aarch64");
    expect(r.stdout).toContain(hdr.class);
    expect(r.stdout).toContain(hx(hdr.entry));
  });

  it("a missing file fails with NOT_FOUND (exit 1, JSON error)", () => {
    const dir = tmpDir();
    expectFailure(cli("inspect", path.join(dir, "no-such-file"), "--json"), "NOT_FOUND");
  });
});

// ---------------------------------------------------------------------------------------------
// load --json
// ---------------------------------------------------------------------------------------------

const STD_LOAD = [
  "load", "--ram", "0x40000000:256M", "--kernel", KERNEL,
  "--module", `${INITRD}@0x4d700000:0x1000`, "--module", `${DTB}@0x4f000000`, "--json",
];

describe("guest-image load --json", () => {
  it("has exactly the contract's shape, with every address and size a lowercase 0x string", () => {
    const j = cliJson(...STD_LOAD);
    expect(Object.keys(j).sort()).toEqual(["kernel", "modules", "placed", "ram"]);

    expect(j.ram).toEqual([{ base: "0x40000000", size: "0x10000000" }]);

    const k = j.kernel;
    expect(Object.keys(k).sort()).toEqual(["alignment", "arch", "entry", "format", "load_paddr", "name", "size"]);
    for (const f of ["load_paddr", "alignment", "size", "entry"]) expect(k[f], `kernel.${f}`).toMatch(HEX);
    expect(k.name).toBe(KERNEL);
    expect(k.format).toBe("elf");
    expect(k.load_paddr).toBe(hx(linkPaddr)); // --kernel-addr omitted: the image's own address
    expect(k.size).toBe(hx(kernelSize)); // highest (paddr+memsz) − lowest paddr of the PT_LOADs
    expect(k.entry).toBe(hx(hdr.entry));
    expect(typeof k.arch).toBe("object");
    expect(k.arch).not.toBeNull();
    expect(k.arch.relocation_offset).toBe("0x0");
    expect(k.arch.machine).toBe("aarch64");
    expect(k.arch.class).toBe(hdr.class);
    expect(k.arch.endian).toBe(hdr.endian);
    expect(k.arch.link_paddr).toBe(hx(linkPaddr));
    expect(k.arch.entry).toBe(hx(hdr.entry));

    expect(j.modules).toHaveLength(2);
    for (const m of j.modules) {
      expect(Object.keys(m).sort()).toEqual(["alignment", "load_paddr", "name", "size"]);
      for (const f of ["load_paddr", "alignment", "size"]) expect(m[f], `module ${m.name} ${f}`).toMatch(HEX);
    }
    expect(j.modules[0]).toEqual({ name: INITRD, load_paddr: "0x4d700000", alignment: "0x1000", size: hx(initrdSize) });
    expect(j.modules[1]).toMatchObject({ name: DTB, load_paddr: "0x4f000000", size: hx(dtbSize) });
    expect(BigInt(j.modules[1].alignment) <= 1n).toBe(true); // no alignment asked for

    expect(j.placed).toHaveLength(3);
    for (const p of j.placed) {
      expect(Object.keys(p).sort()).toEqual(["name", "paddr", "size"]);
      expect(p.paddr).toMatch(HEX);
      expect(p.size).toMatch(HEX);
    }
  });

  it("arch.segments are readelf's PT_LOADs, each with where it went", () => {
    const j = cliJson(...STD_LOAD);
    const as = j.kernel.arch.segments;
    expect(as).toHaveLength(loads.length);
    as.forEach((s: any, i: number) => {
      const o = loads[i]!;
      expect(s).toMatchObject({
        offset: hx(o.offset), vaddr: hx(o.vaddr), paddr: hx(o.paddr), filesz: hx(o.filesz), memsz: hx(o.memsz), load_paddr: hx(o.paddr),
      });
    });
  });

  it("placed is sorted by address and agrees with kernel and modules", () => {
    const j = cliJson(...STD_LOAD);
    const want = [
      { name: j.kernel.name, paddr: j.kernel.load_paddr, size: j.kernel.size },
      ...j.modules.map((m: any) => ({ name: m.name, paddr: m.load_paddr, size: m.size })),
    ].sort((a, b) => (BigInt(a.paddr) < BigInt(b.paddr) ? -1 : 1));
    expect(j.placed).toEqual(want);
    for (let i = 1; i < j.placed.length; i++) {
      const prev = j.placed[i - 1];
      expect(BigInt(prev.paddr) + BigInt(prev.size) <= BigInt(j.placed[i].paddr)).toBe(true);
    }
    expect(j.placed.map((p: any) => p.name)).toEqual([KERNEL, INITRD, DTB]);
  });

  it("without --json the same load exits 0 and lists every image", () => {
    const r = cli(...STD_LOAD.filter((a) => a !== "--json"));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe("");
    for (const name of [KERNEL, INITRD, DTB]) expect(r.stdout).toContain(name);
    expect(() => JSON.parse(r.stdout)).toThrow();
  });

  it("a module address is rounded up to the module's alignment", () => {
    const j = cliJson("load", "--ram", "0x40000000:1M", "--module", `${INITRD}@0x40010001:0x1000`, "--json");
    expect(j.kernel).toBeNull();
    expect(j.modules).toEqual([{ name: INITRD, load_paddr: "0x40011000", alignment: "0x1000", size: hx(initrdSize) }]);
    expect(j.placed).toEqual([{ name: INITRD, paddr: "0x40011000", size: hx(initrdSize) }]);
  });
});

// ---------------------------------------------------------------------------------------------
// --dump-ram
// ---------------------------------------------------------------------------------------------

describe("guest-image load --dump-ram", () => {
  it("writes the regions concatenated in --ram order, with exactly the loaded bytes and zeros elsewhere", () => {
    const dir = tmpDir();
    const out = path.join(dir, "ram.bin");
    // Regions deliberately not in address order: the high one first.
    const regions: Region[] = [
      { base: 0x48000000n, size: 8n << 20n },
      { base: 0x40000000n, size: 1n << 20n },
    ];
    const kernelAt = 0x48100000n;
    const initrdAt = 0x40010000n;
    const dtbAt = 0x48700000n;
    const j = cliJson(
      "load", "--ram", "0x48000000:8M", "--ram", "0x40000000:1M",
      "--kernel", KERNEL, "--kernel-addr", hx(kernelAt),
      "--module", `${INITRD}@${hx(initrdAt)}:0x1000`, "--module", `${DTB}@${hx(dtbAt)}`,
      "--dump-ram", out, "--json",
    );
    expect(j.ram).toEqual([
      { base: "0x48000000", size: "0x800000" },
      { base: "0x40000000", size: "0x100000" },
    ]);
    expect(j.kernel.load_paddr).toBe(hx(kernelAt));
    expect(j.kernel.arch.relocation_offset).toBe(hx(kernelAt - linkPaddr));

    const dump = fs.readFileSync(out);
    expect(dump.length).toBe(9 * 1024 * 1024);
    expect(fs.statSync(out).size).toBe(Number(regions[0]!.size + regions[1]!.size));
    const want = expectedDump(regions, kernelAt, [
      { bytes: initrdBytes, at: initrdAt },
      { bytes: dtbBytes, at: dtbAt },
    ]);
    expect(firstDiff(dump, want)).toBeNull();

    // Spot-check one segment directly against readelf's numbers (independent of put()):
    // region 0 starts the dump, so the kernel's first PT_LOAD sits at (paddr + delta) − 0x48000000.
    const s0 = loads[0]!;
    const at0 = Number(s0.paddr - linkPaddr + kernelAt - regions[0]!.base);
    expect(dump.subarray(at0, at0 + Number(s0.filesz)).equals(kernelBytes.subarray(Number(s0.offset), Number(s0.offset + s0.filesz)))).toBe(true);
    // …and the initrd lives in the second region, after the whole first one.
    const atI = Number(regions[0]!.size + (initrdAt - regions[1]!.base));
    expect(dump.subarray(atI, atI + initrdBytes.length).equals(initrdBytes)).toBe(true);
    // Every BSS tail is zero.
    for (const s of loads) {
      const a = Number(s.paddr - linkPaddr + kernelAt - regions[0]!.base);
      expect(allZero(dump.subarray(a + Number(s.filesz), a + Number(s.memsz)))).toBe(true);
    }
  });

  it("a module may straddle two guest-adjacent regions given in reverse order", () => {
    const dir = tmpDir();
    const out = path.join(dir, "ram.bin");
    const regions: Region[] = [
      { base: 0x40090000n, size: 0x100000n },
      { base: 0x40000000n, size: 0x90000n },
    ];
    const dtbAt = 0x4008ff00n; // [0x4008ff00, +0x31e) crosses 0x40090000
    const kernelAt = 0x40100000n;
    const j = cliJson(
      "load", "--ram", "0x40090000:1M", "--ram", "0x40000000:0x90000",
      "--kernel", KERNEL, "--kernel-addr", hx(kernelAt), "--module", `${DTB}@${hx(dtbAt)}`,
      "--dump-ram", out, "--json",
    );
    expect(j.modules[0].load_paddr).toBe(hx(dtbAt));
    const dump = fs.readFileSync(out);
    expect(firstDiff(dump, expectedDump(regions, kernelAt, [{ bytes: dtbBytes, at: dtbAt }]))).toBeNull();
  });
});

// ---------------------------------------------------------------------------------------------
// addresses, alignment and number syntax
// ---------------------------------------------------------------------------------------------

describe("--kernel-addr, --kernel-align and number syntax", () => {
  it("rounds --kernel-addr up to --kernel-align and reports the relocation", () => {
    const addr = 0x40100001n;
    const align = 0x100000n;
    const load = ((addr + align - 1n) / align) * align; // 0x40200000
    expect(load).toBe(0x40200000n);
    const j = cliJson("load", "--ram", "0x40000000:4M", "--kernel", KERNEL, "--kernel-addr", hx(addr), "--kernel-align", hx(align), "--json");
    const k = j.kernel;
    expect(k.load_paddr).toBe(hx(load));
    expect(k.alignment).toBe(hx(align));
    expect(k.size).toBe(hx(kernelSize));
    expect(k.arch.relocation_offset).toBe(hx(load - linkPaddr));
    expect(k.entry).toBe(hx(hdr.entry + (load - linkPaddr)));
    expect(k.arch.entry).toBe(k.entry);
    k.arch.segments.forEach((s: any, i: number) => expect(s.load_paddr).toBe(hx(loads[i]!.paddr + load - linkPaddr)));
    expect(j.placed).toEqual([{ name: KERNEL, paddr: hx(load), size: hx(kernelSize) }]);
  });

  it("accepts K/M/G suffixes (powers of 1024) and decimal numbers, meaning the same as hex", () => {
    const ref = cliJson("load", "--ram", "0x40000000:0x400000", "--kernel", KERNEL, "--kernel-addr", "0x40100001", "--kernel-align", "0x100000",
      "--module", `${DTB}@0x40300000:0x1000`, "--json");
    const variants = [
      ["--ram", "1G:4M", "--kernel", KERNEL, "--kernel-addr", "1074790401", "--kernel-align", "1M", "--module", `${DTB}@0x40300000:4K`],
      ["--ram", "1073741824:4096K", "--kernel", KERNEL, "--kernel-addr", "0x40100001", "--kernel-align", "1048576", "--module", `${DTB}@1076887552:4096`],
    ];
    for (const v of variants) {
      expect(cliJson("load", ...v, "--json"), v.join(" ")).toEqual(ref);
    }
    expect(ref.ram).toEqual([{ base: "0x40000000", size: "0x400000" }]);
    expect(ref.kernel.load_paddr).toBe("0x40200000");
    expect(ref.modules[0].alignment).toBe("0x1000");
  });

  it("G is 1024^3, also as a size", () => {
    const j = cliJson("load", "--ram", "4G:1G", "--ram", "1G:1M", "--json");
    expect(j.ram).toEqual([
      { base: hx(4n << 30n), size: hx(1n << 30n) },
      { base: "0x40000000", size: "0x100000" },
    ]);
    expect(j.kernel).toBeNull();
    expect(j.modules).toEqual([]);
    expect(j.placed).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// failed loads
// ---------------------------------------------------------------------------------------------

describe("failed loads", () => {
  it("OVERLAP: a module on top of the kernel names both files and changes nothing in RAM", () => {
    const dir = tmpDir();
    const okDump = path.join(dir, "ok.bin");
    const badDump = path.join(dir, "bad.bin");
    const ram = ["--ram", "0x40000000:1M"];
    // The module starts inside the kernel's second PT_LOAD (readelf's numbers).
    const inside = loads[1]!.paddr + 0x10n;
    cliJson("load", ...ram, "--kernel", KERNEL, "--dump-ram", okDump, "--json");
    const r = cli("load", ...ram, "--kernel", KERNEL, "--module", `${DTB}@${hx(inside)}`, "--dump-ram", badDump, "--json");
    const e = expectFailure(r, "OVERLAP");
    expect(e.message).toContain(KERNEL);
    expect(e.message).toContain(DTB);
    expect(r.stderr).toContain(KERNEL);
    expect(r.stderr).toContain(DTB);
    // stdout is exactly the error object
    expect(JSON.parse(r.stdout)).toEqual({ error: { code: "OVERLAP", message: e.message } });

    const ok = fs.readFileSync(okDump);
    const bad = fs.readFileSync(badDump);
    expect(firstDiff(bad, ok)).toBeNull();
    // …and the successful kernel-only dump is what readelf predicts.
    expect(firstDiff(ok, expectedDump([{ base: 0x40000000n, size: 1n << 20n }], linkPaddr, []))).toBeNull();
  });

  it("OVERLAP after earlier modules: the dump keeps the earlier loads and nothing of the failed one", () => {
    const dir = tmpDir();
    const out = path.join(dir, "ram.bin");
    const regions: Region[] = [{ base: 0x40000000n, size: 1n << 20n }];
    const initrdAt = 0x400c0000n;
    // The DTB overlaps the initrd's last byte.
    const dtbAt = initrdAt + initrdSize - 1n;
    const r = cli("load", "--ram", "0x40000000:1M", "--kernel", KERNEL, "--module", `${INITRD}@${hx(initrdAt)}`, "--module", `${DTB}@${hx(dtbAt)}`, "--dump-ram", out);
    const e = expectFailure(r, "OVERLAP", false);
    void e;
    expect(r.stderr).toContain(INITRD);
    expect(r.stderr).toContain(DTB);
    expect(firstDiff(fs.readFileSync(out), expectedDump(regions, linkPaddr, [{ bytes: initrdBytes, at: initrdAt }]))).toBeNull();
  });

  it("OUT_OF_RAM: a kernel that does not fit, and the dump stays all zeros", () => {
    const dir = tmpDir();
    const out = path.join(dir, "ram.bin");
    // RAM ends inside the kernel's image range: [0x40000000, lowest paddr + size − 1).
    const size = linkPaddr - 0x40000000n + kernelSize - 1n;
    const e = expectFailure(cli("load", "--ram", `0x40000000:${hx(size)}`, "--kernel", KERNEL, "--dump-ram", out, "--json"), "OUT_OF_RAM");
    expect(e.message).toContain(KERNEL);
    const dump = fs.readFileSync(out);
    expect(dump.length).toBe(Number(size));
    expect(allZero(dump)).toBe(true);
  });

  it("OUT_OF_RAM: a module in the hole between two regions", () => {
    const dir = tmpDir();
    const out = path.join(dir, "ram.bin");
    const e = expectFailure(
      cli("load", "--ram", "0x40200000:1M", "--ram", "0x40000000:1M", "--module", `${DTB}@0x40180000`, "--dump-ram", out, "--json"),
      "OUT_OF_RAM",
    );
    expect(e.message).toContain(DTB);
    const dump = fs.readFileSync(out);
    expect(dump.length).toBe(2 << 20);
    expect(allZero(dump)).toBe(true);
  });

  it("NOT_FOUND: a missing kernel or module", () => {
    const dir = tmpDir();
    const missing = path.join(dir, "does-not-exist");
    const e1 = expectFailure(cli("load", "--ram", "0x40000000:1M", "--kernel", missing, "--json"), "NOT_FOUND");
    expect(e1.message).toContain(missing);
    const e2 = expectFailure(cli("load", "--ram", "0x40000000:1M", "--module", `${missing}@0x40000000`, "--json"), "NOT_FOUND");
    expect(e2.message).toContain(missing);
    // without --json: nothing on stdout
    expectFailure(cli("load", "--ram", "0x40000000:1M", "--kernel", missing), "NOT_FOUND", false);
  });

  it("BAD_ALIGNMENT: an alignment of 3, for the kernel and for a module", () => {
    expectFailure(cli("load", "--ram", "0x40000000:1M", "--kernel", KERNEL, "--kernel-align", "3", "--json"), "BAD_ALIGNMENT");
    expectFailure(cli("load", "--ram", "0x40000000:1M", "--module", `${DTB}@0x40000000:3`, "--json"), "BAD_ALIGNMENT");
  });

  it("TRUNCATED: an ELF cut in the middle of a segment; the dump is all zeros", () => {
    const dir = tmpDir();
    const cut = path.join(dir, "linux-truncated");
    const last = loads.reduce((a, b) => (b.offset > a.offset ? b : a));
    expect(last.filesz).toBeGreaterThan(1n);
    const at = Number(last.offset + last.filesz / 2n);
    fs.writeFileSync(cut, kernelBytes.subarray(0, at));
    expect(fs.statSync(cut).size).toBe(at);
    const out = path.join(dir, "ram.bin");
    const e = expectFailure(cli("load", "--ram", "0x40000000:1M", "--kernel", cut, "--dump-ram", out, "--json"), "TRUNCATED");
    expect(e.message).toContain(cut);
    const dump = fs.readFileSync(out);
    expect(dump.length).toBe(1 << 20);
    expect(allZero(dump)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// usage errors and help
// ---------------------------------------------------------------------------------------------

describe("usage", () => {
  const cases: Array<[string, string[]]> = [
    ["no --ram", ["load", "--kernel", KERNEL, "--json"]],
    ["bad number 0xZZ (ram base)", ["load", "--ram", "0xZZ:1M", "--json"]],
    ["bad number 0xZZ (kernel address)", ["load", "--ram", "0x40000000:1M", "--kernel", KERNEL, "--kernel-addr", "0xZZ", "--json"]],
    ["--module without @", ["load", "--ram", "0x40000000:1M", "--module", "foo", "--json"]],
    ["unknown option", ["load", "--ram", "0x40000000:1M", "--frobnicate", "--json"]],
    ["unknown command", ["frobnicate", "--json"]],
    ["--ram without a size", ["load", "--ram", "0x40000000", "--json"]],
    ["inspect without a file", ["inspect", "--json"]],
  ];
  for (const [what, args] of cases) {
    it(`${what}: exit 2, usage on stderr, nothing on stdout`, () => {
      const r = cli(...args);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/usage/i);
      expect(r.stderr).toContain("guest-image load --ram");
      expect(r.stderr).toContain("guest-image inspect");
      expect(r.stdout).toBe("");
    });
  }

  it("--help exits 0 and prints the usage", () => {
    const r = cli("--help");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/usage/i);
    expect(r.stdout).toContain("guest-image load --ram");
    expect(r.stdout).toContain("--dump-ram");
  });
});

// ---------------------------------------------------------------------------------------------
// --dry-run
// ---------------------------------------------------------------------------------------------

describe("--dry-run", () => {
  it("reports the same JSON as the real load and writes nothing to RAM", () => {
    const dir = tmpDir();
    const realOut = path.join(dir, "real.bin");
    const dryOut = path.join(dir, "dry.bin");
    const args = [
      "load", "--ram", "0x40000000:1M", "--ram", "0x48000000:1M",
      "--kernel", KERNEL, "--module", `${INITRD}@0x48000000:0x1000`, "--module", `${DTB}@0x400f0000`, "--json",
    ];
    const real = cliJson(...args, "--dump-ram", realOut);
    const dry = cliJson(...args, "--dry-run", "--dump-ram", dryOut);
    expect(dry).toEqual(real);
    const dryDump = fs.readFileSync(dryOut);
    expect(dryDump.length).toBe(2 << 20);
    expect(allZero(dryDump)).toBe(true);
    // …while the real load did write (so the comparison above is not vacuous).
    const regions: Region[] = [
      { base: 0x40000000n, size: 1n << 20n },
      { base: 0x48000000n, size: 1n << 20n },
    ];
    const want = expectedDump(regions, linkPaddr, [
      { bytes: initrdBytes, at: 0x48000000n },
      { bytes: dtbBytes, at: 0x400f0000n },
    ]);
    expect(firstDiff(fs.readFileSync(realOut), want)).toBeNull();
  });

  it("still detects conflicts (OVERLAP) without writing", () => {
    const r = cli("load", "--ram", "0x40000000:1M", "--kernel", KERNEL, "--module", `${DTB}@${hx(linkPaddr)}`, "--dry-run", "--json");
    expectFailure(r, "OVERLAP");
  });
});
