// Node's zlib.crc32 (Node >= 20.15) for CRC-32 over guest RAM: ~3x the Wasm core's
// slicing-by-8 (bench/ case 6). Importing this module registers it.
import zlib from "node:zlib";
import { setPlatformCrc32 } from "./core.js";

if (typeof zlib.crc32 === "function") setPlatformCrc32((data, prev) => zlib.crc32(data, prev));
