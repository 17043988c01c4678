/**
 * Real boots of arm64, arm and riscv64 Linux in QEMU 7.2 (TCG, virt, 256 MiB) from guest-image's
 * RAM and CPU state alone, as a VMM author would run them: QEMU is started WITHOUT
 * -kernel/-initrd/-dtb.
 *
 * - RAM: each range guest-image placed (the boot's `placements`) is cut from guest-image's RAM
 *   and loaded with `-device loader,file=…,addr=…,force-raw=on`. QEMU's virt machines put blobs
 *   of their own into RAM even without a kernel (arm: a 1 MiB "dtb" at the RAM base; riscv: a
 *   1 MiB "fdt" near the top and, with its default -bios, OpenSBI at the base); the loader
 *   refuses to overlap them. Where QEMU puts its blobs is asked from QEMU itself (`info roms` of
 *   the same machine, `qemuBlobs`). A VMM declares them to guest-image as reserved ranges
 *   (`reserved` / `--reserve`), and nothing is placed on them: the generic loader alone loads
 *   everything. Without that, the part of a placement inside such a blob is written after reset
 *   through the gdbstub instead (`restore FILE binary ADDR`, while QEMU is paused by -S).
 * - CPU: with a stub (cpu.stub), only the PC: `-device loader,addr=<pc>,cpu-num=0`; without,
 *   through the gdbstub (gdb-multiarch): every register of cpu.regs, the PC, and arm's CPSR /
 *   arm64's PSTATE from cpu.cpsr / cpu.pstate. Nothing else: no register of the test's own.
 * - riscv `firmware: "external"` (firmwareAt: QEMU's own OpenSBI, default -bios): the PC (the
 *   M-mode stub, or the firmware with a0–a2 through the gdbstub) skips QEMU's reset ROM.
 * - riscv `sbi: "required"` (kernel or stub entered in S-mode, no firmware of ours): QEMU's own
 *   OpenSBI runs first (default -bios). With no -kernel, QEMU's fw_dynamic_info names next_addr 0,
 *   so OpenSBI drops to S-mode at address 0: a hardware breakpoint there stops it, the test checks
 *   the privilege level gdb reports ($priv = 1, S), and sets the state from `cpu` as above.
 * - The device tree: the machine's own (`-M virt,dumpdtb=…`: what a VMM's own tree would be),
 *   given to bootLinux as `dtb`, which edits it (/chosen, /memory, seeds).
 *
 * At most two QEMU run at once across test files (lock files in the temp directory); every QEMU
 * and gdb started here is killed when its boot ends, and through --pdeathsig if the test dies.
 * The serial console goes to a file (a full pipe makes QEMU drop bytes): qemu-process.ts.
 */
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runQemu } from "../helpers/qemu.js";
import { bootLinux, createVm, fromMap } from "../../src/node.js";
import { readFixture } from "../qemu/fixtures.js";
import { spawnKillable, startQemu, waitForMarker, withSlot } from "./qemu-process.js";

export { withSlot };

const MiB = 0x100000;

export interface Machine {
  /** qemu-system-<qemuArch> */
  qemuArch: "aarch64" | "arm" | "riscv64";
  /** Machine, CPU and memory options, identical for the dumped tree, `info roms` and the boot. */
  args: string[];
  ram: { base: number; size: number };
  /** gdb-multiarch `set architecture` name. */
  gdbArch: string;
  /** The serial console the kernel command line names. */
  console: string;
}

export const MACHINES: Record<"arm64" | "arm" | "riscv64", Machine> = {
  arm64: { qemuArch: "aarch64", args: ["-M", "virt", "-cpu", "cortex-a57", "-m", "256M"], ram: { base: 0x4000_0000, size: 256 * MiB }, gdbArch: "aarch64", console: "ttyAMA0" },
  arm: { qemuArch: "arm", args: ["-M", "virt", "-cpu", "cortex-a15", "-m", "256M"], ram: { base: 0x4000_0000, size: 256 * MiB }, gdbArch: "arm", console: "ttyAMA0" },
  riscv64: { qemuArch: "riscv64", args: ["-M", "virt", "-m", "256M"], ram: { base: 0x8000_0000, size: 256 * MiB }, gdbArch: "riscv:rv64", console: "ttyS0" },
};

/** The CPU state as bootLinux returns it, or as `boot --json` prints it (hex strings). */
export interface CpuLike {
  arch: string;
  pc: bigint | string;
  regs: Record<string, bigint | string>;
  pstate?: bigint | string;
  cpsr?: bigint | string;
  priv?: "M" | "S";
  sbi?: "required" | "firmware";
  firmware?: "placed" | "external";
  stub?: unknown;
}

export interface PlacementLike {
  role: string;
  paddr: number;
  size: number;
}

export interface BootResult {
  /** The marker line appeared on the serial console. */
  found: boolean;
  /** From QEMU's start to the marker (or to the timeout). */
  ms: number;
  serial: string;
  /** The QEMU command line and gdb script used, for failure messages and the README. */
  command: string;
  gdbScript?: string;
}

const big = (v: bigint | string) => (typeof v === "bigint" ? v : BigInt(v));
const hx = (v: bigint | number) => `0x${v.toString(16)}`;

const tmpRoot = () => mkdtempSync(join(tmpdir(), "guest-image-realboot-"));

const dtbCache = new Map<string, Uint8Array>();
/** The machine's own device tree (`-M virt,dumpdtb=`), as QEMU would hand it to a kernel. */
export function machineDtb(m: Machine): Uint8Array {
  const key = m.args.join(" ");
  const hit = dtbCache.get(key);
  if (hit) return hit;
  const dir = tmpRoot();
  try {
    const file = join(dir, "machine.dtb");
    const args = m.args.map((a, i) => (m.args[i - 1] === "-M" ? `${a},dumpdtb=${file}` : a));
    const r = spawnSync(`qemu-system-${m.qemuArch}`, [...args, "-nodefaults", "-display", "none", "-no-user-config"], { encoding: "utf8", timeout: 30_000 });
    if (!existsSync(file)) throw new Error(`qemu-system-${m.qemuArch} ${args.join(" ")}: no dumped tree (${r.stderr})`);
    const dtb = new Uint8Array(readFileSync(file));
    dtbCache.set(key, dtb);
    return dtb;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const blobCache = new Map<string, Array<{ addr: number; size: number; name: string }>>();
/**
 * QEMU's own blobs in RAM for this machine (`info roms`, mem=ram) with its default -bios
 * (`qemuBios`: riscv's OpenSBI at the RAM base) or -bios none: what a VMM declares reserved.
 */
export async function qemuBlobs(m: Machine, qemuBios = true): Promise<Array<{ base: number; size: number }>> {
  const blobs = await ramBlobs(m, m.qemuArch === "riscv64" && !qemuBios ? ["-bios", "none"] : []);
  return blobs.map((b) => ({ base: b.addr, size: b.size }));
}

/** QEMU's own blobs in RAM for this machine and -bios choice (`info roms`, mem=ram). */
async function ramBlobs(m: Machine, extra: string[]): Promise<Array<{ addr: number; size: number; name: string }>> {
  const key = [...m.args, ...extra].join(" ");
  const hit = blobCache.get(key);
  if (hit) return hit;
  const roms = await runQemu({ arch: m.qemuArch, args: [...m.args, ...extra] }, (q) => q.roms());
  const blobs = roms
    .filter((r) => r.addr !== undefined && r.mem === "ram")
    .map((r) => ({ addr: Number(r.addr), size: r.size, name: r.name }));
  blobCache.set(key, blobs);
  return blobs;
}

/**
 * Boots what guest-image placed: `read` gives guest RAM as guest-image left it, `placements`
 * which ranges it wrote, `cpu` the hand-off. Resolves when `marker` appears on the serial
 * console (found) or after `timeoutMs` (not found); QEMU is killed either way.
 */
export async function bootQemu(o: {
  machine: Machine;
  read: (paddr: number, size: number) => Uint8Array;
  placements: PlacementLike[];
  cpu: CpuLike;
  marker: string;
  timeoutMs: number;
}): Promise<BootResult> {
  const m = o.machine;
  const cpu = o.cpu;
  const riscv = m.qemuArch === "riscv64";
  // riscv: QEMU's OpenSBI when the kernel needs an SBI we did not place, or when the hand-off
  // names it (firmwareAt); none when we placed firmware.
  const viaQemuSbi = riscv && cpu.sbi === "required";
  const bios = riscv && !viaQemuSbi && cpu.firmware !== "external" ? ["-bios", "none"] : [];
  const blobs = await ramBlobs(m, bios);
  const dir = tmpRoot();
  try {
    // RAM pieces: what lies inside a QEMU blob goes through the gdbstub, the rest through the loader.
    const loaders: string[] = [];
    const restores: string[] = [];
    let n = 0;
    for (const p of o.placements) {
      const end = p.paddr + p.size;
      const cuts = new Set([p.paddr, end]);
      for (const b of blobs) for (const x of [b.addr, b.addr + b.size]) if (x > p.paddr && x < end) cuts.add(x);
      const sorted = [...cuts].sort((a, b) => a - b);
      for (let i = 0; i + 1 < sorted.length; i++) {
        const [s, t] = [sorted[i], sorted[i + 1]];
        const inBlob = blobs.some((b) => s >= b.addr && s < b.addr + b.size);
        const file = join(dir, `piece${n++}-${p.role}.bin`);
        writeFileSync(file, o.read(s, t - s));
        if (inBlob) restores.push(`restore ${file} binary ${hx(s)}`);
        else loaders.push("-device", `loader,file=${file},addr=${hx(s)},force-raw=on`);
      }
    }
    const stub = cpu.stub !== undefined;
    const state: string[] = [];
    if (stub) {
      if (viaQemuSbi) state.push(`set $pc = ${hx(big(cpu.pc))}`); // S-mode stub: entered by OpenSBI's jump, redirected
      else loaders.push("-device", `loader,addr=${hx(big(cpu.pc))},cpu-num=0`);
    } else {
      for (const [r, v] of Object.entries(cpu.regs)) state.push(`set $${r} = ${hx(big(v))}`);
      if (cpu.cpsr !== undefined) state.push(`set $cpsr = ${hx(big(cpu.cpsr))}`);
      if (cpu.pstate !== undefined) state.push(`set $cpsr = ${hx(big(cpu.pstate))}`); // gdb's name for aarch64 PSTATE
      state.push(`set $pc = ${hx(big(cpu.pc))}`);
    }
    const placedDtb = () => {
      const d = o.placements.find((p) => p.role === "dtb");
      if (!d) throw new Error("no device tree among the placements");
      return d.paddr;
    };
    const needGdb = restores.length > 0 || state.length > 0;
    const sock = join(dir, "gdb.sock");
    const args = [
      ...m.args, ...bios, "-nodefaults", "-display", "none", "-no-user-config", "-monitor", "none",
      ...(needGdb ? ["-S", "-gdb", `unix:${sock},server=on,wait=off`] : []),
      ...loaders,
    ];
    const script = needGdb
      ? [
        "set confirm off", "set pagination off", `set architecture ${m.gdbArch}`, `target remote ${sock}`,
        ...restores,
        // QEMU's OpenSBI is entered (from QEMU's reset ROM, at the RAM base) with a1 = QEMU's
        // own fdt; with -kernel that is the tree the kernel gets. Point it at the tree guest-image
        // placed instead, which it then edits in place (its reserved memory), as in QEMU's
        // -kernel boot. The kernel's a1 is set separately, from cpu (or by the stub).
        ...(viaQemuSbi
          ? [`hbreak *${hx(m.ram.base)}`, "continue", "delete", `set $a1 = ${hx(placedDtb())}`,
            "hbreak *0", "continue", "delete", 'printf "PRIV=%d PC=0x%lx\\n", $priv, $pc']
          : []),
        ...state,
        "detach",
      ].join("\n") + "\n"
      : undefined;

    return await withSlot(async () => {
      const started = performance.now();
      const qemu = startQemu(m.qemuArch, args, join(dir, "serial.log"));
      const command = qemu.command;
      try {
        if (script) {
          const file = join(dir, "state.gdb");
          writeFileSync(file, script);
          // The socket appears once QEMU is up.
          for (const t0 = Date.now(); !existsSync(sock); ) {
            if (qemu.exited() || Date.now() - t0 > 20_000) throw new Error(`QEMU did not open its gdbstub: ${command}\n${qemu.output()}${qemu.serial()}`);
            await new Promise((r) => setTimeout(r, 20));
          }
          const gdb = spawnKillable("gdb-multiarch", ["-q", "-nx", "-batch", "-x", file]);
          let out = "";
          gdb.stdout!.on("data", (d: Buffer) => (out += d.toString()));
          gdb.stderr!.on("data", (d: Buffer) => (out += d.toString()));
          const code = await new Promise<number | null>((resolve) => {
            const t = setTimeout(() => gdb.kill("SIGKILL"), Math.max(o.timeoutMs, 20_000));
            gdb.once("exit", (c) => {
              clearTimeout(t);
              resolve(c);
            });
          });
          // -batch stops at the first failing command, so "detached" (the last one) proves all ran.
          if (code !== 0 || !/detached/i.test(out)) {
            throw new Error(`gdb-multiarch failed (exit ${code}):\n${out}\nscript:\n${script}\nqemu: ${command}`);
          }
          if (viaQemuSbi && !/PRIV=1 PC=0x0\b/.test(out)) throw new Error(`QEMU's OpenSBI did not stop in S-mode at 0:\n${out}`);
        }
        const { serial, found } = await waitForMarker(qemu, o.marker, started + o.timeoutMs);
        // QEMU's own messages (stderr) after the console, for failure messages.
        const extra = qemu.output();
        return { found, ms: Math.round(performance.now() - started), serial: extra ? `${serial}\n[qemu] ${extra}` : serial, command, gdbScript: script };
      } finally {
        await qemu.stop();
      }
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ── the two ways a VMM gets guest-image's output: the CLI and the library ──

export interface Prepared {
  read: (paddr: number, size: number) => Uint8Array;
  placements: PlacementLike[];
  cpu: CpuLike;
  /** `boot --json` output (CLI path only). */
  json?: Record<string, unknown>;
}

export interface PrepareOptions {
  arch: "arm64" | "arm" | "riscv64";
  machine: Machine;
  /** Fixture-relative kernel path ("arm64/Image"). */
  kernel: string;
  initrd: Uint8Array;
  dtb: Uint8Array;
  cmdline: string;
  layout: "default" | "qemu";
  stub?: boolean;
  /** A firmware file path (riscv: OpenSBI fw_dynamic). */
  firmware?: string;
  /** riscv: the entry of a firmware already in the machine (QEMU's OpenSBI). */
  firmwareAt?: number;
  /** Ranges guest-image must keep out of (QEMU's own blobs, `qemuBlobs`). */
  reserved?: Array<{ base: number; size: number }>;
}

const ROOT = new URL("../..", import.meta.url).pathname;

/** `guest-image boot … --json --dump-ram` (dist/cli/main.js; `npm test` builds it first). */
export function prepareCli(o: PrepareOptions, kernelPath: string, dir: string): Prepared {
  const initrd = join(dir, "initrd.cpio");
  const dtb = join(dir, "machine.dtb");
  const ramFile = join(dir, "ram.bin");
  writeFileSync(initrd, o.initrd);
  writeFileSync(dtb, o.dtb);
  const { base, size } = o.machine.ram;
  const args = [
    "boot", "--arch", o.arch, "--ram", `${hx(base)}:${hx(size)}`, "--kernel", kernelPath, "--initrd", initrd, "--dtb", dtb,
    "--cmdline", o.cmdline, "--layout", o.layout, "--json", "--dump-ram", ramFile,
    ...(o.stub ? ["--stub"] : []), ...(o.firmware ? ["--firmware", o.firmware] : []),
    ...(o.firmwareAt !== undefined ? ["--firmware-at", hx(o.firmwareAt)] : []),
    ...(o.reserved ?? []).flatMap((r) => ["--reserve", `${hx(r.base)}:${hx(r.size)}`]),
  ];
  const r = spawnSync(process.execPath, [join(ROOT, "dist/cli/main.js"), ...args], { encoding: "utf8", timeout: 60_000 });
  if (r.status !== 0) throw new Error(`guest-image ${args.join(" ")} failed (${r.status}): ${r.stderr}${r.stdout}`);
  const json = JSON.parse(r.stdout) as { cpu: CpuLike; placements: Array<{ role: string; load_paddr: string; size: string }> };
  const placements = json.placements.map((p) => ({ role: p.role, paddr: Number(p.load_paddr), size: Number(p.size) }));
  // The dump is the one RAM region (file offset = paddr − base); keep what was placed, close it.
  const fd = openSync(ramFile, "r");
  const pieces = placements.map((p) => {
    const buf = new Uint8Array(p.size);
    for (let got = 0; got < p.size; ) {
      const k = readSync(fd, buf, got, p.size - got, p.paddr - base + got);
      if (k === 0) throw new Error(`--dump-ram file ends before ${hx(p.paddr + got)}`);
      got += k;
    }
    return { ...p, buf };
  });
  closeSync(fd);
  const read = (paddr: number, len: number) => {
    const p = pieces.find((x) => paddr >= x.paddr && paddr + len <= x.paddr + x.size);
    if (!p) throw new Error(`[${hx(paddr)}, +${hx(len)}) is not inside one placement`);
    return p.buf.subarray(paddr - p.paddr, paddr - p.paddr + len);
  };
  return {
    read,
    placements,
    cpu: json.cpu,
    json: json as unknown as Record<string, unknown>,
  };
}

/** bootLinux on a VM with the machine's RAM; the files are given as bytes (fromMap). */
export async function prepareLib(o: PrepareOptions): Promise<Prepared> {
  const files: Record<string, Uint8Array> = { kernel: readFixture(o.kernel), initrd: o.initrd };
  if (o.firmware) files["firmware"] = new Uint8Array(readFileSync(o.firmware));
  const vm = await createVm({ ram: [o.machine.ram], files: fromMap(files) });
  const b = await bootLinux(vm, {
    arch: o.arch, kernel: "kernel", initrd: "initrd", dtb: o.dtb, cmdline: o.cmdline, layout: o.layout, stub: o.stub,
    ...(o.firmware ? { firmware: "firmware" } : {}), ...(o.firmwareAt !== undefined ? { firmwareAt: o.firmwareAt } : {}),
    ...(o.reserved ? { reserved: o.reserved } : {}),
  });
  return { read: (paddr, size) => vm.ram.read(paddr, size), placements: b.placements, cpu: b.cpu };
}

/**
 * A negative control for the stub path: the same RAM, except that the stub's literal for the
 * device-tree register (arm64 x0, arm r2, riscv a1, as cpu.regs names it) points one page past
 * the tree. Nothing else changes, so a boot that still prints the marker would prove the stub's
 * registers do not matter.
 */
export function withWrongStubDtb(p: Prepared): Prepared {
  const stub = p.cpu.stub as { paddr: number | string; size: number | string } | undefined;
  if (!stub) throw new Error("no stub among the placements");
  const [base, size] = [Number(stub.paddr), Number(stub.size)];
  const reg = p.cpu.arch === "arm64" ? "x0" : p.cpu.arch === "arm" ? "r2" : "a1";
  const dtb = big(p.cpu.regs[reg]);
  const width = p.cpu.arch === "arm" ? 4 : 8;
  const enc = (v: bigint) => Uint8Array.from({ length: width }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));
  const bytes = p.read(base, size).slice();
  const want = enc(dtb);
  const at = [...Array(size - width + 1).keys()].filter((i) => want.every((b, j) => bytes[i + j] === b));
  if (at.length !== 1) throw new Error(`the stub holds the DTB address ${hx(dtb)} ${at.length} times, expected once`);
  bytes.set(enc(dtb + 0x1000n), at[0]);
  return {
    ...p,
    read: (paddr, len) => (paddr >= base && paddr + len <= base + size ? bytes.subarray(paddr - base, paddr - base + len) : p.read(paddr, len)),
  };
}

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
export async function inTmp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = tmpRoot();
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
