// ELF notes and the PVH entry note (src/formats/elf-notes.ts), against readelf -n on kernels-in-
// miniature that Debian's binutils assemble and link at test time, in the shapes that broke other
// loaders: two PT_NOTEs (an 8-aligned .note.gnu.property before the 4-aligned .notes, as ld ≥ 2.31
// emits on x86-64 — cloud-hypervisor #3222, kata-containers #3145), several notes per segment,
// 8-byte-aligned notes, an i386 kernel with a 4-byte descriptor, and program headers without
// PT_NOTE (notes found through the section headers). Malformed notes: typed errors, RAM untouched.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findPvhEntry, readElfNotes } from "../../src/formats/elf-notes.js";
import { readElf } from "../../src/formats/elf.js";
import { bootLinux, createVm, fromMap, GuestImageError } from "../../src/node.js";
import { bytesFile } from "../../src/sources/source.js";
import * as b from "../../fuzz/builders.mjs";

const work = mkdtempSync(join(tmpdir(), "gi-notes-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const run = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
};

const NOTES_64 = `
.section .note.gnu.property,"a",@note
.p2align 3
.long 4, 16, 5
.asciz "GNU"
.long 0xc0000002, 4, 3
.p2align 3
.section .notes,"a",@note
.p2align 2
.long 4, 6, 6
.asciz "Xen"
.asciz "linux"
.p2align 2
.long 4, 4, 7
.asciz "Xen"
.asciz "2.6"
.long 4, 8, 18
.asciz "Xen"
.quad pvh_start
`;
const NOTES_8ALIGNED = `
.section .notes,"a",@note
.p2align 3
.long 4, 6, 6
.asciz "Xen"
.p2align 3
.asciz "linux"
.p2align 3
.long 4, 8, 18
.asciz "Xen"
.p2align 3
.quad pvh_start
`;
const NOTES_32 = `
.section .notes,"a",@note
.p2align 2
.long 6, 4, 1
.asciz "Linux"
.p2align 2
.long 0x12345678
.long 4, 4, 18
.asciz "Xen"
.long pvh_start
`;
const TEXT = `
.text
.globl _start
_start: nop
nop
pvh_start: hlt
`;

/** Assembles and links `src`; `script` (a linker script) replaces -Ttext. */
function build(name: string, src: string, opts: { bits: 32 | 64; script?: string }): string {
  const s = join(work, `${name}.S`);
  const o = join(work, `${name}.o`);
  const out = join(work, `${name}.elf`);
  writeFileSync(s, src + TEXT);
  if (opts.bits === 64) run("as", ["--64", "-o", o, s]);
  else run("i686-linux-gnu-as", ["--32", "-o", o, s]);
  const ld = opts.bits === 64 ? ["ld", "-m", "elf_x86_64"] : ["i686-linux-gnu-ld", "-m", "elf_i386"];
  const scriptArgs: string[] = [];
  if (opts.script) {
    writeFileSync(join(work, `${name}.ld`), opts.script);
    scriptArgs.push("-T", join(work, `${name}.ld`));
  } else scriptArgs.push("-Ttext=0x100000");
  run(ld[0], [...ld.slice(1), ...scriptArgs, "-o", out, o]);
  return out;
}

interface RefNote { owner: string; size: number; desc?: string }
/** readelf -n: every note as (owner, data size, descriptor bytes when printed raw), in order. */
function readelfNotes(path: string): RefNote[] {
  const out = run("readelf", ["-nW", path]);
  return [...out.matchAll(/^\s+(\S+)\s+0x([0-9a-f]{8})\s+(.*)$/gm)].map((m) => {
    const d = /description data: ((?:[0-9a-f]{2} ?)+)/.exec(m[3]);
    return { owner: m[1], size: parseInt(m[2], 16), ...(d ? { desc: d[1].trim() } : {}) };
  });
}
const hexBytes = (u: Uint8Array) => Array.from(u, (x) => x.toString(16).padStart(2, "0")).join(" ");
/** `nm`: the address of pvh_start, the oracle for the note's value. */
const symbol = (path: string, sym: string) => BigInt(`0x${/^([0-9a-f]+) \w (\S+)$/m.exec(run("nm", [path]).split("\n").filter((l) => l.endsWith(` ${sym}`)).join("\n"))![1]}`);

async function ours(path: string) {
  const f = bytesFile(path, new Uint8Array(readFileSync(path)));
  const elf = await readElf(f);
  return { notes: await readElfNotes(f, elf), pvh: await findPvhEntry(f, elf), elf };
}

function expectSameNotes(path: string, notes: Awaited<ReturnType<typeof ours>>["notes"]) {
  const ref = readelfNotes(path);
  expect(notes.map((n) => ({ owner: n.owner, size: n.desc.length }))).toEqual(ref.map((r) => ({ owner: r.owner, size: r.size })));
  ref.forEach((r, i) => {
    if (r.desc !== undefined) expect(hexBytes(notes[i].desc)).toBe(r.desc);
  });
}

describe("ELF notes and XEN_ELFNOTE_PHYS32_ENTRY against readelf", () => {
  it("x86-64 with two PT_NOTEs (8-aligned .note.gnu.property, then 4-aligned .notes with three notes)", async () => {
    const path = build("two", NOTES_64, { bits: 64 });
    const ph = run("readelf", ["-lW", path]);
    expect([...ph.matchAll(/^\s+NOTE\s.*0x([48])$/gm)].map((m) => m[1])).toEqual(["8", "4"]);
    const { notes, pvh } = await ours(path);
    expectSameNotes(path, notes);
    expect(BigInt(pvh!.entry)).toBe(symbol(path, "pvh_start"));
    expect(pvh!.note.where).toMatch(/program header \d+ \(NOTE\)/);
  });

  it("8-byte-aligned notes: name and descriptor padded to 8", async () => {
    const path = build("eight", NOTES_8ALIGNED, { bits: 64 });
    const { notes, pvh } = await ours(path);
    expectSameNotes(path, notes);
    expect(BigInt(pvh!.entry)).toBe(symbol(path, "pvh_start"));
  });

  it("i386 kernel: a 4-byte descriptor (.long), a 6-byte owner name padded to 8", async () => {
    const path = build("i386", NOTES_32, { bits: 32 });
    const { notes, pvh, elf } = await ours(path);
    expect(elf.header.class).toBe(32);
    expectSameNotes(path, notes);
    expect(notes[0].owner).toBe("Linux");
    expect(pvh!.note.desc.length).toBe(4);
    expect(BigInt(pvh!.entry)).toBe(symbol(path, "pvh_start"));
  });

  it("no PT_NOTE in the program headers: the notes are found through the SHT_NOTE sections", async () => {
    const script = "PHDRS { text PT_LOAD FILEHDR PHDRS; }\nSECTIONS { . = 0x100000 + SIZEOF_HEADERS; .text : { *(.text) } :text\n .notes : { *(.notes) } :text }\n";
    const path = build("nophdr", NOTES_64.replace(/\.section \.note\.gnu\.property[\s\S]*?\.section \.notes/, ".section .notes"), { bits: 64, script });
    expect(run("readelf", ["-lW", path])).not.toMatch(/^\s+NOTE\s/m);
    const { notes, pvh } = await ours(path);
    expectSameNotes(path, notes);
    expect(pvh!.note.where).toMatch(/section \d+ \(SHT_NOTE\)/);
    expect(BigInt(pvh!.entry)).toBe(symbol(path, "pvh_start"));
  });

  it("a kernel without the note: findPvhEntry is null; bootLinux x86Entry pvh refuses it naming CONFIG_PVH and places nothing", async () => {
    const path = build("none", NOTES_64.replace(/\.long 4, 8, 18[\s\S]*?\.quad pvh_start/, ""), { bits: 64 });
    const { pvh } = await ours(path);
    expect(pvh).toBeNull();
    const vm = await createVm({ ram: [{ base: 0, size: 64 << 20 }], files: fromMap({ k: new Uint8Array(readFileSync(path)) }) });
    const e = await bootLinux(vm, { arch: "x86_64", kernel: "k", x86Entry: "pvh" }).catch((x) => x);
    expect(e).toBeInstanceOf(GuestImageError);
    expect(e.code).toBe("UNSUPPORTED");
    expect(e.message).toMatch(/CONFIG_PVH/);
    expect(vm.placed()).toEqual([]);
  });
});

// ── malformed notes (built from the gABI layout with the fuzzer's builders) ──
const le64 = (v: bigint) => { const d = new Uint8Array(8); new DataView(d.buffer).setBigUint64(0, v, true); return d; };
function elfWith(block: Uint8Array, align = 4n, extra: Partial<{ offset: bigint; filesz: bigint }> = {}) {
  return b.elf({ class: 64, machine: b.EM.x86_64, entry: 0x100000n, segments: [{ vaddr: 0x100000n, paddr: 0x100000n, data: new Uint8Array(0x100).fill(0xf4) }, { type: 4, flags: 4, vaddr: 0n, paddr: 0n, data: block, align, ...extra }] }).bytes as Uint8Array;
}
async function pvhOf(bytes: Uint8Array) {
  const f = bytesFile("k", bytes);
  return findPvhEntry(f, await readElf(f));
}
const poke32 = (u: Uint8Array, off: number, v: number) => new DataView(u.buffer, u.byteOffset).setUint32(off, v, true);

describe("malformed notes fail with typed errors", () => {
  const good = () => b.elfNotes([{ name: "Xen", type: 6, desc: b.ascii("linux\0") }, { name: "Xen", type: 18, desc: le64(0x100010n) }]).bytes as Uint8Array;

  it("the well-formed block parses (the baseline for the mutations below)", async () => {
    expect((await pvhOf(elfWith(good())))!.entry).toBe(0x100010);
  });

  it.each([
    ["n_namesz past the segment", 0, 0x1000, "n_namesz"],
    ["n_namesz 0xffffffff", 0, 0xffffffff, "n_namesz"],
    ["n_descsz past the segment", 4, 0x1000, "n_descsz"],
    ["n_descsz 0xfffffffc", 4, 0xfffffffc, "n_descsz"],
  ])("%s → BAD_HEADER", async (_what, off, value, field) => {
    const blk = good();
    poke32(blk, off, value);
    const e = await pvhOf(elfWith(blk)).catch((x) => x);
    expect(e).toBeInstanceOf(GuestImageError);
    expect(e.code).toBe("BAD_HEADER");
    expect(e.field).toBe(field);
  });

  it("a PVH descriptor of 2 bytes, or one above 4 GiB, or two notes that disagree → BAD_HEADER", async () => {
    const two = b.elfNotes([{ name: "Xen", type: 18, desc: new Uint8Array([1, 2]) }]).bytes as Uint8Array;
    const high = b.elfNotes([{ name: "Xen", type: 18, desc: le64(0x1_0000_0000n) }]).bytes as Uint8Array;
    const clash = b.elfNotes([{ name: "Xen", type: 18, desc: le64(0x100010n) }, { name: "Xen", type: 18, desc: le64(0x100020n) }]).bytes as Uint8Array;
    for (const [blk, field] of [[two, "n_descsz"], [high, "desc"], [clash, "desc"]] as const) {
      const e = await pvhOf(elfWith(blk)).catch((x) => x);
      expect(e).toBeInstanceOf(GuestImageError);
      expect(e.code).toBe("BAD_HEADER");
      expect(e.field).toBe(field);
    }
  });

  it("a PT_NOTE running past the end of the file → TRUNCATED", async () => {
    const e = await pvhOf(elfWith(good(), 4n, { filesz: 0x10000n })).catch((x) => x);
    expect(e).toBeInstanceOf(GuestImageError);
    expect(e.code).toBe("TRUNCATED");
  });

  it("notes read with the wrong padding would miss the PVH note: an 8-aligned segment is walked with 8", async () => {
    const blk = b.elfNotes([{ name: "Xen", type: 6, desc: b.ascii("linux\0") }, { name: "Xen", type: 18, desc: le64(0x100010n) }], { align: 8 }).bytes as Uint8Array;
    expect((await pvhOf(elfWith(blk, 8n)))!.entry).toBe(0x100010);
  });

  it("bootLinux with a malformed note changes nothing in RAM or the ledger", async () => {
    const blk = good();
    poke32(blk, 4, 0x1000);
    const vm = await createVm({ ram: [{ base: 0, size: 64 << 20 }], files: fromMap({ k: elfWith(blk) }) });
    const before = vm.ram.read(0x100000, 0x1000).slice();
    const e = await bootLinux(vm, { arch: "x86_64", kernel: "k", x86Entry: "pvh" }).catch((x) => x);
    expect(e.code).toBe("BAD_HEADER");
    expect(vm.placed()).toEqual([]);
    expect(vm.ram.read(0x100000, 0x1000)).toEqual(before);
  });
});
