// Structure-aware property tests (fast-check) for every parser. Each generator builds a valid
// image from its spec (fuzz/builders.mjs) and then sets header fields to edge values — sizes,
// offsets and addresses near 0, 2^31, 2^32, 2^53 and 2^64, overlaps, maximal values — and every
// input runs through the fuzz harness (fuzz/harness.mjs), which checks the invariants of issue #6:
// only GuestImageError escapes, a failure leaves RAM and the ledger as they were, a success
// writes only inside the range it reports. On top of that, each property computes from the spec
// what must happen — which inputs are valid and where a valid one goes — and checks the library
// agrees: valid inputs load, with the bytes where the spec puts them; invalid ones fail with the
// right kind of error.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as lib from "../../src/node.js";
import * as b from "../../fuzz/builders.mjs";
import { createHarness, FUZZ_RAM, RESIDENTS } from "../../fuzz/harness.mjs";

const RUNS = Number(process.env.PROPERTY_RUNS ?? 200);
const SEED = Number(process.env.PROPERTY_SEED ?? 6061);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MiB = 1 << 20;
const U64 = (1n << 64n) - 1n;

type Harness = Awaited<ReturnType<typeof createHarness>>;
let h: Harness;
beforeAll(async () => {
  h = await createHarness(lib);
});
afterAll(() => h.close());

// ---------------------------------------------------------------------------------------------
// Edge-value arbitraries

const u32edge = fc.oneof(
  fc.constantFrom(0, 1, 2, 0x40, 0x1000, 0x7fffffff, 0x80000000, 0xfffff000, 0xfffffffc, 0xffffffff, 0x100000, 0x200000, 0x40000000, 0x80000000, 0xffe00000),
  fc.nat({ max: 0xffffffff }),
);
const u64edge = fc.oneof(
  fc.constantFrom(0n, 1n, 0x1000n, 0x80000n, 0x200000n, 0xffffffffn, 1n << 32n, MAX_SAFE, MAX_SAFE + 1n, 1n << 53n, 1n << 63n, U64, U64 - 0xfffn, 0x40000000n),
  fc.bigInt({ min: 0n, max: U64 }),
);
/** Load addresses: in RAM, next to its edges, and far outside it. */
const atArb = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom(0, 0x8000, 0x100000, 0x40000000, 0x40200000, 0x403ff000, 0x80000000, 0xffe00000, 0xfffff000, 0x100000000, 2 ** 53 - 0x200000, Number.MAX_SAFE_INTEGER),
  fc.integer({ min: 0, max: 2 ** 33 }),
);
const alignArb = fc.constantFrom(0, 1, 0x1000, 0x200000, 0x400000);

const inRam = (paddr: bigint, size: bigint) => {
  if (size === 0n) return FUZZ_RAM.some((r) => paddr >= BigInt(r.base) && paddr <= BigInt(r.base + r.size));
  // contiguous regions join (0xffe00000 + 0x100000000)
  let p = paddr;
  const end = paddr + size;
  while (p < end) {
    const r = FUZZ_RAM.find((x) => p >= BigInt(x.base) && p < BigInt(x.base + x.size));
    if (!r) return false;
    p = BigInt(r.base + r.size);
  }
  return true;
};
const overlapsResident = (paddr: bigint, size: bigint) => size > 0n && RESIDENTS.some((r) => paddr < BigInt(r.paddr + r.size) && BigInt(r.paddr) < paddr + size);
const alignUp = (v: bigint, a: bigint) => (a <= 1n ? v : ((v + a - 1n) / a) * a);
const poke = (bytes: Uint8Array, off: number, size: 1 | 2 | 4 | 8, v: number | bigint, le = true) => {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (size === 1) dv.setUint8(off, Number(v));
  else if (size === 2) dv.setUint16(off, Number(v), le);
  else if (size === 4) dv.setUint32(off, Number(BigInt(v) & 0xffffffffn), le);
  else dv.setBigUint64(off, BigInt(v) & U64, le);
};

/** What the spec says must happen: "ok" with where it goes, or the error codes allowed. */
type Model =
  | { ok: "any" }
  | { ok: true; paddr: bigint; size: bigint; bytes?: Array<{ at: bigint; data: Uint8Array }>; zero?: Array<{ at: bigint; len: bigint }> }
  | { ok: false; codes: string[] }
  /** Either the load `success` describes, or a failure with one of `codes`. */
  | { ok: "either"; success: { ok: true; paddr: bigint; size: bigint; bytes?: Array<{ at: bigint; data: Uint8Array }>; zero?: Array<{ at: bigint; len: bigint }> }; codes: string[] };

/** Placement outcome of a valid image occupying [paddr, paddr + size). */
function place(paddr: bigint, size: bigint, more: Omit<Extract<Model, { ok: true }>, "ok" | "paddr" | "size"> = {}): Extract<Model, { ok: true }> | Extract<Model, { ok: false }> {
  if (paddr + size > MAX_SAFE) return { ok: false, codes: ["BAD_ADDRESS", "OUT_OF_RAM", "TOO_LARGE"] };
  if (!inRam(paddr, size)) return { ok: false, codes: ["OUT_OF_RAM"] };
  if (overlapsResident(paddr, size)) return { ok: false, codes: ["OVERLAP"] };
  return { ok: true, paddr, size, ...more };
}

/**
 * booting.rst flags bit 3 clear (or a pre-3.17 header): "2MB aligned base should be as close as
 * possible to the base of DRAM". True when a 2 MiB-aligned base (and aligned as asked) below
 * `base` would hold the image in RAM clear of the residents: the load is then refused.
 */
function lowerArm64Base(base: bigint, textOffset: bigint, reserve: bigint, align: bigint): boolean {
  const step = align > 0x200000n ? align : 0x200000n;
  for (const r of FUZZ_RAM) {
    for (let cand = alignUp(BigInt(r.base), step); cand < base && cand < BigInt(r.base + r.size); cand += step) {
      const size = reserve > 0n ? reserve : 1n;
      if (inRam(cand + textOffset, size) && !overlapsResident(cand + textOffset, reserve)) return true;
    }
  }
  return false;
}

/** Runs a case through the harness and compares the outcome with the model. */
async function check(c: Record<string, unknown>, model: Model) {
  // The API rounds the address up to the alignment before anything else; past 2^53 − 1 that fails.
  if (typeof c.at === "number" && typeof c.align === "number" && alignUp(BigInt(c.at), BigInt(c.align)) > MAX_SAFE) model = { ok: false, codes: ["BAD_ADDRESS"] };
  const seen: { paddr?: number; size?: number } = {};
  const r = await h.run({
    key: "img", name: "img", source: "map", ...c,
    onSuccess: (value: { paddr?: number; size?: number; kernel_image?: { load_paddr: number; size: number } }, read: (p: number, l: number) => Uint8Array) => {
      seen.paddr = value.kernel_image?.load_paddr ?? value.paddr;
      seen.size = value.kernel_image?.size ?? value.size;
      const m = model.ok === "either" ? model.success : model;
      if (m.ok !== true) return;
      for (const x of m.bytes ?? []) expect(Buffer.from(read(Number(x.at), x.data.length)).equals(Buffer.from(x.data)), `bytes at 0x${x.at.toString(16)}`).toBe(true);
      for (const z of m.zero ?? []) if (z.len > 0n) expect(read(Number(z.at), Number(z.len)).every((v) => v === 0), `zeros at 0x${z.at.toString(16)}`).toBe(true);
    },
  });
  expect(r.violation, r.violation && `${r.violation.kind}: ${r.violation.detail}`).toBeUndefined();
  if (model.ok === "any") return;
  if (model.ok === "either") {
    if (r.ok) expect({ paddr: seen.paddr, size: seen.size }).toEqual({ paddr: Number(model.success.paddr), size: Number(model.success.size) });
    else expect(model.codes, `${r.code}: ${(r.error as Error | undefined)?.message}`).toContain(r.code);
    return;
  }
  if (model.ok) {
    expect(r.ok, `expected a load, got ${r.code}: ${(r.error as Error | undefined)?.message}`).toBe(true);
    expect({ paddr: seen.paddr, size: seen.size }).toEqual({ paddr: Number(model.paddr), size: Number(model.size) });
  } else {
    expect(r.ok, "expected a failure, the load succeeded").toBe(false);
    expect(model.codes, `${r.code}: ${(r.error as Error | undefined)?.message}`).toContain(r.code);
  }
}

const prop = <T>(arb: fc.Arbitrary<T>, fn: (v: T) => Promise<void>) =>
  fc.assert(fc.asyncProperty(arb, fn), { numRuns: RUNS, seed: SEED, endOnFailure: true });

// ---------------------------------------------------------------------------------------------

describe("Multiboot a.out header (Multiboot 0.6.96 §3.1.3)", () => {
  it("address fields near the edges: valid headers load where they say, invalid ones fail as header errors", async () => {
    const arb = fc.record({
      hoff: fc.nat({ max: (8192 - 32) / 4 }).map((n) => n * 4),
      len: fc.integer({ min: 0x100, max: 0x4000 }),
      load: fc.oneof(fc.constantFrom(0x100000, 0x0, 0x40000000, 0xffe00000, 0xfff00000, 0x3f0000), u32edge),
      hdelta: fc.oneof(fc.constant(0), fc.integer({ min: -0x100, max: 0x2000 }), u32edge),
      end: fc.oneof(fc.constant("zero" as const), fc.integer({ min: -0x100, max: 0x5000 }), u32edge),
      bss: fc.oneof(fc.constant("zero" as const), fc.integer({ min: -0x100, max: 0x10000 }), u32edge),
      entry: fc.oneof(fc.integer({ min: -0x10, max: 0x5000 }), u32edge),
      api: fc.constantFrom("kernel", "kernel-sel4"),
    });
    await prop(arb, async (p) => {
      const len = Math.max(p.len, p.hoff + 32);
      const M = 2 ** 32;
      const wrap = (v: number) => ((v % M) + M) % M;
      const header_addr = p.hdelta === 0 ? wrap(p.load + p.hoff) : typeof p.hdelta === "number" && p.hdelta < 0x10000 && p.hdelta >= -0x100 ? wrap(p.load + p.hoff + p.hdelta) : p.hdelta;
      const load_end_addr = p.end === "zero" ? 0 : p.end >= -0x100 && p.end <= 0x5000 ? wrap(p.load + p.end) : p.end;
      const bss_end_addr = p.bss === "zero" ? 0 : p.bss >= -0x100 && p.bss <= 0x10000 ? wrap(p.load + len + p.bss) : p.bss;
      const entry_addr = p.entry >= -0x10 && p.entry <= 0x5000 ? wrap(p.load + p.entry) : p.entry;
      const img = b.multibootAout({ len, hoff: p.hoff, load_addr: p.load, header_addr, load_end_addr, bss_end_addr, entry_addr }).bytes;
      // The spec's rules, in exact integers.
      let model: Model;
      const loadOffset = p.hoff - (header_addr - p.load);
      const size = load_end_addr === 0 ? len - loadOffset : load_end_addr - p.load;
      const bad =
        header_addr < p.load || loadOffset < 0 || (load_end_addr !== 0 && (load_end_addr < p.load || loadOffset + size > len)) ||
        p.load + size > M || (bss_end_addr !== 0 && bss_end_addr < p.load + size) || entry_addr < p.load || entry_addr >= p.load + size;
      if (bad) model = { ok: false, codes: ["BAD_HEADER", "TRUNCATED"] };
      else {
        const bss = bss_end_addr === 0 ? 0 : bss_end_addr - (p.load + size);
        model = p.api === "kernel-sel4" && p.load !== 0
          ? { ok: false, codes: ["BAD_ADDRESS"] } // the seL4 API always passes an address (0 here), and the kernel cannot move
          : place(BigInt(p.load), BigInt(size + bss), {
            bytes: [{ at: BigInt(p.load), data: img.subarray(loadOffset, loadOffset + size) }],
            zero: [{ at: BigInt(p.load + size), len: BigInt(bss) }],
          });
      }
      await check({ bytes: img, lane: p.api }, model);
    });
  });
});

describe("ELF program headers (gABI)", () => {
  const seg = fc.record({
    paddr: fc.oneof(fc.constantFrom(0x100000n, 0x40000000n, 0x40100000n, 0xfffff000n, 0xffe00000n), u64edge),
    filesz: fc.oneof(fc.constantFrom(0n, 0x10n, 0x100n, 0x1000n), u64edge),
    extra: fc.oneof(fc.constantFrom(0n, 0x10n, 0x1000n), u64edge),
    offsetDelta: fc.oneof(fc.constant(0n), u64edge),
  });
  it("segment sizes, offsets and addresses near 2^32/2^53/2^64: the spec decides", async () => {
    const arb = fc.record({ cls: fc.constantFrom(32, 64) as fc.Arbitrary<32 | 64>, segs: fc.array(seg, { minLength: 1, maxLength: 3 }), at: atArb, be: fc.boolean() });
    await prop(arb, async (p) => {
      const limit = p.cls === 64 ? 1n << 64n : 1n << 32n;
      const mask = limit - 1n;
      const data = (i: number, s: { filesz: bigint }) => b.filler(Number(s.filesz > 0x1000n ? 0x100n : s.filesz), i + 1);
      const specs = p.segs.map((s, i) => ({ vaddr: s.paddr & mask, paddr: s.paddr & mask, data: data(i, s) }));
      const built = b.elf({ class: p.cls, be: p.be, machine: p.cls === 64 ? b.EM.x86_64 : b.EM.i386, entry: 0n, segments: specs });
      const img = built.bytes;
      const le = !p.be;
      const phoff = p.cls === 64 ? 64 : 52;
      const ent = p.cls === 64 ? 56 : 32;
      const dv = new DataView(img.buffer);
      const segsOut = p.segs.map((s, i) => {
        const off = p.cls === 64 ? dv.getBigUint64(phoff + i * ent + 8, le) : BigInt(dv.getUint32(phoff + i * ent + 4, le));
        const filesz = s.filesz & mask;
        const memsz = (filesz + s.extra) & mask;
        const offset = (off + s.offsetDelta) & mask;
        const base = phoff + i * ent;
        if (p.cls === 64) {
          poke(img, base + 8, 8, offset, le); poke(img, base + 32, 8, filesz, le); poke(img, base + 40, 8, memsz, le);
        } else {
          poke(img, base + 4, 4, offset, le); poke(img, base + 16, 4, filesz, le); poke(img, base + 20, 4, memsz, le);
        }
        return { paddr: s.paddr & mask, filesz, memsz, offset };
      });
      const L = BigInt(img.length);
      let model: Model;
      const loads = segsOut.filter((s) => s.memsz > 0n);
      const sorted = [...loads].sort((a, c) => (a.paddr < c.paddr ? -1 : a.paddr > c.paddr ? 1 : 0));
      const overlap = sorted.some((s, i) => i > 0 && s.paddr < sorted[i - 1].paddr + sorted[i - 1].memsz);
      const bad = segsOut.some((s) => s.filesz > s.memsz || s.offset + s.filesz > L || s.paddr + s.memsz > limit) || loads.length === 0 || overlap;
      if (bad) model = { ok: false, codes: ["BAD_HEADER", "TRUNCATED"] };
      else {
        const link = sorted[0].paddr;
        const end = sorted.reduce((m, s) => (s.paddr + s.memsz > m ? s.paddr + s.memsz : m), 0n);
        const base = p.at === undefined ? link : BigInt(p.at);
        const delta = base - link;
        if (p.at === undefined && link > MAX_SAFE) model = { ok: false, codes: ["BAD_ADDRESS"] };
        else if (end - link > MAX_SAFE) model = { ok: false, codes: ["TOO_LARGE"] };
        // gABI Elf32_Addr: an ELF32 image is never placed at or above 4 GiB.
        else if (p.cls === 32 && delta !== 0n && base + (end - link) > limit) model = { ok: false, codes: ["BAD_ADDRESS"] };
        else {
          model = place(base, end - link, {
            bytes: loads.filter((s) => s.filesz > 0n).map((s) => ({ at: s.paddr + delta, data: img.subarray(Number(s.offset), Number(s.offset + s.filesz)) })),
            zero: loads.map((s) => ({ at: s.paddr + delta + s.filesz, len: s.memsz - s.filesz })),
          });
          if (!model.ok && base + (end - link) > MAX_SAFE) model.codes.push("BAD_ADDRESS");
        }
      }
      await check({ bytes: img, lane: "kernel", at: p.at }, model);
    });
  });
});

describe("arm64 and RISC-V Image headers (booting.rst, boot-image-header.rst)", () => {
  for (const arch of ["arm64", "riscv"] as const) {
    it(`${arch}: text_offset/image_size/flags near the edges, any address and alignment`, async () => {
      const arb = fc.record({
        text_offset: fc.oneof(fc.constantFrom(0n, 0x80000n, 0x200000n, 0x80000000000n), u64edge),
        image_size: fc.oneof(fc.constantFrom(0n, 0x100n, 0x4000n, 0x100000n, 0x400000n), u64edge),
        flags: fc.oneof(fc.constantFrom(0n, 0xan, 0x2n, 0x1n), u64edge),
        len: fc.integer({ min: 64, max: 0x6000 }),
        at: atArb,
        align: alignArb,
        api: fc.constantFrom("kernel", "kernel-sel4"),
      });
      await prop(arb, async (p) => {
        const img = (arch === "arm64" ? b.arm64Image : b.riscvImage)({ len: p.len, text_offset: p.text_offset, image_size: p.image_size, flags: p.flags }).bytes;
        const at = p.api === "kernel-sel4" ? (p.at ?? 0) : p.at;
        let model: Model;
        const legacy = arch === "arm64" && p.image_size === 0n;
        const flags = legacy ? 0n : p.flags;
        if (legacy && p.text_offset === 0x80000000000n) model = { ok: false, codes: ["UNSUPPORTED"] };
        else if (flags & 1n) model = { ok: false, codes: ["UNSUPPORTED"] };
        else if (arch === "riscv" && p.image_size === 0n) model = { ok: false, codes: ["BAD_HEADER"] };
        else {
          const textOffset = legacy ? 0x80000n : p.text_offset;
          if (textOffset + p.image_size > U64) model = { ok: false, codes: ["BAD_HEADER"] };
          else {
            const base = alignUp(alignUp(BigInt(at ?? 0), BigInt(p.align)), 0x200000n);
            const load = base + textOffset;
            const reserve = p.image_size > BigInt(p.len) ? p.image_size : BigInt(p.len);
            if (base > MAX_SAFE || load > MAX_SAFE || load + reserve > MAX_SAFE) model = { ok: false, codes: ["BAD_ADDRESS"] };
            else if (arch === "arm64" && !legacy && (flags & 8n) !== 0n && load + reserve > 1n << 48n) model = { ok: false, codes: ["BAD_ADDRESS"] };
            else if (arch === "arm64" && (legacy || (flags & 8n) === 0n) && lowerArm64Base(base, textOffset, reserve, BigInt(p.align))) model = { ok: false, codes: ["BAD_ADDRESS"] };
            else model = place(load, reserve, { bytes: [{ at: load, data: img }], zero: [{ at: load + BigInt(p.len), len: reserve - BigInt(p.len) }] });
          }
        }
        await check({ bytes: img, lane: p.api, at, align: p.align }, model);
      });
    });
  }
});

describe("ARM zImage header (head.S)", () => {
  it("start/end near the edges: end < start and sizes past the file fail, the rest goes to start or the address", async () => {
    const arb = fc.record({
      start: fc.oneof(fc.constantFrom(0, 0x40008000, 0xffffe000, 0x8000), u32edge),
      size: fc.oneof(fc.integer({ min: -0x100, max: 0x3000 }), u32edge),
      len: fc.integer({ min: 0x34, max: 0x3000 }),
      at: atArb,
    });
    await prop(arb, async (p) => {
      const end = p.size >= -0x100 && p.size <= 0x3000 ? (((p.start + p.size) % 2 ** 32) + 2 ** 32) % 2 ** 32 : p.size;
      const img = b.zImage({ len: p.len, start: p.start, end }).bytes;
      let model: Model;
      const size = end - p.start;
      if (end < p.start || size < 0x30) model = { ok: false, codes: ["BAD_HEADER"] };
      else if (size > p.len) model = { ok: false, codes: ["TRUNCATED"] };
      else if (p.start !== 0 && p.at !== undefined && p.at !== p.start) model = { ok: false, codes: ["BAD_ADDRESS"] };
      else {
        const load = p.start === 0 ? (p.at ?? 0x8000) : p.start;
        if (load + size > 2 ** 32) model = { ok: false, codes: ["BAD_ADDRESS"] };
        else model = place(BigInt(load), BigInt(p.len), { bytes: [{ at: BigInt(load), data: img }] });
      }
      await check({ bytes: img, lane: "kernel", at: p.at }, model);
    });
  });
});

describe("x86 bzImage setup header (boot.rst)", () => {
  it("setup_sects, syssize, alignment, pref_address, init_size, xloadflags near the edges", async () => {
    const arb = fc.record({
      setup_sects: fc.constantFrom(0, 1, 4, 0x20, 0xff),
      kernelLen: fc.constantFrom(0x100, 0x201, 0x4000),
      syssizeDelta: fc.oneof(fc.constant(0), fc.integer({ min: -2, max: 2 }), u32edge),
      relocatable: fc.boolean(),
      kernel_alignment: fc.oneof(fc.constantFrom(0x1000, 0x200000, 0x400000, 0, 3, 0x80000000), u32edge),
      pref_address: fc.oneof(fc.constantFrom(0n, 0x100000n, 0x200000n, 0x1000000n, 0xfff00000n), u64edge),
      init_size: fc.oneof(fc.constantFrom(0, 0x1000, 0x100000, 0x200000), u32edge),
      xloadflags: fc.constantFrom(0, 1, 2, 3),
      code32_start: fc.oneof(fc.constantFrom(0x100000, 0x40000000, 0xffe00000), u32edge),
      at: atArb,
    });
    await prop(arb, async (p) => {
      const setupSize = ((p.setup_sects || 4) + 1) * 512;
      const base = Math.floor(p.kernelLen / 16);
      const syssize = p.syssizeDelta >= -2 && p.syssizeDelta <= 2 ? Math.max(0, base + p.syssizeDelta) : p.syssizeDelta;
      const img = b.bzImage({
        setup_sects: p.setup_sects, kernelLen: p.kernelLen, syssize, relocatable_kernel: p.relocatable ? 1 : 0, kernel_alignment: p.kernel_alignment,
        pref_address: p.pref_address, init_size: p.init_size, xloadflags: p.xloadflags, code32_start: p.code32_start, payload_offset: 0x10, payload_length: 0x20,
      }).bytes;
      const K = BigInt(p.kernelLen);
      let model: Model;
      const pow2 = p.kernel_alignment > 0 && (p.kernel_alignment & (p.kernel_alignment - 1)) === 0;
      if (syssize * 16 > p.kernelLen) model = { ok: false, codes: ["TRUNCATED"] };
      else if ((p.xloadflags & 1) && p.kernelLen <= 0x200) model = { ok: false, codes: ["TRUNCATED"] };
      else if (p.relocatable && !pow2) model = { ok: false, codes: ["BAD_HEADER"] };
      else {
        const B = BigInt(p.at ?? p.code32_start);
        if (!p.relocatable && B !== BigInt(p.code32_start)) model = { ok: false, codes: ["BAD_ADDRESS"] };
        else {
          const pref = p.pref_address;
          const rs = p.relocatable ? alignUp(pref !== 0n && B < pref ? pref : B, BigInt(p.kernel_alignment)) : pref !== 0n ? pref : B;
          const init = BigInt(p.init_size);
          let lo = B, hi = B + K;
          if (init > 0n) {
            if (rs < lo) lo = rs;
            if (rs + init > hi) hi = rs + init;
          }
          if (hi > MAX_SAFE || rs > MAX_SAFE) model = { ok: false, codes: ["BAD_ADDRESS"] };
          else if (hi > 1n << 32n && !(p.xloadflags & 2)) model = { ok: false, codes: ["BAD_ADDRESS"] };
          else if (init > 0n && !inRam(rs, init)) model = { ok: false, codes: ["OUT_OF_RAM"] };
          else {
            model = place(B, K, { bytes: [{ at: B, data: img.subarray(setupSize) }] });
            if (model.ok && init > 0n && overlapsResident(rs, init)) model = { ok: false, codes: ["OVERLAP"] };
          }
        }
      }
      await check({ bytes: img, lane: "kernel", at: p.at }, model);
    });
  });
});

describe("U-Boot uImage header (include/image.h, image_check_hcrc/dcrc)", () => {
  it("types, compressions, sizes and both CRCs: U-Boot's checks, then QEMU's placement", async () => {
    const payload = b.arm64Image({ len: 0x1000 }).bytes;
    const arb = fc.record({
      type: fc.constantFrom(2, 3, 8, 14, 1, 0, 0xff),
      comp: fc.constantFrom(0, 1, 2, 6, 0x80),
      load: fc.oneof(fc.constantFrom(0x40080000, 0x40000000, 0xffe00000, 0x0), u32edge),
      ep: u32edge,
      sizeDelta: fc.oneof(fc.constant(0), fc.integer({ min: -0x10, max: 0x10 }), u32edge),
      hcrcOk: fc.boolean(),
      dcrcOk: fc.boolean(),
      role: fc.constantFrom("kernel", "module"),
      at: atArb,
    });
    await prop(arb, async (p) => {
      const data = p.comp === 1 ? b.gzip(payload).bytes : p.type === 8 ? b.fdt(b.sampleTree()).bytes : payload;
      const size = p.sizeDelta >= -0x10 && p.sizeDelta <= 0x10 ? Math.max(0, data.length + p.sizeDelta) : p.sizeDelta;
      const dcrc = p.dcrcOk ? b.crc32(data.subarray(0, Math.min(size, data.length))) : (b.crc32(data) ^ 0x5a5a5a5a) >>> 0;
      const img = b.uImage(data, { type: p.type, comp: p.comp, load: p.load, ep: p.ep, size, dcrc }).bytes;
      if (!p.hcrcOk) img[4] ^= 0x40;
      let model: Model;
      const at = p.role === "module" ? (p.at ?? 0x40000000) : p.at;
      if (!p.hcrcOk) model = { ok: false, codes: ["BAD_CHECKSUM"] };
      else if (size === 0) model = { ok: false, codes: ["BAD_HEADER"] };
      else if (64 + size > img.length) model = { ok: false, codes: ["TRUNCATED"] };
      else if (p.role === "kernel" && ![2, 14].includes(p.type)) model = { ok: false, codes: ["UNSUPPORTED"] };
      else if (p.role === "module" && ![3, 8].includes(p.type)) model = { ok: false, codes: ["UNSUPPORTED"] };
      else {
        // Past the header checks: which (type, compression, address) combinations place data, and where.
        model = { ok: false, codes: ["UNSUPPORTED", "BAD_ADDRESS", "BAD_ARGUMENT", "OUT_OF_RAM", "OVERLAP", "BAD_CHECKSUM", "BAD_HEADER", "BAD_MAGIC", "TRUNCATED", "TOO_LARGE"] };
        const whole = size === data.length;
        let dst: number | undefined;
        let out: Uint8Array | undefined;
        if (p.role === "module") {
          // A ramdisk's data goes verbatim whatever ih_comp says; a device tree must be a stored FDT.
          if (p.type === 3 || (p.type === 8 && p.comp === 0 && whole)) [dst, out] = [at, data.subarray(0, size)];
        } else if (p.comp === 0 || (p.comp === 1 && whole)) {
          const bytes = p.comp === 1 ? payload : data.subarray(0, size);
          if (p.type === 2 && (at === undefined || at === p.load)) [dst, out] = [p.load, bytes];
          // kernel_noload: entry = B + ih_ep, which must still be an exact address.
          if (p.type === 14 && at !== undefined && BigInt(at) + BigInt(p.ep) <= MAX_SAFE) [dst, out] = [at, bytes];
        }
        if (dst !== undefined && out && p.dcrcOk) {
          const m = place(BigInt(dst), BigInt(out.length), { bytes: [{ at: BigInt(dst), data: out }] });
          model = m.ok || p.comp !== 1 ? m : { ok: false, codes: [...m.codes, "TOO_LARGE"] };
        }
      }
      await check({ bytes: img, lane: p.role === "kernel" ? "kernel" : "module", at }, model);
    });
  });
});

describe("gzip members (RFC 1952)", () => {
  it("ISIZE and CRC32 that lie, trailing bytes, bombs: bounded and refused; honest members load what they hold", async () => {
    const arb = fc.record({
      kind: fc.constantFrom("arm64", "zeros", "random"),
      len: fc.integer({ min: 0x40, max: 0x60000 }),
      isize: fc.oneof(fc.constant("honest" as const), fc.constantFrom(0, 1, 0x1000, 0x400000, 0x7fffffff, 0xffffffff), fc.integer({ min: -16, max: 16 })),
      crcOk: fc.boolean(),
      trailing: fc.constantFrom(0, 0, 0, 1, 8, 20),
      at: atArb,
    });
    await prop(arb, async (p) => {
      const payload = p.kind === "arm64" ? b.arm64Image({ len: Math.max(0x40, p.len & ~7), image_size: BigInt(Math.max(0x40, p.len & ~7)) }).bytes : p.kind === "zeros" ? new Uint8Array(p.len) : b.filler(p.len, 7);
      const isize = p.isize === "honest" ? payload.length : typeof p.isize === "number" && p.isize >= -16 && p.isize <= 16 ? payload.length + p.isize : p.isize;
      let gz = b.gzip(payload, { isize: isize >>> 0, crc32: p.crcOk ? undefined : (b.crc32(payload) ^ 1) >>> 0 }).bytes;
      if (p.trailing) gz = b.concat(gz, b.filler(p.trailing, 3));
      let model: Model;
      const lenN = BigInt(payload.length);
      const capOk = p.at === undefined || inRam(BigInt(p.at), lenN);
      // ISIZE is the size planned for, so a lie may also show as that range's placement error.
      const lieCodes = ["BAD_HEADER", "TOO_LARGE", "TRUNCATED", "BAD_CHECKSUM", "UNSUPPORTED", "OUT_OF_RAM", "BAD_ARGUMENT", "BAD_ADDRESS", "OVERLAP"];
      if (isize >>> 0 !== payload.length || !p.crcOk) {
        model = { ok: false, codes: lieCodes };
      } else if (p.kind === "arm64") {
        // The payload is planned as what it is: an arm64 Image at the next 2 MiB boundary (booting.rst).
        // From an address outside RAM that boundary may be inside it; whether the decompression cap
        // counts from there is the gzip module's choice, so then only the invariants are checked.
        const base = alignUp(BigInt(p.at ?? 0), 0x200000n);
        model = place(base, lenN, { bytes: [{ at: base, data: payload }] });
        // The builder's flags 0xa have bit 3: the whole image must lie below 2^48 (booting.rst).
        if (model.ok && base + lenN > 1n << 48n) model = { ok: false, codes: ["BAD_ADDRESS"] };
        if (!capOk) model = model.ok ? { ok: "any" } : { ok: false, codes: [...model.codes, "OUT_OF_RAM", "TOO_LARGE", "BAD_ADDRESS"] };
      } else if (!capOk) {
        model = { ok: false, codes: ["OUT_OF_RAM", "TOO_LARGE", "BAD_ADDRESS"] };
      } else if (p.at === undefined) {
        model = { ok: false, codes: ["BAD_ARGUMENT"] }; // a raw payload has no address of its own
      } else {
        model = place(BigInt(p.at), lenN, { bytes: [{ at: BigInt(p.at), data: payload }] });
      }
      if (p.trailing) {
        // gzip -d ignores bytes after the member (RFC 1952 leaves them to the reader): what an
        // honest member holds is loaded, or the load is refused where the bytes at the end pass for
        // the member's own trailer (README, "gzip members").
        model = model.ok === true ? { ok: "either", success: model, codes: lieCodes } : model.ok === false ? { ok: false, codes: [...model.codes, ...lieCodes] } : { ok: "any" };
      }
      await check({ bytes: gz, lane: "kernel", at: p.at }, model);
    });
  });
});

describe("device trees (Devicetree Specification v0.4 ch. 5)", () => {
  const name = fc.stringMatching(/^[a-z][a-z0-9,._+-]{0,12}(@[0-9a-f]{1,8})?$/);
  const propName = fc.stringMatching(/^[a-z#][a-z0-9,._+?#-]{0,15}$/);
  const tree = fc.letrec((tie) => ({
    node: fc.record({
      name,
      props: fc.uniqueArray(fc.tuple(propName, fc.uint8Array({ maxLength: 24 })), { maxLength: 4, selector: (t) => t[0] }),
      children: fc.oneof({ depthSize: "small", maxDepth: 4 }, fc.constant([]), fc.uniqueArray(tie("node"), { maxLength: 3, selector: (n: unknown) => (n as { name: string }).name })),
    }),
  })).node;

  it("any tree written by the spec's layout parses back to itself", async () => {
    await prop(fc.record({ root: tree, rsv: fc.array(fc.tuple(u64edge, u64edge), { maxLength: 3 }) }), async (p) => {
      type N = { name: string; props: Array<[string, Uint8Array]>; children: N[] };
      const root = { ...(p.root as N), name: "" };
      const blob = b.fdt(root, { rsv: p.rsv.filter(([a, s]) => a !== 0n || s !== 0n) }).bytes;
      const t = lib.parseFdt(blob, "t");
      const norm = (n: N | lib.FdtNode): unknown => ({
        name: n.name,
        props: ("props" in n ? n.props : []).map((x: [string, Uint8Array] | { name: string; value: Uint8Array }) => (Array.isArray(x) ? [x[0], Buffer.from(x[1]).toString("hex")] : [x.name, Buffer.from(x.value).toString("hex")])),
        children: n.children.map(norm),
      });
      expect(norm(t.root)).toEqual(norm(root));
      expect(t.reservations.map((r) => [r.address, r.size])).toEqual(p.rsv.filter(([a, s]) => a !== 0n || s !== 0n));
      const r = await h.run({ key: "img", name: "img", source: "map", bytes: blob, lane: "fdt" });
      expect(r.violation, r.violation && `${r.violation.kind}: ${r.violation.detail}`).toBeUndefined();
      expect(r.ok, `${r.code}: ${(r.error as Error | undefined)?.message}`).toBe(true);
    });
  });

  it("header fields and the first tokens set to edge values: only GuestImageError, RAM untouched", async () => {
    const blob = b.fdt(b.sampleTree());
    await prop(fc.record({ field: fc.constantFrom(...blob.fields), v: u32edge, lane: fc.constantFrom("fdt", "module", "inspect") }), async (p) => {
      const img = blob.bytes.slice();
      poke(img, p.field.off, p.field.size as 4, p.v, false);
      const r = await h.run({ key: "img", name: "img", source: "map", bytes: img, lane: p.lane, at: 0x40000000 });
      expect(r.violation, r.violation && `${r.violation.kind}: ${r.violation.detail}`).toBeUndefined();
    });
  });
});

describe("cpio newc archives (buffer-format.rst)", () => {
  it("any archive parses to its entries; sizes set to edge values fail as GuestImageError", async () => {
    const entry = fc.record({ name: fc.stringMatching(/^[a-z0-9][a-z0-9._/-]{0,20}$/), data: fc.uint8Array({ maxLength: 300 }) });
    await prop(fc.record({ entries: fc.uniqueArray(entry, { maxLength: 5, selector: (e) => e.name }), field: fc.nat(), v: u32edge, mutate: fc.boolean() }), async (p) => {
      const built = b.cpio(p.entries.filter((e) => e.name !== "TRAILER!!!"));
      const es = lib.parseCpio(built.bytes);
      expect(es.map((e) => [e.name, e.size])).toEqual(p.entries.filter((e) => e.name !== "TRAILER!!!").map((e) => [e.name, e.data.length]));
      for (const [i, e] of es.entries()) expect(Buffer.from(built.bytes.subarray(e.offset, e.offset + e.size)).equals(Buffer.from(p.entries[i].data))).toBe(true);
      if (!p.mutate) return;
      const img = built.bytes.slice();
      const f = built.fields[p.field % built.fields.length];
      img.set(b.ascii((p.v >>> 0).toString(16).padStart(8, "0")), f.off);
      const r = await h.run({ key: "img", name: "img", source: "map", bytes: img, lane: "cpio", entry: p.field });
      expect(r.violation, r.violation && `${r.violation.kind}: ${r.violation.detail}`).toBeUndefined();
    });
  });
});

describe("EFI zboot header (zboot-header.S)", () => {
  it("payload_offset/payload_size/compression_type near the edges", async () => {
    const inner = b.gzip(b.arm64Image({ len: 0x1000 }).bytes).bytes;
    await prop(fc.record({ off: fc.oneof(fc.constantFrom(0, 0x3f, 0x40, 0x100), u32edge), size: fc.oneof(fc.constant(inner.length), fc.integer({ min: 0, max: inner.length + 8 }), u32edge), ct: fc.constantFrom("gzip", "zstd22", "", "gzipx"), at: atArb }), async (p) => {
      const img = b.zboot(inner, { compression_type: p.ct }).bytes;
      poke(img, 8, 4, p.off);
      poke(img, 12, 4, p.size);
      const r = await h.run({ key: "img", name: "img", source: "map", bytes: img, lane: "kernel", at: p.at });
      expect(r.violation, r.violation && `${r.violation.kind}: ${r.violation.detail}`).toBeUndefined();
      if (p.off === 0x100 && p.size === inner.length && p.ct === "gzip" && (p.at === undefined || p.at === 0x40000000)) expect(r.ok, `${r.code} ${(r.error as Error)?.message}`).toBe(true);
      if (p.ct !== "gzip" || p.off < 0x40 || p.off + p.size > img.length) expect(r.ok).toBe(false);
    });
  });
});
