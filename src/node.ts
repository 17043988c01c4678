// Node entry: everything in the main entry, plus sources that use node:fs.
export * from "./index.js";
export { fromDirectory, fromPaths, openPath } from "./sources/directory.js";
