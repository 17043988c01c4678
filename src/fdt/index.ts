// Device trees: parse and validate a blob, read and edit the tree, write a blob back.
export * from "./tree.js";
export { parseFdt, readFdt, FDT_MAX_DEPTH, FDT_VERSION, FDT_LAST_COMP_VERSION, type ParsedFdt } from "./parse.js";
export { writeFdt, type WriteFdtOptions } from "./write.js";
export { applyLinuxEdits, type LinuxFdtEdits } from "./linux.js";
