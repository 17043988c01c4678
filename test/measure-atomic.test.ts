/**
 * Measured boot never leaves a half-done load: when the digest fails (injected here: a SHA-256
 * implementation that throws, or whose promise rejects), the call throws and guest RAM, the
 * ledger and the event log are exactly as before — for a kernel (the example ELF, with BSS), a
 * module, placed bytes, a gzip kernel (a streamed source), and inside a transaction that goes on.
 * Oracle for the digests once hashing works again: sha256sum.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { gzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { GuestImageError } from "../src/errors.js";
import { useSha256, type Sha256 } from "../src/measure.js";
import { fromMap } from "../src/sources/memory.js";
import { createVm, type Vm } from "../src/vm.js";

const read = (rel: string) => new Uint8Array(fs.readFileSync(new URL(`../examples/images/${rel}`, import.meta.url)));
const KERNEL = read("linux");
const INITRD = read("rootfs.cpio.gz");
const RAM = { base: 0x4000_0000, size: 256 * 0x100000 };

const nodeSha: Sha256 = (pieces) => {
  const h = createHash("sha256");
  for (const p of pieces) h.update(p);
  return new Uint8Array(h.digest());
};
const sha256sum = (b: Uint8Array) => spawnSync("sha256sum", ["-b", "-"], { input: b, encoding: "utf8" }).stdout.split(" ")[0];

const failures: Array<[string, Sha256]> = [
  ["throws", () => {
    throw new Error("digest engine failed");
  }],
  ["rejects", (pieces) => Promise.resolve().then(() => {
    void pieces;
    throw new Error("digest engine failed later");
  })],
];

afterEach(() => useSha256(nodeSha));

async function vmWith(dirty: boolean): Promise<Vm> {
  const vm = await createVm({ ram: [RAM], files: fromMap({ kernel: KERNEL, initrd: INITRD, "Image.gz": gzipSync(new Uint8Array(0x30000).map((_, i) => (i * 31) & 0xff)) }), measure: true });
  if (dirty) vm.ram.view(RAM.base, RAM.size).fill(0x5c);
  return vm;
}

function snapshot(vm: Vm) {
  return { ram: vm.ram.read(RAM.base, RAM.size).slice(), placed: vm.placed(), events: vm.measurements() };
}

function expectSame(vm: Vm, before: ReturnType<typeof snapshot>) {
  const now = snapshot(vm);
  expect(now.placed).toEqual(before.placed);
  expect(now.events).toEqual(before.events);
  expect(Buffer.compare(Buffer.from(now.ram), Buffer.from(before.ram))).toBe(0);
}

async function expectFails(p: Promise<unknown>): Promise<GuestImageError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(GuestImageError);
  expect((e as GuestImageError).message).toMatch(/digest engine failed/);
  return e as GuestImageError;
}

const loads: Array<[string, (vm: Vm) => Promise<unknown>]> = [
  ["loadKernel (ELF with BSS)", (vm) => vm.loadKernel("kernel")],
  ["loadKernel (gzip, decompressed into RAM)", (vm) => vm.loadKernel("Image.gz", { at: 0x4800_0000 })],
  ["loadModule", (vm) => vm.loadModule("initrd", { at: 0x4d70_0000 })],
  ["place", (vm) => vm.place("zero-page", new Uint8Array(0x1000).fill(0xa5), { at: 0x4001_0000, format: "boot_params" })],
];

describe("measured boot: a digest that fails changes nothing", () => {
  for (const [what, load] of loads) {
    for (const [how, sha] of failures) {
      for (const dirty of [false, true]) {
        it(`${what}: digest ${how}, ${dirty ? "dirty" : "fresh"} RAM → error, RAM + ledger + event log unchanged`, async () => {
          const vm = await vmWith(dirty);
          await vm.loadModule("initrd", { at: 0x4f00_0000 }); // something already measured and placed
          const before = snapshot(vm);
          useSha256(sha);
          await expectFails(load(vm));
          expectSame(vm, before);
          // Hashing works again: the same load succeeds and is measured as sha256sum says.
          useSha256(nodeSha);
          await load(vm);
          const ev = vm.measurements().at(-1)!;
          expect(ev.digest).toBe(sha256sum(vm.ram.read(ev.paddr, ev.size)));
          expect(vm.measurements().map((e) => e.index)).toEqual([0, 2]); // index 1 went to the failed attempt, never reused
        });
      }
    }
  }

  it("inside a transaction that catches the failure and goes on: only the failed load is undone", async () => {
    const vm = await vmWith(true);
    await vm.transaction(async (t) => {
      await t.loadKernel("kernel");
      const before = snapshot(vm);
      useSha256(failures[1][1]);
      await expectFails(t.loadModule("initrd", { at: 0x4d70_0000 }));
      expectSame(vm, before);
      useSha256(nodeSha);
      await t.loadModule("initrd", { at: 0x4d70_0000 });
    });
    expect(vm.placed().map((p) => p.name).sort()).toEqual(["initrd", "kernel"]);
    expect(vm.measurements().map((e) => e.name)).toEqual(["kernel", "initrd"]);
  });
});
