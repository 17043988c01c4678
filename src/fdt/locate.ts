// Where a property's value lies inside a flattened device tree (byte offset into the blob), so a
// value of fixed length can be patched in place without rewriting the tree: the per-boot seeds
// of a prepared boot or a reset. Devicetree Specification v0.4 §5.4 (structure block tokens).
import { GuestImageError } from "../errors.js";
import { FDT_BEGIN_NODE, FDT_END, FDT_END_NODE, FDT_NOP, FDT_PROP } from "./parse.js";

const ALIGN4 = (n: number) => n + ((4 - (n % 4)) % 4);

/**
 * Offsets (into `blob`) and lengths of the values of properties `names` of the node at `path`
 * ("/chosen": a child of the root; one level only). Properties not present are left out.
 * Throws BAD_HEADER if the structure block runs past the blob.
 */
export function propertyOffsets(blob: Uint8Array, path: string, names: readonly string[]): Map<string, { offset: number; len: number }> {
  const want = path.replace(/^\//, "");
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const fail = (msg: string): never => {
    throw new GuestImageError("BAD_HEADER", msg, { image: "device tree", field: "dt_struct" });
  };
  if (blob.length < 40) fail(`device tree of ${blob.length} bytes has no header`);
  const offStruct = dv.getUint32(8, false);
  const offStrings = dv.getUint32(12, false);
  const out = new Map<string, { offset: number; len: number }>();
  const cstr = (at: number): string => {
    const nul = blob.indexOf(0, at);
    if (nul < 0) fail(`string at ${at} is not terminated`);
    return new TextDecoder().decode(blob.subarray(at, nul));
  };
  let o = offStruct;
  let depth = 0;
  let inTarget = false;
  for (;;) {
    if (o + 4 > blob.length) fail(`structure block runs past the blob at ${o}`);
    const tok = dv.getUint32(o, false);
    o += 4;
    if (tok === FDT_BEGIN_NODE) {
      const name = cstr(o);
      o = ALIGN4(o + new TextEncoder().encode(name).length + 1);
      depth++;
      inTarget = depth === 2 && name === want;
    } else if (tok === FDT_END_NODE) {
      if (inTarget) return out;
      depth--;
      inTarget = false;
    } else if (tok === FDT_PROP) {
      if (o + 8 > blob.length) fail(`property at ${o - 4} runs past the blob`);
      const len = dv.getUint32(o, false);
      const nameoff = dv.getUint32(o + 4, false);
      const value = o + 8;
      if (value + len > blob.length) fail(`property value at ${value} (+${len}) runs past the blob`);
      if (inTarget) {
        const name = cstr(offStrings + nameoff);
        if (names.includes(name)) out.set(name, { offset: value, len });
      }
      o = ALIGN4(value + len);
    } else if (tok === FDT_NOP) {
      continue;
    } else if (tok === FDT_END) {
      return out;
    } else {
      fail(`unknown token ${tok} at ${o - 4}`);
    }
  }
}
