#!/usr/bin/env node
// The `guest-image` command. Its --json output and --dump-ram file are a contract other tools
// rely on (see README, "CLI"): every address and size is a "0x…" string; a failed load exits 1
// with one line on stderr and {"error":{"code","message"}} on stdout; usage errors exit 2.
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
// The Node entry registers the platform pieces: node:zlib (inflate, CRC-32), node:crypto (SHA-256).
import "../node.js";
import { bootLinux, type LinuxBoot } from "../boot/linux.js";
import { bootMultiboot2, type Multiboot2Boot } from "../boot/multiboot2.js";
import { GuestImageError } from "../errors.js";
import { inspectFile, type Inspection } from "../inspect.js";
import { hex } from "../num.js";
import { fromPaths, openPath } from "../sources/directory.js";
import { readBytes } from "../sources/source.js";
import { isUki } from "../formats/uki.js";
import { createVm, type LoadedImage, type LoadedKernel, type Vm } from "../vm.js";
import type { MeasuredEvent } from "../measure.js";
import { parseArgs, USAGE, UsageError, type BootArgs, type InspectArgs, type LoadArgs, type Multiboot2Args } from "./args.js";

/** Keys whose numeric values are counts or codes, not addresses or sizes. */
const PLAIN_NUMBERS = new Set(["profile", "index", "relocations", "e_machine", "flags", "version", "last_comp_version", "boot_cpuid_phys", "el"]);

/** JSON with every number and bigint (addresses, sizes) as a "0x…" string. */
export function toJson(value: unknown): unknown {
  const conv = (v: unknown, key: string): unknown => {
    // Raw bytes (a bzImage's real-mode setup) are printed as hex, not as an object of indices.
    if (v instanceof Uint8Array) return Array.from(v, (b) => b.toString(16).padStart(2, "0")).join("");
    if (typeof v === "bigint" || (typeof v === "number" && !PLAIN_NUMBERS.has(key))) return hex(v);
    if (Array.isArray(v)) return v.map((x) => conv(x, ""));
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, conv(x, k)]));
    return v;
  };
  return conv(value, "");
}

const human = (n: number) =>
  n >= 1024 ** 3 && n % 1024 ** 3 === 0 ? `${n / 1024 ** 3} GiB`
    : n >= 1024 ** 2 ? `${+(n / 1024 ** 2).toFixed(1)} MiB`
      : n >= 1024 ? `${+(n / 1024).toFixed(1)} KiB` : `${n} B`;

function out(line = ""): void {
  process.stdout.write(line + "\n");
}

async function inspect(a: InspectArgs): Promise<number> {
  const file = openPath(a.file);
  let info: Inspection;
  try {
    info = await inspectFile(file);
  } finally {
    await file.close();
  }
  if (a.json) {
    const { segments, elfType: _t, description: _d, ...rest } = info;
    const seg = segments?.map(({ type, offset, vaddr, paddr, filesz, memsz }) => ({ type, offset, vaddr, paddr, filesz, memsz }));
    out(JSON.stringify(toJson(seg ? { ...rest, segments: seg } : rest)));
    return 0;
  }
  out(`${info.name}: ${info.format} (${info.description}), ${hex(info.size)} bytes (${human(info.size)})`);
  if (info.format === "elf") {
    out(`  ${info.class} ${info.endian}-endian ${info.elfType} ${info.machine}, entry ${hex(info.entry!)}`);
    const rows = info.segments!.map((s) => [s.type, hex(s.offset), hex(s.vaddr), hex(s.paddr), hex(s.filesz), hex(s.memsz), s.flags, hex(s.align)]);
    table(["TYPE", "OFFSET", "VADDR", "PADDR", "FILESZ", "MEMSZ", "FLG", "ALIGN"], rows, "  ");
  }
  const extra = Object.entries(info).filter(([k]) => !["name", "format", "description", "size", "machine", "class", "endian", "entry", "segments", "elfType"].includes(k));
  for (const [k, v] of extra) out(`  ${k}: ${JSON.stringify(toJson(v))}`);
  return 0;
}

function table(head: string[], rows: string[][], indent = ""): void {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => out(indent + r.map((c, i) => c.padEnd(w[i])).join("  ").trimEnd());
  line(head);
  rows.forEach(line);
}

function dumpRam(vm: Vm, path: string): void {
  const fd = openSync(path, "w");
  try {
    for (const r of vm.ram.regions) {
      const view = vm.ram.view(r.base, r.size);
      for (let o = 0; o < view.length; o += 1 << 30) writeSync(fd, view, o, Math.min(1 << 30, view.length - o));
    }
  } finally {
    closeSync(fd);
  }
}

async function load(a: LoadArgs): Promise<number> {
  const vm = await createVm({ ram: a.ram, files: fromPaths(), measure: a.measure });
  let kernel: LoadedKernel | null = null;
  const modules: LoadedImage[] = [];
  let failure: unknown;
  try {
    if (a.kernel !== undefined) {
      kernel = await vm.loadKernel(a.kernel, { at: a.kernelAddr, align: a.kernelAlign, relocs: a.relocs, dryRun: a.dryRun });
    }
    for (const m of a.modules) modules.push(await vm.loadModule(m.file, { at: m.at, align: m.align, dryRun: a.dryRun }));
  } catch (e) {
    failure = e;
  }
  // RAM is dumped as it stands even after a failed load, so it can be seen to be unchanged.
  // The load's own error, if any, is the one reported.
  if (a.dumpRam !== undefined) {
    try {
      dumpRam(vm, a.dumpRam);
    } catch (e) {
      failure ??= new GuestImageError("IO", `cannot write --dump-ram "${a.dumpRam}": ${(e as Error).message}`, { cause: e });
    }
  }
  if (failure !== undefined) throw failure;
  const placed = vm.placed();
  if (a.json) {
    out(JSON.stringify(toJson({
      ram: vm.ram.regions.map(({ base, size }) => ({ base, size })),
      kernel: kernel && {
        name: kernel.name, format: kernel.format, load_paddr: kernel.paddr, alignment: kernel.alignment,
        size: kernel.size, entry: kernel.entry, arch: kernel.arch,
      },
      modules: modules.map((m) => ({ name: m.name, load_paddr: m.paddr, alignment: m.alignment, size: m.size })),
      placed,
      ...(a.measure ? { events: vm.measurements() } : {}),
    })));
    return 0;
  }
  out(`guest RAM: ${vm.ram.regions.map((r) => `[${hex(r.base)}, ${hex(r.base + r.size)}) ${human(r.size)}`).join(", ")}${a.dryRun ? "  (dry run: nothing written)" : ""}`);
  if (kernel) {
    const arch = kernel.arch;
    const what = arch.format === "elf"
      ? `${arch.class} ${arch.machine} ${arch.type}, relocation offset ${hex(arch.relocation_offset)}, ${arch.relocations} relocations`
      : [arch.format, ...Object.entries(arch).filter(([k, v]) => k !== "format" && k !== "entry" && (typeof v === "bigint" || typeof v === "string")).map(([k, v]) => `${k} ${typeof v === "bigint" ? hex(v) : v}`)].join(", ");
    out(`kernel ${kernel.name}: ${what}; entry ${hex(kernel.entry)}`);
  }
  out();
  const kinds = new Map<string, string>();
  if (kernel) kinds.set(kernel.name, `kernel (${kernel.format})`);
  for (const m of modules) kinds.set(m.name, `module (${m.format})`);
  table(["NAME", "KIND", "START", "END", "SIZE"], placed.map((p) => [p.name, kinds.get(p.name) ?? "", hex(p.paddr), hex(p.paddr + p.size), human(p.size)]));
  if (a.measure) printEvents(vm.measurements());
  return 0;
}

function printEvents(events: MeasuredEvent[]): void {
  out();
  out("measured boot (SHA-256 of guest RAM [START, START+SIZE) as placed):");
  table(["#", "NAME", "FORMAT", "START", "SIZE", "SHA256"], events.map((e) => [String(e.index), e.name, e.format, hex(e.paddr), hex(e.size), e.digest]));
}

/** A kernel arch record for printing: byte arrays (bzImage setup_bytes) are left out. */
const printable = (arch: object) => Object.fromEntries(Object.entries(arch).filter(([, v]) => !(v instanceof Uint8Array)));

async function boot(a: BootArgs): Promise<number> {
  let b: LinuxBoot | undefined;
  const vm = await createVm({ ram: a.ram, files: fromPaths(), measure: a.measure, reserved: a.reserved });
  let failure: unknown;
  try {
    if (a.dumpDtb !== undefined && (a.arch === "x86" || a.arch === "x86_64")) {
      throw new GuestImageError("BAD_ARGUMENT", "--dump-dtb: x86 boots without a device tree", { field: "dump-dtb" });
    }
    const pvh = a.x86Entry === "pvh";
    // --setup-data files are read through the VM's files, like the kernel.
    const setupEntries = await Promise.all((a.setupData ?? []).map(async (e) => {
      const f = await vm.open(e.file);
      try {
        return { type: e.type, data: await readBytes(f, 0, f.size) };
      } finally {
        await f.close();
      }
    }));
    const x86 = a.arch === "x86" || a.arch === "x86_64"
      ? {
        x86Mode: a.x86Entry && !pvh ? ({ real: "real", "32": "protected", "64": "long" } as const)[a.x86Entry as "real" | "32" | "64"] : undefined,
        ...(pvh ? { x86Entry: "pvh" as const } : {}), ...(a.rsdp !== undefined ? { rsdp: a.rsdp } : {}),
        ...(a.rngSeed || setupEntries.length ? { setupData: { rngSeed: a.rngSeed, entries: setupEntries } } : {}),
        ...(a.noX86Tables ? { x86Tables: false } : {}), ...(a.direct !== undefined ? { x86Direct: a.direct } : {}),
      }
      : {};
    // A UKI kernel: its profile, command-line override and, with --measure, the PCR 11 it gives.
    const uki = a.measure && (await isUkiPath(a.kernel)) ? { measure: true, pcrBanks: a.pcrBanks } : {};
    b = await bootLinux(vm, {
      arch: a.arch, kernel: a.kernel, initrd: a.initrd, dtb: a.dtb, cmdline: a.cmdline, layout: a.layout, firmware: a.firmware, stub: a.stub, seed: a.seed, ...x86,
      ...(a.firmwareAt !== undefined ? { firmwareAt: a.firmwareAt } : {}),
      profile: a.profile, cmdlineOverride: a.cmdlineOverride, ...uki,
    });
  } catch (e) {
    failure = e;
  }
  const write = (path: string, what: string, fn: () => void) => {
    try {
      fn();
    } catch (e) {
      failure ??= new GuestImageError("IO", `cannot write ${what} "${path}": ${(e as Error).message}`, { cause: e });
    }
  };
  if (a.dumpRam !== undefined) write(a.dumpRam, "--dump-ram", () => dumpRam(vm, a.dumpRam!));
  if (failure !== undefined) throw failure;
  const boot = b!;
  if (a.dumpDtb !== undefined && boot.dtb) write(a.dumpDtb, "--dump-dtb", () => writeFileSync(a.dumpDtb!, vm.ram.read(boot.dtb!.paddr, boot.dtb!.size)));
  if (failure !== undefined) throw failure;
  const k = boot.kernel;
  if (a.json) {
    out(JSON.stringify(toJson({
      ram: vm.ram.regions.map(({ base, size }) => ({ base, size })),
      arch: boot.arch,
      layout: boot.layout,
      kernel: { name: k.name, format: k.format, load_paddr: k.paddr, size: k.size, entry: k.entry, arch: printable(k.arch) },
      initrd: boot.initrd ? { name: boot.initrd.name, format: boot.initrd.format, load_paddr: boot.initrd.paddr, size: boot.initrd.size } : null,
      dtb: boot.dtb ? { load_paddr: boot.dtb.paddr, size: boot.dtb.size } : null,
      zero_page: boot.zeroPage ? { load_paddr: boot.zeroPage.paddr, size: boot.zeroPage.size } : null,
      cmdline: boot.cmdline ? { load_paddr: boot.cmdline.paddr, size: boot.cmdline.size } : null,
      // mode, pc, regs first (the contract), then what the architecture's state adds (x86: cpu-x86.ts).
      cpu: (({ mode, pc, regs, ...more }) => ({ mode, pc, regs, ...more }))(boot.cpu),
      placements: boot.placements.map((p) => ({ role: p.role, name: p.name, format: p.format, load_paddr: p.paddr, size: p.size })),
      placed: vm.placed(),
      ...(boot.setupData ? { setup_data: { load_paddr: boot.setupData.paddr, size: boot.setupData.size, nodes: boot.setupData.nodes.map((n) => ({ type: n.type, load_paddr: n.paddr, len: n.len })) } } : {}),
      ...(boot.pvh ? { pvh: { entry: boot.pvh.entry, note_offset: boot.pvh.noteOffset, start_info: { load_paddr: boot.pvh.startInfo.paddr, size: boot.pvh.startInfo.size, memmap_entries: boot.pvh.startInfo.memmapEntries, modules: boot.pvh.startInfo.modules } } } : {}),
      ...(a.measure ? { events: vm.measurements() } : {}),
      ...(boot.uki ? { uki: boot.uki } : {}),
      ...(boot.uki ? { uki: boot.uki } : {}),
    })));
    return 0;
  }
  out(`guest RAM: ${vm.ram.regions.map((r) => `[${hex(r.base)}, ${hex(r.base + r.size)}) ${human(r.size)}`).join(", ")}`);
  out(`${boot.arch} Linux, ${boot.layout} layout; kernel ${k.name} (${k.format}), entry ${hex(k.entry)}`);
  out(`first instruction: pc ${hex(boot.cpu.pc)}, ${boot.cpu.mode}; ${Object.entries(boot.cpu.regs).map(([r, v]) => `${r}=${hex(v)}`).join(" ")}`);
  out();
  table(["ROLE", "NAME", "FORMAT", "START", "END", "SIZE"], boot.placements.map((p) => [p.role, p.name, p.format, hex(p.paddr), hex(p.paddr + p.size), human(p.size)]));
  if (a.measure) printEvents(vm.measurements());
  if (boot.uki) {
    const u = boot.uki;
    out();
    out(`UKI ${u.file}: profile ${u.profile ?? "(none)"}, command line from ${u.cmdline_source}, device tree from ${u.dtb_source}, initrd ${u.initrd_parts.join(" + ") || "(none)"}`);
    if (u.measured) {
      for (const [bank, v] of Object.entries(u.measured.pcr11)) out(`  expected PCR 11 (${bank}): ${v}`);
      out(`  measured sections: ${u.measured.measurements.map((m) => m.section).join(" ")}`);
    }
  }
  return 0;
}

/** Whether a file is a Unified Kernel Image (its head names a .linux PE section). */
async function isUkiPath(path: string): Promise<boolean> {
  const f = openPath(path);
  try {
    return isUki(await readBytes(f, 0, Math.min(8192, f.size)));
  } catch {
    return false; // bootLinux reports the file's problem
  } finally {
    await f.close();
  }
}

async function multiboot2(a: Multiboot2Args): Promise<number> {
  const vm = await createVm({ ram: a.ram, files: fromPaths(), measure: a.measure });
  let b: Multiboot2Boot | undefined;
  let failure: unknown;
  try {
    b = await bootMultiboot2(vm, { kernel: a.kernel, cmdline: a.cmdline, modules: a.modules.map((m) => ({ name: m.file, cmdline: m.cmdline })), at: a.at, infoAt: a.infoAt });
  } catch (e) {
    failure = e;
  }
  if (a.dumpRam !== undefined) {
    try {
      dumpRam(vm, a.dumpRam);
    } catch (e) {
      failure ??= new GuestImageError("IO", `cannot write --dump-ram "${a.dumpRam}": ${(e as Error).message}`, { cause: e });
    }
  }
  if (failure !== undefined) throw failure;
  const boot = b!;
  const k = boot.kernel;
  if (a.json) {
    out(JSON.stringify(toJson({
      ram: vm.ram.regions.map(({ base, size }) => ({ base, size })),
      kernel: { name: k.name, format: k.format, load_paddr: k.paddr, size: k.size, entry: k.entry, arch: printable(k.arch) },
      load_base: boot.loadBase,
      modules: boot.modules.map((m) => ({ name: m.name, cmdline: m.cmdline, load_paddr: m.paddr, size: m.size })),
      info: { load_paddr: boot.info.paddr, size: boot.info.size, tags: boot.info.tags.map((t) => t.type).join(",") },
      missing_info: boot.missingInfo.join(","),
      cpu: boot.cpu,
      placements: boot.placements.map((p) => ({ role: p.role, name: p.name, load_paddr: p.paddr, size: p.size })),
      placed: vm.placed(),
      ...(a.measure ? { events: vm.measurements() } : {}),
    })));
    return 0;
  }
  out(`guest RAM: ${vm.ram.regions.map((r) => `[${hex(r.base)}, ${hex(r.base + r.size)}) ${human(r.size)}`).join(", ")}`);
  out(`Multiboot 2 kernel ${k.name}, load base ${hex(boot.loadBase)}, entry ${hex(k.entry)}; information structure at ${hex(boot.info.paddr)} (tags ${boot.info.tags.map((t) => t.type).join(" ")})`);
  const c = boot.cpu;
  out(`first instruction: pc ${hex(c.pc)}, ${c.mode}; ${Object.entries(c.regs).map(([r, v]) => `${r}=${hex(v)}`).join(" ")}${"cr0" in c ? ` cr0=${hex(c.cr0)} rflags=${hex(c.rflags)}; flat 4 GiB segments, GDT ${c.gdtr ? `at ${hex(c.gdtr.base)}` : "the VMM's"}` : ""}`);
  out();
  table(["ROLE", "NAME", "START", "END", "SIZE"], boot.placements.map((p) => [p.role, p.name, hex(p.paddr), hex(p.paddr + p.size), human(p.size)]));
  if (a.measure) printEvents(vm.measurements());
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`guest-image: ${e.message}\n${USAGE}\n`);
      return 2;
    }
    throw e;
  }
  if (args.command === "help") {
    out(USAGE);
    return 0;
  }
  if (args.command === "version") {
    out(JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")).version);
    return 0;
  }
  try {
    return args.command === "inspect" ? await inspect(args) : args.command === "boot" ? await boot(args) : args.command === "multiboot2" ? await multiboot2(args) : await load(args);
  } catch (e) {
    const err = e instanceof GuestImageError ? e : new GuestImageError("IO", String((e as Error)?.message ?? e), { cause: e });
    process.stderr.write(`guest-image: ${err.code}: ${err.message}\n`);
    if (args.json) out(JSON.stringify({ error: { code: err.code, message: err.message } }));
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`guest-image: internal error: ${(e as Error)?.stack ?? e}\n`);
    process.exitCode = 1;
  },
);
