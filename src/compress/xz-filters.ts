// The `.xz` filters that may precede LZMA2 in a block's chain (xz-file-format-1.1.0.txt §5.3.2,
// §5.3.3), in their decoding direction, run in place over one block's output in guest RAM once
// LZMA2 has produced it (each block starts a new LZMA2 dictionary, so the window never sees
// filtered bytes).
//
// The branch converters (BCJ) turn the absolute addresses the encoder wrote back into the
// relative branch displacements of the original code. `pos` is the stream position of buf[start]
// (the filter's start offset, 0 by default). Each converter is defined by the format: the
// instruction patterns and address arithmetic below are those of xz-utils' src/liblzma/simple/
// (x86.c, powerpc.c, ia64.c, arm.c, armthumb.c, sparc.c, arm64.c), written out here over a
// window of a Uint8Array. As in liblzma, bytes too close to the end to hold a whole instruction
// are left as they are.

/** Filter IDs (xz-file-format §5.3, liblzma's LZMA_FILTER_*). */
export const FILTER_DELTA = 0x03;
export const FILTER_X86 = 0x04;
export const FILTER_POWERPC = 0x05;
export const FILTER_IA64 = 0x06;
export const FILTER_ARM = 0x07;
export const FILTER_ARMTHUMB = 0x08;
export const FILTER_SPARC = 0x09;
export const FILTER_ARM64 = 0x0a;
export const FILTER_RISCV = 0x0b;
export const FILTER_LZMA2 = 0x21;

export const FILTER_NAMES: Record<number, string> = {
  [FILTER_DELTA]: "Delta",
  [FILTER_X86]: "x86 BCJ",
  [FILTER_POWERPC]: "PowerPC BCJ",
  [FILTER_IA64]: "IA-64 BCJ",
  [FILTER_ARM]: "ARM BCJ",
  [FILTER_ARMTHUMB]: "ARM-Thumb BCJ",
  [FILTER_SPARC]: "SPARC BCJ",
  [FILTER_ARM64]: "ARM64 BCJ",
  [FILTER_RISCV]: "RISC-V BCJ",
  [FILTER_LZMA2]: "LZMA2",
};

const le32 = (b: Uint8Array, i: number) => b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
const be32 = (b: Uint8Array, i: number) => (b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!;
function putLe32(b: Uint8Array, i: number, v: number): void {
  b[i] = v; b[i + 1] = v >>> 8; b[i + 2] = v >>> 16; b[i + 3] = v >>> 24;
}
function putBe32(b: Uint8Array, i: number, v: number): void {
  b[i] = v >>> 24; b[i + 1] = v >>> 16; b[i + 2] = v >>> 8; b[i + 3] = v;
}

/** Delta (§5.3.3): each byte is stored as the difference to the byte `distance` earlier. */
export function deltaDecode(buf: Uint8Array, start: number, end: number, distance: number): void {
  // The history before the block's first byte is zeros, so the first `distance` bytes stay.
  for (let i = start + distance; i < end; i++) buf[i] = (buf[i]! + buf[i - distance]!) & 0xff;
}

/** x86 (32 and 64-bit): E8 (CALL) / E9 (JMP) rel32, with the liblzma "prev_mask" heuristic. */
export function x86Decode(buf: Uint8Array, start: number, end: number, pos: number): void {
  // For each mask of the last three bytes that held E8/E9: may the next one be converted, and
  // which byte of the 32-bit operand must be 00/FF for it.
  const allowed = [true, true, true, false, true, false, false, false];
  const bitNum = [0, 1, 2, 2, 3, 3, 3, 3];
  const msb = (b: number) => b === 0x00 || b === 0xff;
  if (end - start <= 4) return;
  const last = end - 4;
  let prevPos = start - 1;
  let prevMask = 0;
  for (let i = start; i < last; i++) {
    if ((buf[i]! & 0xfe) !== 0xe8) continue;
    const gap = i - prevPos;
    if (gap > 3) {
      prevMask = 0;
    } else {
      prevMask = (prevMask << (gap - 1)) & 7;
      if (prevMask !== 0) {
        const b = buf[i + 4 - bitNum[prevMask]!]!;
        if (!allowed[prevMask] || msb(b)) {
          prevPos = i;
          prevMask = (prevMask << 1) | 1;
          continue;
        }
      }
    }
    prevPos = i;
    if (msb(buf[i + 4]!)) {
      let src = le32(buf, i + 1);
      let dest: number;
      for (;;) {
        dest = (src - (pos + (i - start) + 5)) | 0;
        if (prevMask === 0) break;
        const j = bitNum[prevMask]! * 8;
        if (!msb((dest >>> (24 - j)) & 0xff)) break;
        src = dest ^ (2 ** (32 - j) - 1);
      }
      dest &= 0x01ffffff;
      dest |= -(dest & 0x01000000);
      putLe32(buf, i + 1, dest);
      i += 4;
    } else {
      prevMask = (prevMask << 1) | 1;
    }
  }
}

/** PowerPC (big endian): `bl` (opcode 18 with AA=0, LK=1). */
export function powerpcDecode(buf: Uint8Array, start: number, end: number, pos: number): void {
  for (let i = start; i + 4 <= end; i += 4) {
    const ins = be32(buf, i);
    if ((ins & 0xfc000003) !== 0x48000001) continue;
    const addr = ((ins & 0x03fffffc) - (pos + (i - start))) & 0x03fffffc;
    putBe32(buf, i, addr | 0x48000001);
  }
}

/** IA-64: 41-bit branch slots of the bundle templates that have them. */
export function ia64Decode(buf: Uint8Array, start: number, end: number, pos: number): void {
  // Template (low 5 bits of a bundle) → mask of the slots holding branch instructions.
  const branchTable = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 6, 6, 0, 0, 7, 7, 4, 4, 0, 0, 4, 4, 0, 0];
  for (let i = start; i + 16 <= end; i += 16) {
    const mask = branchTable[buf[i]! & 0x1f]!;
    for (let slot = 0, bitPos = 5; slot < 3; slot++, bitPos += 41) {
      if (((mask >>> slot) & 1) === 0) continue;
      const bytePos = bitPos >>> 3;
      const bitRes = BigInt(bitPos & 7);
      let ins = 0n;
      for (let j = 0; j < 6; j++) ins |= BigInt(buf[i + j + bytePos]!) << BigInt(8 * j);
      let norm = ins >> bitRes;
      if (((norm >> 37n) & 0x0fn) !== 0x05n || ((norm >> 9n) & 0x07n) !== 0n) continue;
      let addr = Number((norm >> 13n) & 0x0fffffn);
      addr |= Number((norm >> 36n) & 1n) << 20;
      addr = ((((addr << 4) - (pos + (i - start))) | 0) >>> 4) & 0x1fffff;
      norm &= ~(0x8fffffn << 13n);
      norm |= BigInt(addr & 0x0fffff) << 13n;
      norm |= BigInt(addr & 0x100000) << 16n;
      ins &= (1n << bitRes) - 1n;
      ins |= norm << bitRes;
      for (let j = 0; j < 6; j++) buf[i + j + bytePos] = Number((ins >> BigInt(8 * j)) & 0xffn);
    }
  }
}

/** ARM (little endian): `bl` with condition AL (top byte 0xEB), 24-bit word offset from pc + 8. */
export function armDecode(buf: Uint8Array, start: number, end: number, pos: number): void {
  for (let i = start; i + 4 <= end; i += 4) {
    if (buf[i + 3] !== 0xeb) continue;
    const src = (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16)) << 2;
    const addr = ((src - (pos + (i - start) + 8)) >>> 2);
    buf[i] = addr;
    buf[i + 1] = addr >>> 8;
    buf[i + 2] = addr >>> 16;
  }
}

/** ARM-Thumb: the two-halfword `bl` pair (F000 / F800 prefixes), offset from pc + 4. */
export function armThumbDecode(buf: Uint8Array, start: number, end: number, pos: number): void {
  for (let i = start; i + 4 <= end; i += 2) {
    if ((buf[i + 1]! & 0xf8) !== 0xf0 || (buf[i + 3]! & 0xf8) !== 0xf8) continue;
    const src = (((buf[i + 1]! & 7) << 19) | (buf[i]! << 11) | ((buf[i + 3]! & 7) << 8) | buf[i + 2]!) << 1;
    const addr = (src - (pos + (i - start) + 4)) >>> 1;
    buf[i + 1] = 0xf0 | ((addr >>> 19) & 7);
    buf[i] = addr >>> 11;
    buf[i + 3] = 0xf8 | ((addr >>> 8) & 7);
    buf[i + 2] = addr;
    i += 2;
  }
}

/** SPARC: `call` with a displacement whose top bits are all 0 or all 1. */
export function sparcDecode(buf: Uint8Array, start: number, end: number, pos: number): void {
  for (let i = start; i + 4 <= end; i += 4) {
    let ins = be32(buf, i);
    const top = ins >>> 22;
    if (top !== 0x100 && top !== 0x1ff) continue;
    ins = ((ins << 2) - (pos + (i - start))) >>> 2;
    ins = ((0x40000000 - (ins & 0x400000)) | 0x40000000 | (ins & 0x3fffff)) >>> 0;
    putBe32(buf, i, ins);
  }
}

/** ARM64: `bl` (26-bit word offset) and `adrp` (21-bit page offset, only ±512 MiB ones). */
export function arm64Decode(buf: Uint8Array, start: number, end: number, pos: number): void {
  for (let i = start; i + 4 <= end; i += 4) {
    const pc = (pos + (i - start)) >>> 0;
    let ins = le32(buf, i);
    if (ins >>> 26 === 0x25) {
      const dest = (ins - (pc >>> 2)) & 0x03ffffff;
      putLe32(buf, i, 0x94000000 | dest);
    } else if ((ins & 0x9f000000) === (0x90000000 | 0)) {
      const src = ((ins >>> 29) & 3) | ((ins >>> 3) & 0x001ffffc);
      // Only addresses within ±512 MiB were converted by the encoder.
      if (((src + 0x00020000) & 0x001c0000) !== 0) continue;
      const dest = (src - (pc >>> 12)) | 0;
      ins &= 0x9000001f;
      ins |= (dest & 3) << 29;
      ins |= (dest & 0x0003fffc) << 3;
      ins |= -(dest & 0x00020000) & 0x00e00000;
      putLe32(buf, i, ins);
    }
  }
}
