// The Wasm core in Node, against zlib's CRC-32. The cases are shared with the browser project:
// test/browser/cases/core.cases.ts.
import { crc32 } from "node:zlib";
import { coreCases } from "./browser/cases/core.cases.js";

coreCases({ name: "zlib", crc32: (data) => crc32(data) });
