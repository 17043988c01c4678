// A device tree in memory: nodes with named properties (raw big-endian bytes) and child nodes,
// plus the memory reservation block (Devicetree Specification v0.4, ch. 2 "The Devicetree" and
// §5.3 "Memory Reservation Block"). parse.ts builds one from a blob, write.ts turns one back
// into a blob; this file holds the tree and the property encodings (§2.2.4 "Property values").
import { GuestImageError } from "../errors.js";
import { hex } from "../num.js";

export interface FdtProperty {
  name: string;
  /** The value as stored: big-endian cells, NUL-terminated strings, or opaque bytes. */
  value: Uint8Array;
}

export interface FdtNode {
  /** Node name with its unit address ("memory@40000000"); "" for the root. */
  name: string;
  props: FdtProperty[];
  children: FdtNode[];
}

/** One memory reservation block entry (§5.3.2: two big-endian u64). */
export interface FdtReservation {
  address: bigint;
  size: bigint;
}

export interface Fdt {
  root: FdtNode;
  reservations: FdtReservation[];
  /** Header field boot_cpuid_phys (§5.2): the boot CPU's physical id. */
  bootCpuidPhys: number;
}

/** An empty tree: a root node with no properties. */
export function emptyFdt(): Fdt {
  return { root: { name: "", props: [], children: [] }, reservations: [], bootCpuidPhys: 0 };
}

/** The name without its unit address ("memory@40000000" → "memory"). */
export const baseName = (name: string) => {
  const at = name.indexOf("@");
  return at < 0 ? name : name.slice(0, at);
};

/**
 * A child by name, as libfdt's fdt_subnode_offset matches it: the exact name, or, when the
 * name asked for has no unit address, the first child whose name without unit address equals it
 * (so "/memory" finds "memory@40000000", which is what QEMU's qemu_fdt_setprop(fdt, "/memory")
 * relies on).
 */
export function childNamed(node: FdtNode, name: string): FdtNode | undefined {
  const exact = node.children.find((c) => c.name === name);
  if (exact || name.includes("@")) return exact;
  return node.children.find((c) => baseName(c.name) === name);
}

/** The node at an absolute path ("/", "/chosen", "/memory"), or undefined. */
export function findNode(fdt: Fdt, path: string): FdtNode | undefined {
  if (!path.startsWith("/")) return undefined;
  let node: FdtNode | undefined = fdt.root;
  for (const part of path.split("/").filter((p) => p !== "")) {
    node = childNamed(node, part);
    if (!node) return undefined;
  }
  return node;
}

/** The node at `path`, created (with its missing ancestors) when absent. */
export function ensureNode(fdt: Fdt, path: string): FdtNode {
  if (!path.startsWith("/")) throw new GuestImageError("BAD_ARGUMENT", `device tree path "${path}" is not absolute`, { field: "path" });
  let node = fdt.root;
  for (const part of path.split("/").filter((p) => p !== "")) {
    let next = childNamed(node, part);
    if (!next) {
      checkNodeName(part);
      next = { name: part, props: [], children: [] };
      node.children.push(next);
    }
    node = next;
  }
  return node;
}

/** Every node for which `pred` holds, depth first, with its path. */
export function findNodes(fdt: Fdt, pred: (node: FdtNode, path: string) => boolean): Array<{ node: FdtNode; path: string; parent: FdtNode | null }> {
  const out: Array<{ node: FdtNode; path: string; parent: FdtNode | null }> = [];
  const walk = (node: FdtNode, path: string, parent: FdtNode | null) => {
    if (pred(node, path)) out.push({ node, path, parent });
    for (const c of node.children) walk(c, path === "/" ? `/${c.name}` : `${path}/${c.name}`, node);
  };
  walk(fdt.root, "/", null);
  return out;
}

export function getProp(node: FdtNode, name: string): Uint8Array | undefined {
  return node.props.find((p) => p.name === name)?.value;
}

/** Sets a property, keeping its position when it exists (as libfdt's fdt_setprop does). */
export function setProp(node: FdtNode, name: string, value: Uint8Array): void {
  checkPropName(name);
  const p = node.props.find((x) => x.name === name);
  if (p) p.value = value;
  else node.props.push({ name, value });
}

export function removeProp(node: FdtNode, name: string): boolean {
  const i = node.props.findIndex((p) => p.name === name);
  if (i >= 0) node.props.splice(i, 1);
  return i >= 0;
}

/** §2.2.1: node names are 1-31 characters; we refuse only what would break the blob or paths. */
export function checkNodeName(name: string): void {
  if (typeof name !== "string" || name === "" || name.includes("/") || name.includes("\0")) {
    throw new GuestImageError("BAD_ARGUMENT", `device tree node name ${JSON.stringify(name)} must be non-empty, without "/" or NUL`, { field: "name" });
  }
}

/** §2.2.4.1: property names are 1-31 printable characters; NUL would end the string early. */
export function checkPropName(name: string): void {
  if (typeof name !== "string" || name === "" || name.includes("\0")) {
    throw new GuestImageError("BAD_ARGUMENT", `device tree property name ${JSON.stringify(name)} must be non-empty and without NUL`, { field: "name" });
  }
}

// ── property values (§2.2.4.2 "Property Values") ──

/** <u32>: one big-endian cell. */
export function u32Value(v: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, v >>> 0, false);
  return out;
}

/** <string>: the string's UTF-8 bytes and a NUL. */
export function stringValue(s: string): Uint8Array {
  const b = new TextEncoder().encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

/**
 * <prop-encoded-array> of numbers each `cells` cells wide (an address or a size): big-endian,
 * most significant cell first (§2.3.6 "reg"). A value that does not fit is refused.
 */
export function cellsValue(items: Array<{ value: number | bigint; cells: number; what: string }>): Uint8Array {
  for (const i of items) {
    if (!Number.isInteger(i.cells) || i.cells < 0 || i.cells > 4) {
      throw new GuestImageError("BAD_HEADER", `${i.what}: ${i.cells} cells; at most 4 are supported`, { field: i.what });
    }
  }
  const total = items.reduce((n, i) => n + i.cells, 0);
  const out = new Uint8Array(total * 4);
  const dv = new DataView(out.buffer);
  let o = 0;
  for (const { value, cells, what } of items) {
    const v = BigInt(value);
    if (cells < 0 || cells > 4 || v < 0n || v >= 1n << BigInt(32 * cells)) {
      throw new GuestImageError("TOO_LARGE", `${what} ${hex(v)} does not fit in ${cells} cell${cells === 1 ? "" : "s"} (${32 * cells} bits)`, { field: what });
    }
    for (let c = cells - 1; c >= 0; c--) {
      dv.setUint32(o, Number((v >> BigInt(32 * c)) & 0xffffffffn), false);
      o += 4;
    }
  }
  return out;
}

/** Reads a value made of `cells`-wide numbers (cells 0..4, as #address-cells may be). */
export function readCells(value: Uint8Array, widths: number[]): bigint[][] {
  const per = widths.reduce((a, b) => a + b, 0) * 4;
  if (per === 0 || value.length % per !== 0) return [];
  const dv = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const out: bigint[][] = [];
  for (let o = 0; o < value.length; ) {
    const row: bigint[] = [];
    for (const w of widths) {
      let v = 0n;
      for (let c = 0; c < w; c++, o += 4) v = (v << 32n) | BigInt(dv.getUint32(o, false));
      row.push(v);
    }
    out.push(row);
  }
  return out;
}

/** A big-endian number of any cell count (the whole value), as Linux's of_read_number does. */
export function readNumber(value: Uint8Array): bigint | undefined {
  if (value.length === 0 || value.length % 4 !== 0 || value.length > 16) return undefined;
  return readCells(value, [value.length / 4])[0][0];
}

export function readU32(value: Uint8Array | undefined): number | undefined {
  return value && value.length === 4 ? new DataView(value.buffer, value.byteOffset, 4).getUint32(0, false) : undefined;
}

/** A <string> value (NUL-terminated, no inner NUL), or undefined. */
export function readString(value: Uint8Array | undefined): string | undefined {
  if (!value || value.length === 0 || value[value.length - 1] !== 0) return undefined;
  const body = value.subarray(0, value.length - 1);
  if (body.includes(0)) return undefined;
  return new TextDecoder().decode(body);
}

/** A <stringlist> value, or undefined. */
export function readStrings(value: Uint8Array | undefined): string[] | undefined {
  if (!value || value.length === 0 || value[value.length - 1] !== 0) return undefined;
  return new TextDecoder().decode(value.subarray(0, value.length - 1)).split("\0");
}

/**
 * #address-cells / #size-cells of a node, i.e. the cell widths its children's `reg` uses;
 * §2.3.5: "If missing, a client program should assume a default value of 2 for #address-cells,
 * and a value of 1 for #size-cells".
 */
/**
 * A node's #address-cells and #size-cells (devicetree spec §2.3.5; defaults 2 and 1). Values
 * above 4 cells (128 bits) describe no real bus and are refused (Linux caps them the same way).
 */
export function cellWidths(node: FdtNode): { address: number; size: number } {
  const get = (name: "#address-cells" | "#size-cells", dflt: number) => {
    const v = readU32(getProp(node, name)) ?? dflt;
    if (v > 4) throw new GuestImageError("BAD_HEADER", `${name} is ${v}; at most 4 cells are supported`, { field: name });
    return v;
  };
  return { address: get("#address-cells", 2), size: get("#size-cells", 1) };
}
