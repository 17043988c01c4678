// Child process of the memory and time tests (test/corpus/corpus.test.ts, test/fuzz/memory.test.ts):
// loads <file> as a kernel at <addr> (relocated with the file's own x86 relocs data when the third
// argument is "relocs") into a VM with RAM [0, 4 MiB) and [0x40000000, +16 MiB), on the built
// library, and prints the outcome with its time and how much the process's peak RSS grew during
// the load. The file is read from disk, so the input itself is not in this process's memory.
// Usage: node --expose-gc test/fuzz/measure-child.mjs <file> <addr> [relocs]
import { readFileSync, statSync } from "node:fs";
import { createVm, fromPaths } from "../../dist/node.js";

const [file, addr, relocs] = process.argv.slice(2);
// The peak RSS of this process image: Linux's VmHWM (getrusage's maxrss would include the parent's
// peak, which a child inherits across fork and exec).
function peak() {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]) * 1024;
  } catch {}
  return process.resourceUsage().maxRSS * 1024;
}
const at = Number(addr);
const vm = await createVm({ ram: [{ base: 0, size: 4 << 20 }, { base: 0x40000000, size: 16 << 20 }], files: fromPaths() });
globalThis.gc?.();
const peakBefore = peak();
const rssBefore = process.memoryUsage.rss();
const t0 = performance.now();
let code = null, field = null, message = null, size = null;
try {
  size = (await vm.loadKernel(file, { at, relocs: relocs === "relocs" ? file : undefined })).size;
} catch (e) {
  code = e?.code ?? `not a GuestImageError: ${e?.name}`;
  field = e?.field ?? null;
  message = e?.message ?? String(e);
}
const ms = performance.now() - t0;
const peakAfter = peak();
process.stdout.write(JSON.stringify({ code, field, message, size, ms, inputBytes: statSync(file).size, rssBefore, peakBefore, peakAfter, peakGrowth: Math.max(0, peakAfter - Math.max(peakBefore, rssBefore)) }) + "\n");
