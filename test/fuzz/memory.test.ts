// Memory: no input may make the process allocate more than its target range plus a small
// constant (issue #6). Inputs here are large files on disk whose headers make the loader read
// data it does not place; each load runs in a child process on dist/ (test/fuzz/measure-child.mjs)
// that reports how much its peak RSS grew. Bound: the bytes placed + 48 MiB.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import * as b from "../../fuzz/builders.mjs";

const MiB = 1 << 20;
const CHILD = join(dirname(fileURLToPath(import.meta.url)), "measure-child.mjs");
const DIR = join(tmpdir(), "guest-image-memory");
const BIG = 128 * MiB;

function measure(name: string, bytes: () => Uint8Array, at: number, relocs = false) {
  mkdirSync(DIR, { recursive: true });
  const path = join(DIR, name);
  writeFileSync(path, bytes());
  const r = spawnSync(process.execPath, ["--expose-gc", CHILD, path, String(at), relocs ? "relocs" : ""], { encoding: "utf8", timeout: 120_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { code: string | null; message: string | null; size: number | null; peakGrowth: number; ms: number };
}

describe("allocation is bounded by the target range, not the input", () => {
  it("an ELF whose PT_DYNAMIC is 128 MiB of file bytes outside every PT_LOAD (4 KiB placed)", () => {
    const m = measure("dynamic.elf", () => b.elf({
      class: 64, machine: b.EM.x86_64,
      segments: [{ vaddr: 0x100000n, paddr: 0x100000n, data: b.filler(0x1000) }, { type: 2, vaddr: 0x200000n, paddr: 0x200000n, data: new Uint8Array(BIG).fill(0x11), memsz: 0n }],
    }).bytes, 0x200000);
    expect(m.peakGrowth, `${m.code ?? "loaded"} ${m.message ?? ""}: peak RSS grew by ${(m.peakGrowth / MiB).toFixed(0)} MiB`).toBeLessThanOrEqual(0x1000 + 48 * MiB);
  }, 180_000);

  it("an x86 kernel whose appended relocs data is 128 MiB (4 KiB placed)", () => {
    const m = measure("relocs.elf", () => b.elf({
      class: 32, machine: b.EM.i386, segments: [{ vaddr: 0x100000n, paddr: 0x100000n, data: b.filler(0x1000) }], trailer: new Uint8Array(BIG).fill(0x11),
    }).bytes, 0x200000, true);
    expect(m.code).not.toBeNull();
    expect(m.peakGrowth, `${m.code} ${m.message}: peak RSS grew by ${(m.peakGrowth / MiB).toFixed(0)} MiB`).toBeLessThanOrEqual(0x1000 + 48 * MiB);
  }, 180_000);

  it("a 128 MiB raw image is placed without a second copy (16 MiB of RAM: refused before reading)", () => {
    const m = measure("raw.bin", () => new Uint8Array(BIG).fill(0x22), 0x40000000);
    expect(m.code).toBe("OUT_OF_RAM");
    expect(m.peakGrowth).toBeLessThanOrEqual(48 * MiB);
  }, 180_000);
});
