// Boots an x86 guest in QEMU 7.2 (qemu-system-x86_64, TCG) from guest-image's RAM and CPU state
// alone, as a VMM author would: no -kernel/-initrd. RAM arrives as `-device loader,…,force-raw=on`
// pieces (one per placed range) or, for the real-mode entry, through the gdbstub (`restore`)
// after SeaBIOS has run; every register comes from the `cpu` object and is written with raw
// gdbstub `P` packets (gdb-multiarch `maint packet`; `set $cr4` fails with "Invalid cast").
//
// What this helper writes and nothing more: the placed bytes, and the registers the cpu object
// names — general registers, rip, rflags, cr0/cr3/cr4/efer, the six segment selectors. It never
// writes a GDT, a page table or a register of its own. QEMU's x86 gdbstub has no GDTR: after reset
// GDTR is base 0, limit 0xffff, so the library's GDT (at 0) is the one QEMU reads when the
// selectors are loaded; boot() refuses a cpu whose gdtr is elsewhere (realboot.md, "QEMU without
// -kernel"). QEMU register numbers (gdb-xml/i386-64bit.xml order): rax rbx rcx rdx rsi rdi rbp
// rsp r8–r15 = 0–15, rip 16, eflags 17, cs ss ds es fs gs = 18–23, cr0 27, cr3 29, cr4 30, efer 32.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startQemu, waitForMarker, withSlot, type Qemu } from "./qemu-process.js";

/** A value from the library (bigint/number) or from the CLI's JSON ("0x…" strings). */
export type Num = bigint | number | string;
const big = (v: Num): bigint => (typeof v === "bigint" ? v : BigInt(v));

/** The parts of an x86 boot CPU state (library X86CpuState or CLI JSON "cpu") this helper uses. */
export interface CpuLike {
  mode: string;
  pc: Num;
  regs: Record<string, Num>;
  rip: Num;
  rflags: Num;
  cr0: Num;
  cr3: Num | null;
  cr4: Num;
  efer: Num;
  gdtr: { base: Num; limit: Num } | null;
  segments: Record<string, { selector: Num; base: Num; limit: Num; access: Num }>;
}

export interface Piece {
  paddr: number;
  bytes: Uint8Array;
}

export interface BootResult {
  /** Everything the guest wrote to its serial port. */
  serial: string;
  /** Whether the marker line appeared. */
  marker: boolean;
  /** Seconds from resuming the CPU to the marker (or to giving up). */
  seconds: number;
  /** performance.now() when the marker was seen (or when it gave up). */
  markerAt: number;
  /** QEMU ended by itself (with -no-reboot: the guest reset, e.g. a triple fault, or powered off). */
  exited: boolean;
  /** gdb's output (the `monitor info registers` dump taken after the state was set). */
  gdb: string;
  /** The `readBack` ranges as QEMU's monitor `pmemsave` saw them after the marker (empty without a marker). */
  memory: Uint8Array[];
}

const GPR = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp"];
const GPR32 = ["eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp"];
const SEG = ["cs", "ss", "ds", "es", "fs", "gs"];

/** `P<n>=<value, little-endian hex of `bytes` bytes>` */
function pPacket(n: number, v: bigint, bytes: number): string {
  let hex = "";
  for (let i = 0; i < bytes; i++) hex += Number((v >> BigInt(8 * i)) & 0xffn).toString(16).padStart(2, "0");
  return `maint packet P${n.toString(16)}=${hex}`;
}

/** The gdb commands that load the cpu object's registers, in an order QEMU accepts. */
export function registerCommands(cpu: CpuLike): string[] {
  const out: string[] = [];
  const cr = () => {
    out.push(pPacket(30, big(cpu.cr4), 8), pPacket(29, big(cpu.cr3 ?? 0), 8), pPacket(32, big(cpu.efer), 8));
  };
  // Long mode: CR4.PAE, CR3 and EFER.LME first, then CR0.PG (QEMU's cpu_x86_update_cr0 enters
  // long mode only then). Protected mode: CR0.PE first, so selectors load from the GDT.
  if (cpu.mode === "long") {
    cr();
    out.push(pPacket(27, big(cpu.cr0), 8));
  } else {
    out.push(pPacket(27, big(cpu.cr0), 8));
    cr();
  }
  // Selectors next: with CS.L loaded QEMU takes 64-bit writes of the general registers.
  SEG.forEach((s, i) => out.push(pPacket(18 + i, big(cpu.regs[s]), 4)));
  out.push(pPacket(17, big(cpu.rflags), 4));
  for (let i = 0; i < 16; i++) {
    const name = i < 8 ? (cpu.mode === "long" ? GPR[i] : GPR32[i]) : `r${i}`;
    const v = cpu.regs[name];
    if (v === undefined) {
      if (cpu.mode === "long" || i < 8) throw new Error(`cpu.regs has no ${name}: the boot protocol's registers must all be listed`);
      continue;
    }
    out.push(pPacket(i, big(v), 8));
  }
  out.push(pPacket(16, big(cpu.rip), 8));
  return out;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

// At most two QEMUs at a time on this 2-core machine, shared with the other real-boot harnesses.
const slot = withSlot;

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ out: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (out += d));
    const t = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.on("error", reject);
    p.on("close", (code) => {
      clearTimeout(t);
      resolve({ out, code });
    });
  });
}

/** A 1 MiB disk whose boot sector halts (cli; hlt; jmp $-1): SeaBIOS loads it at 0x7c00 and jumps there. */
function haltingDisk(): Uint8Array {
  const d = new Uint8Array(1 << 20);
  d.set([0xfa, 0xf4, 0xeb, 0xfd], 0);
  d[510] = 0x55;
  d[511] = 0xaa;
  return d;
}

/**
 * Starts QEMU paused, puts `pieces` in RAM and the `cpu` registers in the CPU, resumes it and
 * waits for `marker` on the serial port (or `timeoutMs`). Real mode: SeaBIOS runs first up to
 * the boot sector at 0x7c00, then RAM and registers are set.
 */
export function bootX86(opts: BootOptions): Promise<BootResult> {
  return slot(() => bootOnce(opts));
}

export interface BootOptions {
  cpu: CpuLike;
  pieces: Piece[];
  marker: string;
  memMiB?: number;
  timeoutMs?: number;
  /** Stop waiting early when the serial output matches (e.g. the end of a kernel panic). */
  stopOn?: RegExp;
  /** Guest-physical ranges read back through QEMU's monitor (`pmemsave`) once the marker is seen, before QEMU is stopped. */
  readBack?: Array<{ paddr: number; size: number }>;
  /**
   * Serial port to a file instead of a pipe: QEMU drops serial bytes when a pipe stays full
   * (serial_xmit gives up after its retries), which on a loaded machine loses dmesg lines a test
   * wants to read; a file never pushes back. Default true; false reads the pipe.
   */
  serialFile?: boolean;
}

async function bootOnce(opts: BootOptions): Promise<BootResult> {
  const { cpu, pieces, marker } = opts;
  // A file by default: a pipe that fills while this process is busy (another test decompressing
  // a kernel on the main thread) makes QEMU drop serial bytes, the marker among them.
  opts = { ...opts, serialFile: opts.serialFile ?? true };
  const real = cpu.mode === "real";
  if (!real) {
    // The only GDT this test can give QEMU is the one GDTR points at after reset.
    if (!cpu.gdtr || big(cpu.gdtr.base) !== 0n || big(cpu.gdtr.limit) > 0xffffn) {
      throw new Error(`cpu.gdtr ${JSON.stringify(cpu.gdtr, (_, v) => (typeof v === "bigint" ? `0x${v.toString(16)}` : v))} is not where QEMU's reset GDTR (base 0, limit 0xffff) reads; QEMU's gdbstub cannot load GDTR`);
    }
  }
  const dir = mkdtempSync(join(tmpdir(), "gi-x86boot-"));
  let qemu: Qemu | undefined;
  try {
    const files = pieces.map((p, i) => {
      const f = join(dir, `piece${i}.bin`);
      writeFileSync(f, p.bytes);
      return { f, paddr: p.paddr };
    });
    const port = await freePort();
    const args = ["-M", "pc", "-accel", "tcg", "-m", `${opts.memMiB ?? 256}M`, "-nodefaults", "-display", "none", "-no-reboot", "-S", "-gdb", `tcp:127.0.0.1:${port}`];
    if (real) {
      const disk = join(dir, "boot.img");
      writeFileSync(disk, haltingDisk());
      args.push("-drive", `file=${disk},format=raw,if=ide`);
    } else {
      for (const { f, paddr } of files) args.push("-device", `loader,file=${f},addr=0x${paddr.toString(16)},force-raw=on`);
    }
    const monitor = join(dir, "monitor.sock");
    if (opts.readBack?.length) args.push("-monitor", `unix:${monitor},server=on,wait=off`);
    qemu = startQemu("x86_64", args, opts.serialFile ? join(dir, "serial.log") : undefined);

    const cmds = ["set pagination off", "set confirm off", "set architecture i386:x86-64", `target remote 127.0.0.1:${port}`];
    if (real) {
      cmds.push("hbreak *0x7c00", "continue", "delete");
      for (const { f, paddr } of files) cmds.push(`restore ${f} binary 0x${paddr.toString(16)}`);
    }
    cmds.push(...registerCommands(cpu), "monitor info registers", "detach");
    const script = join(dir, "gdb.cmds");
    writeFileSync(script, cmds.join("\n") + "\n");
    // gdb may connect before QEMU listens: retry a few times.
    let gdb = { out: "", code: null as number | null };
    for (let attempt = 0; attempt < 20; attempt++) {
      gdb = await run("gdb-multiarch", ["-nx", "-batch", "-x", script], 60_000);
      if (!/Connection refused|could not connect/i.test(gdb.out)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    if (!/Detaching from program|Ending remote debugging|\) detached\]/.test(gdb.out) || /received: "E|Packet error|Invalid cast|Cannot access memory/.test(gdb.out)) {
      throw new Error(`gdb did not set the state cleanly:\n${gdb.out}\nQEMU: ${qemu.output()}`);
    }
    const t0 = performance.now();
    const { serial, found: hit } = await waitForMarker(qemu, marker, t0 + (opts.timeoutMs ?? 120_000), opts.stopOn);
    const markerAt = performance.now();
    const seconds = (markerAt - t0) / 1000;
    const memory: Uint8Array[] = [];
    const exitedByItself = qemu.exited();
    if (hit && !exitedByItself && opts.readBack?.length) {
      for (const [i, r] of opts.readBack.entries()) memory.push(await pmemsave(monitor, r.paddr, r.size, join(dir, `readback${i}.bin`)));
    }
    return { serial, marker: hit, seconds, markerAt, exited: exitedByItself, gdb: gdb.out, memory };
  } finally {
    await qemu?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** QEMU monitor `pmemsave addr size file` over its unix socket; resolves with the file's bytes. */
async function pmemsave(socket: string, paddr: number, size: number, file: string): Promise<Uint8Array> {
  const { connect } = await import("node:net");
  const { existsSync, statSync } = await import("node:fs");
  await new Promise<void>((resolve, reject) => {
    const c = connect(socket);
    let out = "";
    c.on("error", reject);
    c.on("data", (d) => {
      out += d;
      // The banner's prompt, then the command's prompt: two "(qemu)" mean the command ran.
      if ((out.match(/\(qemu\)/g) ?? []).length === 1 && !out.includes("pmemsave")) c.write(`pmemsave 0x${paddr.toString(16)} 0x${size.toString(16)} "${file}"\n`);
      if ((out.match(/\(qemu\)/g) ?? []).length >= 2) {
        c.end();
        resolve();
      }
    });
    setTimeout(() => reject(new Error(`QEMU monitor did not answer pmemsave: ${out}`)), 20_000);
  });
  for (let i = 0; i < 100 && !(existsSync(file) && statSync(file).size === size); i++) await new Promise((r) => setTimeout(r, 50));
  return new Uint8Array(readFileSync(file));
}

/** One line of QEMU's `info registers` segment dump: "CS =0010 0000000000000000 ffffffff 00a09b00 …". */
export function qemuSegment(dump: string, name: string): { selector: number; base: bigint; limit: number; flags: number } | undefined {
  const m = new RegExp(`^${name.toUpperCase()}\\s*=([0-9a-f]{4}) ([0-9a-f]+) ([0-9a-f]{8}) ([0-9a-f]{8})`, "m").exec(dump);
  return m ? { selector: parseInt(m[1], 16), base: BigInt(`0x${m[2]}`), limit: parseInt(m[3], 16), flags: parseInt(m[4], 16) } : undefined;
}

/**
 * RAM pieces from a `--dump-ram` file: the dump is the RAM regions back to back in the order
 * given (`ram` from the JSON), and each placed range (`placed`) is cut out of it.
 */
export function piecesFromDump(dump: Uint8Array, ram: { base: Num; size: Num }[], placed: { paddr: Num; size: Num }[]): Piece[] {
  return placed.map((p) => {
    const paddr = Number(big(p.paddr));
    const size = Number(big(p.size));
    let off = 0;
    for (const r of ram) {
      const base = Number(big(r.base));
      const rsize = Number(big(r.size));
      if (paddr >= base && paddr + size <= base + rsize) return { paddr, bytes: dump.subarray(off + paddr - base, off + paddr - base + size) };
      off += rsize;
    }
    throw new Error(`placed range at 0x${paddr.toString(16)} is not inside one RAM region`);
  });
}

/**
 * The baseline: QEMU's own `-kernel/-initrd/-append` boot of the same files (SeaBIOS + its
 * linuxboot option ROM), same machine flags. Seconds from spawning QEMU to the marker.
 */
export function qemuKernelBoot(opts: { kernel: string; initrd: string; cmdline: string; marker: string; memMiB?: number; timeoutMs?: number }): Promise<{ marker: boolean; seconds: number; serial: string }> {
  return slot(async () => {
    const dir = mkdtempSync(join(tmpdir(), "gi-x86kernel-"));
    const t0 = performance.now();
    const q = startQemu("x86_64", ["-M", "pc", "-accel", "tcg", "-m", `${opts.memMiB ?? 256}M`, "-nodefaults", "-display", "none", "-no-reboot",
      "-kernel", opts.kernel, "-initrd", opts.initrd, "-append", opts.cmdline], join(dir, "serial.log"));
    try {
      const { serial, found } = await waitForMarker(q, opts.marker, t0 + (opts.timeoutMs ?? 120_000));
      return { marker: found, seconds: (performance.now() - t0) / 1000, serial };
    } finally {
      await q.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
