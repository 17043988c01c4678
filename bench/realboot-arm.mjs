// node bench/realboot-arm.mjs [--runs N] [--arch arm64,arm,riscv64]
//
// Time from the bootLinux call to a userspace marker, against QEMU's own -kernel boot of the same
// kernel and initrd to the same marker (QEMU 7.2 TCG, virt, 256 MiB), per architecture. Ours: the
// built dist/, the machine's own tree (-M virt,dumpdtb), a boot stub, the placed ranges given to
// QEMU with -device loader (the windows under QEMU's own blobs written through the gdbstub, as
// in test/realboot/qemu-boot.ts); riscv64 with OpenSBI fw_dynamic as bootLinux's firmware and
// -bios none. QEMU's: -kernel/-initrd/-append, its generated tree, its default firmware.
// Both print the full kernel log on the serial console. Needs the fixture cache
// (scripts/fetch-fixtures.sh), qemu-system-{aarch64,arm,riscv64}, gdb-multiarch, cpio.
// Median of --runs (default 3), the two interleaved run by run. Writes bench/realboot-arm.json.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync, chmodSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const FIX = process.env.GUEST_IMAGE_FIXTURES ?? join(homedir(), ".cache", "guest-image-fixtures");
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const RUNS = Number(opt("--runs", "3"));
const ARCHES = opt("--arch", "arm64,arm,riscv64").split(",");
const OPENSBI = "/usr/share/qemu/opensbi-riscv64-generic-fw_dynamic.bin";
const MiB = 1 << 20;

const MACHINES = {
  arm64: { qemu: "aarch64", m: ["-M", "virt", "-cpu", "cortex-a57", "-m", "256M"], base: 0x40000000, kernel: "arm64/Image", deb: "arm64", gdb: "aarch64", console: "ttyAMA0" },
  arm: { qemu: "arm", m: ["-M", "virt", "-cpu", "cortex-a15", "-m", "256M"], base: 0x40000000, kernel: "armhf/zImage", deb: "armhf", gdb: "arm", console: "ttyAMA0" },
  riscv64: { qemu: "riscv64", m: ["-M", "virt", "-m", "256M"], base: 0x80000000, kernel: "riscv64/Image", deb: "riscv64", gdb: "riscv:rv64", console: "ttyS0" },
};

const { bootLinux, createVm, fromMap } = await import(pathToFileURL(join(ROOT, "dist", "node.js")).href);
const work = mkdtempSync(join(tmpdir(), "guest-image-bench-realboot-"));
const hx = (n) => `0x${n.toString(16)}`;
const COMMON = ["-nodefaults", "-display", "none", "-no-user-config", "-serial", "stdio", "-monitor", "none"];

/** newc initrd: static busybox + an /init printing the marker (the kernel's built-in initramfs brings /dev/console). */
function initrd(deb, marker) {
  const dir = join(work, `root-${deb}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, "bin"), { recursive: true });
  copyFileSync(join(FIX, "busybox", deb, "busybox"), join(dir, "bin", "busybox"));
  writeFileSync(join(dir, "init"), `#!/bin/busybox sh\n/bin/busybox echo ${marker}\n/bin/busybox poweroff -f\n`);
  chmodSync(join(dir, "init"), 0o755);
  const r = spawnSync("sh", ["-c", "find . | cpio --quiet -o -H newc"], { cwd: dir, maxBuffer: 64 * MiB });
  if (r.status !== 0) throw new Error(`cpio: ${r.stderr}`);
  return new Uint8Array(r.stdout);
}

function machineDtb(M) {
  const f = join(work, `${M.qemu}.dtb`);
  const m = M.m.map((a, i) => (M.m[i - 1] === "-M" ? `${a},dumpdtb=${f}` : a));
  spawnSync(`qemu-system-${M.qemu}`, [...m, "-nodefaults", "-display", "none"]);
  return new Uint8Array(readFileSync(f));
}

function ramBlobs(M, extra) {
  const r = spawnSync(`qemu-system-${M.qemu}`, [...M.m, ...extra, "-S", "-nodefaults", "-display", "none", "-monitor", "stdio"], { input: "info roms\nquit\n", encoding: "utf8" });
  return [...r.stdout.matchAll(/addr=([0-9a-f]+) size=0x([0-9a-f]+) mem=ram/g)].map((m) => ({ addr: Number(`0x${m[1]}`), size: parseInt(m[2], 16) }));
}

/** Spawns QEMU, optionally runs a gdb script, resolves with ms from `t0` to the marker. */
function run(exe, qargs, marker, t0, gdbScript) {
  return new Promise((resolve, reject) => {
    const q = spawn(exe, qargs, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const timer = setTimeout(() => {
      q.kill("SIGKILL");
      reject(new Error(`no marker after 120 s: ${exe} ${qargs.join(" ")}\n${out.slice(-2000)}`));
    }, 120_000);
    const on = (d) => {
      out += d.toString("latin1");
      if (out.includes(`${marker}\n`) || out.includes(`${marker}\r\n`)) {
        const ms = performance.now() - t0;
        clearTimeout(timer);
        q.kill("SIGKILL");
        resolve(ms);
      }
    };
    q.stdout.on("data", on);
    q.stderr.on("data", on);
    if (gdbScript) {
      const sock = gdbScript.sock;
      const start = () => {
        if (!existsSync(sock)) return setTimeout(start, 10);
        const f = join(work, "state.gdb");
        writeFileSync(f, gdbScript.text);
        const g = spawnSync("gdb-multiarch", ["-q", "-nx", "-batch", "-x", f], { encoding: "utf8" });
        if (g.status !== 0 || !/detached/i.test(g.stdout + g.stderr)) {
          q.kill("SIGKILL");
          reject(new Error(`gdb: ${g.stdout}${g.stderr}`));
        }
      };
      start();
    }
  });
}

async function ours(arch, M, kernel, rd, dtb, marker) {
  const t0 = performance.now();
  const riscv = arch === "riscv64";
  const files = { kernel, initrd: rd, ...(riscv ? { fw: new Uint8Array(readFileSync(OPENSBI)) } : {}) };
  const vm = await createVm({ ram: [{ base: M.base, size: 256 * MiB }], files: fromMap(files) });
  const b = await bootLinux(vm, {
    arch, kernel: "kernel", initrd: "initrd", dtb, cmdline: `console=${M.console}`, layout: "qemu", stub: true, ...(riscv ? { firmware: "fw" } : {}),
  });
  const bios = riscv ? ["-bios", "none"] : [];
  const blobs = M.blobs[bios.join(" ")] ??= ramBlobs(M, bios);
  const loaders = [];
  const restores = [];
  let n = 0;
  for (const p of b.placements) {
    const end = p.paddr + p.size;
    const cuts = [...new Set([p.paddr, end, ...blobs.flatMap((x) => [x.addr, x.addr + x.size]).filter((x) => x > p.paddr && x < end)])].sort((a, c) => a - c);
    for (let i = 0; i + 1 < cuts.length; i++) {
      const f = join(work, `p${n++}.bin`);
      writeFileSync(f, vm.ram.read(cuts[i], cuts[i + 1] - cuts[i]));
      if (blobs.some((x) => cuts[i] >= x.addr && cuts[i] < x.addr + x.size)) restores.push(`restore ${f} binary ${hx(cuts[i])}`);
      else loaders.push("-device", `loader,file=${f},addr=${hx(cuts[i])},force-raw=on`);
    }
  }
  loaders.push("-device", `loader,addr=${hx(b.cpu.pc)},cpu-num=0`);
  const sock = join(work, "gdb.sock");
  rmSync(sock, { force: true });
  const gdb = restores.length
    ? { sock, text: ["set confirm off", `set architecture ${M.gdb}`, `target remote ${sock}`, ...restores, "detach", ""].join("\n") }
    : undefined;
  const qargs = [...M.m, ...bios, ...COMMON, ...(gdb ? ["-S", "-gdb", `unix:${sock},server=on,wait=off`] : []), ...loaders];
  return run(`qemu-system-${M.qemu}`, qargs, marker, t0, gdb);
}

function qemuKernel(M, rdPath, marker) {
  const t0 = performance.now();
  const qargs = [...M.m, ...COMMON, "-kernel", join(FIX, M.kernel), "-initrd", rdPath, "-append", `console=${M.console}`];
  return run(`qemu-system-${M.qemu}`, qargs, marker, t0);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = [];
try {
  for (const arch of ARCHES) {
    const M = { ...MACHINES[arch], blobs: {} };
    const kernel = new Uint8Array(readFileSync(join(FIX, M.kernel)));
    const dtb = machineDtb(M);
    const a = [];
    const q = [];
    for (let i = 0; i < RUNS; i++) {
      const marker = `bench-${arch}-${i}-${Math.random().toString(36).slice(2)}`;
      const rd = initrd(M.deb, marker);
      const rdPath = join(work, `initrd-${arch}.cpio`);
      writeFileSync(rdPath, rd);
      a.push(await ours(arch, M, kernel, rd, dtb, marker));
      q.push(await qemuKernel(M, rdPath, marker));
    }
    const row = { arch, runs: RUNS, guestImageMs: Math.round(median(a)), qemuKernelMs: Math.round(median(q)), ratio: +(median(a) / median(q)).toFixed(2), guestImageAll: a.map(Math.round), qemuKernelAll: q.map(Math.round) };
    results.push(row);
    console.log(`${arch.padEnd(8)} bootLinux → marker ${String(row.guestImageMs).padStart(6)} ms   qemu -kernel → marker ${String(row.qemuKernelMs).padStart(6)} ms   ratio ${row.ratio}   (runs: ${row.guestImageAll.join(", ")} / ${row.qemuKernelAll.join(", ")})`);
  }
  writeFileSync(join(ROOT, "bench", "realboot-arm.json"), JSON.stringify({ date: new Date().toISOString(), results }, null, 2) + "\n");
} finally {
  rmSync(work, { recursive: true, force: true });
}
