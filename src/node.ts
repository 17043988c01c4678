// Node entry: everything in the main entry, plus sources that use node:fs.
export * from "./index.js";
import "./compress/inflate-node.js"; // registers node:zlib as the inflater (setInflater)
import "./measure-node.js"; // registers node:crypto for measured boot (useSha256)
export { fromDirectory, fromPaths, openPath } from "./sources/directory.js";
