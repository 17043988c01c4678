// Small helpers shared by format tests: a VM whose RAM is pre-filled with a marker byte (so
// untouched and zeroed bytes are both visible), the "refused and nothing changed" assertion, and
// running a describe block with a given inflater registered.
import { afterAll, beforeAll, expect } from "vitest";
import { decompressionStreamInflater, setInflater, type Inflater } from "../../src/compress/inflate.js";
import { nodeInflater } from "../../src/compress/inflate-node.js";
import { createVm, fromMap, GuestImageError, type Vm } from "../../src/node.js";
import { eqBytes } from "./gzip.js";

export const MiB = 0x10_0000;
export const RAM_BASE = 0x4000_0000;

/** A VM with one RAM region at `base`, filled with 0xee, serving `files`. */
export async function vmWith(files: Record<string, Uint8Array>, ramSize = 64 * MiB, base = RAM_BASE): Promise<Vm> {
  const vm = await createVm({ ram: [{ base, size: ramSize }], files: fromMap(files) });
  vm.ram.view(base, ramSize).fill(0xee);
  return vm;
}

/**
 * Asserts `load` fails with `code` (and, if given, names `field` in `.field` and the message),
 * leaving guest RAM and the ledger exactly as they were.
 */
export async function expectRefused(vm: Vm, load: () => Promise<unknown>, code: string, field?: string): Promise<GuestImageError> {
  const r = vm.ram.regions[0];
  const before = vm.ram.read(r.base, r.size);
  const placed = vm.placed();
  const e = await load().then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(GuestImageError);
  const err = e as GuestImageError;
  expect(err.code, err.message).toBe(code);
  if (field !== undefined) {
    expect(err.field).toBe(field);
    expect(err.message).toContain(field);
  }
  expect(vm.placed()).toEqual(placed);
  expect(eqBytes(vm.ram.read(r.base, r.size), before)).toBe(true);
  return err;
}

/** Both inflaters: node:zlib (registered by the Node entry) and DecompressionStream (the default). */
export const INFLATERS: Inflater[] = [nodeInflater, decompressionStreamInflater];

/** Registers `inflater` for the tests of the enclosing describe block. */
export function withInflater(inflater: Inflater): void {
  let prev: Inflater;
  beforeAll(() => {
    prev = setInflater(inflater);
  });
  afterAll(() => {
    setInflater(prev);
  });
}
