// Bench (not part of `npm test`; run `npx vitest run --config bench/vitest.realboot-x86.config.mjs`):
// time from the bootLinux call to the userspace marker when QEMU boots from guest-image's RAM and
// cpu object (64-bit entry, default layout: test/realboot/x86-qemu.ts), against QEMU's own
// `-kernel -initrd -append` boot of the same files (SeaBIOS + linuxboot), same machine, alternated
// run by run. Writes bench/results-realboot-x86.json and prints the medians and their ratio.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import type { X86CpuState } from "../../src/boot/cpu-x86.js";
import { bootLinux, createVm, fromMap } from "../../src/node.js";
import { fixture, readFixture } from "../qemu/fixtures.js";
import { markerInitrd } from "./initrd.js";
import { bootX86, qemuKernelBoot } from "./x86-qemu.js";

const RUNS = Number(process.env["RUNS"] ?? 3);
const MARKER = "GUEST-IMAGE-X86-BENCH-OK";
const CMDLINE = "console=ttyS0";
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

it("x86_64: boot call → userspace marker, guest-image + QEMU (no -kernel) vs QEMU -kernel", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gi-x86bench-"));
  try {
    const initrd = markerInitrd("amd64", { marker: MARKER });
    const initrdPath = join(dir, "initrd.cpio");
    writeFileSync(initrdPath, initrd);
    const kernel = readFixture("amd64/bzImage");
    const ours: number[] = [];
    const theirs: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      const vm = await createVm({ ram: [{ base: 0, size: 256 * 1024 * 1024 }], files: fromMap({ bzImage: kernel, initrd }) });
      const b = await bootLinux(vm, { arch: "x86_64", kernel: "bzImage", initrd: "initrd", cmdline: CMDLINE });
      const pieces = vm.placed().map((p) => ({ paddr: p.paddr, bytes: vm.ram.read(p.paddr, p.size) }));
      const r = await bootX86({ cpu: b.cpu as X86CpuState, pieces, marker: MARKER });
      expect(r.marker).toBe(true);
      ours.push((r.markerAt - t0) / 1000);
      const q = await qemuKernelBoot({ kernel: fixture("amd64/bzImage"), initrd: initrdPath, cmdline: CMDLINE, marker: MARKER });
      expect(q.marker).toBe(true);
      theirs.push(q.seconds);
    }
    const result = {
      date: new Date().toISOString(), runs: RUNS, kernel: "Debian bookworm linux-image-amd64 (fixture amd64/bzImage)", machine: "qemu-system-x86_64 -M pc, TCG, 256 MiB",
      guestImageSeconds: ours, qemuKernelSeconds: theirs, medianGuestImage: median(ours), medianQemuKernel: median(theirs), ratio: median(ours) / median(theirs),
    };
    writeFileSync(fileURLToPath(new URL("../../bench/results-realboot-x86.json", import.meta.url)), JSON.stringify(result, null, 2) + "\n");
    console.log(`x86_64 to userspace: guest-image ${result.medianGuestImage.toFixed(2)} s, QEMU -kernel ${result.medianQemuKernel.toFixed(2)} s, ratio ${result.ratio.toFixed(2)} (median of ${RUNS})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
