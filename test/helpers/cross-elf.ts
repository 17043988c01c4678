/**
 * Real cross-architecture ELF fixtures, assembled and linked at test time with
 * Debian's cross binutils (no C compiler needed: sources are plain assembly in
 * ./cross-asm/<arch>.s, ppc.s also for ppc64 and ppc64le; the 64-bit ones and
 * ppc take their note, .data and .bss from ./cross-asm/data.inc, its pointers
 * sized by .LPTR_BYTES from the recipe's class).
 *
 * For every architecture whose `<prefix>as` and `<prefix>ld` are on PATH:
 *  - "exec": static ET_EXEC linked at 0x200000 with two PT_LOADs
 *      [R E: ELF/program headers, .note.guest-image, .text]
 *      [RW : .data ("guest-image data", magic words, pointer table), .bss 0x4000 bytes]
 *    plus PT_NOTE and PT_GNU_STACK (MIPS adds ABIFLAGS/REGINFO, RISC-V adds
 *    RISCV_ATTRIBUTES, which has p_vaddr 0 / p_memsz 0 / p_filesz != 0).
 *    The data PT_LOAD has p_memsz > p_filesz, and p_offset is NOT page aligned
 *    (p_offset == p_vaddr mod 0x1000), as ld lays it out without -z separate-code.
 *  - "pie" (not MIPS): static PIE (ET_DYN, base 0, no PT_INTERP) with the same
 *    layout plus PT_DYNAMIC; its .data pointer table yields exactly 5 RELATIVE
 *    dynamic relocations (R_X86_64/AARCH64/RISCV_RELATIVE in .rela.dyn,
 *    R_386/ARM_RELATIVE in .rel.dyn), one of them pointing into .bss.
 *
 * Every fixture is checked with readelf right after it is linked; a fixture that
 * does not have the promised shape throws (tests must not silently shrink).
 *
 * Outputs are cached in $TMPDIR/guest-image-fixtures/<hash>/<arch>/ where <hash>
 * covers the assembly sources and the build recipe below, so edits rebuild.
 * Each arch is built in a private temp directory and renamed into place, so
 * concurrent vitest workers never see half-written files.
 */
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { accessSync, constants, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

import { readelfDynamic, readelfHeader, readelfHexDump, readelfRelocs, readelfRelr, readelfSegments } from "./readelf.js";

export type CrossArch = "x86_64" | "i686" | "aarch64" | "riscv64" | "arm" | "mips" | "s390x" | "ppc64" | "ppc64le" | "ppc" | "sparc64";

export interface CrossElf {
  arch: CrossArch;
  kind: FixtureKind;
  path: string;
  class: 32 | 64;
  endian: "little" | "big";
}

/**
 * "relr": the PIE linked with -z pack-relative-relocs (gABI DT_RELR), for the machines whose
 * Debian bookworm ld (binutils 2.40) packs them: x86-64, i386, ppc64 (both byte orders).
 */
export type FixtureKind = "exec" | "pie" | "relr";

export const CROSS_ARCHES: readonly CrossArch[] = ["x86_64", "i686", "aarch64", "riscv64", "arm", "mips", "s390x", "ppc64", "ppc64le", "ppc", "sparc64"];

/** Where the exec fixtures are linked (first PT_LOAD's p_vaddr == p_paddr). */
export const EXEC_BASE = 0x200000n;

/** First bytes of every fixture's .data section. */
export const DATA_MAGIC = "guest-image data";

interface Recipe {
  class: 32 | 64;
  endian: "little" | "big";
  as: string[];
  /** emulation and arch-specific ld flags, used for both exec and pie */
  ld: string[];
  /** extra flags for the pie link only */
  pieLd: string[];
  /** null: no PIE fixture for this arch */
  pie: null | { relocType: string; relocSection: ".rela.dyn" | ".rel.dyn"; dynTag: "RELA" | "REL" };
  /** Also link the PIE with -z pack-relative-relocs (DT_RELR). */
  relr?: boolean;
  /** readelf's Machine text */
  machine: string;
  /** The source in ./cross-asm/ when not <arch>.s (one source for machines whose code is the same). */
  src?: string;
}

const RECIPES: Record<CrossArch, Recipe> = {
  x86_64: {
    class: 64,
    endian: "little",
    as: ["--64"],
    ld: ["-m", "elf_x86_64"],
    pieLd: ["--no-ld-generated-unwind-info"], // drop the empty linker-made .eh_frame
    pie: { relocType: "R_X86_64_RELATIVE", relocSection: ".rela.dyn", dynTag: "RELA" },
    relr: true,
    machine: "Advanced Micro Devices X86-64",
  },
  i686: {
    class: 32,
    endian: "little",
    as: ["--32", "-march=i686"],
    ld: ["-m", "elf_i386"],
    pieLd: ["--no-ld-generated-unwind-info"],
    pie: { relocType: "R_386_RELATIVE", relocSection: ".rel.dyn", dynTag: "REL" },
    relr: true,
    machine: "Intel 80386",
  },
  aarch64: {
    class: 64,
    endian: "little",
    as: ["-EL"],
    ld: ["-m", "aarch64linux"],
    pieLd: [],
    pie: { relocType: "R_AARCH64_RELATIVE", relocSection: ".rela.dyn", dynTag: "RELA" },
    machine: "AArch64",
  },
  riscv64: {
    class: 64,
    endian: "little",
    as: ["-march=rv64gc", "-mabi=lp64d"],
    ld: ["-m", "elf64lriscv"],
    pieLd: [],
    pie: { relocType: "R_RISCV_RELATIVE", relocSection: ".rela.dyn", dynTag: "RELA" },
    machine: "RISC-V",
  },
  arm: {
    class: 32,
    endian: "little",
    as: ["-EL", "-march=armv7-a", "-mfloat-abi=hard"],
    ld: ["-m", "armelf_linux_eabi"],
    pieLd: [],
    pie: { relocType: "R_ARM_RELATIVE", relocSection: ".rel.dyn", dynTag: "REL" },
    machine: "ARM",
  },
  mips: {
    class: 32,
    endian: "big",
    as: ["-EB", "-march=mips32r2", "-mabi=32"],
    ld: ["-EB", "-m", "elf32btsmip"],
    pieLd: [],
    pie: null,
    machine: "MIPS R3000",
  },
  s390x: {
    class: 64,
    endian: "big",
    as: ["-m64"],
    ld: ["-m", "elf64_s390"],
    pieLd: [],
    pie: { relocType: "R_390_RELATIVE", relocSection: ".rela.dyn", dynTag: "RELA" },
    machine: "IBM S/390",
  },
  ppc64: {
    class: 64,
    endian: "big",
    as: ["-a64", "-mbig"],
    ld: ["-m", "elf64ppc"],
    pieLd: [],
    pie: { relocType: "R_PPC64_RELATIVE", relocSection: ".rela.dyn", dynTag: "RELA" },
    relr: true,
    machine: "PowerPC64",
    src: "ppc.s", // the same code as ppc; -a64 and the byte order make the difference
  },
  ppc64le: {
    class: 64,
    endian: "little",
    as: ["-a64", "-mlittle"],
    ld: ["-m", "elf64lppc"],
    pieLd: [],
    pie: { relocType: "R_PPC64_RELATIVE", relocSection: ".rela.dyn", dynTag: "RELA" },
    relr: true,
    machine: "PowerPC64",
    src: "ppc.s", // the same code as ppc; -a64 and the byte order make the difference
  },
  ppc: {
    class: 32,
    endian: "big",
    as: ["-a32", "-mbig"],
    ld: ["-m", "elf32ppclinux", "--secure-plt"], // no executable BSS PLT, so the data PT_LOAD is RW
    pieLd: [],
    pie: { relocType: "R_PPC_RELATIVE", relocSection: ".rela.dyn", dynTag: "RELA" },
    machine: "PowerPC",
  },
  sparc64: {
    class: 64,
    endian: "big",
    as: ["-64"],
    ld: ["-m", "elf64_sparc"],
    pieLd: [],
    pie: { relocType: "R_SPARC_RELATIVE", relocSection: ".rela.dyn", dynTag: "RELA" },
    machine: "Sparc v9",
  },
};

const COMMON_LD = [
  "--build-id=none",
  "-e",
  "_start",
  "-z",
  "max-page-size=0x1000",
  "-z",
  "common-page-size=0x1000",
  "-z",
  "noseparate-code", // headers+text share one R E PT_LOAD, no empty/extra segments
  "-z",
  "noexecstack", // emits PT_GNU_STACK (a non-LOAD header to skip)
];
const EXEC_LD = ["-static", `-Ttext-segment=0x${EXEC_BASE.toString(16)}`];
const PIE_LD = ["-static", "-pie", "--no-dynamic-linker", "-z", "text", "-z", "norelro", "--hash-style=sysv"];
const RELR_LD = ["-z", "pack-relative-relocs"];

/** Bump to force a rebuild when the verification or layout logic changes. */
const RECIPE_VERSION = "2";

const ASM_DIR = fileURLToPath(new URL("./cross-asm/", import.meta.url));
/** Files the <arch>.s sources `.include` (found through -I ASM_DIR). */
const INCLUDES = ["data.inc"];

/** "" for x86_64 on an x86-64 host (native binutils), else "<triplet>-". */
export function toolPrefix(arch: CrossArch): string {
  switch (arch) {
    case "x86_64":
      return process.arch === "x64" ? "" : "x86_64-linux-gnu-";
    case "i686":
      return "i686-linux-gnu-";
    case "aarch64":
      return "aarch64-linux-gnu-";
    case "riscv64":
      return "riscv64-linux-gnu-";
    case "arm":
      return "arm-linux-gnueabihf-";
    case "mips":
      return "mips-linux-gnu-";
    case "s390x":
      return "s390x-linux-gnu-";
    case "ppc64":
      return "powerpc64-linux-gnu-";
    case "ppc64le":
      return "powerpc64le-linux-gnu-";
    case "ppc":
      return "powerpc-linux-gnu-";
    case "sparc64":
      return "sparc64-linux-gnu-";
  }
}

function onPath(exe: string): boolean {
  for (const dir of (process.env["PATH"] ?? "").split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, exe), constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

/** True when `<prefix>as` and `<prefix>ld` are on PATH. */
export function haveTools(arch: CrossArch): boolean {
  const p = toolPrefix(arch);
  return onPath(`${p}as`) && onPath(`${p}ld`);
}

function run(cmd: string, args: string[], cwd: string): void {
  const res = spawnSync(cmd, args, { cwd, encoding: "utf8", env: { ...process.env, LC_ALL: "C" } });
  const line = `${cmd} ${args.join(" ")}`;
  if (res.error) throw new Error(`cross-elf: ${line}: failed to run: ${res.error.message}`);
  if (res.status !== 0) {
    throw new Error(`cross-elf: ${line}: exit status ${res.status ?? res.signal}\n${res.stderr.trim()}`);
  }
  // Warnings (e.g. "cannot find entry symbol") mean the fixture is not what we think it is.
  if (res.stderr.trim() !== "") throw new Error(`cross-elf: ${line}: unexpected diagnostics\n${res.stderr.trim()}`);
}

function sourceName(arch: CrossArch): string {
  return RECIPES[arch].src ?? `${arch}.s`;
}

function sourcePath(arch: CrossArch): string {
  return join(ASM_DIR, sourceName(arch));
}

function cacheKey(): string {
  const h = createHash("sha256");
  h.update(`guest-image cross-elf recipe v${RECIPE_VERSION}\n`);
  h.update(JSON.stringify({ RECIPES, COMMON_LD, EXEC_LD, PIE_LD, RELR_LD }));
  for (const file of [...new Set(CROSS_ARCHES.map(sourceName)), ...INCLUDES]) {
    h.update(`\n--- ${file} ---\n`);
    h.update(readFileSync(join(ASM_DIR, file)));
  }
  return h.digest("hex").slice(0, 16);
}

function fixtureFiles(arch: CrossArch): { kind: FixtureKind; file: string }[] {
  const out: { kind: FixtureKind; file: string }[] = [{ kind: "exec", file: `${arch}-exec.elf` }];
  if (RECIPES[arch].pie) out.push({ kind: "pie", file: `${arch}-pie.elf` });
  if (RECIPES[arch].relr) out.push({ kind: "relr", file: `${arch}-relr.elf` });
  return out;
}

function check(cond: boolean, path: string, what: string): asserts cond {
  if (!cond) throw new Error(`cross-elf: fixture ${path} is broken: ${what}`);
}

/** Verify a freshly linked fixture with readelf (only done once, before it enters the cache). */
function verify(arch: CrossArch, kind: FixtureKind, path: string): void {
  const r = RECIPES[arch];
  const hdr = readelfHeader(path);
  check(hdr.class === `ELF${r.class}`, path, `class ${hdr.class}`);
  check(hdr.endian === r.endian, path, `endian ${hdr.endian}`);
  check(hdr.machine === r.machine, path, `machine "${hdr.machine}"`);
  check(hdr.type === (kind === "exec" ? "EXEC" : "DYN"), path, `type ${hdr.type}`);

  const segs = readelfSegments(path);
  const loads = segs.filter((s) => s.type === "LOAD");
  check(loads.length >= 2, path, `${loads.length} PT_LOADs`);
  const text = loads.find((s) => s.flags === "R E");
  const data = loads.find((s) => s.flags === "RW");
  check(text !== undefined, path, "no R E PT_LOAD");
  check(data !== undefined, path, "no RW PT_LOAD");
  check(data.memsz - data.filesz >= 0x3000n, path, `data PT_LOAD memsz 0x${data.memsz.toString(16)} filesz 0x${data.filesz.toString(16)}`);
  check(!segs.some((s) => s.type === "INTERP"), path, "has PT_INTERP");
  if (kind === "exec") {
    check(loads[0]!.vaddr === EXEC_BASE, path, `first PT_LOAD at 0x${loads[0]!.vaddr.toString(16)}`);
  } else {
    check(loads[0]!.vaddr === 0n, path, "PIE not based at 0");
  }
  check(hdr.entry >= text.vaddr && hdr.entry < text.vaddr + text.memsz, path, "entry outside text PT_LOAD");

  const dump = readelfHexDump(path, ".data");
  const magic = new TextDecoder().decode(dump.bytes.subarray(0, DATA_MAGIC.length));
  check(magic === DATA_MAGIC, path, `.data starts with ${JSON.stringify(magic)}`);
  check(dump.addr >= data.vaddr && dump.addr < data.vaddr + data.filesz, path, ".data outside RW PT_LOAD");

  const relocs = readelfRelocs(path);
  if (kind === "exec") {
    check(relocs.length === 0, path, `exec has ${relocs.length} relocations`);
    check(!segs.some((s) => s.type === "DYNAMIC"), path, "exec has PT_DYNAMIC");
    return;
  }
  const pie = r.pie!;
  if (kind === "relr") {
    // Every RELATIVE relocation packed: no REL/RELA entries, DT_RELR, 5 decoded sites in .data.
    check(relocs.length === 0, path, `${relocs.length} REL/RELA relocations left`);
    const sites = readelfRelr(path).flatMap((x) => x.offsets);
    check(sites.length === 5, path, `${sites.length} RELR sites`);
    for (const o of sites) check(o >= dump.addr && o < dump.addr + BigInt(dump.bytes.length), path, "RELR site outside .data");
    check(readelfDynamic(path).some((d) => d.name === "RELR"), path, "no DT_RELR");
    return;
  }
  check(relocs.length >= 4, path, `only ${relocs.length} relocations`);
  for (const rel of relocs) {
    check(rel.type === pie.relocType, path, `relocation type ${rel.type} (want only ${pie.relocType})`);
    check(rel.section === pie.relocSection, path, `relocation in ${rel.section}`);
    check(rel.symName === null, path, `symbolic relocation against ${rel.symName}`);
    check(rel.offset >= dump.addr && rel.offset < dump.addr + BigInt(dump.bytes.length), path, "relocation outside .data");
  }
  check(segs.some((s) => s.type === "DYNAMIC"), path, "no PT_DYNAMIC");
  const dyn = readelfDynamic(path);
  check(dyn.some((d) => d.name === pie.dynTag), path, `no DT_${pie.dynTag}`);
  check(!dyn.some((d) => d.name === "TEXTREL"), path, "has DT_TEXTREL");
}

/** Build (or reuse) all fixtures for one arch; returns the directory holding them. */
function ensureArch(root: string, arch: CrossArch): string {
  const final = join(root, arch);
  const files = fixtureFiles(arch);
  if (existsSync(final)) {
    if (files.every((f) => existsSync(join(final, f.file)))) return final;
    rmSync(final, { recursive: true, force: true }); // damaged cache entry
  }

  const tmp = join(root, `.tmp-${arch}-${process.pid}-${randomBytes(4).toString("hex")}`);
  mkdirSync(tmp, { recursive: true });
  try {
    const r = RECIPES[arch];
    const p = toolPrefix(arch);
    const obj = join(tmp, `${arch}.o`);
    run(`${p}as`, [...r.as, "-I", ASM_DIR, "--defsym", `.LPTR_BYTES=${r.class / 8}`, "-o", obj, sourcePath(arch)], tmp);
    for (const f of files) {
      const out = join(tmp, f.file);
      const kindLd = f.kind === "exec" ? EXEC_LD : [...PIE_LD, ...r.pieLd, ...(f.kind === "relr" ? RELR_LD : [])];
      run(`${p}ld`, [...r.ld, ...COMMON_LD, ...kindLd, "-o", out, obj], tmp);
      verify(arch, f.kind, out);
    }
    try {
      renameSync(tmp, final);
    } catch (e) {
      // Another worker won the race: its identical, verified copy is in place.
      const code = (e as NodeJS.ErrnoException).code;
      if (!(code === "ENOTEMPTY" || code === "EEXIST") || !existsSync(final)) throw e;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return final;
}

/**
 * Build (or reuse from the cache) every fixture for which tools are installed.
 * Order: CROSS_ARCHES order, "exec" before "pie". Throws (with the tool's stderr)
 * if tools are present but assembling, linking or verification fails.
 */
export function buildCrossElfs(): CrossElf[] {
  const root = join(tmpdir(), "guest-image-fixtures", cacheKey());
  mkdirSync(root, { recursive: true });
  const out: CrossElf[] = [];
  for (const arch of CROSS_ARCHES) {
    if (!haveTools(arch)) continue;
    const dir = ensureArch(root, arch);
    const r = RECIPES[arch];
    for (const f of fixtureFiles(arch)) {
      out.push({ arch, kind: f.kind, path: join(dir, f.file), class: r.class, endian: r.endian });
    }
  }
  return out;
}
