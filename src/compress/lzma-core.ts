// The LZMA decoder core shared by the `.lzma` ("alone") format (src/compress/lzma.ts) and LZMA2
// inside `.xz` (src/compress/xz.ts): the range decoder, the probability model and the
// literal/match/rep state machine.
//
// The model follows the LZMA specification that ships with the LZMA SDK (DOC/lzma-specification.txt,
// Igor Pavlov) and the LZMA2 notes of xz-embedded (linux/lib/xz/xz_dec_lzma2.c): the probability
// array below uses the SDK's layout (1846 fixed probabilities, then 0x300 per literal coder).
//
// The LZ window is the output itself: `out` is guest RAM at the destination, a match copies from
// earlier bytes of `out`, and a distance reaching before `dictStart` (the last dictionary reset)
// is corrupt. Nothing is buffered besides the probabilities.
//
// Speed: this is the hot loop of xz/lzma decompression, written for V8's optimiser: the range
// coder's `range` and `code` live in local int32 variables (compared unsigned by flipping the sign
// bit), bit decodes are written out inline instead of calling a helper that would have to write the
// coder state back to an object, and the input is read from a typed array whose out-of-bounds reads
// yield `undefined` (→ 0), so the loop checks for truncation once per symbol, not once per byte.
// Where paths share a walk without a call, they share the code: the length tree and the distance
// slot tree are one loop, SpecPos and the align bits one reverse-tree loop. Routing the rest through
// helpers measured 10–16% slower in CPU time (bit/tree methods keeping the coder in fields), and one
// state-machine walk for every tree 24–48% slower, so the single-bit decodes and the literal trees
// stay written out.

/** LZMA SDK constants (lzma-specification.txt). */
const NUM_STATES = 12;
const POS_STATES_MAX = 16; // 1 << 4 (pb ≤ 4)
const LEN_LOW_BITS = 3;
const LEN_MID_BITS = 3;
const LEN_HIGH_BITS = 8;
const END_POS_MODEL_INDEX = 14;
const ALIGN_BITS = 4;
const MATCH_MIN_LEN = 2;

// Offsets of each group of probabilities in the one Uint16Array (the SDK's layout).
const IS_MATCH = 0; // [state << 4 | posState]
const IS_REP = IS_MATCH + NUM_STATES * POS_STATES_MAX; // 192
const IS_REP_G0 = IS_REP + NUM_STATES;
const IS_REP_G1 = IS_REP_G0 + NUM_STATES;
const IS_REP_G2 = IS_REP_G1 + NUM_STATES;
const IS_REP0_LONG = IS_REP_G2 + NUM_STATES; // [state << 4 | posState]
const POS_SLOT = IS_REP0_LONG + NUM_STATES * POS_STATES_MAX; // [lenState][64]
const SPEC_POS = POS_SLOT + 4 * 64; // 114 = 128 - END_POS_MODEL_INDEX
const ALIGN = SPEC_POS + 128 - END_POS_MODEL_INDEX;
const LEN_CODER = ALIGN + (1 << ALIGN_BITS);
// Inside a length coder: choice, choice2, low[16][8], mid[16][8], high[256].
const L_CHOICE2 = 1;
const L_LOW = 2;
const L_MID = L_LOW + (POS_STATES_MAX << LEN_LOW_BITS);
const L_HIGH = L_MID + (POS_STATES_MAX << LEN_MID_BITS);
const LEN_CODER_SIZE = L_HIGH + (1 << LEN_HIGH_BITS); // 514
const REP_LEN_CODER = LEN_CODER + LEN_CODER_SIZE;
const LITERAL = REP_LEN_CODER + LEN_CODER_SIZE; // 1846
const LITERAL_CODER_SIZE = 0x300;

const PROB_INIT = 1024; // 1 << 10: probability 0.5 in 11 bits
const TOP = 0x1000000; // 1 << 24: normalise below this
const SIGN = -0x80000000; // xor to compare int32s as unsigned

/** lc/lp/pb packed as in the `.lzma` header and LZMA2's property byte: (pb * 5 + lp) * 9 + lc. */
export interface LzmaProps {
  lc: number;
  lp: number;
  pb: number;
}

/** Decodes the properties byte; undefined when it is out of range (≥ 9 * 5 * 5). */
export function decodePropsByte(b: number): LzmaProps | undefined {
  if (b >= 9 * 5 * 5) return undefined;
  const lc = b % 9;
  const rest = (b / 9) | 0;
  return { lc, lp: rest % 5, pb: (rest / 5) | 0 };
}

/** Why decodeLzma returned. */
export const enum LzmaStop {
  /** Output reached `limit` with no match left over. */
  Limit = 0,
  /** The end-of-payload marker was decoded (distance 0xFFFFFFFF). */
  EndMarker = 1,
  /** A match runs past `limit`: `pending` bytes of it were not written. */
  Overrun = 2,
  /** The input ended (the range decoder read past `inEnd`). */
  Truncated = 3,
  /** A distance points before the dictionary start (or there is no output yet for a rep). */
  BadDistance = 4,
}

/**
 * One LZMA decoder: the probability model, the state machine's registers and the range decoder.
 * Methods mirror the resets LZMA2 distinguishes (state, properties, range coder).
 */
export class LzmaDecoder {
  lc = 0;
  lp = 0;
  pb = 0;
  probs: Uint16Array = new Uint16Array(LITERAL + LITERAL_CODER_SIZE);
  state = 0;
  rep0 = 0;
  rep1 = 0;
  rep2 = 0;
  rep3 = 0;
  /** Range decoder, as int32 (compared unsigned). */
  range = 0;
  code = 0;
  /** Next input byte to read. */
  inPos = 0;
  /** Bytes of a match not written because it ran past the limit (Overrun). */
  pending = 0;

  /** New lc/lp/pb (LZMA2 "state reset + new properties"); resets the state too. */
  setProps(p: LzmaProps): void {
    this.lc = p.lc;
    this.lp = p.lp;
    this.pb = p.pb;
    const n = LITERAL + (LITERAL_CODER_SIZE << (p.lc + p.lp));
    if (this.probs.length !== n) this.probs = new Uint16Array(n);
    this.resetState();
  }

  /** All probabilities to 0.5, state and reps to zero (LZMA2 "state reset"). */
  resetState(): void {
    this.probs.fill(PROB_INIT);
    this.state = 0;
    this.rep0 = this.rep1 = this.rep2 = this.rep3 = 0;
    this.pending = 0;
  }

  /**
   * Starts the range decoder on the 5 bytes at `pos` (first byte 0, then the initial code).
   * Returns false when the first byte is not 0 (the SDK and liblzma reject that as corrupt).
   */
  initRangeCoder(input: Uint8Array, pos: number): boolean {
    this.range = -1; // 0xFFFFFFFF
    this.code = ((input[pos + 1]! << 24) | (input[pos + 2]! << 16) | (input[pos + 3]! << 8) | input[pos + 4]!) | 0;
    this.inPos = pos + 5;
    return input[pos] === 0;
  }

  /** True when the range decoder ended cleanly (code 0: what LZMA2 requires at a chunk's end). */
  rcFinished(): boolean {
    return this.code === 0;
  }

  /**
   * Decodes symbols into out[pos…limit) reading input[this.inPos…inEnd); the window is
   * out[dictStart…pos). Returns why it stopped and the new output position in `this.outPos`.
   * `posBase` is subtracted from the output position for the lp/pb position bits (the position
   * relative to the last dictionary reset).
   */
  decode(input: Uint8Array, inEnd: number, out: Uint8Array, pos: number, limit: number, dictStart: number): LzmaStop {
    const probs = this.probs;
    const lc = this.lc;
    const lpMask = (1 << this.lp) - 1;
    const pbMask = (1 << this.pb) - 1;
    let state = this.state;
    let rep0 = this.rep0, rep1 = this.rep1, rep2 = this.rep2, rep3 = this.rep3;
    let range = this.range | 0;
    let code = this.code | 0;
    let inPos = this.inPos;
    let stop = LzmaStop.Limit;
    let p = 0, bound = 0, i = 0, sym = 0, len = 0;
    this.pending = 0;

    while (pos < limit) {
      if (inPos > inEnd) {
        stop = LzmaStop.Truncated;
        break;
      }
      const rel = pos - dictStart;
      const posState = rel & pbMask;

      // isMatch[state][posState]
      i = IS_MATCH + (state << 4) + posState;
      p = probs[i]!;
      bound = Math.imul(range >>> 11, p);
      if ((code ^ SIGN) < (bound ^ SIGN)) {
        range = bound;
        probs[i] = p + ((2048 - p) >>> 5);
        if ((range & 0xff000000) === 0) { range <<= 8; code = (code << 8) | input[inPos++]!; }

        // Literal.
        const prev = rel > 0 ? out[pos - 1]! : 0;
        const base = LITERAL + LITERAL_CODER_SIZE * ((((rel & lpMask) << lc) + (prev >>> (8 - lc))) | 0);
        sym = 1;
        if (state < 7) {
          do {
            i = base + sym;
            p = probs[i]!;
            bound = Math.imul(range >>> 11, p);
            if ((code ^ SIGN) < (bound ^ SIGN)) {
              range = bound;
              probs[i] = p + ((2048 - p) >>> 5);
              sym <<= 1;
            } else {
              range = (range - bound) | 0;
              code = (code - bound) | 0;
              probs[i] = p - (p >>> 5);
              sym = (sym << 1) | 1;
            }
            if ((range & 0xff000000) === 0) { range <<= 8; code = (code << 8) | input[inPos++]!; }
          } while (sym < 0x100);
          state = state < 4 ? 0 : state - 3;
        } else {
          // "Matched" literal: the byte at rep0 steers the probabilities until the first mismatch.
          let matchByte = rel > rep0 ? out[pos - rep0 - 1]! : 0;
          let offs = 0x100;
          do {
            matchByte <<= 1;
            const mbit = matchByte & offs;
            i = base + offs + mbit + sym;
            p = probs[i]!;
            bound = Math.imul(range >>> 11, p);
            if ((code ^ SIGN) < (bound ^ SIGN)) {
              range = bound;
              probs[i] = p + ((2048 - p) >>> 5);
              sym <<= 1;
              offs &= ~mbit;
            } else {
              range = (range - bound) | 0;
              code = (code - bound) | 0;
              probs[i] = p - (p >>> 5);
              sym = (sym << 1) | 1;
              offs &= mbit;
            }
            if ((range & 0xff000000) === 0) { range <<= 8; code = (code << 8) | input[inPos++]!; }
          } while (sym < 0x100);
          state = state < 10 ? state - 3 : state - 6;
        }
        out[pos++] = sym & 0xff;
        continue;
      }
      range = (range - bound) | 0;
      code = (code - bound) | 0;
      probs[i] = p - (p >>> 5);
      if ((range & 0xff000000) === 0) { range <<= 8; code = (code << 8) | input[inPos++]!; }

      // isRep[state]
      i = IS_REP + state;
      p = probs[i]!;
      bound = Math.imul(range >>> 11, p);
      let lenCoder: number;
      if ((code ^ SIGN) < (bound ^ SIGN)) {
        // A new match: length, then distance.
        range = bound;
        probs[i] = p + ((2048 - p) >>> 5);
        if ((range & 0xff000000) === 0) { range <<= 8; code = (code << 8) | input[inPos++]!; }
        rep3 = rep2;
        rep2 = rep1;
        rep1 = rep0;
        state = state < 7 ? 7 : 10;
        lenCoder = LEN_CODER;
      } else {
        range = (range - bound) | 0;
        code = (code - bound) | 0;
        probs[i] = p - (p >>> 5);
        if ((range & 0xff000000) === 0) { range <<= 8; code = (code << 8) | input[inPos++]!; }
        if (rel === 0) {
          stop = LzmaStop.BadDistance;
          break;
        }
        // isRepG0[state]
        i = IS_REP_G0 + state;
        p = probs[i]!;
        bound = Math.imul(range >>> 11, p);
        if ((code ^ SIGN) < (bound ^ SIGN)) {
          range = bound;
          probs[i] = p + ((2048 - p) >>> 5);
          if ((range & 0xff000000) === 0) { range <<= 8; code = (code << 8) | input[inPos++]!; }
          // isRep0Long[state][posState]: 0 = "short rep", one byte at rep0.
          i = IS_REP0_LONG + (state << 4) + posState;
          p = probs[i]!;
          bound = Math.imul(range >>> 11, p);
          if ((code ^ SIGN) < (bound ^ SIGN)) {
            range = bound;
            probs[i] = p + ((2048 - p) >>> 5);
            if ((range & 0xff000000) === 0) { range <<= 8; code = (code << 8) | input[inPos++]!; }
            if (rep0 >= rel) {
              stop = LzmaStop.BadDistance;
              break;
            }
            state = state < 7 ? 9 : 11;
            out[pos] = out[pos - rep0 - 1]!;
            pos++;
            continue;
          }
          range = (range - bound) | 0;
          code = (code - bound) | 0;
          probs[i] = p - (p >>> 5);
          if ((range & 0xff000000) === 0) { range <<= 8; code = (code << 8) | input[inPos++]!; }
        } else {
          range = (range - bound) | 0;
          code = (code - bound) | 0;
          probs[i] = p - (p >>> 5);
          if ((range & 0xff000000) === 0) { range <<= 8; code = (code << 8) | input[inPos++]!; }
          let dist: number;
          // isRepG1[state]
          i = IS_REP_G1 + state;
          p = probs[i]!;
          bound = Math.imul(range >>> 11, p);
          if ((code ^ SIGN) < (bound ^ SIGN)) {
            range = bound;
            probs[i] = p + ((2048 - p) >>> 5);
            if ((range & 0xff000000) === 0) { range <<= 8; code = (code << 8) | input[inPos++]!; }
            dist = rep1;
          } else {
            range = (range - bound) | 0;
            code = (code - bound) | 0;
            probs[i] = p - (p >>> 5);
            if ((range & 0xff000000) === 0) { range <<= 8; code = (code << 8) | input[inPos++]!; }
            // isRepG2[state]
            i = IS_REP_G2 + state;
            p = probs[i]!;
            bound = Math.imul(range >>> 11, p);
            if ((code ^ SIGN) < (bound ^ SIGN)) {
              range = bound;
              probs[i] = p + ((2048 - p) >>> 5);
              if ((range & 0xff000000) === 0) { range <<= 8; code = (code << 8) | input[inPos++]!; }
              dist = rep2;
            } else {
              range = (range - bound) | 0;
              code = (code - bound) | 0;
              probs[i] = p - (p >>> 5);
              if ((range & 0xff000000) === 0) { range <<= 8; code = (code << 8) | input[inPos++]!; }
              dist = rep3;
              rep3 = rep2;
            }
            rep2 = rep1;
          }
          rep1 = rep0;
          rep0 = dist;
        }
        state = state < 7 ? 8 : 11;
        lenCoder = REP_LEN_CODER;
      }

      // Length: choice → low[posState] (3 bits), choice2 → mid[posState] (3 bits), else high (8 bits).
      {
        let tree: number, bits: number;
        i = lenCoder;
        p = probs[i]!;
        bound = Math.imul(range >>> 11, p);
        if ((code ^ SIGN) < (bound ^ SIGN)) {
          range = bound;
          probs[i] = p + ((2048 - p) >>> 5);
          tree = lenCoder + L_LOW + (posState << LEN_LOW_BITS);
          bits = LEN_LOW_BITS;
          len = 0;
        } else {
          range = (range - bound) | 0;
          code = (code - bound) | 0;
          probs[i] = p - (p >>> 5);
          if ((range & 0xff000000) === 0) { range <<= 8; code = (code << 8) | input[inPos++]!; }
          i = lenCoder + L_CHOICE2;
          p = probs[i]!;
          bound = Math.imul(range >>> 11, p);
          if ((code ^ SIGN) < (bound ^ SIGN)) {
            range = bound;
            probs[i] = p + ((2048 - p) >>> 5);
            tree = lenCoder + L_MID + (posState << LEN_MID_BITS);
            bits = LEN_MID_BITS;
            len = 1 << LEN_LOW_BITS;
          } else {
            range = (range - bound) | 0;
            code = (code - bound) | 0;
            probs[i] = p - (p >>> 5);
            tree = lenCoder + L_HIGH;
            bits = LEN_HIGH_BITS;
            len = (1 << LEN_LOW_BITS) + (1 << LEN_MID_BITS);
          }
        }
        if ((range & 0xff000000) === 0) { range <<= 8; code = (code << 8) | input[inPos++]!; }
        // The length's bit tree; for a new match, then the distance slot's (6 bits per length state).
        let end = 1 << bits;
        let inLength = true;
        for (;;) {
          sym = 1;
          do {
            i = tree + sym;
            p = probs[i]!;
            bound = Math.imul(range >>> 11, p);
            if ((code ^ SIGN) < (bound ^ SIGN)) {
              range = bound;
              probs[i] = p + ((2048 - p) >>> 5);
              sym <<= 1;
            } else {
              range = (range - bound) | 0;
              code = (code - bound) | 0;
              probs[i] = p - (p >>> 5);
              sym = (sym << 1) | 1;
            }
            if ((range & 0xff000000) === 0) { range <<= 8; code = (code << 8) | input[inPos++]!; }
          } while (sym < end);
          if (!inLength) break;
          len += sym - end + MATCH_MIN_LEN;
          if (lenCoder !== LEN_CODER) break;
          inLength = false;
          tree = POS_SLOT + ((len < 5 ? len - MATCH_MIN_LEN : 3) << 6);
          end = 64;
        }
      }

      if (lenCoder === LEN_CODER) {
        // Distance: the slot (decoded above), then reverse-coded or direct bits.
        const slot = sym - 64;
        let dist: number;
        if (slot < 4) {
          dist = slot;
        } else {
          const direct = (slot >>> 1) - 1;
          dist = (2 | (slot & 1)) << direct;
          // A reverse bit tree (least significant bit first) over SpecPos[dist − slot − 1 …], or
          // direct bits (probability 0.5, no model) and then one over the 4 align bits.
          let t: number, bits: number;
          if (slot < END_POS_MODEL_INDEX) {
            t = SPEC_POS + dist - slot - 1;
            bits = direct;
          } else {
            let d = 0;
            for (let k = direct - ALIGN_BITS; k > 0; k--) {
              range >>>= 1;
              // code - range wraps (top bit set) exactly when code < range, unsigned: w = -1 for
              // bit 0 (undo the subtraction), 0 for bit 1 (as the SDK's direct-bit decoder).
              const c = (code - range) | 0;
              const w = c >> 31;
              code = (c + (range & w)) | 0;
              d = (d << 1) + 1 + w;
              if ((range & 0xff000000) === 0) { range <<= 8; code = (code << 8) | input[inPos++]!; }
            }
            dist = (dist + (d << ALIGN_BITS)) | 0;
            t = ALIGN;
            bits = ALIGN_BITS;
          }
          let m = 1;
          for (let k = 0; k < bits; k++) {
            i = t + m;
            p = probs[i]!;
            bound = Math.imul(range >>> 11, p);
            if ((code ^ SIGN) < (bound ^ SIGN)) {
              range = bound;
              probs[i] = p + ((2048 - p) >>> 5);
              m <<= 1;
            } else {
              range = (range - bound) | 0;
              code = (code - bound) | 0;
              probs[i] = p - (p >>> 5);
              m = (m << 1) | 1;
              dist |= 1 << k;
            }
            if ((range & 0xff000000) === 0) { range <<= 8; code = (code << 8) | input[inPos++]!; }
          }
          if (dist === -1) {
            // 0xFFFFFFFF: the end-of-payload marker (only the align path can make it).
            stop = LzmaStop.EndMarker;
            break;
          }
        }
        rep0 = dist >>> 0;
      }

      if (rep0 >= rel) {
        stop = LzmaStop.BadDistance;
        break;
      }
      // Copy the match from the window (out itself); overlapping copies go byte by byte.
      let n = len;
      if (n > limit - pos) n = limit - pos;
      let src = pos - rep0 - 1;
      if (n >= 32 && rep0 + 1 >= n) {
        out.copyWithin(pos, src, src + n);
        pos += n;
      } else {
        const e = pos + n;
        while (pos < e) out[pos++] = out[src++]!;
      }
      if (n < len) {
        this.pending = len - n;
        stop = LzmaStop.Overrun;
        break;
      }
    }
    if (stop === LzmaStop.Limit && inPos > inEnd) stop = LzmaStop.Truncated;

    this.state = state;
    this.rep0 = rep0;
    this.rep1 = rep1;
    this.rep2 = rep2;
    this.rep3 = rep3;
    this.range = range;
    this.code = code;
    this.inPos = inPos;
    this.outPos = pos;
    return stop;
  }

  /** Output position after the last decode(). */
  outPos = 0;
}
