// The VM's record of placed images. A load reserves its range synchronously when its plan has
// been checked (so two loads running at once cannot both claim the same bytes), and either
// commits it after the bytes are in place or releases it if the load fails: a failed load leaves
// the ledger as it was.
import { GuestImageError } from "../errors.js";
import { hex } from "../num.js";

export interface Placement {
  name: string;
  paddr: number;
  size: number;
}

interface Entry extends Placement {
  committed: boolean;
  token: symbol;
}

export class Ledger {
  private entries: Entry[] = [];

  /** Placed images in address order (reservations of loads still running are not listed). */
  placed(): Placement[] {
    return this.entries.filter((e) => e.committed).map(({ name, paddr, size }) => ({ name, paddr, size }));
  }

  /** The first entry (placed or reserved) that overlaps [paddr, paddr + size), if any. */
  overlapping(paddr: number, size: number): Placement | undefined {
    if (size === 0) return undefined;
    const e = this.entries.find((x) => x.size > 0 && paddr < x.paddr + x.size && x.paddr < paddr + size);
    return e && { name: e.name, paddr: e.paddr, size: e.size };
  }

  /** Throws OVERLAP (naming both images, as QEMU's overlap report does) unless the range is free. */
  checkFree(p: Placement): void {
    const o = this.overlapping(p.paddr, p.size);
    if (o) {
      throw new GuestImageError(
        "OVERLAP",
        `[${hex(p.paddr)}, ${hex(p.paddr + p.size)}) overlaps "${o.name}" placed at [${hex(o.paddr)}, ${hex(o.paddr + o.size)})`,
        { image: p.name },
      );
    }
  }

  /**
   * Checks and reserves one image's ranges in one synchronous step (all or none); returns the
   * token for commit/release.
   */
  reserve(ranges: Placement | Placement[]): symbol {
    const list = Array.isArray(ranges) ? ranges : [ranges];
    for (const p of list) this.checkFree(p);
    const token = Symbol(list[0]?.name);
    for (const p of list) this.entries.push({ ...p, committed: false, token });
    this.entries.sort((a, b) => a.paddr - b.paddr);
    return token;
  }

  commit(token: symbol): void {
    for (const e of this.entries) if (e.token === token) e.committed = true;
  }

  release(token: symbol): void {
    this.entries = this.entries.filter((x) => x.token !== token);
  }
}
