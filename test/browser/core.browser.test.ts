// The Wasm core in Chromium. Reference CRC-32: bitwise, straight from the definition (reflected
// polynomial 0xEDB88320, initial value and final xor 0xFFFFFFFF), independent of the core's
// slicing-by-8 tables; the cases also check the standard check value 0xCBF43926.
import { coreCases } from "./cases/core.cases.js";

function bitwiseCrc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

coreCases({ name: "a bitwise CRC-32", crc32: bitwiseCrc32 });
