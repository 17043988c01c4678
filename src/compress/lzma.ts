// The `.lzma` ("LZMA alone") format, as xz-utils' `lzma`/`xz --format=lzma` writes it and as the
// kernel's `cmd_lzma` (scripts/Makefile.lib: `lzma -9`, then the 4-byte size_append) uses it.
//
// Header (13 bytes, xz-utils doc/lzma-file-format.txt §"LZMA_Alone"): the properties byte
// ((pb * 5 + lp) * 9 + lc), the dictionary size (u32 LE), the uncompressed size (u64 LE, all ones
// = unknown: the stream then ends with the end-of-payload marker). LZMA data follows; nothing
// after it belongs to the format (`consumed` says where it ended).
import { CodecError, type Codec, type DecodeOptions, type DecodeResult } from "./codec.js";
import { decodePropsByte, LzmaDecoder, LzmaStop, type LzmaProps } from "./lzma-core.js";

const HEADER = 13;

interface AloneHeader {
  props: LzmaProps;
  dictSize: number;
  /** undefined = unknown (end marker required). */
  size: number | undefined;
}

/**
 * Parses the 13-byte header; a string says why it is not one. lc + lp ≤ 4 always (liblzma refuses
 * more). `picky` (for sniffing, as liblzma's auto-detection) also wants a dictionary size of 2^n or
 * 2^n + 2^(n-1) and a known size below 2^38 (256 GiB); decoding accepts what `lzma -d` accepts.
 */
function parseHeader(input: Uint8Array, picky: boolean): AloneHeader | string {
  if (input.length < HEADER) return `header is ${input.length} bytes, needs ${HEADER}`;
  const props = decodePropsByte(input[0]!);
  if (!props) return `properties byte 0x${input[0]!.toString(16)} is out of range (max 0xe0)`;
  if (props.lc + props.lp > 4) return `properties byte 0x${input[0]!.toString(16)} has lc ${props.lc} + lp ${props.lp} > 4`;
  const dictSize = (input[1]! | (input[2]! << 8) | (input[3]! << 16) | (input[4]! << 24)) >>> 0;
  let d = dictSize - 1;
  d |= d >>> 2; d |= d >>> 3; d |= d >>> 4; d |= d >>> 8; d |= d >>> 16;
  if (picky && dictSize !== 0xffffffff && dictSize !== ((d >>> 0) + 1)) {
    // Not 2^n or 2^n + 2^(n-1) (the rounding above maps both to themselves, anything else up).
    return `dictionary size ${dictSize} is not 2^n or 2^n + 2^(n-1)`;
  }
  const lo = (input[5]! | (input[6]! << 8) | (input[7]! << 16) | (input[8]! << 24)) >>> 0;
  const hi = (input[9]! | (input[10]! << 8) | (input[11]! << 16) | (input[12]! << 24)) >>> 0;
  if (lo === 0xffffffff && hi === 0xffffffff) return { props, dictSize, size: undefined };
  if (picky && hi >= 1 << 6) return `uncompressed size 0x${hi.toString(16)}${lo.toString(16).padStart(8, "0")} is not below 2^38`;
  if (hi >= 1 << 21) return `uncompressed size 0x${hi.toString(16)}${lo.toString(16).padStart(8, "0")} is not below 2^53`;
  return { props, dictSize, size: hi * 2 ** 32 + lo };
}

function header(input: Uint8Array): AloneHeader {
  const h = parseHeader(input, false);
  if (typeof h === "string") throw new CodecError(input.length < HEADER ? "truncated" : "corrupt", 0, `lzma: ${h}`);
  return h;
}

export const lzma: Codec = {
  name: "lzma",

  sniff(input: Uint8Array): boolean {
    return typeof parseHeader(input, true) !== "string" && input.length >= HEADER + 5 && input[HEADER] === 0;
  },

  declaredSize(input: Uint8Array): number | undefined {
    const h = parseHeader(input, false);
    return typeof h === "string" ? undefined : h.size;
  },

  decode(input: Uint8Array, out: Uint8Array, options?: DecodeOptions): DecodeResult {
    const h = header(input);
    if (h.size !== undefined && h.size > out.length) {
      throw new CodecError("too-large", 5, `lzma: uncompressed size ${h.size} (header) exceeds the room (${out.length} bytes)`);
    }
    if (input.length < HEADER + 5) throw new CodecError("truncated", input.length, `lzma: input ends at ${input.length}, inside the range coder's first 5 bytes`);
    const dec = new LzmaDecoder();
    dec.setProps(h.props);
    if (!dec.initRangeCoder(input, HEADER)) throw new CodecError("corrupt", HEADER, `lzma: range coder's first byte is 0x${input[HEADER]!.toString(16)}, not 0`);

    const end = h.size ?? out.length;
    const stopAfter = options?.stopAfter;
    const limit = stopAfter !== undefined && stopAfter < end ? stopAfter : end;
    let stop = dec.decode(input, input.length, out, 0, limit, 0);
    let pos = dec.outPos;
    if (stopAfter !== undefined && pos >= stopAfter && dec.inPos <= input.length && (stop === LzmaStop.Limit || stop === LzmaStop.Overrun)) {
      return { written: pos, consumed: dec.inPos };
    }
    if (stop === LzmaStop.Limit && h.size === undefined) {
      // The room is full; a valid stream of exactly this size has its end marker next. Decode one
      // more symbol with a one-byte limit past the end of `out` (a typed-array write out of
      // bounds does nothing, so `out` is not touched): anything but the marker is too large.
      stop = dec.decode(input, input.length, out, pos, pos + 1, 0);
      if (stop !== LzmaStop.EndMarker && stop !== LzmaStop.Truncated && stop !== LzmaStop.BadDistance) {
        throw new CodecError("too-large", dec.inPos, `lzma: output passes the room (${out.length} bytes)`);
      }
    }
    pos = dec.outPos;
    // Reads past the input yield zeros, which may look like a bad distance before the loop notices.
    if (dec.inPos > input.length) stop = LzmaStop.Truncated;
    switch (stop) {
      case LzmaStop.Limit:
        break; // known size reached
      case LzmaStop.EndMarker:
        if (h.size !== undefined && pos !== h.size) {
          throw new CodecError("corrupt", dec.inPos, `lzma: end marker after ${pos} bytes, header says ${h.size}`);
        }
        break;
      case LzmaStop.Overrun:
        if (h.size !== undefined) throw new CodecError("corrupt", dec.inPos, `lzma: a match runs past the uncompressed size ${h.size} (header)`);
        throw new CodecError("too-large", dec.inPos, `lzma: output passes the room (${out.length} bytes)`);
      case LzmaStop.Truncated:
        throw new CodecError("truncated", input.length, `lzma: input ends at ${input.length} after ${pos} bytes of output, before the end of the stream`);
      case LzmaStop.BadDistance:
        throw new CodecError("corrupt", dec.inPos, `lzma: match distance ${dec.rep0 + 1} reaches before the start of the output (at output ${pos})`);
    }
    return { written: pos, consumed: dec.inPos };
  },
};
