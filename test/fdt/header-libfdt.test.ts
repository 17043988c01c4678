/**
 * One device tree header check on every path, and it is libfdt's. Oracles, run on the very
 * bytes we judge:
 *  - libfdt's own `fdt_check_header` (Debian libfdt1, which device-tree-compiler depends on),
 *    called through python3's ctypes on an 8-byte-aligned copy of each blob;
 *  - `fdtget` (device-tree-compiler), whose header probe (libfdt fdt_ro_probe_) refuses bad
 *    magic, bad versions and totalsize > INT_MAX before it reads anything.
 * Inputs: trees compiled by `dtc` (versions 2, 3, 16, 17), then one header field at a time set
 * to each edge libfdt's checks draw (libfdt/fdt.c fdt_check_header, check_off_, check_block_).
 * Paths under test: a DTB loaded as a module (src/formats/fdt.ts) and bootLinux's tree reader
 * (src/fdt/parse.ts, which bootLinux calls on its `dtb`).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parseFdt } from "../../src/fdt/index.js";
import { GuestImageError } from "../../src/node.js";
import { expectRefused, vmWith, RAM_BASE } from "../helpers/vm.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "guest-image-fdthdr-"));

function dtc(version: number): Uint8Array {
  const src = path.join(tmp, `v${version}.dts`);
  fs.writeFileSync(src, `/dts-v1/;\n/memreserve/ 0x1000 0x1000;\n/ { compatible = "test,hdr"; model = "edge"; chosen { bootargs = "x"; }; };\n`);
  const r = spawnSync("dtc", ["-q", "-I", "dts", "-O", "dtb", "-V", String(version), src], { encoding: "buffer" });
  if (r.status !== 0) throw new Error(`dtc -V ${version} failed: ${r.stderr.toString()}`);
  return new Uint8Array(r.stdout);
}

const FIELDS = ["magic", "totalsize", "off_dt_struct", "off_dt_strings", "off_mem_rsvmap", "version", "last_comp_version", "boot_cpuid_phys", "size_dt_strings", "size_dt_struct"] as const;
type Field = (typeof FIELDS)[number];
const get = (b: Uint8Array, f: Field) => new DataView(b.buffer, b.byteOffset).getUint32(FIELDS.indexOf(f) * 4, false);
function set(b: Uint8Array, over: Partial<Record<Field, number>>, extra = 0): Uint8Array {
  const out = new Uint8Array(b.length + extra);
  out.set(b);
  const dv = new DataView(out.buffer);
  for (const [f, v] of Object.entries(over)) dv.setUint32(FIELDS.indexOf(f as Field) * 4, v >>> 0, false);
  return out;
}

interface Case {
  what: string;
  bytes: Uint8Array;
}

const V17 = dtc(17);
const V16 = dtc(16);
const V3 = dtc(3);
const V2 = dtc(2);
const L = V17.length;
const S = get(V17, "off_dt_struct"), SS = get(V17, "size_dt_struct");
const T = get(V17, "off_dt_strings"), TS = get(V17, "size_dt_strings");

const cases: Case[] = [
  { what: "dtc's version 17 tree", bytes: V17 },
  { what: "dtc's version 16 tree", bytes: V16 },
  { what: "dtc's version 3 tree", bytes: V3 },
  { what: "dtc's version 2 tree", bytes: V2 },
  { what: "file longer than totalsize", bytes: set(V17, {}, 64) },
  { what: "bad magic", bytes: set(V17, { magic: 0xd00dfeee }) },
  { what: "version 1", bytes: set(V17, { version: 1, last_comp_version: 1 }) },
  { what: "version 0", bytes: set(V17, { version: 0, last_comp_version: 0 }) },
  { what: "version 2 header on a v17 body", bytes: set(V17, { version: 2, last_comp_version: 2 }) },
  { what: "version 15", bytes: set(V17, { version: 15, last_comp_version: 2 }) },
  { what: "version 18, last_comp_version 16", bytes: set(V17, { version: 18 }) },
  { what: "version 0xffffffff, last_comp_version 16", bytes: set(V17, { version: 0xffffffff }) },
  { what: "last_comp_version 17", bytes: set(V17, { last_comp_version: 17 }) },
  { what: "last_comp_version 18", bytes: set(V17, { version: 18, last_comp_version: 18 }) },
  { what: "last_comp_version 0", bytes: set(V17, { last_comp_version: 0 }) },
  { what: "version 16 below last_comp_version 17", bytes: set(V17, { version: 16, last_comp_version: 17 }) },
  { what: "totalsize 0", bytes: set(V17, { totalsize: 0 }) },
  { what: "totalsize 39 (one short of the v17 header)", bytes: set(V17, { totalsize: 39 }) },
  { what: "totalsize 0x80000000 (> INT_MAX)", bytes: set(V17, { totalsize: 0x80000000 }) },
  { what: "totalsize one byte short of the strings block's end", bytes: set(V17, { totalsize: L - 1 }) },
  { what: "totalsize one past the file", bytes: set(V17, { totalsize: L + 1 }) },
  { what: "off_mem_rsvmap 39 (inside the v17 header)", bytes: set(V17, { off_mem_rsvmap: 39 }) },
  { what: "off_mem_rsvmap 36 on a version 16 header", bytes: set(V16, { off_mem_rsvmap: 36 }) },
  { what: "off_mem_rsvmap 35 on a version 16 header", bytes: set(V16, { off_mem_rsvmap: 35 }) },
  { what: "off_mem_rsvmap = totalsize", bytes: set(V17, { off_mem_rsvmap: L }) },
  { what: "off_mem_rsvmap = totalsize + 1", bytes: set(V17, { off_mem_rsvmap: L + 1 }) },
  { what: "off_mem_rsvmap not 8-aligned", bytes: set(V17, { off_mem_rsvmap: 44 }) },
  { what: "off_dt_struct 39", bytes: set(V17, { off_dt_struct: 39 }) },
  { what: "off_dt_struct not 4-aligned", bytes: set(V17, { off_dt_struct: S + 1 }) },
  { what: "structure block ending at totalsize", bytes: set(V17, { size_dt_struct: L - S }) },
  { what: "structure block one past totalsize", bytes: set(V17, { size_dt_struct: L - S + 1 }) },
  { what: "size_dt_struct wrapping 2^32", bytes: set(V17, { size_dt_struct: 0x1_0000_0000 - S + 4 }) },
  { what: "off_dt_struct past totalsize", bytes: set(V17, { off_dt_struct: L + 4 }) },
  { what: "version 16: size_dt_struct garbage (not a v16 field)", bytes: set(V16, { size_dt_struct: 0xffffffff }) },
  { what: "version 16: off_dt_struct past totalsize", bytes: set(V16, { off_dt_struct: V16.length + 4 }) },
  { what: "off_dt_strings 39", bytes: set(V17, { off_dt_strings: 39 }) },
  { what: "strings block one past totalsize", bytes: set(V17, { size_dt_strings: L - T + 1 }) },
  { what: "strings block ending at totalsize", bytes: set(V17, { size_dt_strings: L - T }) },
  { what: "size_dt_strings wrapping 2^32", bytes: set(V17, { size_dt_strings: 0x1_0000_0000 - T + 1 }) },
  { what: "off_dt_strings past totalsize, size 0", bytes: set(V17, { off_dt_strings: L + 1, size_dt_strings: 0 }) },
];

/** libfdt's fdt_check_header on each blob (python3 ctypes → Debian's libfdt.so.1). */
function libfdtCheckHeader(blobs: Uint8Array[]): number[] {
  const files = blobs.map((b, i) => {
    const f = path.join(tmp, `c${i}.dtb`);
    fs.writeFileSync(f, b);
    return f;
  });
  const py = [
    "import ctypes, json, sys",
    "lib = ctypes.CDLL('libfdt.so.1')",
    "lib.fdt_check_header.argtypes = [ctypes.c_void_p]",
    "out = []",
    "for f in sys.argv[1:]:",
    "    data = open(f, 'rb').read()",
    // An 8-aligned buffer with room for the 40-byte header even when the blob is shorter.
    "    buf = (ctypes.c_uint64 * ((max(len(data), 40) + 7) // 8))()",
    "    ctypes.memmove(buf, data, len(data))",
    "    assert ctypes.addressof(buf) % 8 == 0",
    "    out.append(lib.fdt_check_header(buf))",
    "print(json.dumps(out))",
  ].join("\n");
  const r = spawnSync("python3", ["-c", py, ...files], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`python3/libfdt oracle failed (${r.error?.message ?? r.stderr})`);
  return JSON.parse(r.stdout) as number[];
}

/** fdtget's verdict: null when it reads `/ compatible`, else libfdt's error name. */
function fdtget(b: Uint8Array, i: number): string | null {
  const f = path.join(tmp, `g${i}.dtb`);
  fs.writeFileSync(f, b);
  const r = spawnSync("fdtget", [f, "/", "compatible"], { encoding: "utf8" });
  if (r.error) throw r.error;
  return r.status === 0 ? null : (/FDT_ERR_[A-Z]+/.exec(r.stderr)?.[0] ?? r.stderr.trim());
}

async function moduleVerdict(bytes: Uint8Array): Promise<GuestImageError | null> {
  const vm = await vmWith({ "x.dtb": bytes });
  try {
    await vm.loadModule("x.dtb", { at: RAM_BASE + 0x10000 });
  } catch (e) {
    expect(e).toBeInstanceOf(GuestImageError);
    // Refused: typed, and nothing placed or written (checked again on a fresh VM).
    const fresh = await vmWith({ "x.dtb": bytes });
    await expectRefused(fresh, () => fresh.loadModule("x.dtb", { at: RAM_BASE + 0x10000 }), (e as GuestImageError).code);
    return e as GuestImageError;
  }
  expect(vm.ram.read(RAM_BASE + 0x10000, bytes.length)).toEqual(bytes);
  return null;
}

function bootVerdict(bytes: Uint8Array): GuestImageError | null {
  try {
    parseFdt(bytes, "x.dtb");
    return null;
  } catch (e) {
    expect(e).toBeInstanceOf(GuestImageError);
    return e as GuestImageError;
  }
}

const HEADER_PROBE_ERRORS = ["FDT_ERR_BADMAGIC", "FDT_ERR_BADVERSION", "FDT_ERR_TRUNCATED"];

describe("device tree header check = libfdt's fdt_check_header, on the module and the boot path", () => {
  const oracle = libfdtCheckHeader(cases.map((c) => c.bytes));

  it("the oracle sees both verdicts among the cases (so the comparison is not vacuous)", () => {
    expect(oracle.filter((r) => r === 0).length).toBeGreaterThan(8);
    expect(oracle.filter((r) => r !== 0).length).toBeGreaterThan(15);
  });

  cases.forEach((c, i) => {
    it(`${c.what}: libfdt ${oracle[i] === 0 ? "accepts" : `refuses (${oracle[i]})`}, and so do we`, async () => {
      const totalsize = get(c.bytes, "totalsize");
      const fitsFile = totalsize <= c.bytes.length;
      // libfdt is not told the buffer's length; the file holding totalsize bytes is the one rule we add.
      const expectOk = oracle[i] === 0 && fitsFile;
      const mod = await moduleVerdict(c.bytes);
      if (get(c.bytes, "magic") !== 0xd00dfeed) {
        // Not a DTB at all: a module is then opaque data, placed verbatim (libsel4vm's behaviour);
        // bootLinux's dtb must be one.
        expect(mod).toBeNull();
        expect(bootVerdict(c.bytes)).toMatchObject({ code: "BAD_MAGIC", field: "magic" });
        return;
      }
      expect(mod === null, mod?.message).toBe(expectOk);
      if (oracle[i] === 0 && !fitsFile) expect(mod).toMatchObject({ code: "TRUNCATED", field: "totalsize" });

      // The boot path refuses at least everything the module path refuses, with the same error.
      const boot = bootVerdict(c.bytes);
      if (mod) expect({ code: boot?.code, field: boot?.field, message: boot?.message }).toEqual({ code: mod.code, field: mod.field, message: mod.message });

      // fdtget's header probe (fdt_ro_probe_) is weaker; whatever it refuses there, we refuse.
      const g = fdtget(c.bytes, i);
      if (g !== null && HEADER_PROBE_ERRORS.includes(g)) {
        expect(mod, `fdtget: ${g}`).not.toBeNull();
        expect(boot, `fdtget: ${g}`).not.toBeNull();
      }
    });
  });

  it("trees libfdt accepts and whose blocks are sound also parse on the boot path (versions 16 and 17)", () => {
    for (const b of [V17, V16, set(V17, {}, 64), set(V17, { version: 18 }), set(V17, { last_comp_version: 17 })]) {
      expect(bootVerdict(b)?.message).toBeUndefined();
      expect(fdtget(b, 999)).toBeNull();
    }
  });

  it("the boot path reads versions 16 and 17 only: older trees (full-path node names) pass the header check but are refused by the reader", async () => {
    for (const b of [V3, V2]) {
      expect(await moduleVerdict(b)).toBeNull();
      expect(bootVerdict(b)).toMatchObject({ code: "UNSUPPORTED", field: "version" });
    }
  });
});
