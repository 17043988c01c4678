// Node entry: everything in the main entry, plus sources that use node:fs.
export * from "./index.js";
import "./compress/inflate-node.js"; // registers node:zlib as the inflater (setInflater)
import "./measure-node.js"; // registers node:crypto for measured boot (useSha256)
import "./core/crc32-node.js"; // registers zlib.crc32 for CRC-32 over guest RAM (setPlatformCrc32)
export { fromDirectory, fromPaths, openPath } from "./sources/directory.js";
export { createNodeLoadPool } from "./pool/node-pool.js";
