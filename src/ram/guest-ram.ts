// Guest physical address space → WebAssembly linear memory.
//
// RAM is a list of regions at any guest physical base (exact integers up to 2^53 − 1) with holes
// between them. They are laid out back to back in linear memory, in the order the caller gave
// them, starting at `memoryOffset`. Views are derived per call because `memory.grow` detaches
// every earlier view.
import { GuestImageError } from "../errors.js";
import { checkAddress, hex, MAX_SAFE } from "../num.js";

export interface RamRegion {
  /** Guest physical base address. */
  base: number;
  /** Size in bytes. */
  size: number;
}

interface MappedRegion extends RamRegion {
  /** Offset of `base` in linear memory. */
  lin: number;
}

/** One piece of a guest physical range that lies in a single region. */
export interface RamPiece {
  paddr: number;
  lin: number;
  len: number;
}

export class GuestRam {
  readonly #memory: WebAssembly.Memory;
  /**
   * True while guest RAM outside the images placed through the library is known to be all zero
   * without looking: the VM created the memory (WebAssembly zero-fills it) and nothing has been
   * given a way to write it — the memory, a view or write() — since. execute() then skips the
   * zero test it makes before overwriting a range (check() has already ruled out placed images).
   */
  #untouched = false;
  /** Regions in the order given (their linear-memory order). */
  readonly regions: readonly RamRegion[];
  private readonly sorted: readonly MappedRegion[];
  /** First linear-memory byte after guest RAM. */
  readonly linEnd: number;

  constructor(memory: WebAssembly.Memory, regions: readonly RamRegion[], memoryOffset: number) {
    if (!Array.isArray(regions) || regions.length === 0) {
      throw new GuestImageError("BAD_ARGUMENT", "ram must list at least one {base, size} region", { field: "ram" });
    }
    checkAddress(memoryOffset, "memoryOffset");
    let lin = memoryOffset;
    const mapped: MappedRegion[] = regions.map((r, i) => {
      const base = checkAddress(r?.base, `ram[${i}].base`);
      const size = checkAddress(r?.size, `ram[${i}].size`);
      if (size === 0) throw new GuestImageError("BAD_ARGUMENT", `ram[${i}].size is 0`, { field: "ram" });
      if (base + size > MAX_SAFE) {
        throw new GuestImageError("BAD_ARGUMENT", `ram[${i}] ${hex(base)}+${hex(size)} ends past 2^53-1`, { field: "ram" });
      }
      const m = { base, size, lin };
      lin += size;
      return m;
    });
    const sorted = [...mapped].sort((a, b) => a.base - b.base);
    for (let i = 1; i < sorted.length; i++) {
      const p = sorted[i - 1];
      const c = sorted[i];
      if (c.base < p.base + p.size) {
        throw new GuestImageError(
          "BAD_ARGUMENT",
          `RAM regions [${hex(p.base)}, ${hex(p.base + p.size)}) and [${hex(c.base)}, ${hex(c.base + c.size)}) overlap`,
          { field: "ram" },
        );
      }
    }
    if (lin > memory.buffer.byteLength) {
      throw new GuestImageError(
        "BAD_ARGUMENT",
        `guest RAM needs linear memory up to ${hex(lin)} but the memory is ${hex(memory.buffer.byteLength)} bytes`,
        { field: "memory" },
      );
    }
    this.#memory = memory;
    this.regions = mapped.map(({ base, size }) => ({ base, size }));
    this.sorted = sorted;
    this.linEnd = lin;
  }

  /** The memory guest RAM lives in. Whoever holds it can write RAM, so unplaced RAM is no longer known to be zero. */
  get memory(): WebAssembly.Memory {
    this.#untouched = false;
    return this.#memory;
  }

  /** @internal The memory's current buffer, for the library's own reads and writes of placed ranges. */
  get buffer(): ArrayBuffer {
    return this.#memory.buffer;
  }

  /** @internal See #untouched. */
  get untouched(): boolean {
    return this.#untouched;
  }

  /** @internal createVm(): the memory was made for this RAM, so it is all zero. */
  markFresh(): void {
    this.#untouched = true;
  }

  /** Total bytes of guest RAM. */
  get size(): number {
    return this.regions.reduce((s, r) => s + r.size, 0);
  }

  /**
   * Splits [paddr, paddr + len) into per-region pieces, or returns the first guest address that
   * lies in no region.
   */
  pieces(paddr: number, len: number): RamPiece[] | { hole: number } {
    const out: RamPiece[] = [];
    let p = paddr;
    const end = paddr + len;
    while (p < end) {
      const r = this.regionAt(p);
      if (!r) return { hole: p };
      const n = Math.min(end, r.base + r.size) - p;
      const prev = out[out.length - 1];
      if (prev && prev.lin + prev.len === r.lin + (p - r.base)) prev.len += n;
      else out.push({ paddr: p, lin: r.lin + (p - r.base), len: n });
      p += n;
    }
    return out;
  }

  /** Like pieces(), but throws OUT_OF_RAM naming `what`. */
  map(paddr: number, len: number, what = "range", image?: string): RamPiece[] {
    checkAddress(paddr, "paddr", { image });
    checkAddress(len, "length", { image });
    if (paddr + len > MAX_SAFE) {
      throw new GuestImageError("OUT_OF_RAM", `${what} [${hex(paddr)}, +${hex(len)}) ends past 2^53-1`, { image });
    }
    const r = len === 0 ? (this.regionAt(paddr) ? [] : { hole: paddr }) : this.pieces(paddr, len);
    if ("hole" in r) {
      throw new GuestImageError(
        "OUT_OF_RAM",
        `${what} [${hex(paddr)}, ${hex(paddr + len)}) is not inside guest RAM: ${hex(r.hole)} is in no region (RAM: ${this.describe()})`,
        { image },
      );
    }
    return r;
  }

  /** Linear offset of a range that must be contiguous in linear memory. */
  linear(paddr: number, len: number, what = "range", image?: string): number {
    const ps = this.map(paddr, len, what, image);
    if (ps.length > 1) {
      throw new GuestImageError(
        "UNSUPPORTED",
        `${what} [${hex(paddr)}, ${hex(paddr + len)}) spans RAM regions that are not contiguous in linear memory`,
        { image },
      );
    }
    return ps.length ? ps[0].lin : this.linOf(paddr);
  }

  /** Notes that guest RAM was written outside write()/view() (a reset, a template's images). */
  markTouched(): void {
    this.#untouched = false;
  }

  /** A copy of guest RAM [paddr, paddr + len). */
  read(paddr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    const mem = new Uint8Array(this.#memory.buffer);
    let o = 0;
    for (const p of this.map(paddr, len, "read")) {
      out.set(mem.subarray(p.lin, p.lin + p.len), o);
      o += p.len;
    }
    return out;
  }

  /** Writes `bytes` at `paddr`; every byte must be inside RAM (nothing is written otherwise). */
  write(paddr: number, bytes: Uint8Array): void {
    const ps = this.map(paddr, bytes.length, "write");
    this.#untouched = false;
    const mem = new Uint8Array(this.#memory.buffer);
    let o = 0;
    for (const p of ps) {
      mem.set(bytes.subarray(o, o + p.len), p.lin);
      o += p.len;
    }
  }

  /** A zero-copy view of [paddr, paddr + len), which must lie within one region. */
  view(paddr: number, len: number): Uint8Array {
    const ps = this.map(paddr, len, "view");
    if (ps.length > 1 || (ps.length === 1 && this.regionAt(paddr) !== this.regionAt(paddr + len - 1))) {
      throw new GuestImageError("BAD_ARGUMENT", `view [${hex(paddr)}, ${hex(paddr + len)}) spans more than one RAM region`);
    }
    const lin = len === 0 ? this.linOf(paddr) : ps[0].lin;
    this.#untouched = false;
    return new Uint8Array(this.#memory.buffer, lin, len);
  }

  /** "[0x40000000, 0x50000000)" for each region, sorted. */
  describe(): string {
    return this.sorted.map((r) => `[${hex(r.base)}, ${hex(r.base + r.size)})`).join(", ");
  }

  private linOf(paddr: number): number {
    const r = this.regionAt(paddr);
    if (!r) throw new GuestImageError("OUT_OF_RAM", `${hex(paddr)} is in no RAM region (RAM: ${this.describe()})`);
    return r.lin + (paddr - r.base);
  }

  private regionAt(paddr: number): MappedRegion | undefined {
    let lo = 0;
    let hi = this.sorted.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.sorted[mid];
      if (paddr < r.base) hi = mid - 1;
      else if (paddr >= r.base + r.size) lo = mid + 1;
      else return r;
    }
    return undefined;
  }
}
