// A load is a pipeline in one direction: parse → plan → check → execute → record.
//
// A format module turns headers into a LoadPlan: plain data saying which bytes of the file go
// where in guest physical memory, what to zero and which relocations to apply. check() validates
// the plan against guest RAM and the ledger and reserves its range (synchronously, so loads
// running at once cannot both win). execute() then writes: positional reads straight into RAM,
// then zero fills and relocations in the Wasm core. Only reads (and checksums of what they read),
// and the check of relocation tables where the reads put them in guest RAM, can fail once a plan
// is checked; if one does, every byte written so far is restored and the reservation is
// released, so a failed load leaves RAM and the ledger exactly as they were. Where nothing can
// fail (a file held in memory), nothing is kept for a rollback that cannot happen.
import type { Core } from "./core/core.js";
import { MAX_RELOC_SEGMENTS } from "./core/core.js";
import { GuestImageError } from "./errors.js";
import { hex } from "./num.js";
import type { GuestRam } from "./ram/guest-ram.js";
import type { Ledger, Placement } from "./ram/ledger.js";
import { heldBytes, readBytes, type ImageFile } from "./sources/source.js";

/** Copy [src, src + len) of the file to guest physical `dst`. */
export interface CopyOp {
  dst: number;
  src: number;
  len: number;
  /**
   * Those bytes of the file, when the format already read them while planning: written from here
   * rather than read again, so what lands in guest RAM is exactly what was seen.
   */
  bytes?: Uint8Array;
}

/** Zero guest physical [dst, dst + len). */
export interface ZeroOp {
  dst: number;
  len: number;
}

/**
 * ELF dynamic relocations of the RELATIVE kind: SHT_RELA / SHT_REL entries, or a DT_RELR table
 * (gABI packed relative relocations, which hold their addend in place like REL).
 */
export interface ElfRelocOp {
  kind: "elf";
  /** Where the table came from, for messages ("DT_RELA table"). */
  what: string;
  format: "rela" | "rel" | "relr";
  /**
   * The table's bytes, when the format read them while planning (a dry run, or a table that is
   * not one run of the image's file bytes): checked by check() and applied from these bytes.
   * Without them the table is checked and applied where the copies put it in guest RAM
   * (`imageOffset`), once it has landed there.
   */
  table?: Uint8Array;
  /** Image-relative offset of the table in guest RAM once the copies are done, if it lies there. */
  imageOffset?: number;
  /** The table in the file: [src, src + len). */
  src: number;
  len: number;
  /** Entry size (RELR: the word size). */
  entsize: number;
  is64: boolean;
  bigEndian: boolean;
  rela: boolean;
  relativeType: number;
  /**
   * Whether entries other than RELATIVE and NONE are refused. False for an image at its link
   * address: such entries are a dynamic linker's, and there is nothing to move them by.
   */
  strict: boolean;
  /** Link-time address of the image's first byte. */
  vbase: bigint;
  delta: bigint;
  /**
   * Told the number of sites the table patches once it has been checked, with the result of the
   * plan being run (a container format's plan carries its own copy of the ELF's result fields).
   */
  counted?: (sites: number, result: unknown) => void;
}

/** One group of Linux x86 `relocs` data. op 0: u32 += delta; 1: i32 -= delta; 2: u64 += delta. */
export interface X86RelocGroup {
  op: 0 | 1 | 2;
  what: string;
  entries: Uint8Array;
}

export interface X86RelocOp {
  kind: "x86";
  what: string;
  groups: X86RelocGroup[];
  vbase32: number;
  delta: bigint;
}

export type RelocOp = ElfRelocOp | X86RelocOp;

/**
 * A CRC-32 (zlib/IEEE) that guest RAM [paddr, paddr + len) must have once the copies are done;
 * checked before zero fills and relocations, and a mismatch rolls the load back.
 */
export interface CrcCheck {
  what: string;
  field: string;
  paddr: number;
  len: number;
  crc32: number;
}

export interface LoadPlan<R = unknown> {
  /** Image name (for the ledger and messages). */
  name: string;
  file: ImageFile;
  /** The range the image occupies, recorded in the ledger. Every op lies inside it. */
  paddr: number;
  size: number;
  copies: CopyOp[];
  zeros: ZeroOp[];
  relocs: RelocOp[];
  /**
   * Further ranges the image needs kept free although nothing is written there (a bzImage's
   * decompression window). Reserved in the ledger with the image, under "<name> (<what>)"
   * where they do not touch [paddr, paddr + size).
   */
  reserve?: Array<{ what: string; paddr: number; size: number }>;
  /** Checksums of copied bytes, verified in guest RAM before anything else is done. */
  verify?: CrcCheck[];
  /** Image-relative [lo, hi) ranges relocations may patch (the segments). */
  patchable: Array<readonly [bigint, bigint]>;
  /** Format-specific result fields (entry, arch info…). */
  result: R;
}

export interface Checked<R> {
  plan: LoadPlan<R>;
  token: symbol;
  /**
   * Per plan.relocs entry: where its table lies in guest RAM (guest physical address) when it is
   * checked and applied there after the copies (ELF ops without `table`).
   */
  inPlace: Array<number | undefined>;
}

function inImage(plan: LoadPlan, dst: number, len: number, what: string): void {
  if (dst < plan.paddr || dst + len > plan.paddr + plan.size) {
    throw new GuestImageError(
      "BAD_HEADER",
      `${what} [${hex(dst)}, ${hex(dst + len)}) lies outside the image range [${hex(plan.paddr)}, ${hex(plan.paddr + plan.size)})`,
      { image: plan.name },
    );
  }
}

/**
 * Validates a plan against guest RAM, the file and the ledger, then reserves its range.
 * Synchronous on purpose: between the check and the reservation no other load can run.
 */
export function check<R>(plan: LoadPlan<R>, ram: GuestRam, ledger: Ledger, core: Core): Checked<R> {
  const image = plan.name;
  ram.map(plan.paddr, plan.size, "image", image);
  for (const c of plan.copies) {
    if (c.src + c.len > plan.file.size) {
      throw new GuestImageError("TRUNCATED", `bytes [${hex(c.src)}, ${hex(c.src + c.len)}) run past the end of the file (${hex(plan.file.size)} bytes)`, { image });
    }
    inImage(plan, c.dst, c.len, "copy");
    if (c.bytes && c.bytes.length !== c.len) {
      throw new GuestImageError("UNSUPPORTED", `copy to ${hex(c.dst)} holds ${hex(c.bytes.length)} bytes for a length of ${hex(c.len)}`, { image });
    }
  }
  for (const z of plan.zeros) inImage(plan, z.dst, z.len, "zero fill");
  for (const v of plan.verify ?? []) inImage(plan, v.paddr, v.len, v.what);
  const inPlace = plan.relocs.length ? checkRelocs(plan, ram, core) : [];
  return { plan, token: ledger.reserve(reservations(plan, ram)), inPlace };
}

/**
 * The ledger entries of a plan: its own range, plus its extra reservations merged into it where
 * they overlap or touch it (and with each other), each checked to lie in RAM.
 */
function reservations(plan: LoadPlan, ram: GuestRam): Placement[] {
  const main = { what: "", paddr: plan.paddr, size: plan.size };
  const ranges = [main, ...(plan.reserve ?? [])].filter((r) => r === main || r.size > 0);
  for (const r of plan.reserve ?? []) ram.map(r.paddr, r.size, r.what, plan.name);
  ranges.sort((a, b) => a.paddr - b.paddr);
  const merged: Array<{ paddr: number; end: number; main: boolean; what: string }> = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r.paddr <= last.end) {
      last.end = Math.max(last.end, r.paddr + r.size);
      last.main ||= r === main;
    } else {
      merged.push({ paddr: r.paddr, end: r.paddr + r.size, main: r === main, what: r.what });
    }
  }
  return merged.map((m) => ({ name: m.main ? plan.name : `${plan.name} (${m.what})`, paddr: m.paddr, size: m.end - m.paddr }));
}

/**
 * Checks every relocation entry whose table the plan holds (x86 relocs data, ELF tables read
 * while planning) against the image's segments, in the core, each table streamed through its
 * batch area — all before anything is written. ELF tables the plan does not hold are checked
 * where the copies put them in guest RAM, once they have landed (checkInPlace, from execute());
 * returns where each of those lies.
 */
function checkRelocs(plan: LoadPlan, ram: GuestRam, core: Core): Array<number | undefined> {
  const image = plan.name;
  ram.linear(plan.paddr, plan.size, "relocated image", image);
  if (plan.patchable.length > MAX_RELOC_SEGMENTS) {
    throw new GuestImageError("UNSUPPORTED", `relocation of an image with ${plan.patchable.length} segments (at most ${MAX_RELOC_SEGMENTS})`, { image });
  }
  const inPlace = plan.relocs.map((r) => {
    if (r.kind !== "elf" || r.table) return undefined;
    const at = r.imageOffset === undefined ? undefined : plan.paddr + r.imageOffset;
    const hits = (d: number, n: number) => at !== undefined && d < at + r.len && at < d + n;
    if (at === undefined || at + r.len > plan.paddr + plan.size || plan.zeros.some((z) => hits(z.dst, z.len))) {
      throw new GuestImageError("UNSUPPORTED", `${r.what}: the plan neither holds the table nor puts it in guest RAM`, { image });
    }
    return at;
  });
  const nsegs = core.setSegments(plan.patchable);
  for (const r of plan.relocs) {
    if (r.kind === "elf" && !r.table) continue;
    const bad = checkOp(plan, r, core, nsegs, r.kind === "elf" ? { bytes: r.table! } : undefined);
    if (bad) throw bad;
  }
  return inPlace;
}

/**
 * The in-place half of checkRelocs, run by execute() once the copies are done and before any
 * relocation is applied: checks each ELF table where it lies in guest RAM. A table is applied
 * there only if no site patched before its last entry is read lies inside it — none of its own
 * (applying it would change entries not yet read) nor of an earlier op. So each op's sites are
 * checked against the segments with the in-place tables of it and later ops cut out; only where
 * that fails are they checked against the whole segments, and those tables are then copied out
 * of RAM (before anything is patched) and applied from the copies. Throws RELOCATION for a bad
 * entry (execute() rolls the load back). Returns the copies, by op.
 */
function checkInPlace(plan: LoadPlan, ram: GuestRam, core: Core, inPlace: Array<number | undefined>): Array<Uint8Array | undefined> {
  const copies: Array<Uint8Array | undefined> = plan.relocs.map(() => undefined);
  if (!inPlace.some((at) => at !== undefined)) return copies;
  const image = ram.linear(plan.paddr, plan.size, "relocated image", plan.name);
  const at = [...inPlace];
  plan.relocs.forEach((r, i) => {
    const holes = plan.relocs.flatMap((t, j) => {
      const p = at[j];
      return t.kind === "elf" && p !== undefined && j >= i ? [[BigInt(p - plan.paddr), BigInt(p - plan.paddr + t.len)] as const] : [];
    });
    const src = r.kind !== "elf" ? undefined : at[i] !== undefined ? { ptr: image + (at[i]! - plan.paddr) } : { bytes: (r.table ?? copies[i])! };
    // Ops checked by check() need checking here only if in-place tables follow them.
    const checked = r.kind === "x86" || r.table !== undefined;
    if (checked && holes.length === 0) return;
    const clear = holes.length ? cut(plan.patchable, holes) : undefined;
    if (clear && clear.length <= MAX_RELOC_SEGMENTS && !checkOp(plan, r, core, core.setSegments(clear), src)) return;
    if (!checked) {
      const bad = checkOp(plan, r, core, core.setSegments(plan.patchable), src);
      if (bad) throw bad;
    }
    for (let j = i; j < at.length; j++) {
      const t = plan.relocs[j];
      const p = at[j];
      if (t.kind !== "elf" || p === undefined) continue;
      copies[j] = core.bytes().slice(image + (p - plan.paddr), image + (p - plan.paddr) + t.len);
      at[j] = undefined;
    }
  });
  for (let i = 0; i < inPlace.length; i++) inPlace[i] = at[i];
  return copies;
}

/** Image-relative ranges `segs` without the ranges `holes`. */
function cut(segs: ReadonlyArray<readonly [bigint, bigint]>, holes: ReadonlyArray<readonly [bigint, bigint]>): Array<readonly [bigint, bigint]> {
  let out = [...segs];
  for (const [a, b] of holes) {
    out = out.flatMap(([lo, hi]) => (b <= lo || a >= hi ? [[lo, hi] as const] : [
      ...(lo < a ? [[lo, a] as const] : []),
      ...(b < hi ? [[b, hi] as const] : []),
    ]));
  }
  return out;
}

/**
 * Checks one op against the segment table's `nsegs` ranges, reading an ELF table at linear
 * `ptr` or streaming `bytes`; tells the op how many sites it patches. The error for its first
 * bad entry, if any.
 */
function checkOp(plan: LoadPlan, r: RelocOp, core: Core, nsegs: number, src?: { ptr: number } | { bytes: Uint8Array }): GuestImageError | undefined {
  if (r.kind === "elf") {
    const n = Math.floor(r.len / r.entsize);
    let sites = 0;
    const run = (ptr: number, count: number, first: number): number => {
      const bad = r.format === "relr"
        ? core.relrCheck(ptr, count, r.is64, r.bigEndian, r.vbase, nsegs, first > 0)
        : core.elfRelocCheck(ptr, count, r.entsize, r.is64, r.bigEndian, r.relativeType, r.vbase, nsegs, r.strict);
      if (bad < 0) sites += core.relocCount();
      return bad;
    };
    const bad = src && "ptr" in src ? inSteps(src.ptr, n, r.entsize, run) : core.forEachBatch(src!.bytes, r.entsize, run);
    if (bad >= 0) return elfRelocError(plan, r, bad, src && "ptr" in src ? core.bytes().subarray(src.ptr, src.ptr + r.len) : src!.bytes);
    r.counted?.(sites, plan.result);
    return undefined;
  }
  for (const g of r.groups) {
    const width = g.op === 2 ? 8 : 4;
    const bad = core.forEachBatch(g.entries, 4, (ptr, n) => core.x86RelocCheck(ptr, n, r.vbase32, width, nsegs));
    if (bad >= 0) {
      const v = new DataView(g.entries.buffer, g.entries.byteOffset).getUint32(bad * 4, true);
      return new GuestImageError(
        "RELOCATION",
        `${r.what}: ${g.what} entry ${bad} (address ${hex(v)}) names a ${width}-byte site outside the image's segments`,
        { image: plan.name, field: "relocs" },
      );
    }
  }
  return undefined;
}

function elfRelocError(plan: LoadPlan, r: ElfRelocOp, index: number, table: Uint8Array): GuestImageError {
  const le = !r.bigEndian;
  if (r.format === "relr") {
    const dv = new DataView(table.buffer, table.byteOffset + index * r.entsize, r.entsize);
    const word = r.is64 ? dv.getBigUint64(0, le) : BigInt(dv.getUint32(0, le));
    let first = true;
    for (let i = 0; i < index && first; i++) {
      const w = new DataView(table.buffer, table.byteOffset + i * r.entsize, r.entsize);
      if (((r.is64 ? w.getBigUint64(0, le) : BigInt(w.getUint32(0, le))) & 1n) === 0n) first = false;
    }
    const msg = (word & 1n) === 1n && first
      ? `${r.what} word ${index} (${hex(word)}) is a bitmap before any address entry`
      : (word & 1n) === 1n
        ? `${r.what} word ${index}: bitmap ${hex(word)} names a site outside the image's segments`
        : `${r.what} word ${index}: site ${hex(word)} is outside the image's segments`;
    return new GuestImageError("RELOCATION", msg, { image: plan.name, field: "DT_RELR" });
  }
  const dv = new DataView(table.buffer, table.byteOffset + index * r.entsize, r.entsize);
  const offset = r.is64 ? dv.getBigUint64(0, le) : BigInt(dv.getUint32(0, le));
  const info = r.is64 ? dv.getBigUint64(8, le) : BigInt(dv.getUint32(4, le));
  const type = Number(r.is64 ? info & 0xffffffffn : info & 0xffn);
  const msg =
    type !== r.relativeType
      ? `${r.what} entry ${index}: relocation type ${type} at ${hex(offset)} cannot be applied by a loader (only RELATIVE, type ${r.relativeType}, and NONE can)`
      : `${r.what} entry ${index}: RELATIVE site ${hex(offset)} is outside the image's segments`;
  return new GuestImageError("RELOCATION", msg, { image: plan.name, field: "r_offset" });
}

/** A range of linear memory as it was before a load wrote it. */
export interface Saved {
  lin: number;
  len: number;
  /** The bytes that were there, or null if they were all zero. */
  old: Uint8Array | null;
}

/** Reads are issued in chunks of this size: progress is reported per chunk, and a chunk is the unit saved for rollback. */
export const READ_CHUNK = 8 * 1024 * 1024;

/** Called after each chunk is in guest RAM: bytes read so far and in all. */
export type ProgressCallback = (loaded: number, total: number) => void;

/** Notes [lin, lin + len) before it is overwritten: all zero (restore = zero it) or a saved copy. */
function save(journal: Saved[], core: Core, lin: number, len: number, knownZero: boolean): void {
  journal.push({ lin, len, old: knownZero || core.isZero(lin, len) ? null : core.bytes().slice(lin, lin + len) });
}

/** Puts back what the journal entries from `from` on saved, newest first, and drops them. */
export function restore(journal: Saved[], core: Core, from = 0): void {
  for (let i = journal.length - 1; i >= from; i--) {
    const s = journal[i];
    if (s.old) core.bytes().set(s.old, s.lin);
    else core.fill(s.lin, 0, s.len);
  }
  journal.length = from;
}

/**
 * For a file held in memory: verifies the plan's checksums over the file's bytes before anything
 * is written, where each checked range is exactly what one copy puts there (a uImage's data).
 * Returns false, verifying nothing, where that is not so (the checksums are then taken in guest
 * RAM after the copies, with the journal kept to undo them), or where the bytes lie in shared
 * memory another thread could change between the check and the copy. Throws BAD_CHECKSUM.
 * Must run in the same synchronous step as copyHeld(), after heldBytes() checked `bytes`.
 */
function verifyHeld(plan: LoadPlan, bytes: Uint8Array, core: Core): boolean {
  if (!plan.verify?.length) return true;
  if (Object.prototype.toString.call(bytes.buffer) === "[object SharedArrayBuffer]") return false;
  const sources = plan.verify.map((v) => {
    const from = plan.copies.filter((c) => c.dst < v.paddr + v.len && v.paddr < c.dst + c.len);
    const c = from.length === 1 && from[0].dst === v.paddr && from[0].len === v.len ? from[0] : undefined;
    return c && (c.bytes ?? bytes.subarray(c.src, c.src + c.len));
  });
  if (sources.includes(undefined)) return false;
  plan.verify.forEach((v, i) => checkCrc(plan, v, core.crc32Bytes(sources[i]!)));
  return true;
}

function checkCrc(plan: LoadPlan, v: CrcCheck, crc: number): void {
  if (crc !== v.crc32 >>> 0) {
    throw new GuestImageError("BAD_CHECKSUM", `${v.what}: CRC-32 is ${hex(crc)}, ${v.field} says ${hex(v.crc32 >>> 0)}`, { image: plan.name, field: v.field });
  }
}

/**
 * The copies of a plan whose file is held in memory, when nothing after check() can fail: no
 * read can (the bytes are checked to be all there before the first is written, and the copies run
 * synchronously, so nothing can take them away in between), no progress callback can throw, the
 * checksums were verified over the very bytes copied (verifyHeld) and no transaction needs the
 * old bytes. So nothing is kept for rollback (no zero test, no saved copy) and each piece is one
 * copy — except that with `journal` (relocation tables still to be checked in RAM, and RAM known
 * to be zero there) each piece is noted as one to zero again.
 */
function copyHeld(plan: LoadPlan, bytes: Uint8Array, ram: GuestRam, journal?: Saved[]): void {
  const moves: Array<{ lin: number; from: Uint8Array; src: number; len: number }> = [];
  for (const op of plan.copies) {
    let src = op.bytes ? 0 : op.src;
    for (const p of ram.map(op.dst, op.len, "copy", plan.name)) {
      moves.push({ lin: p.lin, from: op.bytes ?? bytes, src, len: p.len });
      src += p.len;
    }
  }
  const mem = new Uint8Array(ram.buffer);
  for (const m of moves) {
    // With a journal (RAM known to be zero here): undoing a copy is zeroing it again.
    journal?.push({ lin: m.lin, len: m.len, old: null });
    mem.set(m.from.subarray(m.src, m.src + m.len), m.lin);
  }
}

/**
 * Runs a checked plan. Reads go straight into guest RAM; before each range is overwritten it is
 * either found all-zero (restore = zero it again) or saved, so a failed read, or a relocation
 * table found bad where it landed (checkInPlace), can be undone — except where nothing can fail
 * (copyHeld).
 *
 * With `txJournal` (a VM transaction), the zero-filled ranges are saved too and, once the load
 * commits, its entries join the transaction's journal, so the whole transaction can be undone
 * later; relocation sites lie inside the copied and zeroed ranges, so they are covered.
 */
export async function execute<R>(
  c: Checked<R>, ram: GuestRam, ledger: Ledger, core: Core, onProgress?: ProgressCallback, txJournal?: Saved[],
  beforeCommit?: () => Promise<void>, noFuse = false,
): Promise<R> {
  const { plan, token } = c;
  // This load's own journal: a failure undoes only what this load wrote (another load of the
  // same transaction may be running at the same time); on success it joins the transaction's.
  const journal: Saved[] = [];
  const inPlace = [...c.inPlace];
  let relocCopies: Array<Uint8Array | undefined> = [];
  const total = plan.copies.reduce((n, op) => n + op.len, 0);
  let loaded = 0;
  // ELF64 LE RELA tables that land in RAM are checked and applied in one pass after the zero
  // fills (fusedSegments); a bad entry then undoes the whole load, like a failed read.
  const fused = noFuse ? undefined : fusedSegments(plan, inPlace);
  try {
    // With a beforeCommit step (measured boot) something can still fail after the writes, so
    // what they overwrite is kept, as for a transaction.
    const held = onProgress || txJournal || beforeCommit ? undefined : heldBytes(plan.file);
    // Relocation tables checked in RAM after the copies: a failing check must be able to undo
    // them, which copyHeld can note at no cost only while the RAM is known to be zero.
    const later = c.inPlace.some((at) => at !== undefined);
    if (held && (!later || ram.untouched) && verifyHeld(plan, held, core)) {
      copyHeld(plan, held, ram, later ? journal : undefined);
    } else {
      for (const op of plan.copies) {
        let src = op.src;
        const pieces = ram.map(op.dst, op.len, "copy", plan.name);
        if (plan.file.decodeInto && !op.bytes && op.src === 0 && op.len === plan.file.size && pieces.length === 1) {
          // A decompressed payload written whole where it goes: the decoder's window is guest RAM.
          const { lin, len } = pieces[0];
          for (let o = 0; o < len; o += READ_CHUNK) save(journal, core, lin + o, Math.min(READ_CHUNK, len - o), ram.untouched);
          await plan.file.decodeInto(new Uint8Array(ram.buffer, lin, len), core);
          loaded += len;
          onProgress?.(loaded, total);
          continue;
        }
        for (const p of pieces) {
          for (let o = 0; o < p.len; o += READ_CHUNK) {
            const lin = p.lin + o;
            const n = Math.min(READ_CHUNK, p.len - o);
            save(journal, core, lin, n, ram.untouched);
            const dst = new Uint8Array(ram.buffer, lin, n);
            if (op.bytes) dst.set(op.bytes.subarray(src - op.src, src - op.src + n));
            else await plan.file.read(dst, src);
            src += n;
            loaded += n;
            onProgress?.(loaded, total);
          }
        }
      }
      for (const v of plan.verify ?? []) {
        let crc = 0;
        for (const p of ram.map(v.paddr, v.len, v.what, plan.name)) crc = core.crc32(p.lin, p.len, crc);
        checkCrc(plan, v, crc);
      }
    }
    if (!fused) relocCopies = checkInPlace(plan, ram, core, inPlace);
  } catch (e) {
    restore(journal, core);
    ledger.release(token);
    if (e instanceof GuestImageError) throw e;
    throw new GuestImageError("IO", `reading the image failed: ${(e as Error)?.message ?? String(e)}`, { image: plan.name, cause: e });
  }
  for (const z of plan.zeros) {
    for (const p of ram.map(z.dst, z.len, "zero fill", plan.name)) {
      if (txJournal || beforeCommit || fused) save(journal, core, p.lin, p.len, ram.untouched);
      core.fill(p.lin, 0, p.len);
    }
  }
  if (fused) {
    if (!checkApplyFused(plan, ram, core, inPlace, fused)) {
      // A bad entry, or a site inside a relocation table (which the separate passes allow when
      // the table is copied out first): undo everything and run the load again the long way,
      // which either succeeds or fails with the entry's error.
      restore(journal, core);
      return execute(c, ram, ledger, core, onProgress, txJournal, beforeCommit, true);
    }
  } else if (plan.relocs.length) applyRelocs(plan, ram, core, inPlace, relocCopies);
  // The image is complete in RAM but not yet recorded (its range stays reserved): a last step
  // that fails here (a digest) undoes the load like a failed read.
  if (beforeCommit) {
    try {
      await beforeCommit();
    } catch (e) {
      restore(journal, core);
      ledger.release(token);
      throw e;
    }
  }
  if (txJournal) for (const e of journal) txJournal.push(e);
  ledger.commit(token);
  return plan.result;
}

/**
 * The segment table for a fused check-and-apply pass, or undefined when the plan cannot take it:
 * every op must be an ELF64 little-endian RELA table lying in guest RAM once the copies are done,
 * and the patchable ranges are cut around every such table (a site there could change an entry
 * before it is checked).
 */
function fusedSegments(plan: LoadPlan, inPlace: ReadonlyArray<number | undefined>): Array<readonly [bigint, bigint]> | undefined {
  if (!plan.relocs.length) return undefined;
  const holes: Array<readonly [bigint, bigint]> = [];
  for (let i = 0; i < plan.relocs.length; i++) {
    const r = plan.relocs[i], at = inPlace[i];
    if (r.kind !== "elf" || r.format !== "rela" || !r.is64 || r.bigEndian || at === undefined || r.table !== undefined) return undefined;
    holes.push([BigInt(at - plan.paddr), BigInt(at - plan.paddr + r.len)]);
  }
  const clear = cut(plan.patchable, holes);
  return clear.length <= MAX_RELOC_SEGMENTS ? clear : undefined;
}

/** Runs the fused pass over every op (see fusedSegments); false at the first bad entry. */
function checkApplyFused(plan: LoadPlan, ram: GuestRam, core: Core, inPlace: ReadonlyArray<number | undefined>, clear: Array<readonly [bigint, bigint]>): boolean {
  const image = ram.linear(plan.paddr, plan.size, "relocated image", plan.name);
  const nsegs = core.setSegments(clear);
  const counts: number[] = [];
  for (let i = 0; i < plan.relocs.length; i++) {
    const r = plan.relocs[i] as ElfRelocOp;
    let sites = 0;
    const bad = inSteps(image + (inPlace[i]! - plan.paddr), Math.floor(r.len / r.entsize), r.entsize, (ptr, n) => {
      const b = core.rela64leCheckApply(ptr, n, r.entsize, r.relativeType, r.vbase, nsegs, image, r.delta, r.strict);
      sites += core.relocCount();
      return b;
    });
    if (bad >= 0) return false;
    counts.push(sites);
  }
  plan.relocs.forEach((r, i) => (r as ElfRelocOp).counted?.(counts[i], plan.result));
  return true;
}

function applyRelocs(plan: LoadPlan, ram: GuestRam, core: Core, inPlace: Array<number | undefined>, copies: Array<Uint8Array | undefined>): void {
  const image = ram.linear(plan.paddr, plan.size, "relocated image", plan.name);
  plan.relocs.forEach((r, i) => {
    const at = inPlace[i];
    if (r.kind === "elf") {
      const apply = (ptr: number, n: number, first: number): number => {
        if (r.format === "relr") core.relrApply(ptr, n, r.is64, r.bigEndian, r.vbase, image, r.delta, first > 0);
        else core.elfRelocApply(ptr, n, r.entsize, r.is64, r.bigEndian, r.rela, r.relativeType, r.vbase, image, r.delta);
        return -1;
      };
      // In place: the table as the copies wrote it into the image, checked there.
      if (at !== undefined) inSteps(image + (at - plan.paddr), Math.floor(r.len / r.entsize), r.entsize, apply);
      else core.forEachBatch((r.table ?? copies[i])!, r.entsize, apply);
    } else {
      for (const g of r.groups) {
        core.forEachBatch(g.entries, 4, (ptr, n) => {
          core.x86RelocApply(ptr, n, r.vbase32, image, g.op, r.delta);
          return -1;
        });
      }
    }
  });
}

/**
 * Entries per call of a core loop over a table in RAM. One call per table would run all of it in
 * V8's baseline Wasm code (Liftoff): a function is optimised only after it has run a while, and
 * the optimised code serves the calls after that. In steps, most of a large table runs optimised.
 */
const RELOC_STEP = 16384;

/** Calls `fn` over `count` entries at `ptr` in steps of RELOC_STEP; stops at the first result ≥ 0. */
function inSteps(ptr: number, count: number, entsize: number, fn: (ptr: number, count: number, first: number) => number): number {
  for (let first = 0; first < count; first += RELOC_STEP) {
    const r = fn(ptr + first * entsize, Math.min(RELOC_STEP, count - first), first);
    if (r >= 0) return first + r;
  }
  return -1;
}

/** Reads the ELF relocation tables a plan does not hold (a dry run checks them without loading). */
export async function readRelocTables(plan: LoadPlan): Promise<void> {
  for (const r of plan.relocs) if (r.kind === "elf" && !r.table) r.table = await readBytes(plan.file, r.src, r.len);
}

/** Records a checked plan without writing guest RAM (a dry run). */
export function commitWithoutWriting<R>(c: Checked<R>, ledger: Ledger): R {
  ledger.commit(c.token);
  return c.plan.result;
}
