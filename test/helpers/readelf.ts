/**
 * Test oracle: run GNU binutils `readelf` and parse its text output.
 *
 * Everything numeric is a `bigint` (64-bit addresses exceed 2^53). readelf is
 * always run with LC_ALL=C and `-W` (wide) where it matters, so each record is
 * on one line. The parsers are deliberately strict: a line inside a table that
 * does not match the expected format throws, and every table's row count is
 * cross-checked against the count readelf itself announces, so a format change
 * in a future binutils makes tests fail loudly instead of silently comparing
 * against a truncated oracle.
 *
 * Formats verified against GNU readelf 2.40 (Debian bookworm).
 */
import { spawnSync } from "node:child_process";

export interface ReadelfHeader {
  class: "ELF32" | "ELF64";
  endian: "little" | "big";
  /** e.g. "EXEC", "DYN", "REL", "CORE" (the word before readelf's parenthesis). */
  type: string;
  /** readelf's Machine text, e.g. "Advanced Micro Devices X86-64", "AArch64". */
  machine: string;
  entry: bigint;
  phnum: number;
}

export interface ReadelfSegment {
  /**
   * As printed by readelf: "LOAD", "DYNAMIC", "NOTE", "GNU_STACK", ...
   * NB: readelf truncates the type column to 14 characters, so e.g.
   * PT_RISCV_ATTRIBUTES is "RISCV_ATTRIBUT"; unknown types look like
   * "LOOS+0x1234567" or "LOPROC+0x3".
   */
  type: string;
  offset: bigint;
  vaddr: bigint;
  paddr: bigint;
  filesz: bigint;
  memsz: bigint;
  /** readelf's 3-character flag column with trailing blanks trimmed: "R E", "RW", "R", "RWE", "" */
  flags: string;
  align: bigint;
}

export interface ReadelfReloc {
  /** e.g. ".rela.dyn", ".rel.dyn", ".rela.plt", ".rel.text" */
  section: string;
  offset: bigint;
  info: bigint;
  /** e.g. "R_X86_64_RELATIVE"; unknown types are "unrecognized: <hex>" as readelf prints them */
  type: string;
  /**
   * null when the relocation has no symbol (symbol index 0), and also for STT_GNU_IFUNC symbols,
   * for which readelf prints "name()" instead of the value (symName is still set then).
   */
  symValue: bigint | null;
  /** null when the relocation has no symbol; section symbols show the section name */
  symName: string | null;
  /** null for REL sections; for RELA the signed addend (negative when readelf prints "- x") */
  addend: bigint | null;
}

/** One SHT_RELR section (`.relr.dyn`): the decoded list of relocated addresses. */
export interface ReadelfRelr {
  section: string;
  /** number of RELR words in the section ("contains N entries") */
  entries: number;
  /** every address that gets a RELATIVE fix-up, in table order */
  offsets: bigint[];
}

export interface ReadelfDynamicEntry {
  tag: bigint;
  /** readelf's name for the tag, without parentheses: "RELA", "RELASZ", "FLAGS_1", ... */
  name: string;
  /** the rest of the line as printed, e.g. "0x188", "120 (bytes)", "Flags: PIE" */
  value: string;
}

const READELF = process.env["READELF"] || "readelf";

/** Run readelf and return stdout; throw a plain Error carrying stderr if it fails. */
function runReadelf(args: string[]): { stdout: string; stderr: string } {
  const res = spawnSync(READELF, args, {
    encoding: "utf8",
    env: { ...process.env, LC_ALL: "C", LANG: "C", LANGUAGE: "C" },
    maxBuffer: 512 * 1024 * 1024,
  });
  if (res.error) {
    throw new Error(`${READELF} ${args.join(" ")}: failed to run: ${res.error.message}`);
  }
  if (res.status !== 0) {
    const why = res.signal ? `killed by ${res.signal}` : `exit status ${res.status}`;
    throw new Error(`${READELF} ${args.join(" ")}: ${why}\n${res.stderr.trim()}`);
  }
  return { stdout: res.stdout, stderr: res.stderr };
}

function hex(s: string): bigint {
  return BigInt(s.startsWith("0x") ? s : "0x" + s);
}

function fail(args: string[], msg: string, line?: string): never {
  throw new Error(
    `readelf ${args.join(" ")}: ${msg}${line === undefined ? "" : `\n  line: ${JSON.stringify(line)}`}`,
  );
}

// ---------------------------------------------------------------------------
// readelf -hW
// ---------------------------------------------------------------------------

export function readelfHeader(path: string): ReadelfHeader {
  const args = ["-hW", path];
  const { stdout } = runReadelf(args);
  const fields = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const m = /^ {2}([^:]+):\s*(.*?)\s*$/.exec(line);
    if (m) fields.set(m[1]!.trim(), m[2]!);
  }
  const get = (k: string): string => {
    const v = fields.get(k);
    if (v === undefined) fail(args, `no "${k}" field in output`);
    return v;
  };

  const cls = get("Class");
  if (cls !== "ELF32" && cls !== "ELF64") fail(args, `unexpected Class "${cls}"`);

  const data = get("Data");
  let endian: "little" | "big";
  if (/little endian/.test(data)) endian = "little";
  else if (/big endian/.test(data)) endian = "big";
  else fail(args, `unexpected Data "${data}"`);

  // "DYN (Position-Independent Executable file)" -> "DYN"; "EXEC (Executable file)" -> "EXEC"
  const typeText = get("Type");
  const type = typeText.replace(/\s*\(.*\)$/, "");

  const entryText = get("Entry point address");
  if (!/^0x[0-9a-f]+$/.test(entryText)) fail(args, `unexpected entry "${entryText}"`);

  // "13", or "65535 (70000)" when e_phnum == PN_XNUM and the real count lives in sh_info.
  const phText = get("Number of program headers");
  const pm = /^(\d+)(?: \((\d+)\))?$/.exec(phText);
  if (!pm) fail(args, `unexpected phnum "${phText}"`);

  return {
    class: cls,
    endian,
    type,
    machine: get("Machine"),
    entry: hex(entryText),
    phnum: Number(pm[2] ?? pm[1]),
  };
}

// ---------------------------------------------------------------------------
// readelf -lW
// ---------------------------------------------------------------------------

// "  LOAD           0x000000 0x0000000000200000 0x0000000000200000 0x00015a 0x00015a R E 0x1000"
// The type column is "%-14.14s" (may contain blanks for "<unknown>: 7"), flags are exactly three
// characters from {R, ,W, ,E, } and the alignment is "%#lx" (so zero prints as "0", not "0x0").
const PHDR_RE =
  /^ {2}(\S.*?)\s+0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+) ([R ][W ][E ]) (0x[0-9a-f]+|0)$/;

export function readelfSegments(path: string): ReadelfSegment[] {
  const args = ["-lW", path];
  const { stdout } = runReadelf(args);
  if (/^There are no program headers in this file\.$/m.test(stdout)) return [];

  const lines = stdout.split("\n");
  const countMatch = /^There (?:is|are) (\d+) program headers?, starting at offset/m.exec(stdout);
  if (!countMatch) fail(args, "no program header count in output");
  const expected = Number(countMatch[1]);

  const start = lines.findIndex((l) => /^Program Headers:\s*$/.test(l));
  if (start < 0) fail(args, `no "Program Headers:" table`);
  if (!/^\s+Type\s+Offset\s+VirtAddr\s+PhysAddr\s+FileSiz\s+MemSiz\s+Flg\s+Align\s*$/.test(lines[start + 1] ?? "")) {
    fail(args, "unexpected program header column titles", lines[start + 1]);
  }

  const out: ReadelfSegment[] = [];
  for (let i = start + 2; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === "" || /^ Section to Segment mapping:/.test(line)) break;
    // Continuation lines, e.g. "      [Requesting program interpreter: /lib64/ld-linux-x86-64.so.2]"
    if (/^\s+\[.*\]\s*$/.test(line)) continue;
    const m = PHDR_RE.exec(line);
    if (!m) fail(args, "unparseable program header line", line);
    out.push({
      type: m[1]!,
      offset: hex(m[2]!),
      vaddr: hex(m[3]!),
      paddr: hex(m[4]!),
      filesz: hex(m[5]!),
      memsz: hex(m[6]!),
      flags: m[7]!.trimEnd(),
      align: m[8] === "0" ? 0n : hex(m[8]!),
    });
  }
  if (out.length !== expected) {
    fail(args, `parsed ${out.length} program headers but readelf announced ${expected}`);
  }
  return out;
}

// ---------------------------------------------------------------------------
// readelf -rW
// ---------------------------------------------------------------------------

interface RelocSectionText {
  name: string;
  count: number;
  /** the line after the section header (column titles, or "  N offsets" for old-style RELR) */
  title: string;
  rows: string[];
}

/** Split `readelf -rW` output into per-section chunks. */
function splitRelocSections(args: string[], stdout: string, entsize?: (table: string) => number): RelocSectionText[] {
  const sections: RelocSectionText[] = [];
  let cur: RelocSectionText | null = null;
  for (const line of stdout.split("\n")) {
    const h = /^Relocation section '(.*)' at offset 0x[0-9a-f]+ contains (\d+) (?:entry|entries)\b/.exec(line);
    if (h) {
      cur = { name: h[1]!, count: Number(h[2]), title: "", rows: [] };
      sections.push(cur);
      continue;
    }
    // `readelf -D -r` (tables found through the dynamic section): "'RELA' relocation section at
    // offset 0x… contains N bytes:".
    const d = entsize && /^'(\w+)' relocation section at offset 0x[0-9a-f]+ contains (\d+) bytes:/.exec(line);
    if (d) {
      const ent = entsize!(d[1]!);
      if (Number(d[2]) % ent !== 0) fail(args, `${d[2]} bytes is not a whole number of ${ent}-byte entries`, line);
      cur = { name: d[1]!, count: Number(d[2]) / ent, title: "", rows: [] };
      sections.push(cur);
      continue;
    }
    if (line.trim() === "") continue;
    if (!cur) {
      if (/^There are no relocations in this file\.$/.test(line)) continue;
      // Other preamble (e.g. "File: x" when several files are given) is not expected for one file.
      fail(args, "unexpected text before the first relocation section", line);
    }
    if (cur.title === "") cur.title = line;
    else cur.rows.push(line);
  }
  return sections;
}

/**
 * For STT_GNU_IFUNC symbols readelf prints "<name>()" in place of the symbol value, e.g.
 * "R_X86_64_JUMP_SLOT     __atomic_exchange_16@@LIBATOMIC_1.0() __atomic_exchange_16@@LIBATOMIC_1.0 + 0".
 */
const IFUNC_RE = /^(\S+)\(\)\s+(.*)$/;

function isRelrTitle(title: string): boolean {
  // binutils <= 2.41: "  1198 offsets"; binutils >= 2.42: "Index: Entry  Address  Symbolic Address"
  return /^\s*\d+ offsets?\s*$/.test(title) || /^Index:\s+Entry\b/.test(title);
}

/**
 * `readelf -rW`: every REL and RELA relocation, in output order (section by section).
 * SHT_RELR sections (`.relr.dyn`, e.g. in glibc's libc.so.6) carry no per-entry type and are
 * NOT included here (so the count matches `readelf -rW | grep -c R_`); use readelfRelr for them.
 */
export function readelfRelocs(path: string): ReadelfReloc[] {
  const args = ["-rW", path];
  return parseRelocs(args, splitRelocSections(args, runReadelf(args).stdout));
}

/** Entry sizes of the tables `readelf -D -r` names, for an ELF of `cls`. */
function dynEntsize(cls: string): (table: string) => number {
  const is64 = cls === "ELF64";
  return (t) => (t === "RELA" ? (is64 ? 24 : 12) : t === "REL" ? (is64 ? 16 : 8) : is64 ? 8 : 4);
}

/**
 * `readelf -D -rW`: the REL and RELA relocations found through the dynamic section (for files
 * without section headers), row count cross-checked against the table's size.
 */
export function readelfDynRelocs(path: string): ReadelfReloc[] {
  const args = ["-D", "-rW", path];
  return parseRelocs(args, splitRelocSections(args, runReadelf(args).stdout, dynEntsize(readelfHeader(path).class)));
}

/** `readelf -D -rW`: the addresses a DT_RELR table (found through the dynamic section) relocates. */
export function readelfDynRelr(path: string): bigint[] {
  const args = ["-D", "-rW", path];
  return relrOf(args, splitRelocSections(args, runReadelf(args).stdout, dynEntsize(readelfHeader(path).class))).flatMap((r) => r.offsets);
}

function parseRelocs(args: string[], sections: RelocSectionText[]): ReadelfReloc[] {
  const out: ReadelfReloc[] = [];
  for (const sec of sections) {
    if (isRelrTitle(sec.title)) continue;
    if (!/^\s*Offset\s+Info\s+Type\b/.test(sec.title)) {
      fail(args, `unexpected column titles in section ${sec.name}`, sec.title);
    }
    const isRela = /Addend/.test(sec.title);
    let n = 0;
    for (const line of sec.rows) {
      // MIPS64 prints each of the three r_info types; the extra ones are on continuation lines.
      if (/^\s+Type[23]:/.test(line)) continue;
      const m = /^([0-9a-f]+)\s+([0-9a-f]+)\s+(unrecognized: [0-9a-f]+|\S+)(.*)$/.exec(line);
      if (!m) fail(args, `unparseable relocation in ${sec.name}`, line);
      const rest = m[4]!.trim();
      let symValue: bigint | null = null;
      let symName: string | null = null;
      let addend: bigint | null = null;
      if (isRela) {
        let r: RegExpExecArray | null;
        if ((r = /^(-?)([0-9a-f]+)$/.exec(rest))) {
          // No symbol: readelf prints the addend alone ("-" prefix when negative).
          addend = r[1] ? -hex(r[2]!) : hex(r[2]!);
        } else if ((r = /^([0-9a-f]+)\s+(.*?)\s*([+-]) ([0-9a-f]+)$/.exec(rest))) {
          symValue = hex(r[1]!);
          symName = r[2]!;
          addend = r[3] === "-" ? -hex(r[4]!) : hex(r[4]!);
        } else if ((r = IFUNC_RE.exec(rest)) && (r = /^(.*?)\s*([+-]) ([0-9a-f]+)$/.exec(r[2]!))) {
          symName = r[1]!; // symValue stays null: readelf prints "name()" instead of the value
          addend = r[2] === "-" ? -hex(r[3]!) : hex(r[3]!);
        } else {
          fail(args, `unparseable RELA symbol/addend in ${sec.name}`, line);
        }
      } else if (rest !== "") {
        let r: RegExpExecArray | null;
        if ((r = /^([0-9a-f]+)(?:\s+(.*))?$/.exec(rest))) {
          symValue = hex(r[1]!);
          symName = r[2] ?? "";
        } else if ((r = IFUNC_RE.exec(rest))) {
          symName = r[2]!;
        } else {
          fail(args, `unparseable REL symbol in ${sec.name}`, line);
        }
      }
      out.push({ section: sec.name, offset: hex(m[1]!), info: hex(m[2]!), type: m[3]!, symValue, symName, addend });
      n++;
    }
    if (n !== sec.count) fail(args, `parsed ${n} relocations in ${sec.name} but readelf announced ${sec.count}`);
  }
  return out;
}

/**
 * `readelf -rW`, SHT_RELR sections only (decoded addresses). Supports the binutils 2.40/2.41
 * format ("  N offsets" then one address per line, count cross-checked) and the >= 2.42 format
 * ("Index: Entry Address Symbolic Address" with bitmap continuation lines).
 */
export function readelfRelr(path: string): ReadelfRelr[] {
  const args = ["-rW", path];
  return relrOf(args, splitRelocSections(args, runReadelf(args).stdout));
}

function relrOf(args: string[], sections: RelocSectionText[]): ReadelfRelr[] {
  const out: ReadelfRelr[] = [];
  for (const sec of sections) {
    if (!isRelrTitle(sec.title)) continue;
    const offsets: bigint[] = [];
    const old = /^\s*(\d+) offsets?\s*$/.exec(sec.title);
    if (old) {
      for (const line of sec.rows) {
        const m = /^([0-9a-f]+)\s*$/.exec(line);
        if (!m) fail(args, `unparseable RELR offset in ${sec.name}`, line);
        offsets.push(hex(m[1]!));
      }
      if (offsets.length !== Number(old[1])) {
        fail(args, `parsed ${offsets.length} RELR offsets in ${sec.name} but readelf announced ${old[1]}`);
      }
    } else {
      let entries = 0;
      for (const line of sec.rows) {
        let m: RegExpExecArray | null;
        if ((m = /^\d+:\s+([0-9a-f]+)\s+([0-9a-f]+)\b/.exec(line))) {
          entries++;
          offsets.push(hex(m[2]!));
        } else if ((m = /^\d+:\s+([0-9a-f]+)\s*$/.exec(line))) {
          entries++; // a bitmap word with no bits set
        } else if ((m = /^\s+([0-9a-f]+)\b/.exec(line))) {
          offsets.push(hex(m[1]!));
        } else {
          fail(args, `unparseable RELR line in ${sec.name}`, line);
        }
      }
      if (entries !== sec.count) fail(args, `parsed ${entries} RELR words in ${sec.name} but readelf announced ${sec.count}`);
    }
    out.push({ section: sec.name, entries: sec.count, offsets });
  }
  return out;
}

// ---------------------------------------------------------------------------
// readelf -dW
// ---------------------------------------------------------------------------

/** `readelf -dW`: the dynamic section, in order, including the terminating NULL entry. */
export function readelfDynamic(path: string): ReadelfDynamicEntry[] {
  const args = ["-dW", path];
  const { stdout } = runReadelf(args);
  if (/^There is no dynamic section in this file\.$/m.test(stdout)) return [];
  const lines = stdout.split("\n");
  const h = lines.findIndex((l) => /^Dynamic section at offset 0x[0-9a-f]+ contains \d+ (?:entry|entries):/.test(l));
  if (h < 0) return [];
  const count = Number(/contains (\d+)/.exec(lines[h]!)![1]);
  const out: ReadelfDynamicEntry[] = [];
  for (let i = h + 2; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === "") break;
    const m = /^\s*0x([0-9a-f]+)\s+\(([^)]*)\)\s+(.*?)\s*$/.exec(line);
    if (!m) fail(args, "unparseable dynamic entry", line);
    out.push({ tag: hex(m[1]!), name: m[2]!, value: m[3]! });
  }
  if (out.length !== count) fail(args, `parsed ${out.length} dynamic entries but readelf announced ${count}`);
  return out;
}

// ---------------------------------------------------------------------------
// readelf -x <section>
// ---------------------------------------------------------------------------

/**
 * `readelf -x <section>`: the section's bytes as stored in the file (relocations NOT applied)
 * and its sh_addr. Throws if the section does not exist or has no file data (SHT_NOBITS).
 */
export function readelfHexDump(path: string, section: string): { addr: bigint; bytes: Uint8Array } {
  const args = ["-x", section, path];
  const { stdout, stderr } = runReadelf(args);
  const lines = stdout.split("\n");
  const headers = lines.filter((l) => /^Hex dump of section '/.test(l));
  if (headers.length === 0) {
    const why = lines.find((l) => /has no data to dump/.test(l)) ?? stderr.trim();
    fail(args, `no hex dump produced${why ? `: ${why}` : ""}`);
  }
  if (headers.length > 1) fail(args, `more than one section named ${section}`);

  const chunks: number[] = [];
  let addr: bigint | null = null;
  let next: bigint | null = null;
  for (const line of lines) {
    if (!line.startsWith("  0x")) continue;
    // "  0x%8.8lx " then 16 byte slots ("%2.2x" or two blanks) with a blank after every 4th,
    // i.e. a fixed 36-character hex area, then one printable-ASCII character per byte.
    const m = /^ {2}0x([0-9a-f]+) (.{36})(.*)$/.exec(line);
    if (!m) fail(args, "unparseable hex dump line", line);
    const lineAddr = hex(m[1]!);
    if (addr === null) addr = lineAddr;
    else if (lineAddr !== next) fail(args, `non-contiguous hex dump (expected 0x${next!.toString(16)})`, line);
    const digits = m[2]!.replace(/ /g, "");
    if (!/^(?:[0-9a-f]{2})*$/.test(digits)) fail(args, "bad hex digits in dump", line);
    const n = digits.length / 2;
    if (n === 0 || n > 16 || m[3]!.length !== n) fail(args, "hex dump byte count mismatch", line);
    for (let i = 0; i < n; i++) chunks.push(parseInt(digits.slice(2 * i, 2 * i + 2), 16));
    next = lineAddr + BigInt(n);
  }
  if (addr === null) {
    // readelf prints the header but no rows for an empty (size 0) section.
    const secs = readelfSectionAddr(path, section);
    return { addr: secs, bytes: new Uint8Array(0) };
  }
  return { addr, bytes: Uint8Array.from(chunks) };
}

/** sh_addr of a named section via `readelf -SW` (used only for empty sections). */
function readelfSectionAddr(path: string, section: string): bigint {
  const args = ["-SW", path];
  const { stdout } = runReadelf(args);
  for (const line of stdout.split("\n")) {
    const m = /^\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s/.exec(line);
    if (m && m[1] === section) return hex(m[2]!);
  }
  return fail(args, `section ${section} not found`);
}
