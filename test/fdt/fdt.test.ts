/**
 * Device tree parse / edit / write (src/fdt/). Oracles: dtc (`dtc -I dtb -O dts`, Debian
 * device-tree-compiler) for what a blob says, dtc compiling .dts sources written here for the
 * inputs, and blobs built field by field from the Devicetree Specification v0.4 ch. 5 for the
 * hostile cases.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { GuestImageError } from "../../src/errors.js";
import {
  applyLinuxEdits, cellWidths, emptyFdt, ensureNode, findNode, getProp, parseFdt, readCells, readNumber, readString, readStrings, readU32,
  setProp, stringValue, u32Value, writeFdt, FDT_MAX_DEPTH,
} from "../../src/fdt/index.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "guest-image-fdt-"));
let n = 0;

/** dtc: .dts text → blob. */
function dtsToDtb(dts: string): Uint8Array {
  const src = path.join(tmp, `t${n++}.dts`);
  fs.writeFileSync(src, dts);
  const r = spawnSync("dtc", ["-q", "-I", "dts", "-O", "dtb", src], { encoding: "buffer" });
  if (r.status !== 0) throw new Error(`dtc failed: ${r.stderr.toString()}`);
  return new Uint8Array(r.stdout);
}

/** dtc: blob → .dts text; stderr must be empty (no warning about the blob). */
function dtbToDts(blob: Uint8Array): string {
  const f = path.join(tmp, `t${n++}.dtb`);
  fs.writeFileSync(f, blob);
  const r = spawnSync("dtc", ["-I", "dtb", "-O", "dts", f], { encoding: "utf8" });
  expect(r.stderr, "dtc warnings").toBe("");
  expect(r.status).toBe(0);
  return r.stdout;
}

const SAMPLE = new Uint8Array(fs.readFileSync(new URL("../../examples/images/linux.dtb", import.meta.url)));

const DTS = `/dts-v1/;
/memreserve/ 0x48000000 0x100000;
/ {
	#address-cells = <2>;
	#size-cells = <2>;
	model = "test";
	compatible = "a,b", "c,d";
	chosen { };
	memory@40000000 { device_type = "memory"; reg = <0x0 0x40000000 0x0 0x10000000>; };
	cpus { #address-cells = <1>; #size-cells = <0>; cpu@0 { reg = <0>; empty; }; };
	uart@9000000 { reg = <0x0 0x09000000 0x0 0x1000>; bytes = [01 02 03]; };
};
`;

describe("parse: values agree with the .dts the blob was compiled from", () => {
  const fdt = parseFdt(dtsToDtb(DTS));
  it("header, reservations, nodes, properties", () => {
    expect(fdt.header.version).toBe(17);
    expect(fdt.reservations).toEqual([{ address: 0x48000000n, size: 0x100000n }]);
    expect(fdt.root.children.map((c) => c.name)).toEqual(["chosen", "memory@40000000", "cpus", "uart@9000000"]);
    expect(cellWidths(fdt.root)).toEqual({ address: 2, size: 2 });
    expect(readString(getProp(fdt.root, "model"))).toBe("test");
    expect(readStrings(getProp(fdt.root, "compatible"))).toEqual(["a,b", "c,d"]);
    const mem = findNode(fdt, "/memory")!;
    expect(mem.name).toBe("memory@40000000");
    expect(readCells(getProp(mem, "reg")!, [2, 2])).toEqual([[0x40000000n, 0x10000000n]]);
    expect(readU32(getProp(findNode(fdt, "/cpus/cpu@0")!, "reg"))).toBe(0);
    expect(getProp(findNode(fdt, "/cpus/cpu")!, "empty")).toEqual(new Uint8Array(0));
    expect(getProp(findNode(fdt, "/uart@9000000")!, "bytes")).toEqual(new Uint8Array([1, 2, 3]));
    expect(findNode(fdt, "/nope")).toBeUndefined();
    expect(findNode(fdt, "relative")).toBeUndefined();
  });
  it("the sample DTB (examples/images/linux.dtb)", () => {
    const s = parseFdt(SAMPLE);
    const chosen = findNode(s, "/chosen")!;
    expect(readString(getProp(chosen, "bootargs"))).toBe("console=ttyAMA0 rdinit=/init");
    expect(readNumber(getProp(chosen, "linux,initrd-start")!)).toBe(0x4d700000n);
  });
});

describe("write", () => {
  it("round trip: parse → write gives a blob dtc prints exactly as the original", () => {
    for (const blob of [SAMPLE, dtsToDtb(DTS)]) {
      const out = writeFdt(parseFdt(blob));
      expect(dtbToDts(out)).toBe(dtbToDts(blob));
      // and our own parser reads back the same tree
      const again = parseFdt(out);
      const first = parseFdt(blob);
      expect({ ...again, header: undefined }).toEqual({ ...first, header: undefined });
    }
  });
  it("byte-identical to dtc's own blob for a tree dtc wrote (same block order, string order)", () => {
    const blob = dtsToDtb(DTS);
    expect(Buffer.from(writeFdt(parseFdt(blob))).equals(Buffer.from(blob))).toBe(true);
  });
  it("free space: totalsize grows, the tail is zero, the tree is the same", () => {
    const base = writeFdt(parseFdt(SAMPLE));
    const out = writeFdt(parseFdt(SAMPLE), { freeSpace: 0x1000 });
    expect(out.length).toBe(base.length + 0x1000);
    const h = parseFdt(out).header;
    expect(h.totalsize).toBe(out.length);
    expect(out.subarray(base.length).every((b) => b === 0)).toBe(true);
    expect(dtbToDts(out)).toBe(dtbToDts(base));
    const q = writeFdt(parseFdt(SAMPLE), { minTotalsize: 2 * (SAMPLE.length + 10000) });
    expect(q.length).toBe(2 * (SAMPLE.length + 10000));
  });
  it("a tree built from nothing", () => {
    const t = emptyFdt();
    setProp(t.root, "#address-cells", u32Value(1));
    setProp(t.root, "#size-cells", u32Value(1));
    setProp(ensureNode(t, "/chosen"), "bootargs", stringValue("console=hvc0"));
    expect(dtbToDts(writeFdt(t))).toBe(`/dts-v1/;\n\n/ {\n\t#address-cells = <0x01>;\n\t#size-cells = <0x01>;\n\n\tchosen {\n\t\tbootargs = "console=hvc0";\n\t};\n};\n`);
  });
  it("refuses what cannot be written", () => {
    const t = emptyFdt();
    t.root.children.push({ name: "a/b", props: [], children: [] });
    expect(() => writeFdt(t)).toThrow(GuestImageError);
    const d = emptyFdt();
    d.root.props.push({ name: "x", value: new Uint8Array(0) }, { name: "x", value: new Uint8Array(0) });
    expect(() => writeFdt(d)).toThrow(/two properties named "x"/);
    expect(() => writeFdt(emptyFdt(), { freeSpace: -1 })).toThrow(/freeSpace/);
  });
});

describe("Linux edits (/chosen, /memory)", () => {
  it("sets bootargs and initrd with the root's cell width, rewrites /memory; dtc agrees", () => {
    const t = parseFdt(dtsToDtb(DTS));
    applyLinuxEdits(t, { bootargs: "console=ttyAMA0 root=/dev/ram", initrd: { start: 0x48000000, end: 0x48001234 }, memory: [{ base: 0x40000000, size: 0x20000000 }] });
    const dts = dtbToDts(writeFdt(t));
    expect(dts).toContain('bootargs = "console=ttyAMA0 root=/dev/ram";');
    expect(dts).toContain("linux,initrd-start = <0x00 0x48000000>;");
    expect(dts).toContain("linux,initrd-end = <0x00 0x48001234>;");
    expect(dts).toMatch(/memory@40000000 \{\n\t\tdevice_type = "memory";\n\t\treg = <0x00 0x40000000 0x00 0x20000000>;/);
  });
  it("creates /chosen and a memory node when missing; 1-cell roots get 1-cell values", () => {
    const t = parseFdt(dtsToDtb(`/dts-v1/;\n/ { #address-cells = <1>; #size-cells = <1>; };\n`));
    applyLinuxEdits(t, { initrd: { start: 0x84000000, end: 0x84100000 }, memory: [{ base: 0x80000000, size: 0x4000000 }, { base: 0x0, size: 0x1000 }] });
    const dts = dtbToDts(writeFdt(t));
    expect(dts).toContain("linux,initrd-start = <0x84000000>;");
    expect(dts).toContain("memory@0 {");
    expect(dts).toContain("reg = <0x00 0x1000 0x80000000 0x4000000>;");
  });
  it("several memory nodes: the first keeps the name rule, others go (exact); qemu mode leaves them", () => {
    const src = `/dts-v1/;\n/ { #address-cells = <2>; #size-cells = <2>;\n memory@80000000 { device_type = "memory"; reg = <0 0x80000000 0 0x1000>; };\n mem2@90000000 { device_type = "memory"; reg = <0 0x90000000 0 0x1000>; };\n};\n`;
    const exact = parseFdt(dtsToDtb(src));
    applyLinuxEdits(exact, { memory: [{ base: 0x40000000, size: 0x1000000 }] });
    expect(exact.root.children.map((c) => c.name)).toEqual(["memory@40000000"]);
    const q = parseFdt(dtsToDtb(src));
    applyLinuxEdits(q, { memory: [{ base: 0x40000000, size: 0x1000000 }], memoryMode: "qemu" });
    expect(q.root.children.map((c) => c.name)).toEqual(["memory@80000000", "mem2@90000000"]);
    expect(readCells(getProp(q.root.children[0], "reg")!, [2, 2])).toEqual([[0x40000000n, 0x1000000n]]);
  });
  it("an initrd above 4 GiB in a 1-cell tree widens to 2 cells; RAM past a 1-cell size is TOO_LARGE", () => {
    const t = parseFdt(dtsToDtb(`/dts-v1/;\n/ { #address-cells = <1>; #size-cells = <1>; };\n`));
    applyLinuxEdits(t, { initrd: { start: 0x1_0000_0000, end: 0x1_0000_1000 } });
    expect(getProp(findNode(t, "/chosen")!, "linux,initrd-start")!.length).toBe(8);
    const e = (() => {
      try {
        applyLinuxEdits(t, { memory: [{ base: 0, size: 0x1_0000_0000 }] });
      } catch (x) {
        return x as GuestImageError;
      }
    })();
    expect(e?.code).toBe("TOO_LARGE");
    expect(e?.message).toMatch(/memory reg\[0\] size 0x100000000 does not fit in 1 cell/);
  });
});

// ── hostile blobs, built from the spec ──

interface Raw {
  header: Partial<Record<"magic" | "totalsize" | "off_dt_struct" | "off_dt_strings" | "off_mem_rsvmap" | "version" | "last_comp_version" | "size_dt_strings" | "size_dt_struct", number>>;
  rsv?: Array<[bigint, bigint]>;
  noRsvTerminator?: boolean;
  struct: number[]; // u32 words
  strings: string;
  extra?: number;
}

/** Header (§5.2) at 0, reservation block at 40 (§5.3), then structure (§5.4) and strings (§5.5). */
function build(r: Raw): Uint8Array {
  const rsv = r.rsv ?? [];
  const rsvLen = (rsv.length + (r.noRsvTerminator ? 0 : 1)) * 16;
  const structOff = 40 + rsvLen;
  const strings = new TextEncoder().encode(r.strings);
  const stringsOff = structOff + r.struct.length * 4;
  const total = stringsOff + strings.length + (r.extra ?? 0);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  const h = {
    magic: 0xd00dfeed, totalsize: total, off_dt_struct: structOff, off_dt_strings: stringsOff, off_mem_rsvmap: 40, version: 17,
    last_comp_version: 16, size_dt_strings: strings.length, size_dt_struct: r.struct.length * 4, ...r.header,
  };
  const fields = ["magic", "totalsize", "off_dt_struct", "off_dt_strings", "off_mem_rsvmap", "version", "last_comp_version", "boot_cpuid_phys", "size_dt_strings", "size_dt_struct"];
  fields.forEach((f, i) => dv.setUint32(i * 4, (h as Record<string, number>)[f] ?? 0, false));
  rsv.forEach(([a, s], i) => {
    dv.setBigUint64(40 + i * 16, a, false);
    dv.setBigUint64(48 + i * 16, s, false);
  });
  r.struct.forEach((w, i) => dv.setUint32(structOff + i * 4, w >>> 0, false));
  out.set(strings, stringsOff);
  return out;
}

const BEGIN = 1, END_NODE = 2, PROP = 3, NOP = 4, END = 9;
const name4 = (s: string) => {
  const b = new Uint8Array(Math.ceil((s.length + 1) / 4) * 4);
  b.set(new TextEncoder().encode(s));
  const dv = new DataView(b.buffer);
  return Array.from({ length: b.length / 4 }, (_, i) => dv.getUint32(i * 4, false));
};
/** root { x = <1>; child { }; } */
const GOOD: Raw = { header: {}, struct: [BEGIN, 0, PROP, 4, 0, 1, NOP, BEGIN, ...name4("child"), END_NODE, END_NODE, END], strings: "x\0" };

function expectParseError(blob: Uint8Array, code: string, field: string, mention: RegExp) {
  let err: unknown;
  try {
    parseFdt(blob, "t.dtb");
  } catch (e) {
    err = e;
  }
  expect(err, "must throw").toBeInstanceOf(GuestImageError);
  const g = err as GuestImageError;
  expect(g.code).toBe(code);
  expect(g.field).toBe(field);
  expect(g.image).toBe("t.dtb");
  expect(g.message).toMatch(mention);
}

describe("hostile trees give typed errors", () => {
  it("the hand-built good tree parses (so each case below fails for the reason it claims)", () => {
    const t = parseFdt(build(GOOD));
    expect(t.root.props).toEqual([{ name: "x", value: u32Value(1) }]);
    expect(t.root.children.map((c) => c.name)).toEqual(["child"]);
    expect(dtbToDts(build(GOOD))).toContain("child {");
  });
  const cases: Array<[string, Uint8Array, string, string, RegExp]> = [
    ["shorter than the header", build(GOOD).subarray(0, 39), "TRUNCATED", "totalsize", /shorter than its 40-byte header/],
    ["bad magic", build({ ...GOOD, header: { magic: 0xfeedd00d } }), "BAD_MAGIC", "magic", /0xfeedd00d/],
    ["totalsize beyond the file", build({ ...GOOD, header: { totalsize: 0x10000 } }), "TRUNCATED", "totalsize", /totalsize 0x10000 is larger/],
    ["totalsize smaller than the header", build({ ...GOOD, header: { totalsize: 8 } }), "BAD_HEADER", "totalsize", /smaller than the 40-byte header/],
    ["version 15", build({ ...GOOD, header: { version: 15, last_comp_version: 2 } }), "UNSUPPORTED", "version", /version 15/],
    ["version 16 older than its last_comp_version 17", build({ ...GOOD, header: { version: 16, last_comp_version: 17 } }), "BAD_HEADER", "version", /version 16 is older than last_comp_version 17/],
    ["last_comp_version 18", build({ ...GOOD, header: { last_comp_version: 18 } }), "UNSUPPORTED", "last_comp_version", /18/],
    ["structure block inside the header", build({ ...GOOD, header: { off_dt_struct: 8 } }), "BAD_HEADER", "off_dt_struct", /off_dt_struct 0x8 lies inside the 40-byte header/],
    ["structure block past totalsize", build({ ...GOOD, header: { size_dt_struct: 0x1000 } }), "BAD_HEADER", "size_dt_struct", /size_dt_struct 0x1000 runs past totalsize/],
    ["misaligned structure block", build({ ...GOOD, header: { off_dt_struct: 58 } }), "BAD_HEADER", "off_dt_struct", /off_dt_struct 0x3a is not 4-byte aligned/],
    ["strings block past totalsize", build({ ...GOOD, header: { size_dt_strings: 0x100 } }), "BAD_HEADER", "size_dt_strings", /size_dt_strings 0x100 runs past totalsize/],
    ["reservation block past totalsize", build({ ...GOOD, header: { off_mem_rsvmap: 0x1000 } }), "BAD_HEADER", "off_mem_rsvmap", /runs past totalsize/],
    ["strings block overlapping the structure block", build({ ...GOOD, header: { off_dt_strings: 60 } }), "BAD_HEADER", "off_dt_strings", /overlaps the structure block/],
    ["misaligned reservation block", build({ ...GOOD, header: { off_mem_rsvmap: 44 } }), "BAD_HEADER", "off_mem_rsvmap", /8-byte aligned/],
    ["reservation block without terminator", build({ ...GOOD, rsv: [[0x1000n, 0x1000n]], noRsvTerminator: true }), "BAD_HEADER", "off_mem_rsvmap", /no \(0, 0\) terminator/],
    ["property name offset past the strings block", build({ ...GOOD, struct: [BEGIN, 0, PROP, 4, 0x40, 1, END_NODE, END] }), "BAD_HEADER", "nameoff", /nameoff 0x40 is past the strings block/],
    ["property name running past the strings block", build({ ...GOOD, strings: "xy" }), "BAD_HEADER", "nameoff", /runs past the end of the strings block/],
    ["property value past the structure block", build({ ...GOOD, struct: [BEGIN, 0, PROP, 0x1000, 0, 1, END_NODE, END] }), "BAD_HEADER", "dt_struct", /value length 0x1000/],
    ["node name with no NUL in the block", build({ ...GOOD, struct: [BEGIN, 0, BEGIN, 0x41414141] }), "BAD_HEADER", "dt_struct", /node name runs past/],
    ["unknown token", build({ ...GOOD, struct: [BEGIN, 0, 7, END_NODE, END] }), "BAD_HEADER", "dt_struct", /unknown token 0x7/],
    ["no FDT_END", build({ ...GOOD, struct: [BEGIN, 0, END_NODE] }), "BAD_HEADER", "dt_struct", /ends before FDT_END/],
    ["FDT_END with a node open", build({ ...GOOD, struct: [BEGIN, 0, END] }), "BAD_HEADER", "dt_struct", /still open/],
    ["END_NODE with nothing open", build({ ...GOOD, struct: [BEGIN, 0, END_NODE, END_NODE, END] }), "BAD_HEADER", "dt_struct", /no node open/],
    ["a second root", build({ ...GOOD, struct: [BEGIN, 0, END_NODE, BEGIN, 0, END_NODE, END] }), "BAD_HEADER", "dt_struct", /second root/],
    ["property after a child node", build({ ...GOOD, struct: [BEGIN, 0, BEGIN, ...name4("c"), END_NODE, PROP, 4, 0, 1, END_NODE, END] }), "BAD_HEADER", "dt_struct", /follows a child node/],
    ["duplicate property", build({ ...GOOD, struct: [BEGIN, 0, PROP, 0, 0, PROP, 0, 0, END_NODE, END] }), "BAD_HEADER", "dt_struct", /second property named "x"/],
    ["duplicate sibling", build({ ...GOOD, struct: [BEGIN, 0, BEGIN, ...name4("c"), END_NODE, BEGIN, ...name4("c"), END_NODE, END_NODE, END] }), "BAD_HEADER", "dt_struct", /second node named "c"/],
    ["node name with a slash", build({ ...GOOD, struct: [BEGIN, 0, BEGIN, ...name4("a/b"), END_NODE, END_NODE, END] }), "BAD_HEADER", "dt_struct", /contains "\/"/],
    ["FDT_END before any node", build({ ...GOOD, struct: [NOP, END] }), "BAD_HEADER", "dt_struct", /before the root/],
    [
      `nesting deeper than ${FDT_MAX_DEPTH}`,
      build({ ...GOOD, struct: [BEGIN, 0, ...Array.from({ length: FDT_MAX_DEPTH }, () => [BEGIN, ...name4("n")]).flat(), ...Array(FDT_MAX_DEPTH + 1).fill(END_NODE), END] }),
      "TOO_LARGE", "dt_struct", /deeper than 64/,
    ],
  ];
  for (const [what, blob, code, field, re] of cases) it(what, () => expectParseError(blob, code, field, re));

  it(`nesting of exactly ${FDT_MAX_DEPTH} levels is fine`, () => {
    const depth = FDT_MAX_DEPTH - 1;
    const blob = build({ ...GOOD, struct: [BEGIN, 0, ...Array.from({ length: depth }, () => [BEGIN, ...name4("n")]).flat(), ...Array(depth + 1).fill(END_NODE), END] });
    expect(findNode(parseFdt(blob), "/" + Array(depth).fill("n").join("/"))).toBeDefined();
  });

  it("version 16 (no size_dt_struct) is read; its structure block runs to the strings block", () => {
    const t = parseFdt(build({ ...GOOD, header: { version: 16, size_dt_struct: 0 } }));
    expect(t.root.children.map((c) => c.name)).toEqual(["child"]);
  });

  it("fuzz: 3000 random corruptions of real blobs never throw anything but GuestImageError", () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const seeds = [SAMPLE, build(GOOD), dtsToDtb(DTS)];
    let ok = 0;
    for (let i = 0; i < 3000; i++) {
      const src = seeds[i % seeds.length];
      const b = src.slice(0, rnd() < 0.1 ? Math.floor(rnd() * src.length) : src.length);
      const flips = 1 + Math.floor(rnd() * 4);
      for (let f = 0; f < flips && b.length; f++) {
        const at = rnd() < 0.5 ? Math.floor(rnd() * Math.min(40, b.length)) : Math.floor(rnd() * b.length);
        b[at] = rnd() < 0.3 ? 0 : rnd() < 0.5 ? 0xff : Math.floor(rnd() * 256);
      }
      try {
        const t = parseFdt(b);
        writeFdt(t); // whatever parses can be written back
        ok++;
      } catch (e) {
        if (!(e instanceof GuestImageError)) throw e;
      }
    }
    expect(ok).toBeGreaterThan(0);
  });
});
