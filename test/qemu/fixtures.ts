/**
 * Shared pieces of the QEMU conformance tests: where the real-kernel fixtures are (made by
 * scripts/fetch-fixtures.sh, cached outside the repo), a loud failure when a format module does
 * not exist yet, our side of a load, and a byte comparison that reports offsets instead of
 * printing megabytes.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { createVm, fromDirectory, type Vm } from "../../src/node.js";
import { FORMATS } from "../../src/formats/detect.js";

/** The cache scripts/fetch-fixtures.sh fills (same default, same variable). */
export const FIXTURES = process.env["GUEST_IMAGE_FIXTURES"] ?? join(homedir(), ".cache", "guest-image-fixtures");

/** Path of a fetched fixture; fails (not skips) with what to run when the cache is missing. */
export function fixture(rel: string): string {
  const stamp = join(FIXTURES, "fixtures.stamp");
  if (!existsSync(stamp)) {
    throw new Error(`real-kernel fixtures are missing (${stamp} not found): run \`bash scripts/fetch-fixtures.sh\` first (CI's .ci/run does)`);
  }
  const p = join(FIXTURES, rel);
  if (!existsSync(p)) throw new Error(`fixture ${p} is missing: run \`FORCE=1 bash scripts/fetch-fixtures.sh\``);
  return p;
}

export const readFixture = (rel: string) => new Uint8Array(readFileSync(fixture(rel)));

/**
 * Fails with "format X not implemented yet" when src/formats/ has no such module (or it cannot
 * load kernels), so a missing format shows as a failing conformance test, never as a silent skip
 * or as a raw-binary load that happens to put the bytes in the same place.
 */
export function requireFormat(name: string, role: "kernel" | "module" = "kernel"): void {
  const f = FORMATS.find((x) => x.name === name);
  if (!f) {
    throw new Error(`format "${name}" not implemented yet: src/formats/detect.ts FORMATS has no "${name}" entry (has: ${FORMATS.map((x) => x.name).join(", ")})`);
  }
  if (role === "kernel" && !f.planKernel) throw new Error(`format "${name}" not implemented yet as a kernel: its module has no planKernel`);
  if (role === "module" && !f.planModule) throw new Error(`format "${name}" not implemented yet as a module: its module has no planModule`);
}

/** A VM over `ram` that reads the fixture cache (names are paths relative to it, "arm64/Image"). */
export async function fixtureVm(ram: { base: number; size: number }): Promise<Vm> {
  fixture(".");
  return createVm({ ram: [ram], files: fromDirectory(FIXTURES) });
}

const h = (n: number | bigint) => `0x${n.toString(16)}`;

/** Equal bytes, or a failure naming the first differing offsets (never a megabyte diff). */
export function expectSameBytes(ours: Uint8Array, theirs: Uint8Array, what: string, base = 0): void {
  expect(ours.length, `${what}: length`).toBe(theirs.length);
  if (Buffer.compare(Buffer.from(ours.buffer, ours.byteOffset, ours.length), Buffer.from(theirs.buffer, theirs.byteOffset, theirs.length)) === 0) return;
  const diffs: number[] = [];
  let count = 0;
  for (let i = 0; i < ours.length; i++) {
    if (ours[i] !== theirs[i]) {
      count++;
      if (diffs.length < 8) diffs.push(i);
    }
  }
  throw new Error(
    `${what}: ${count} of ${ours.length} bytes differ; first at ` +
      diffs.map((i) => `${h(base + i)} (ours ${h(ours[i])}, reference ${h(theirs[i])})`).join(", "),
  );
}

/** A copy of guest RAM [paddr, paddr+len) of `vm`. */
export const ramBytes = (vm: Vm, paddr: number | bigint, len: number) => vm.ram.view(Number(paddr), len).slice();

export const le32 = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(o, true);
export const le64 = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(o, true);
export const be32 = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(o, false);
export { h as hex };
