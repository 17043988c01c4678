// Flattened device tree (FDT) blob → tree, validating everything (Devicetree Specification v0.4,
// ch. 5 "Flattened Devicetree (DTB) Format"; libfdt fdt.h). A blob is untrusted input: every
// offset and length is checked against its block and against totalsize before it is used, the
// blocks may not overlap each other or the header, nesting depth is bounded, and each problem
// is a GuestImageError naming the header field or block at fault.
//
// Layout (§5.1, §5.2): a 40-byte big-endian header
//   0x00 magic 0xd00dfeed  0x04 totalsize  0x08 off_dt_struct  0x0c off_dt_strings
//   0x10 off_mem_rsvmap  0x14 version  0x18 last_comp_version  0x1c boot_cpuid_phys
//   0x20 size_dt_strings  0x24 size_dt_struct (version 17)
// then the memory reservation block (8-aligned pairs of u64 ending with 0,0), the structure
// block (4-aligned tokens) and the strings block (NUL-terminated property names).
import { GuestImageError, type ErrorCode } from "../errors.js";
import { checkFdtHeaderBytes, FDT_HEADER_SIZE, fdtHeaderSize, type FdtHeader } from "../formats/fdt.js";
import { hex } from "../num.js";
import { readBytes, type ImageFile } from "../sources/source.js";
import type { Fdt, FdtNode, FdtReservation } from "./tree.js";

/** §5.4.1 "Lexical structure": the structure block tokens. */
export const FDT_BEGIN_NODE = 0x1;
export const FDT_END_NODE = 0x2;
export const FDT_PROP = 0x3;
export const FDT_NOP = 0x4;
export const FDT_END = 0x9;

/** We write version 17 and read 16 and 17 (§5.2: "last_comp_version ... shall be 16"). */
export const FDT_VERSION = 17;
export const FDT_LAST_COMP_VERSION = 16;
/** The first version whose node names are unit names, not full paths (libfdt reads older ones; we do not). */
const FDT_FIRST_READ_VERSION = 16;

/**
 * Deepest nesting accepted. Linux's unflatten_dt_nodes stops at FDT_MAX_DEPTH 64; real trees
 * are under 10 deep. Bounding it keeps the recursive writer and walkers safe on hostile input.
 */
export const FDT_MAX_DEPTH = 64;

export interface ParsedFdt extends Fdt {
  header: FdtHeader;
}

const ALIGN4 = (n: number) => n + ((4 - (n % 4)) % 4); // exact: no 32-bit `&` (totalsize may reach 2^31 − 1)

/** Parses and validates a whole device tree blob (`blob` may be longer than totalsize). */
export function parseFdt(blob: Uint8Array, image = "device tree"): ParsedFdt {
  if (!(blob instanceof Uint8Array)) throw new GuestImageError("BAD_ARGUMENT", "parseFdt needs the blob as a Uint8Array", { image, field: "blob" });
  const fail = (code: ErrorCode, field: string, msg: string): never => {
    throw new GuestImageError(code, msg, { image, field });
  };
  // The header check every DTB path shares (libfdt's fdt_check_header, src/formats/fdt.ts) …
  const h = checkFdtHeaderBytes(blob, blob.length, image);
  // … then what this reader needs beyond it: unit names (version 16 on) and aligned blocks.
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const u32 = (o: number) => dv.getUint32(o, false);
  if (h.version < FDT_FIRST_READ_VERSION) {
    fail("UNSUPPORTED", "version", `version ${h.version} is older than 16 (node names were full paths then); only versions 16 and 17 are read`);
  }

  // Blocks: each inside [header end, totalsize), aligned as §5.1 requires.
  const hdr = fdtHeaderSize(h.version);
  const within = (field: keyof FdtHeader, sizeField: keyof FdtHeader | null, off: number, len: number, align: number) => {
    if (off < hdr) fail("BAD_HEADER", field, `${field} ${hex(off)} lies inside the ${hdr}-byte header`);
    if (off % align !== 0) fail("BAD_HEADER", field, `${field} ${hex(off)} is not ${align}-byte aligned (§5.1)`);
    if (off + len > h.totalsize) {
      const f = sizeField ?? field;
      fail("BAD_HEADER", f, `${field} ${hex(off)}${sizeField ? ` + ${sizeField} ${hex(len)}` : ""} runs past totalsize ${hex(h.totalsize)}`);
    }
  };
  within("off_mem_rsvmap", null, h.off_mem_rsvmap, 0, 8);
  within("off_dt_strings", "size_dt_strings", h.off_dt_strings, h.size_dt_strings, 1);
  // Version 16 has no size_dt_struct: the block runs to the strings block if that follows, else to totalsize.
  const structSize = h.version >= 17 ? h.size_dt_struct
    : (h.off_dt_strings > h.off_dt_struct ? h.off_dt_strings : h.totalsize) - Math.min(h.off_dt_struct, h.totalsize);
  within("off_dt_struct", h.version >= 17 ? "size_dt_struct" : null, h.off_dt_struct, structSize, 4);
  const sBeg = h.off_dt_struct, sEnd = sBeg + structSize;
  const tBeg = h.off_dt_strings, tEnd = tBeg + h.size_dt_strings;
  const overlap = (a0: number, a1: number, b0: number, b1: number) => a0 < b1 && b0 < a1;
  if (overlap(sBeg, sEnd, tBeg, tEnd)) {
    fail("BAD_HEADER", "off_dt_strings", `strings block [${hex(tBeg)}, ${hex(tEnd)}) overlaps the structure block [${hex(sBeg)}, ${hex(sEnd)})`);
  }

  // Memory reservation block (§5.3): pairs until (0, 0), stopping at the next block or totalsize.
  const reservations: FdtReservation[] = [];
  const rBeg = h.off_mem_rsvmap;
  const rLimit = Math.min(h.totalsize, ...[sBeg, tBeg].filter((b) => b > rBeg));
  let rEnd = -1;
  for (let o = rBeg; o + 16 <= rLimit; o += 16) {
    const address = dv.getBigUint64(o, false);
    const size = dv.getBigUint64(o + 8, false);
    if (address === 0n && size === 0n) {
      rEnd = o + 16;
      break;
    }
    reservations.push({ address, size });
  }
  if (rEnd < 0) {
    fail("BAD_HEADER", "off_mem_rsvmap", `memory reservation block at ${hex(rBeg)} has no (0, 0) terminator before ${hex(rLimit)}`);
  }
  for (const [what, b0, b1] of [["structure", sBeg, sEnd], ["strings", tBeg, tEnd]] as const) {
    if (overlap(rBeg, rEnd, b0, b1)) {
      fail("BAD_HEADER", "off_mem_rsvmap", `memory reservation block [${hex(rBeg)}, ${hex(rEnd)}) overlaps the ${what} block [${hex(b0)}, ${hex(b1)})`);
    }
  }

  // Strings block: property names by offset; the same name may be shared by any number of properties.
  const nameAt = (nameoff: number, at: number): string => {
    if (nameoff >= h.size_dt_strings) {
      fail("BAD_HEADER", "nameoff", `property at structure offset ${hex(at)}: nameoff ${hex(nameoff)} is past the strings block (size_dt_strings ${hex(h.size_dt_strings)})`);
    }
    const nul = blob.subarray(tBeg + nameoff, tEnd).indexOf(0);
    if (nul < 0) fail("BAD_HEADER", "nameoff", `property at structure offset ${hex(at)}: its name at strings offset ${hex(nameoff)} runs past the end of the strings block`);
    if (nul === 0) fail("BAD_HEADER", "nameoff", `property at structure offset ${hex(at)}: its name at strings offset ${hex(nameoff)} is empty`);
    return latin1OrUtf8(blob.subarray(tBeg + nameoff, tBeg + nameoff + nul));
  };

  // Structure block (§5.4): a single root node, properties before child nodes, then FDT_END.
  const bad = (at: number, msg: string): never => fail("BAD_HEADER", "dt_struct", `structure block offset ${hex(at)}: ${msg}`);
  const stack: Array<{ node: FdtNode; names: Set<string> }> = [];
  let root: FdtNode | undefined;
  let o = 0;
  for (;;) {
    if (o + 4 > structSize) bad(o, `the block (${hex(structSize)} bytes) ends before FDT_END`);
    const token = u32(sBeg + o);
    const at = o;
    o += 4;
    if (token === FDT_NOP) continue;
    if (token === FDT_BEGIN_NODE) {
      const nul = blob.subarray(sBeg + o, sEnd).indexOf(0);
      if (nul < 0) bad(at, "a node name runs past the end of the block");
      const name = latin1OrUtf8(blob.subarray(sBeg + o, sBeg + o + nul));
      o = ALIGN4(o + nul + 1);
      if (o > structSize) bad(at, "the node name's padding runs past the end of the block");
      if (stack.length === 0) {
        if (root) bad(at, "a second root node (the tree has exactly one, §5.4.2)");
        root = { name: "", props: [], children: [] };
        stack.push({ node: root, names: new Set() });
        continue;
      }
      if (stack.length >= FDT_MAX_DEPTH) fail("TOO_LARGE", "dt_struct", `structure block offset ${hex(at)}: nodes nest deeper than ${FDT_MAX_DEPTH}`);
      if (name === "" || name.includes("/")) bad(at, `node name ${JSON.stringify(name)} is empty or contains "/"`);
      const parent = stack[stack.length - 1];
      if (parent.names.has(name)) bad(at, `a second node named "${name}" under the same parent`);
      parent.names.add(name);
      const node: FdtNode = { name, props: [], children: [] };
      parent.node.children.push(node);
      stack.push({ node, names: new Set() });
    } else if (token === FDT_END_NODE) {
      if (stack.length === 0) bad(at, "FDT_END_NODE with no node open");
      stack.pop();
    } else if (token === FDT_PROP) {
      if (stack.length === 0) bad(at, "a property outside every node");
      if (o + 8 > structSize) bad(at, "a property header runs past the end of the block");
      const len = u32(sBeg + o);
      const nameoff = u32(sBeg + o + 4);
      o += 8;
      if (len > structSize - o) bad(at, `property value length ${hex(len)} runs past the end of the block`);
      const name = nameAt(nameoff, at);
      const { node } = stack[stack.length - 1];
      if (node.children.length) bad(at, `property "${name}" follows a child node (properties come first, §5.4.2)`);
      if (node.props.some((p) => p.name === name)) bad(at, `a second property named "${name}" in the same node`);
      node.props.push({ name, value: blob.slice(sBeg + o, sBeg + o + len) });
      o = ALIGN4(o + len);
    } else if (token === FDT_END) {
      if (!root) bad(at, "FDT_END before the root node");
      if (stack.length) bad(at, `FDT_END with ${stack.length} node(s) still open`);
      break;
    } else {
      bad(at, `unknown token ${hex(token)}`);
    }
    if (o > structSize) bad(at, "the token's padding runs past the end of the block");
  }
  return { root: root as FdtNode, reservations, bootCpuidPhys: h.boot_cpuid_phys, header: h };
}

/** Names are ASCII by the spec; anything else is kept byte for byte (as latin-1) so it round-trips. */
function latin1OrUtf8(b: Uint8Array): string {
  let s = "";
  for (const c of b) s += String.fromCharCode(c);
  return s;
}

/**
 * Reads a device tree from a file: the header check first (so a hostile totalsize cannot make
 * us allocate more than the file holds), then the whole blob.
 */
export async function readFdt(file: ImageFile): Promise<ParsedFdt> {
  const head = file.size < FDT_HEADER_SIZE ? new Uint8Array(0) : await readBytes(file, 0, FDT_HEADER_SIZE);
  const { totalsize } = checkFdtHeaderBytes(head, file.size, file.name);
  return parseFdt(await readBytes(file, 0, totalsize), file.name);
}
