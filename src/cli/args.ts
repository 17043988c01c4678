// Command-line parsing for the `guest-image` tool. Numbers are decimal or 0x hex; sizes may end
// in K, M or G (powers of 1024). Anything malformed is a UsageError (exit status 2).

export class UsageError extends Error {}

const SUFFIX: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** Parses "123", "0x7b", "64K", "0x10M"… into an exact integer ≤ 2^53 − 1. */
export function parseNumber(text: string, what: string, allowSuffix = true): number {
  const m = /^(0[xX][0-9a-fA-F]+|[0-9]+)([KMGkmg]?)$/.exec(text.trim());
  if (!m || (!allowSuffix && m[2])) throw new UsageError(`${what}: "${text}" is not a number (decimal or 0x hex${allowSuffix ? ", optional K/M/G" : ""})`);
  const v = BigInt(m[1]) * BigInt(SUFFIX[m[2].toUpperCase()]);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new UsageError(`${what}: ${text} is larger than 2^53-1`);
  return Number(v);
}

export interface RamArg {
  base: number;
  size: number;
}

export interface ModuleArg {
  file: string;
  at: number;
  align: number;
}

export interface LoadArgs {
  command: "load";
  ram: RamArg[];
  kernel?: string;
  kernelAddr?: number;
  kernelAlign: number;
  relocs?: string;
  modules: ModuleArg[];
  dryRun: boolean;
  json: boolean;
  dumpRam?: string;
  /** Measured boot: print the event log (JSON: an "events" key). */
  measure: boolean;
}

export interface BootArgs {
  command: "boot";
  arch: "arm64" | "arm" | "riscv64" | "riscv32" | "x86_64" | "x86";
  ram: RamArg[];
  kernel: string;
  initrd?: string;
  dtb?: string;
  cmdline?: string;
  layout: "qemu" | "default";
  firmware?: string;
  /** --firmware-at <addr> (riscv): an SBI firmware already in the machine (bootLinux firmwareAt). */
  firmwareAt?: number;
  json: boolean;
  measure: boolean;
  dumpRam?: string;
  dumpDtb?: string;
  /** --reserve <base>:<size>[:<type>]: reserved ranges, kept out of by every placement (x86: e820 entries; device trees: /memreserve/). */
  reserved: Array<{ base: number; size: number; type?: number }>;
  /** --x86-entry real|32|64|pvh (bootLinux x86Mode "real" | "protected" | "long", or x86Entry "pvh"). */
  x86Entry?: "real" | "32" | "64" | "pvh";
  /** --rsdp <addr>: PVH hvm_start_info.rsdp_paddr. */
  rsdp?: number;
  /** --rng-seed: a setup_data SETUP_RNG_SEED node (x86). */
  rngSeed?: boolean;
  /** --setup-data <type>:<file>: setup_data nodes of any type (x86). */
  setupData: Array<{ type: number; file: string }>;
  /** --no-x86-tables: leave the GDT and page tables to the VMM. */
  noX86Tables: boolean;
  /** arm64, arm, riscv: place a boot stub; cpu.pc is its address. */
  stub?: boolean;
  /** Device tree rng-seed/kaslr-seed derived from this instead of fresh random bytes. */
  seed?: bigint;
  /** UKI: --profile <number|ID>. */
  profile?: number | string;
  /** UKI: --cmdline-override (--cmdline replaces the UKI's .cmdline). */
  cmdlineOverride?: boolean;
  /** UKI with --measure: --pcr-bank sha1|sha256|sha384|sha512, repeatable (default sha256). */
  pcrBanks?: Array<"sha1" | "sha256" | "sha384" | "sha512">;
  /** --direct / --direct-at <addr>: bzImage direct boot (bootLinux x86Direct). */
  direct?: true | { at: number };
}

export interface InspectArgs {
  command: "inspect";
  file: string;
  json: boolean;
}

export interface Multiboot2Args {
  command: "multiboot2";
  ram: RamArg[];
  kernel: string;
  cmdline?: string;
  modules: Array<{ file: string; cmdline?: string }>;
  at?: number;
  infoAt?: number;
  json: boolean;
  measure: boolean;
  dumpRam?: string;
}

export type Args = LoadArgs | BootArgs | InspectArgs | Multiboot2Args | { command: "help" } | { command: "version" };

export const USAGE = `usage:
  guest-image inspect <file> [--json]
  guest-image load --ram <base>:<size> [--ram <base>:<size> ...]
                   [--kernel <file> [--kernel-addr <addr>] [--kernel-align <n>] [--relocs <file>]]
                   [--module <file>@<addr>[:<align>] ...] [--dry-run] [--json] [--dump-ram <out>] [--measure]
  guest-image boot --arch arm64|arm|riscv64|riscv32|x86_64|x86 --ram <base>:<size> [--ram ...]
                   --kernel <file> [--initrd <file>] [--dtb <file>] [--cmdline <string>]
                   [--layout qemu|default] [--firmware <file> | --firmware-at <addr>] [--json] [--measure]
                   [--dump-ram <out>] [--dump-dtb <out>] [--stub] [--seed <n>]
                   [--reserve <base>:<size>[:<e820 type>] ...] [--x86-entry real|32|64|pvh] [--no-x86-tables]
                   [--direct | --direct-at <addr>] [--rsdp <addr>] [--rng-seed] [--setup-data <type>:<file> ...]
                   UKI kernels: [--profile <n|ID>] [--cmdline-override] [--pcr-bank sha1|sha256|sha384|sha512 ...]
  guest-image multiboot2 --ram <base>:<size> [--ram ...] --kernel <file> [--cmdline <string>]
                   [--module <file> [--module-cmdline <string>] ...] [--at <addr>] [--info-at <addr>]
                   [--json] [--measure] [--dump-ram <out>]

Numbers are decimal or 0x hex; sizes may end in K, M or G (powers of 1024).`;

export function parseArgs(argv: string[]): Args {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") return { command: "help" };
  if (command === "--version" || command === "-V") return { command: "version" };
  if (rest.includes("--help") || rest.includes("-h")) return { command: "help" };
  if (command === "inspect") return parseInspect(rest);
  if (command === "load") return parseLoad(rest);
  if (command === "boot") return parseBoot(rest);
  if (command === "multiboot2") return parseMultiboot2(rest);
  throw new UsageError(`unknown command "${command}"`);
}

function parseInspect(rest: string[]): InspectArgs {
  let file: string | undefined;
  let json = false;
  for (const a of rest) {
    if (a === "--json") json = true;
    else if (a.startsWith("-")) throw new UsageError(`inspect: unknown option ${a}`);
    else if (file === undefined) file = a;
    else throw new UsageError(`inspect: more than one file given ("${file}", "${a}")`);
  }
  if (file === undefined) throw new UsageError("inspect: no file given");
  return { command: "inspect", file, json };
}

/**
 * Walks `--option [value]` arguments: `handle` is called with the option, a function taking its
 * value, and one that refuses the option if it was given before.
 */
function walkOptions(rest: string[], handle: (opt: string, value: () => string, once: () => void) => void): void {
  const seen = new Set<string>();
  for (let i = 0; i < rest.length; i++) {
    const opt = rest[i];
    handle(
      opt,
      () => {
        const v = rest[++i];
        if (v === undefined) throw new UsageError(`${opt} needs a value`);
        return v;
      },
      () => {
        if (seen.has(opt)) throw new UsageError(`${opt} given more than once`);
        seen.add(opt);
      },
    );
  }
}

/** "--ram <base>:<size>" */
function parseRam(v: string): RamArg {
  const m = /^([^:]+):([^:]+)$/.exec(v);
  if (!m) throw new UsageError(`--ram: "${v}" is not <base>:<size>`);
  return { base: parseNumber(m[1], "--ram base"), size: parseNumber(m[2], "--ram size") };
}

function parseLoad(rest: string[]): LoadArgs {
  const out: LoadArgs = { command: "load", ram: [], kernelAlign: 0, modules: [], dryRun: false, json: false, measure: false };
  let kernelAlignGiven = false;
  walkOptions(rest, (opt, value, once) => {
    switch (opt) {
      case "--ram":
        out.ram.push(parseRam(value()));
        break;
      case "--kernel":
        once();
        out.kernel = value();
        break;
      case "--kernel-addr":
        once();
        out.kernelAddr = parseNumber(value(), "--kernel-addr");
        break;
      case "--kernel-align":
        once();
        out.kernelAlign = parseNumber(value(), "--kernel-align");
        kernelAlignGiven = true;
        break;
      case "--relocs":
        once();
        out.relocs = value();
        break;
      case "--module": {
        const v = value();
        const atSign = v.lastIndexOf("@");
        if (atSign <= 0) throw new UsageError(`--module: "${v}" is not <file>@<addr>[:<align>]`);
        const [addr, align, extra] = v.slice(atSign + 1).split(":");
        if (extra !== undefined || !addr) throw new UsageError(`--module: "${v}" is not <file>@<addr>[:<align>]`);
        out.modules.push({
          file: v.slice(0, atSign),
          at: parseNumber(addr, "--module address"),
          align: align === undefined ? 0 : parseNumber(align, "--module alignment"),
        });
        break;
      }
      case "--dry-run":
        out.dryRun = true;
        break;
      case "--json":
        out.json = true;
        break;
      case "--dump-ram":
        once();
        out.dumpRam = value();
        break;
      case "--measure":
        out.measure = true;
        break;
      default:
        throw new UsageError(opt.startsWith("-") ? `load: unknown option ${opt}` : `load: unexpected argument "${opt}"`);
    }
  });
  if (out.ram.length === 0) throw new UsageError("load: at least one --ram <base>:<size> is required");
  if (out.kernel === undefined && (out.kernelAddr !== undefined || kernelAlignGiven || out.relocs !== undefined)) {
    throw new UsageError("load: --kernel-addr, --kernel-align and --relocs need --kernel");
  }
  return out;
}

const BOOT_ARCHES = ["arm64", "arm", "riscv64", "riscv32", "x86_64", "x86"] as const;

function parseBoot(rest: string[]): BootArgs {
  const out: Partial<BootArgs> & { ram: RamArg[] } = { command: "boot", ram: [], layout: "default", json: false, measure: false, reserved: [], noX86Tables: false, setupData: [] };
  walkOptions(rest, (opt, value, once) => {
    switch (opt) {
      case "--ram":
        out.ram.push(parseRam(value()));
        break;
      case "--reserve": {
        const v = value();
        const m = /^([^:]+):([^:]+)(?::([^:]+))?$/.exec(v);
        if (!m) throw new UsageError(`--reserve: "${v}" is not <base>:<size>[:<e820 type>]`);
        out.reserved!.push({ base: parseNumber(m[1], "--reserve base"), size: parseNumber(m[2], "--reserve size"), ...(m[3] !== undefined ? { type: parseNumber(m[3], "--reserve type", false) } : {}) });
        break;
      }
      case "--x86-entry": {
        once();
        const v = value();
        if (v !== "real" && v !== "32" && v !== "64" && v !== "pvh") throw new UsageError(`--x86-entry: "${v}" is not real, 32, 64 or pvh`);
        out.x86Entry = v;
        break;
      }
      case "--rsdp":
        once();
        out.rsdp = parseNumber(value(), "--rsdp");
        break;
      case "--rng-seed":
        once();
        out.rngSeed = true;
        break;
      case "--setup-data": {
        const v = value();
        const m = /^([^:]+):(.+)$/.exec(v);
        if (!m) throw new UsageError(`--setup-data: "${v}" is not <type>:<file>`);
        out.setupData!.push({ type: parseNumber(m[1], "--setup-data type", false), file: m[2] });
        break;
      }
      case "--no-x86-tables":
        out.noX86Tables = true;
        break;
      case "--direct":
        once();
        if (out.direct !== undefined) throw new UsageError("--direct and --direct-at: give one");
        out.direct = true;
        break;
      case "--direct-at":
        once();
        if (out.direct !== undefined) throw new UsageError("--direct and --direct-at: give one");
        out.direct = { at: parseNumber(value(), "--direct-at") };
        break;
      case "--arch": {
        once();
        const v = value();
        if (!(BOOT_ARCHES as readonly string[]).includes(v)) throw new UsageError(`--arch: "${v}" is not one of ${BOOT_ARCHES.join(", ")}`);
        out.arch = v as BootArgs["arch"];
        break;
      }
      case "--layout": {
        once();
        const v = value();
        if (v !== "qemu" && v !== "default") throw new UsageError(`--layout: "${v}" is not qemu or default`);
        out.layout = v;
        break;
      }
      case "--kernel":
      case "--initrd":
      case "--dtb":
      case "--cmdline":
      case "--firmware":
      case "--dump-ram":
      case "--dump-dtb": {
        once();
        const key = ({ "--kernel": "kernel", "--initrd": "initrd", "--dtb": "dtb", "--cmdline": "cmdline", "--firmware": "firmware", "--dump-ram": "dumpRam", "--dump-dtb": "dumpDtb" } as const)[opt];
        out[key] = value();
        break;
      }
      case "--json":
        out.json = true;
        break;
      case "--measure":
        out.measure = true;
        break;
      case "--stub":
        out.stub = true;
        break;
      case "--firmware-at":
        once();
        out.firmwareAt = parseNumber(value(), "--firmware-at");
        break;
      case "--profile": {
        once();
        const v = value();
        out.profile = /^[0-9]+$/.test(v) ? Number(v) : v;
        break;
      }
      case "--cmdline-override":
        out.cmdlineOverride = true;
        break;
      case "--pcr-bank": {
        const v = value();
        if (v !== "sha1" && v !== "sha256" && v !== "sha384" && v !== "sha512") throw new UsageError(`--pcr-bank: "${v}" is not sha1, sha256, sha384 or sha512`);
        (out.pcrBanks ??= []).push(v);
        break;
      }
      case "--seed": {
        once();
        const v = value();
        if (!/^(0[xX][0-9a-fA-F]{1,16}|[0-9]+)$/.test(v) || BigInt(v) > 0xffffffffffffffffn) throw new UsageError(`--seed: "${v}" is not an integer from 0 to 2^64-1 (decimal or 0x hex)`);
        out.seed = BigInt(v);
        break;
      }
      default:
        throw new UsageError(opt.startsWith("-") ? `boot: unknown option ${opt}` : `boot: unexpected argument "${opt}"`);
    }
  });
  if (out.arch === undefined) throw new UsageError("boot: --arch is required");
  if (out.ram.length === 0) throw new UsageError("boot: at least one --ram <base>:<size> is required");
  if (out.kernel === undefined) throw new UsageError("boot: --kernel is required");
  if ((out.x86Entry !== undefined || out.noX86Tables) && out.arch !== "x86" && out.arch !== "x86_64") {
    throw new UsageError(`boot: --x86-entry and --no-x86-tables are for --arch x86 or x86_64, not ${out.arch}`);
  }
  if (out.firmwareAt !== undefined && out.arch !== "riscv64" && out.arch !== "riscv32") {
    throw new UsageError(`boot: --firmware-at is for --arch riscv64 or riscv32, not ${out.arch}`);
  }
  if (out.direct !== undefined && out.arch !== "x86" && out.arch !== "x86_64") throw new UsageError(`boot: --direct is for --arch x86 or x86_64, not ${out.arch}`);
  if ((out.rsdp !== undefined || out.rngSeed || out.setupData!.length) && out.arch !== "x86" && out.arch !== "x86_64") {
    throw new UsageError(`boot: --rsdp, --rng-seed and --setup-data are for --arch x86 or x86_64, not ${out.arch}`);
  }
  return out as BootArgs;
}

/** `multiboot2`: a Multiboot 2 kernel, its modules (each --module-cmdline names the last --module's string). */
function parseMultiboot2(rest: string[]): Multiboot2Args {
  const out: Partial<Multiboot2Args> & { ram: RamArg[]; modules: Multiboot2Args["modules"] } = { command: "multiboot2", ram: [], modules: [], json: false, measure: false };
  walkOptions(rest, (opt, value, once) => {
    switch (opt) {
      case "--ram":
        out.ram.push(parseRam(value()));
        break;
      case "--kernel":
      case "--cmdline":
      case "--dump-ram": {
        once();
        const key = ({ "--kernel": "kernel", "--cmdline": "cmdline", "--dump-ram": "dumpRam" } as const)[opt];
        out[key] = value();
        break;
      }
      case "--at":
      case "--info-at": {
        once();
        const key = opt === "--at" ? "at" : "infoAt";
        out[key] = parseNumber(value(), opt, false);
        break;
      }
      case "--module":
        out.modules.push({ file: value() });
        break;
      case "--module-cmdline": {
        const last = out.modules[out.modules.length - 1];
        if (!last) throw new UsageError("--module-cmdline must follow the --module it belongs to");
        if (last.cmdline !== undefined) throw new UsageError(`--module-cmdline given twice for module "${last.file}"`);
        last.cmdline = value();
        break;
      }
      case "--json":
        out.json = true;
        break;
      case "--measure":
        out.measure = true;
        break;
      default:
        throw new UsageError(opt.startsWith("-") ? `multiboot2: unknown option ${opt}` : `multiboot2: unexpected argument "${opt}"`);
    }
  });
  if (out.ram.length === 0) throw new UsageError("multiboot2: at least one --ram <base>:<size> is required");
  if (out.kernel === undefined) throw new UsageError("multiboot2: --kernel is required");
  return out as Multiboot2Args;
}
