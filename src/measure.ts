// Measured boot: an event log of every image placed in guest RAM, with the SHA-256 of its bytes,
// in the spirit of a TPM / TCG event log (TCG PC Client Platform Firmware Profile, "Event
// Logging": one event per measured object, in order, with its digest). Opt-in, because hashing
// costs time a plain load does not need: createVm({ measure: true }).
//
// What is hashed: guest RAM [paddr, paddr + size) once the load is complete in RAM and before it
// is recorded (execute()'s beforeCommit step, src/plan.ts: the range is reserved, so nothing else
// can write there meanwhile; a digest that fails undoes the load, so a failed call changes
// nothing), read synchronously when the digest starts, i.e. exactly what the guest will
// find there: the file's bytes for a raw module, the segments plus zero-filled BSS (and whatever
// RAM held in the gaps between segments: a load never writes there) for an ELF.
// Dry runs write nothing and are not measured.
//
// The default digest is WebCrypto's (globalThis.crypto.subtle, in browsers and in Node ≥ 20).
// node:crypto's createHash is about 2× faster on large images (it hashes guest RAM in place; WebCrypto
// copies its input) and 5× on small ones, so the Node entry (src/node.ts) installs it with
// useSha256(); this file imports no Node built-in.
import { GuestImageError } from "./errors.js";
import type { GuestRam } from "./ram/guest-ram.js";

/** One measured load. */
export interface MeasuredEvent {
  /** 0, 1, 2… in the order the loads committed. */
  index: number;
  /** The ledger name (the file name, or the name given to vm.place()). */
  name: string;
  /** The detected format ("elf", "raw", "arm64-image", "fdt", "bytes", …). */
  format: string;
  paddr: number;
  size: number;
  /** Lower-case hex SHA-256 of guest RAM [paddr, paddr + size) at commit. */
  digest: string;
}

/** The event log as JSON: `{ "hash": "sha256", "events": [...] }`. */
export interface EventLogJson {
  hash: "sha256";
  events: MeasuredEvent[];
}

/**
 * SHA-256 of the concatenation of `pieces`. Must read the pieces before it returns (or its
 * promise is created): they are views of guest RAM that may change afterwards.
 */
export type Sha256 = (pieces: readonly Uint8Array[]) => Uint8Array | Promise<Uint8Array>;

const webCryptoSha256: Sha256 = (pieces) => {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) {
    throw new GuestImageError("UNSUPPORTED", "measured boot needs WebCrypto (crypto.subtle), which browsers offer only in secure contexts (https, localhost)");
  }
  // WebCrypto copies its input when called; a view of a shared memory is refused, so copy those.
  const one = pieces.length === 1 && !(typeof SharedArrayBuffer !== "undefined" && pieces[0].buffer instanceof SharedArrayBuffer);
  let data: Uint8Array;
  if (one) data = pieces[0];
  else {
    data = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of pieces) {
      data.set(p, o);
      o += p.length;
    }
  }
  return subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>).then((d) => new Uint8Array(d));
};

let sha256: Sha256 = webCryptoSha256;

/** Replaces the SHA-256 implementation (the Node entry installs node:crypto's). */
export function useSha256(fn: Sha256): void {
  sha256 = fn;
}

/** SHA-256 of the concatenation of `pieces`, as lowercase hex (the event log's digest form). */
export async function digestHex(pieces: readonly Uint8Array[]): Promise<string> {
  return toHex(await sha256(pieces));
}

/** Checks up front that measuring can work here, so createVm fails rather than the first load. */
export function checkMeasureSupport(): void {
  if (sha256 === webCryptoSha256 && !globalThis.crypto?.subtle) webCryptoSha256([new Uint8Array(0)]);
}

const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

export class EventLog {
  private list: Array<MeasuredEvent & { done: boolean }> = [];
  /** Indices are never reused, also after a failed transaction removed its events. */
  private nextIndex = 0;

  /** The events measured so far, in commit order. */
  get events(): MeasuredEvent[] {
    return this.list.filter((e) => e.done).map(({ done: _d, ...e }) => e);
  }

  /**
   * Measures guest RAM [paddr, paddr + size) now. Called once a load is complete in RAM, before it
   * is recorded; the index and the bytes are taken synchronously, the digest may finish later. On
   * failure the event is dropped and the caller undoes the load.
   */
  async measure(ram: GuestRam, rec: { name: string; format: string; paddr: number; size: number }): Promise<MeasuredEvent> {
    const ev = { index: this.nextIndex++, name: rec.name, format: rec.format, paddr: rec.paddr, size: rec.size, digest: "", done: false };
    this.list.push(ev);
    const mem = new Uint8Array(ram.buffer);
    const views = ram.map(rec.paddr, rec.size, "measured range", rec.name).map((p) => mem.subarray(p.lin, p.lin + p.len));
    try {
      ev.digest = toHex(await sha256(views));
    } catch (e) {
      this.list.splice(this.list.indexOf(ev), 1);
      throw e instanceof GuestImageError ? e : new GuestImageError("IO", `measuring failed: ${(e as Error)?.message ?? String(e)}`, { image: rec.name, cause: e });
    }
    ev.done = true;
    const { done: _d, ...out } = ev;
    return out;
  }

  /**
   * Adds events whose digests are already known (a prepared boot's images, a reset's rewrite),
   * with fresh indices, in the order given.
   */
  append(events: ReadonlyArray<Omit<MeasuredEvent, "index">>): MeasuredEvent[] {
    const out = events.map((e) => ({ index: this.nextIndex++, name: e.name, format: e.format, paddr: e.paddr, size: e.size, digest: e.digest }));
    for (const e of out) this.list.push({ ...e, done: true });
    return out;
  }

  /** Drops these events (the loads of a transaction that failed). */
  remove(events: readonly MeasuredEvent[]): void {
    const gone = new Set(events.map((e) => e.index));
    this.list = this.list.filter((e) => !gone.has(e.index));
  }

  toJSON(): EventLogJson {
    return { hash: "sha256", events: this.events };
  }
}
