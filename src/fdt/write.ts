// Tree → flattened device tree blob, version 17 (Devicetree Specification v0.4, ch. 5), in the
// block order §5.1 recommends and dtc writes: header, memory reservation block, structure
// block, strings block — then optional free space inside totalsize, because firmware such as
// OpenSBI and U-Boot edit the tree in place (libfdt's fdt_open_into/fdt_setprop grow it into
// that space) and a tree packed to the last byte leaves them none.
import { GuestImageError } from "../errors.js";
import { FDT_HEADER_SIZE, FDT_MAGIC } from "../formats/fdt.js";
import { hex } from "../num.js";
import { FDT_BEGIN_NODE, FDT_END, FDT_END_NODE, FDT_LAST_COMP_VERSION, FDT_MAX_DEPTH, FDT_PROP, FDT_VERSION } from "./parse.js";
import { checkNodeName, checkPropName, type Fdt, type FdtNode } from "./tree.js";

export interface WriteFdtOptions {
  /** Bytes of free space after the strings block, inside totalsize (default 0). */
  freeSpace?: number;
  /** Make totalsize at least this (the free space grows to fill it); e.g. QEMU's 2 × (file size + 10000). */
  minTotalsize?: number;
}

/** Largest blob we write: totalsize is a u32. */
const MAX_TOTALSIZE = 0xffffffff;

const latin1 = (s: string, what: string): Uint8Array => {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new GuestImageError("BAD_ARGUMENT", `${what} ${JSON.stringify(s)} has a character outside latin-1 (names are ASCII, §2.2)`, { field: "name" });
    out[i] = c;
  }
  return out;
};

/** Serialises `fdt` as a version 17 blob. */
export function writeFdt(fdt: Fdt, opts: WriteFdtOptions = {}): Uint8Array {
  if (!fdt || typeof fdt !== "object" || !fdt.root || typeof fdt.root !== "object") {
    throw new GuestImageError("BAD_ARGUMENT", "writeFdt needs a tree ({ root, … }) as parseFdt returns", { field: "fdt" });
  }
  opts ??= {};
  const freeSpace = opts.freeSpace ?? 0;
  if (!Number.isSafeInteger(freeSpace) || freeSpace < 0) {
    throw new GuestImageError("BAD_ARGUMENT", `freeSpace must be a non-negative integer, got ${String(opts.freeSpace)}`, { field: "freeSpace" });
  }
  const minTotal = opts.minTotalsize ?? 0;
  if (!Number.isSafeInteger(minTotal) || minTotal < 0) {
    throw new GuestImageError("BAD_ARGUMENT", `minTotalsize must be a non-negative integer, got ${String(opts.minTotalsize)}`, { field: "minTotalsize" });
  }

  // Strings block: each distinct name once, in first-use order (as dtc does).
  const strOff = new Map<string, number>();
  const strParts: Uint8Array[] = [];
  let strSize = 0;
  const nameoff = (name: string): number => {
    let off = strOff.get(name);
    if (off === undefined) {
      off = strSize;
      strOff.set(name, off);
      const b = latin1(name, "property name");
      strParts.push(b, new Uint8Array(1));
      strSize += b.length + 1;
    }
    return off;
  };

  // Structure block, sized first, then written.
  const tokens: Array<{ kind: "begin"; name: Uint8Array } | { kind: "prop"; nameoff: number; value: Uint8Array } | { kind: "end" }> = [];
  let structSize = 0;
  const walk = (node: FdtNode, depth: number, isRoot: boolean) => {
    if (depth > FDT_MAX_DEPTH) throw new GuestImageError("TOO_LARGE", `nodes nest deeper than ${FDT_MAX_DEPTH}`, { field: "dt_struct" });
    if (!isRoot) checkNodeName(node.name);
    const name = isRoot ? new Uint8Array(0) : latin1(node.name, "node name");
    tokens.push({ kind: "begin", name });
    structSize += 4 + align4(name.length + 1);
    const seen = new Set<string>();
    for (const p of node.props) {
      checkPropName(p.name);
      if (seen.has(p.name)) throw new GuestImageError("BAD_ARGUMENT", `node "${node.name || "/"}" has two properties named "${p.name}"`, { field: "props" });
      seen.add(p.name);
      if (!(p.value instanceof Uint8Array)) throw new GuestImageError("BAD_ARGUMENT", `property "${p.name}" value must be a Uint8Array`, { field: "value" });
      tokens.push({ kind: "prop", nameoff: nameoff(p.name), value: p.value });
      structSize += 12 + align4(p.value.length);
    }
    const names = new Set<string>();
    for (const c of node.children) {
      if (names.has(c.name)) throw new GuestImageError("BAD_ARGUMENT", `node "${node.name || "/"}" has two children named "${c.name}"`, { field: "children" });
      names.add(c.name);
      walk(c, depth + 1, false);
    }
    tokens.push({ kind: "end" });
    structSize += 4;
  };
  walk(fdt.root, 1, true);
  structSize += 4; // FDT_END

  const rsvOff = FDT_HEADER_SIZE; // 40: already 8-aligned (§5.1)
  const rsvSize = (fdt.reservations.length + 1) * 16;
  const structOff = rsvOff + rsvSize;
  const stringsOff = structOff + structSize;
  const used = stringsOff + strSize;
  const total = Math.max(used + freeSpace, minTotal);
  if (total > MAX_TOTALSIZE) {
    throw new GuestImageError("TOO_LARGE", `device tree of ${hex(total)} bytes does not fit the u32 totalsize`, { field: "totalsize" });
  }

  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  const put32 = (o: number, v: number) => dv.setUint32(o, v >>> 0, false);
  put32(0x00, FDT_MAGIC);
  put32(0x04, total);
  put32(0x08, structOff);
  put32(0x0c, stringsOff);
  put32(0x10, rsvOff);
  put32(0x14, FDT_VERSION);
  put32(0x18, FDT_LAST_COMP_VERSION);
  put32(0x1c, fdt.bootCpuidPhys);
  put32(0x20, strSize);
  put32(0x24, structSize);

  let o = rsvOff;
  for (const r of fdt.reservations) {
    if (r.address < 0n || r.address >= 1n << 64n || r.size < 0n || r.size >= 1n << 64n) {
      throw new GuestImageError("BAD_ARGUMENT", `memory reservation ${hex(r.address)}+${hex(r.size)} is not a pair of u64`, { field: "reservations" });
    }
    dv.setBigUint64(o, r.address, false);
    dv.setBigUint64(o + 8, r.size, false);
    o += 16;
  }
  o += 16; // the (0, 0) terminator, already zero

  for (const t of tokens) {
    if (t.kind === "begin") {
      put32(o, FDT_BEGIN_NODE);
      out.set(t.name, o + 4);
      o += 4 + align4(t.name.length + 1);
    } else if (t.kind === "prop") {
      put32(o, FDT_PROP);
      put32(o + 4, t.value.length);
      put32(o + 8, t.nameoff);
      out.set(t.value, o + 12);
      o += 12 + align4(t.value.length);
    } else {
      put32(o, FDT_END_NODE);
      o += 4;
    }
  }
  put32(o, FDT_END);
  o += 4;
  for (const p of strParts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function align4(n: number): number {
  return n + ((4 - (n % 4)) % 4); // exact, no 32-bit `&`
}
