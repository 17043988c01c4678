// The kernel decompressors behind the Codec interface, by name, in the order containers sniff
// them (exact magics first; lzma "alone" has no magic, only a plausible header, so it goes last).
// gzip is not here: it keeps its streaming path through the platform's inflater
// (src/compress/gunzip.ts).
import { bzip2 } from "./bzip2.js";
import type { Codec } from "./codec.js";
import { lz4Codec } from "./lz4.js";
import { lzma } from "./lzma.js";
import { lzoCodec } from "./lzo.js";
import { xz } from "./xz.js";
import { zstdCodec } from "./zstd.js";

export const CODECS: readonly Codec[] = [zstdCodec, xz, lz4Codec, lzoCodec, bzip2, lzma];

/** The codec called `name` ("zstd", "lz4", …), if registered. */
export function codecNamed(name: string): Codec | undefined {
  return CODECS.find((c) => c.name === name);
}

/** The first codec whose magic `head` starts with. */
export function sniffCodec(head: Uint8Array): Codec | undefined {
  return CODECS.find((c) => c.sniff(head));
}
