/**
 * The Multiboot 2 real boots: the test kernel (kernel.S) assembled with Debian's binutils, booted
 *  - from guest-image's RAM: QEMU 7.2 `-M pc` paused, every placement handed over with
 *    `-device loader,…,force-raw=on` (no -kernel, no BIOS run), CPU state from our cpu object set
 *    over the gdbstub (CR0 first, then the selectors, which QEMU loads from the GDT bootMultiboot2
 *    placed at physical 0 — GDTR is base 0 after reset and QEMU 7.2's gdbstub cannot set it,
 *    realboot.md), then continued;
 *  - by GRUB (Debian grub-pc-bin): an ISO made with grub-mkrescue (+ xorriso, mtools), SeaBIOS
 *    boots it, grub.cfg says `multiboot2 /k …` and `module2 /mN …`.
 * Either way the kernel's COM1 output (its "MB2T …" lines) is returned.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { bootMultiboot2, createVm, fromMap, type Multiboot2Boot, type Vm } from "../../../src/node.js";
import { runQemu } from "../../helpers/qemu.js";

const HERE = dirname(fileURLToPath(import.meta.url));
export const MiB = 0x100000;

export type Variant = "elf32" | "elf64" | "elf32-reloc" | "aout";

/** h = 5381; h = h * 33 ^ b — the kernel's checksum, computed here over the bytes the test gave. */
export function checksum(b: Uint8Array): number {
  let h = 5381;
  for (const x of b) h = (Math.imul(h, 33) ^ x) >>> 0;
  return h;
}

/** Assembles and links the kernel variant into `dir`; returns its path. */
export function buildKernel(dir: string, v: Variant): string {
  const src = join(HERE, "kernel.S");
  const obj = join(dir, `${v}.o`);
  const out = join(dir, v);
  if (v === "aout") {
    // The ELF is linked too, for its symbols (nm is the oracle for where _start lands); the
    // kernel is its flat binary image (objcopy -O binary), loadable only through its address tag.
    execFileSync("i686-linux-gnu-as", ["--32", "--defsym", "AOUT=1", "-o", obj, src]);
    execFileSync("i686-linux-gnu-ld", ["-m", "elf_i386", "-N", "-e", "_start", "-Ttext=0x100000", "--no-warn-rwx-segments", "-o", `${out}.elf`, obj]);
    execFileSync("i686-linux-gnu-objcopy", ["-O", "binary", `${out}.elf`, out]);
  } else if (v === "elf64") {
    execFileSync("x86_64-linux-gnu-as", ["--64", "--defsym", "ELF64=1", "-o", obj, src]);
    execFileSync("x86_64-linux-gnu-ld", ["-m", "elf_x86_64", "-N", "-e", "_start", "-Ttext=0x100000", "--no-warn-rwx-segments", "-o", out, obj]);
  } else {
    const reloc = v === "elf32-reloc";
    execFileSync("i686-linux-gnu-as", ["--32", ...(reloc ? ["--defsym", "RELOC=1"] : []), "-o", obj, src]);
    execFileSync("i686-linux-gnu-ld", ["-m", "elf_i386", "-N", "-e", "_start", `-Ttext=${reloc ? "0x200000" : "0x100000"}`, "--no-warn-rwx-segments", "-o", out, obj]);
  }
  return out;
}

export interface BootInput {
  kernel: string;
  cmdline: string;
  modules: Array<{ name: string; bytes: Uint8Array; cmdline: string }>;
}

/** What the kernel printed: its MB2T lines, without the prefix. */
export type Output = string[];

async function pollSerial(path: string, done: (text: string) => boolean, ms: number): Promise<string> {
  const until = Date.now() + ms;
  for (;;) {
    const text = existsSync(path) ? readFileSync(path, "latin1") : "";
    if (done(text) || Date.now() > until) return text;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const finished = (text: string) => /MB2T (END|BADWALK)/.test(text) || /MB2T EFLAGS [0-9a-f]{8}\n/.test(text) && !/MB2T EAX 36d76289/.test(text);
const lines = (text: string): Output => text.split("\n").filter((l) => l.startsWith("MB2T ")).map((l) => l.slice(5).trimEnd());

const le = (v: bigint, bytes: number) => {
  let s = "";
  for (let i = 0; i < bytes; i++) s += ((v >> BigInt(8 * i)) & 0xffn).toString(16).padStart(2, "0");
  return s;
};

/** QEMU x86_64 gdbstub register numbers (gdb's i386:x86-64 layout; realboot.md). */
const REG = { eax: 0, ebx: 1, ecx: 2, edx: 3, esi: 4, edi: 5, ebp: 6, esp: 7, rip: 16, eflags: 17, cs: 18, ss: 19, ds: 20, es: 21, fs: 22, gs: 23, cr0: 27 } as const;

export interface OursOptions {
  /** Negative controls: hand over a wrong magic or a wrong EBX. */
  eax?: bigint;
  ebxDelta?: bigint;
}

/** Places everything with bootMultiboot2 and boots it in QEMU from our RAM. */
export async function bootOurs(dir: string, input: BootInput, opts: OursOptions = {}): Promise<{ boot: Multiboot2Boot; vm: Vm; out: Output; raw: string }> {
  const files: Record<string, Uint8Array> = { k: new Uint8Array(readFileSync(input.kernel)) };
  input.modules.forEach((m) => (files[m.name] = m.bytes));
  const vm = await createVm({ ram: [{ base: 0, size: 256 * MiB }], files: fromMap(files) });
  const boot = await bootMultiboot2(vm, { kernel: "k", cmdline: input.cmdline, modules: input.modules.map((m) => ({ name: m.name, cmdline: m.cmdline })) });
  const cpu = boot.cpu;
  if (cpu.arch !== "x86" || cpu.mode !== "protected") throw new Error(`unexpected cpu state ${JSON.stringify(cpu, (_k, v) => (typeof v === "bigint" ? v.toString(16) : v))}`);
  // QEMU's gdbstub cannot load GDTR: the library's GDT must be where the reset GDTR points.
  if (cpu.gdtr?.base !== 0n) throw new Error(`the GDT is at ${cpu.gdtr?.base.toString(16)}, not at 0 where QEMU's reset GDTR points`);
  const loaders: string[] = [];
  vm.placed().forEach((p, i) => {
    const f = join(dir, `blob${i}.bin`);
    writeFileSync(f, vm.ram.read(p.paddr, p.size));
    loaders.push("-device", `loader,file=${f},addr=0x${p.paddr.toString(16)},force-raw=on`);
  });
  const serial = join(dir, `ours-${Date.now()}-${Math.random().toString(36).slice(2)}.txt`);
  const raw = await runQemu({ arch: "x86_64", gdb: true, timeoutMs: 60_000, args: ["-M", "pc", "-m", "256M", "-serial", `file:${serial}`, ...loaders] }, async (q) => {
    const set = async (reg: keyof typeof REG, v: bigint, bytes = 8) => {
      const r = await q.gdbPacket(`P${REG[reg].toString(16)}=${le(v, bytes)}`);
      if (r !== "OK") throw new Error(`gdbstub refused writing ${reg}: ${JSON.stringify(r)}`);
    };
    // QEMU's gdbstub answers register writes (P) only to a client that has read the target
    // description (gdbstub.c handle_set_reg: gdb_has_xml), as gdb does on connecting.
    await q.gdbPacket("qSupported:xmlRegisters=i386");
    const xml = await q.gdbPacket("qXfer:features:read:target.xml:0,fff");
    if (!/^[lm]/.test(xml)) throw new Error(`gdbstub gave no target description: ${JSON.stringify(xml.slice(0, 80))}`);
    // CR0 first: with PE set, the selector writes load descriptors from the GDT.
    await set("cr0", cpu.cr0);
    for (const s of ["cs", "ds", "es", "fs", "gs", "ss"] as const) await set(s, BigInt(cpu.segments[s].selector), 4);
    await set("eflags", cpu.rflags, 4);
    // Every general register the cpu object names (all zero but eax and ebx), then the controls.
    for (const r of ["eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp"] as const) await set(r, cpu.regs[r]);
    if (opts.eax !== undefined) await set("eax", opts.eax);
    if (opts.ebxDelta !== undefined) await set("ebx", cpu.regs.ebx + opts.ebxDelta);
    await set("rip", cpu.rip);
    await q.gdbPacket("c", { noReply: true });
    return pollSerial(serial, finished, 45_000);
  });
  return { boot, vm, out: lines(raw), raw };
}

/** Boots the same kernel and modules by GRUB from an ISO. */
export async function bootGrub(dir: string, input: BootInput): Promise<{ out: Output; raw: string }> {
  const root = mkdtempSync(join(dir, "iso-"));
  mkdirSync(join(root, "boot", "grub"), { recursive: true });
  writeFileSync(join(root, "k"), readFileSync(input.kernel));
  input.modules.forEach((m, i) => writeFileSync(join(root, `m${i}`), m.bytes));
  writeFileSync(join(root, "boot", "grub", "grub.cfg"), [
    "set timeout=0",
    "set default=0",
    'menuentry "mb2" {',
    `  multiboot2 /k ${input.cmdline}`,
    ...input.modules.map((m, i) => `  module2 /m${i} ${m.cmdline}`),
    "  boot",
    "}",
    "",
  ].join("\n"));
  const iso = join(dir, `grub-${Date.now()}-${Math.random().toString(36).slice(2)}.iso`);
  execFileSync("grub-mkrescue", ["-o", iso, root], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, SOURCE_DATE_EPOCH: "0" } });
  rmSync(root, { recursive: true, force: true });
  const serial = `${iso}.serial.txt`;
  const raw = await runQemu({ arch: "x86_64", timeoutMs: 90_000, args: ["-M", "pc", "-m", "256M", "-cdrom", iso, "-boot", "d", "-serial", `file:${serial}`] }, async (q) => {
    await q.hmp("cont");
    return pollSerial(serial, finished, 80_000);
  });
  return { out: lines(raw), raw };
}

/** Parsed output: the tags in order, and the facts about each. */
export interface Parsed {
  start: number;
  eax: number;
  cr0: number;
  eflags: number;
  tags: Array<{ type: number; size: number }>;
  cmdline?: string;
  loader?: string;
  modules: Array<{ start: number; end: number; sum: number; str: string }>;
  meminfo?: { lower: number; upper: number };
  mmap?: { entrySize: number; version: number; entries: Array<{ base: bigint; length: bigint; type: number }> };
  elf?: { num: number; entsize: number; shndx: number; sections: Array<{ i: number; type: number; size: number; sum: number | null }> };
  loadBase?: number;
  end?: number;
  badWalk: boolean;
}

export function parse(out: Output): Parsed {
  const p: Parsed = { start: -1, eax: -1, cr0: -1, eflags: -1, tags: [], modules: [], badWalk: false };
  const x = (s: string) => parseInt(s, 16);
  const q = (s: string) => /^"(.*)"$/.exec(s)?.[1] ?? `<unquoted ${s}>`;
  for (const l of out) {
    const [k, ...a] = l.split(" ");
    const rest = l.slice(k.length + 1);
    switch (k) {
      case "START": p.start = x(a[0]); break;
      case "EAX": p.eax = x(a[0]); break;
      case "CR0": p.cr0 = x(a[0]); break;
      case "EFLAGS": p.eflags = x(a[0]); break;
      case "TAG": p.tags.push({ type: x(a[0]), size: x(a[1]) }); break;
      case "CMDLINE": p.cmdline = q(rest); break;
      case "LOADER": p.loader = q(rest); break;
      case "MODULE": p.modules.push({ start: x(a[0]), end: x(a[1]), sum: x(a[2]), str: q(a.slice(3).join(" ")) }); break;
      case "MEMINFO": p.meminfo = { lower: x(a[0]), upper: x(a[1]) }; break;
      case "MMAP": p.mmap = { entrySize: x(a[0]), version: x(a[1]), entries: [] }; break;
      case "MMAPE": p.mmap!.entries.push({ base: BigInt(`0x${a[0]}`), length: BigInt(`0x${a[1]}`), type: x(a[2]) }); break;
      case "ELF": p.elf = { num: x(a[0]), entsize: x(a[1]), shndx: x(a[2]), sections: [] }; break;
      case "SECT": p.elf!.sections.push({ i: x(a[0]), type: x(a[1]), size: x(a[2]), sum: a[3] === "-" ? null : x(a[3]) }); break;
      case "LOADBASE": p.loadBase = x(a[0]); break;
      case "END": p.end = x(a[0]); break;
      case "BADWALK": p.badWalk = true; break;
      default: throw new Error(`unexpected kernel line ${JSON.stringify(l)}`);
    }
  }
  return p;
}
