/**
 * A tiny flattened-device-tree reader for the tests: every property as "path:name" → hex value.
 * It is the comparison basis for device trees, which QEMU never keeps byte-identical (it re-opens
 * a user dtb larger and edits it; padding after property values is not zeroed).
 * Layout from the Devicetree Specification v0.4, chapter 5 (all fields big-endian).
 */
const FDT_MAGIC = 0xd00dfeed;
const FDT_BEGIN_NODE = 1;
const FDT_END_NODE = 2;
const FDT_PROP = 3;
const FDT_NOP = 4;
const FDT_END = 9;

export function fdtProperties(blob: Uint8Array): Map<string, string> {
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  if (dv.getUint32(0) !== FDT_MAGIC) throw new Error("fdt: bad magic");
  const offStruct = dv.getUint32(8);
  const offStrings = dv.getUint32(12);
  const str = (o: number) => {
    let e = o;
    while (blob[e] !== 0) e++;
    return new TextDecoder().decode(blob.subarray(o, e));
  };
  const out = new Map<string, string>();
  const path: string[] = [];
  let p = offStruct;
  for (;;) {
    const tok = dv.getUint32(p);
    p += 4;
    if (tok === FDT_BEGIN_NODE) {
      const name = str(p);
      path.push(name);
      p += (name.length + 1 + 3) & ~3;
      out.set(`${"/" + path.slice(1).join("/")}`, "node");
    } else if (tok === FDT_END_NODE) {
      path.pop();
    } else if (tok === FDT_PROP) {
      const len = dv.getUint32(p);
      const nameoff = dv.getUint32(p + 4);
      const value = Buffer.from(blob.subarray(p + 8, p + 8 + len)).toString("hex");
      out.set(`${"/" + path.slice(1).join("/")}:${str(offStrings + nameoff)}`, value);
      p += 8 + ((len + 3) & ~3);
    } else if (tok === FDT_NOP) {
      continue;
    } else if (tok === FDT_END) {
      return out;
    } else {
      throw new Error(`fdt: bad token ${tok} at ${p - 4}`);
    }
  }
}
