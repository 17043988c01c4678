// Exact integer helpers. Guest physical addresses in the API are numbers that must be exact
// (≤ 2^53 − 1); 64-bit header fields are bigints until converted here with a range check.
import { GuestImageError, type ErrorCode } from "./errors.js";

export const MAX_SAFE = Number.MAX_SAFE_INTEGER;
export const U64_MASK = (1n << 64n) - 1n;

/** "0x1f" for numbers and bigints; negative values as "-0x1f". */
export function hex(v: number | bigint): string {
  const b = BigInt(v);
  return b < 0n ? `-0x${(-b).toString(16)}` : `0x${b.toString(16)}`;
}

export interface Where {
  image?: string;
  field?: string;
}

export function fail(code: ErrorCode, message: string, where: Where = {}): never {
  throw new GuestImageError(code, message, where);
}

/** Checks that `v` is an exact non-negative integer ≤ 2^53 − 1. */
export function checkAddress(v: unknown, what: string, where: Where = {}): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    fail("BAD_ARGUMENT", `${what} must be an integer from 0 to 2^53-1, got ${String(v)}`, { field: what, ...where });
  }
  return v;
}

/** Converts a non-negative bigint to a number, or fails with `code` if it exceeds 2^53 − 1. */
export function toSafe(v: bigint, what: string, where: Where = {}, code: ErrorCode = "BAD_ADDRESS"): number {
  if (v < 0n || v > BigInt(MAX_SAFE)) {
    fail(code, `${what} ${hex(v)} is outside 0..2^53-1`, { field: what, ...where });
  }
  return Number(v);
}

/** Validates an alignment: 0 or 1 mean none, otherwise a power of two. */
export function checkAlignment(align: unknown, where: Where = {}): number {
  if (typeof align !== "number" || !Number.isSafeInteger(align) || align < 0) {
    fail("BAD_ALIGNMENT", `alignment must be 0, 1 or a power of two, got ${String(align)}`, { field: "alignment", ...where });
  }
  if (align > 1 && (BigInt(align) & (BigInt(align) - 1n)) !== 0n) {
    fail("BAD_ALIGNMENT", `alignment ${hex(align)} is not a power of two`, { field: "alignment", ...where });
  }
  return align;
}

/** Rounds `addr` up to `align` (0 or 1: unchanged), failing if the result passes 2^53 − 1. */
export function alignUp(addr: number, align: number, where: Where = {}): number {
  if (align <= 1) return addr;
  const a = BigInt(align);
  const r = ((BigInt(addr) + a - 1n) / a) * a;
  return toSafe(r, "aligned load address", where);
}

export function isPowerOfTwo(v: number): boolean {
  return v > 0 && Number.isSafeInteger(v) && (BigInt(v) & (BigInt(v) - 1n)) === 0n;
}
