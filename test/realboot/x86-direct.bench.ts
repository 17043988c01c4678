// Bench (not part of `npm test`; run `npx vitest run --config bench/vitest.realboot-x86-direct.config.mjs`):
// time from the bootLinux call to the userspace marker in QEMU (TCG, no -kernel, 64-bit entry,
// test/realboot/x86-qemu.ts), bzImage DIRECT boot (the library decompresses the xz payload, the
// guest starts in vmlinux's startup_64) against the normal bzImage path (the guest runs the
// bzImage's own decompressor), same kernel and initrd, alternated run by run; plus the host's
// decompression of that payload against `xz -dc`. Writes bench/results-realboot-x86-direct.json.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import type { X86CpuState } from "../../src/boot/cpu-x86.js";
import { xz } from "../../src/compress/xz.js";
import { bootLinux, createVm, fromMap } from "../../src/node.js";
import { readFixture } from "../qemu/fixtures.js";
import { markerInitrd } from "./initrd.js";
import { bootX86 } from "./x86-qemu.js";

const RUNS = Number(process.env["RUNS"] ?? 3);
const MARKER = "GUEST-IMAGE-X86-DIRECT-BENCH-OK";
const CMDLINE = "console=ttyS0";
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

it("x86_64: boot call → userspace marker, direct vs bzImage decompressor; payload decompression vs xz -dc", async () => {
  const initrd = markerInitrd("amd64", { marker: MARKER });
  const kernel = readFixture("amd64/bzImage");
  const boot = async (direct: boolean) => {
    const t0 = performance.now();
    const vm = await createVm({ ram: [{ base: 0, size: 256 * 1024 * 1024 }], files: fromMap({ bzImage: kernel, initrd }) });
    const b = await bootLinux(vm, { arch: "x86_64", kernel: "bzImage", initrd: "initrd", cmdline: CMDLINE, x86Direct: direct });
    const t1 = performance.now();
    const pieces = vm.placed().map((p) => ({ paddr: p.paddr, bytes: vm.ram.read(p.paddr, p.size) }));
    const r = await bootX86({ cpu: b.cpu as X86CpuState, pieces, marker: MARKER, timeoutMs: 120_000 });
    expect(r.marker).toBe(true);
    return { total: (r.markerAt - t0) / 1000, host: (t1 - t0) / 1000 };
  };
  const direct: Array<{ total: number; host: number }> = [];
  const normal: Array<{ total: number; host: number }> = [];
  for (let i = 0; i < RUNS; i++) {
    direct.push(await boot(true));
    normal.push(await boot(false));
  }

  // Host decompression of the same payload (boot.rst offsets), ours vs xz-utils, best of RUNS.
  const dv = new DataView(kernel.buffer, kernel.byteOffset, kernel.length);
  const start = (kernel[0x1f1]! + 1) * 512 + dv.getUint32(0x248, true);
  const payload = kernel.subarray(start, start + dv.getUint32(0x24c, true) - 4);
  const size = dv.getUint32(start + dv.getUint32(0x24c, true) - 4, true);
  const out = new Uint8Array(size);
  let ours = Infinity, native = Infinity;
  for (let i = 0; i < RUNS; i++) {
    let t = performance.now();
    xz.decode(payload, out);
    ours = Math.min(ours, performance.now() - t);
    t = performance.now();
    execFileSync("sh", ["-c", "xz -dc >/dev/null"], { input: payload });
    native = Math.min(native, performance.now() - t);
  }

  const result = {
    date: new Date().toISOString(), runs: RUNS, kernel: "Debian bookworm linux-image-amd64 (fixture amd64/bzImage, xz payload)", machine: "qemu-system-x86_64 -M pc, TCG, 256 MiB",
    directSeconds: direct.map((d) => d.total), normalSeconds: normal.map((d) => d.total),
    directHostSeconds: direct.map((d) => d.host), normalHostSeconds: normal.map((d) => d.host),
    medianDirect: median(direct.map((d) => d.total)), medianNormal: median(normal.map((d) => d.total)),
    ratio: median(direct.map((d) => d.total)) / median(normal.map((d) => d.total)),
    xzPayload: { bytesOut: size, oursMBps: size / 1e6 / (ours / 1000), xzMBps: size / 1e6 / (native / 1000), ratio: native / ours },
  };
  writeFileSync(fileURLToPath(new URL("../../bench/results-realboot-x86-direct.json", import.meta.url)), JSON.stringify(result, null, 2) + "\n");
  console.log(`x86_64 to userspace: direct ${result.medianDirect.toFixed(2)} s, normal ${result.medianNormal.toFixed(2)} s, ratio ${result.ratio.toFixed(2)} (median of ${RUNS}); payload xz: ours ${result.xzPayload.oursMBps.toFixed(1)} MB/s, xz -dc ${result.xzPayload.xzMBps.toFixed(1)} MB/s (${result.xzPayload.ratio.toFixed(2)}×)`);
});
