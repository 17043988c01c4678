// Shared pieces of the xz/lzma/bzip2 decoder tests: the reference tools (xz-utils, bzip2) run on
// the real Debian kernels of the fixture cache, and a decode into a fresh "guest RAM" buffer.
import { execFileSync } from "node:child_process";
import { expect } from "vitest";
import { CodecError, type Codec, type CodecFailure, type DecodeResult } from "../../src/compress/codec.js";
import { readFixture } from "../qemu/fixtures.js";

/** Runs `cmd args` with `input` on stdin and returns its stdout (the reference result). */
export function tool(cmd: string, args: string[], input: Uint8Array): Uint8Array {
  return new Uint8Array(execFileSync(cmd, args, { input, maxBuffer: 1 << 30, stdio: ["pipe", "pipe", "pipe"] }));
}

let arm64: Uint8Array | undefined;
/** Debian's arm64 kernel Image (uncompressed, ~33 MB). */
export function arm64Image(): Uint8Array {
  return (arm64 ??= readFixture("arm64/Image"));
}

/**
 * Debian's amd64 bzImage's compressed payload, as the kernel build wrote it (xz --check=crc32
 * --x86 --lzma2, then a 4-byte size): offsets from Documentation/arch/x86/boot.rst — setup_sects
 * at 0x1F1, payload_offset at 0x248 and payload_length at 0x24C, relative to the protected-mode
 * code at (setup_sects + 1) × 512.
 */
export function bzImagePayload(): Uint8Array {
  const b = readFixture("amd64/bzImage");
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  const setupSects = b[0x1f1] || 4;
  const start = (setupSects + 1) * 512 + dv.getUint32(0x248, true);
  return b.subarray(start, start + dv.getUint32(0x24c, true));
}

/** Decodes into a buffer of `room` bytes (default: the expected size) and checks it against `expected`. */
export function decodeSame(codec: Codec, input: Uint8Array, expected: Uint8Array, room = expected.length): DecodeResult {
  const out = new Uint8Array(room);
  const r = codec.decode(input, out);
  expect(r.written, "bytes written").toBe(expected.length);
  const same = Buffer.compare(Buffer.from(out.buffer, 0, r.written), Buffer.from(expected.buffer, expected.byteOffset, expected.length)) === 0;
  if (!same) {
    let i = 0;
    while (out[i] === expected[i]) i++;
    expect.fail(`output differs from the reference first at byte ${i} of ${expected.length}`);
  }
  return r;
}

/** Decoding fails with a CodecError of `kind` (returns it for more checks). */
export function decodeFails(codec: Codec, input: Uint8Array, room: number, kind: CodecFailure | CodecFailure[]): CodecError {
  let err: unknown;
  try {
    codec.decode(input, new Uint8Array(room));
  } catch (e) {
    err = e;
  }
  expect(err, "decode should throw").toBeInstanceOf(CodecError);
  const ce = err as CodecError;
  expect(Array.isArray(kind) ? kind : [kind], `${ce.kind}: ${ce.message}`).toContain(ce.kind);
  expect(Number.isInteger(ce.offset) && ce.offset >= 0 && ce.offset <= input.length, `offset ${ce.offset}`).toBe(true);
  expect(ce.message).toMatch(new RegExp(`^${codec.name}: `));
  return ce;
}

export const concat = (...parts: Uint8Array[]) => {
  const r = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    r.set(p, o);
    o += p.length;
  }
  return r;
};

/** Throughput of `codec` vs `cmd -dc` on the same file (best of `runs`, CPU-time for the tool). */
export function throughput(codec: Codec, input: Uint8Array, size: number, cmd: string, runs = 3): { ours: number; native: number; ratio: number } {
  const out = new Uint8Array(size);
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    codec.decode(input, out);
    best = Math.min(best, performance.now() - t0);
  }
  let nativeBest = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    execFileSync("sh", ["-c", `${cmd} -dc >/dev/null`], { input, maxBuffer: 1 << 20 });
    nativeBest = Math.min(nativeBest, performance.now() - t0);
  }
  const ours = size / 1e6 / (best / 1000);
  const native = size / 1e6 / (nativeBest / 1000);
  return { ours, native, ratio: ours / native };
}

/**
 * Mutates `seed` `n` times (byte flips, truncations, insertions, deterministic PRNG) and decodes
 * each: the decoder may succeed or throw a CodecError, nothing else, and never writes past the
 * room (the guard bytes after it stay untouched). Returns how many mutants failed.
 */
export function fuzzCodec(codec: Codec, seed: Uint8Array, room: number, n: number, rngSeed = 1): number {
  let s = rngSeed >>> 0;
  const rnd = (k: number) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % k;
  };
  const backing = new Uint8Array(room + 64);
  let failed = 0;
  for (let i = 0; i < n; i++) {
    let m = seed.slice();
    const kind = rnd(4);
    if (kind === 0) for (let k = 0, c = 1 + rnd(4); k < c; k++) m[rnd(m.length)] ^= 1 << rnd(8);
    else if (kind === 1) m[rnd(m.length)] = rnd(256);
    else if (kind === 2) m = m.subarray(0, rnd(m.length));
    else {
      const at = rnd(m.length);
      m = concat(m.subarray(0, at), new Uint8Array([rnd(256), rnd(256)]), m.subarray(at));
    }
    backing.fill(0xa5, room);
    try {
      codec.decode(m, backing.subarray(0, room));
    } catch (e) {
      if (!(e instanceof CodecError)) throw new Error(`mutant ${i} (kind ${kind}): ${String(e)}`);
      failed++;
    }
    expect(backing.subarray(room).every((b) => b === 0xa5), `mutant ${i} wrote past the room`).toBe(true);
  }
  return failed;
}
