// The API surface fuzzed with arbitrary JavaScript values (fast-check `anything`), mixed with
// well-formed ones: whatever a caller passes, a public function either works or throws (rejects
// with) a GuestImageError — never a TypeError or RangeError from inside — and a call that fails
// leaves guest RAM and the ledger as they were.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import * as lib from "../../src/node.js";
import * as b from "../../fuzz/builders.mjs";

const RUNS = Number(process.env.PROPERTY_RUNS ?? 150);
const SEED = Number(process.env.PROPERTY_SEED ?? 9091);
const MiB = 1 << 20;

const files = {
  "raw.bin": b.filler(0x1000, 1),
  Image: b.arm64Image({ len: 0x2000 }).bytes,
  "linux.dtb": b.fdt(b.sampleTree(0x40000000n, 0x400000n)).bytes,
  "initrd.gz": b.gzip(b.filler(0x800, 2)).bytes,
  "mb2.bin": b.multiboot2Aout({ load_addr: 0x40100000, extra: [{ type: 6 }] }).bytes,
};
const names = fc.oneof(fc.constantFrom(...Object.keys(files), "./raw.bin", "missing", ""), fc.anything());
const num = fc.oneof(fc.constantFrom(0, 0x40000000, 0x40100000, 0x1000, 2 ** 53, -1, 0.5, NaN, Infinity, -0), fc.anything());
const opts = fc.oneof(
  fc.constantFrom(undefined, null, {}, 5, "x", []),
  fc.record({ at: num, align: num, dryRun: fc.anything(), relocs: fc.anything(), auto: fc.anything(), onProgress: fc.anything(), format: fc.anything() }, { requiredKeys: [] }),
  fc.anything(),
);

async function vm() {
  const v = await lib.createVm({ ram: [{ base: 0x40000000, size: 4 * MiB }], files: lib.fromMap(files) });
  await v.place("resident", new Uint8Array(0x100).fill(1), { at: 0x40300000 });
  return v;
}
const snap = (v: lib.Vm) => Buffer.from(v.ram.read(0x40000000, 4 * MiB));

/** Calls fn; it may succeed or fail with a GuestImageError, and a failure changes nothing. */
async function onlyGuestImageError(v: lib.Vm | null, fn: () => unknown) {
  const before = v && snap(v);
  const placed = v?.placed();
  try {
    await fn();
  } catch (e) {
    expect(e, `${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`).toBeInstanceOf(lib.GuestImageError);
    if (v) {
      expect(snap(v).equals(before!), "guest RAM changed on failure").toBe(true);
      expect(v.placed()).toEqual(placed);
    }
  }
}

const prop = <T>(arb: fc.Arbitrary<T>, fn: (x: T) => Promise<void>) => fc.assert(fc.asyncProperty(arb, fn), { numRuns: RUNS, seed: SEED });

describe("public functions with arbitrary arguments", () => {
  it("Vm.loadKernel(name, opts)", () => prop(fc.tuple(names, opts), async ([n, o]) => {
    const v = await vm();
    await onlyGuestImageError(v, () => v.loadKernel(n as string, o as lib.KernelLoadOptions));
  }));
  it("Vm.loadModule(name, opts)", () => prop(fc.tuple(names, opts), async ([n, o]) => {
    const v = await vm();
    await onlyGuestImageError(v, () => v.loadModule(n as string, o as lib.ModuleLoadOptions));
  }));
  it("Vm.place(name, bytes, opts)", () => prop(fc.tuple(names, fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.anything()), opts), async ([n, bytes, o]) => {
    const v = await vm();
    await onlyGuestImageError(v, () => v.place(n as string, bytes as Uint8Array, o as lib.ModuleLoadOptions));
  }));
  it("Vm.findFree(size, opts)", () => prop(fc.tuple(num, opts), async ([s, o]) => {
    const v = await vm();
    await onlyGuestImageError(v, () => v.findFree(s as number, o as lib.FindFreeOptions));
  }));
  it("vm_load_guest_kernel / vm_load_guest_module (vm, name, load_address, alignment, struct)", () => prop(fc.tuple(fc.boolean(), fc.boolean(), names, num, num, fc.anything()), async ([kernel, realVm, n, at, al, st]) => {
    const v = await vm();
    const target = (realVm ? v : st) as lib.Vm;
    await onlyGuestImageError(v, () => (kernel ? lib.vm_load_guest_kernel(target, n as string, at as number, al as number, st as never) : lib.vm_load_guest_module(target, n as string, at as number, al as number, st as never)));
  }));
  it("bootLinux(vm, opts)", () => prop(fc.record({ arch: fc.oneof(fc.constantFrom("arm64", "arm", "riscv64", "x86_64"), fc.anything()), kernel: names, initrd: names, dtb: fc.oneof(names, fc.uint8Array({ maxLength: 64 })), cmdline: fc.anything(), layout: fc.anything(), hartId: num, fdtFreeSpace: num }, { requiredKeys: [] }), async (o) => {
    const v = await vm();
    await onlyGuestImageError(v, () => lib.bootLinux(v, o as lib.BootLinuxOptions));
  }));
  it("bootMultiboot2(vm, opts) and buildMultiboot2Info(opts)", () => prop(fc.tuple(fc.record({
    kernel: fc.oneof(fc.constant("mb2.bin"), names), cmdline: fc.anything(), bootLoaderName: fc.anything(), at: num, infoAt: num, pcLegacyArea: fc.anything(),
    modules: fc.oneof(fc.array(fc.record({ name: names, cmdline: fc.anything(), at: num }, { requiredKeys: ["name"] }), { maxLength: 3 }), fc.anything()),
    memoryRanges: fc.oneof(fc.array(fc.record({ base: num, size: num, type: num }, { requiredKeys: [] }), { maxLength: 3 }), fc.anything()),
    framebuffer: fc.oneof(fc.record({ addr: num, pitch: num, width: num, height: num, bpp: num, type: fc.constantFrom("rgb", "indexed", "ega-text", 7), rgb: fc.anything(), palette: fc.anything() }, { requiredKeys: [] }), fc.anything()),
    acpiRsdpV1: fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.anything()), acpiRsdpV2: fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.anything()),
    smbios: fc.oneof(fc.record({ major: num, minor: num, tables: fc.oneof(fc.uint8Array({ maxLength: 8 }), fc.anything()) }, { requiredKeys: [] }), fc.anything()),
  }, { requiredKeys: [] }), fc.anything()), async ([o, raw]) => {
    const v = await vm();
    await onlyGuestImageError(v, () => lib.bootMultiboot2(v, o as unknown as lib.BootMultiboot2Options));
    await onlyGuestImageError(null, () => lib.buildMultiboot2Info({ ram: [{ base: 0, size: 0x100000 }], ...(o as object) } as unknown as lib.Multiboot2InfoOptions));
    await onlyGuestImageError(null, () => lib.buildMultiboot2Info(raw as lib.Multiboot2InfoOptions));
  }));
  it("createVm(opts)", () => prop(fc.oneof(fc.anything(), fc.record({ ram: fc.oneof(fc.anything(), fc.array(fc.record({ base: num, size: num }), { maxLength: 3 })), memoryOffset: num, scratchOffset: num, memory: fc.anything(), measure: fc.anything() }, { requiredKeys: [] })), async (o) => {
    await onlyGuestImageError(null, () => lib.createVm(o as lib.CreateVmOptions));
  }));
  it("sources and parsers: fromMap, fromCpio, parseCpio, parseFdt, writeFdt, inspectFile", () => prop(fc.tuple(fc.constantFrom("fromMap", "fromCpio", "parseCpio", "parseFdt", "writeFdt", "inspectFile"), fc.anything()), async ([f, x]) => {
    await onlyGuestImageError(null, async () => {
      if (f === "inspectFile") return lib.inspectFile(x as lib.ImageFile);
      return (lib as unknown as Record<string, (a: unknown) => unknown>)[f](x);
    });
  }));
});
