// Where image bytes come from. A source opens files by name; a file has a size and positional
// reads into a caller's Uint8Array, so a read can land directly in guest RAM (no staging).
import type { Core } from "../core/core.js";
import { GuestImageError } from "../errors.js";
import { hex } from "../num.js";

export interface ImageFile {
  readonly name: string;
  readonly size: number;
  /**
   * Fills all of `dst` with the file's bytes from `position`. Throws GuestImageError
   * (TRUNCATED if the file ends first, IO for anything else) and never returns short.
   */
  read(dst: Uint8Array, position: number): Promise<void>;
  close(): Promise<void>;
  /**
   * The file's bytes, when it is held in memory (the map and CPIO sources, vm.place()). Copying
   * from them cannot fail once a plan is checked, so execute() may copy straight from them without
   * keeping what it overwrites (see execute()). Only a source whose reads are exactly
   * `bytes.subarray(position, position + dst.length)` may set it.
   */
  readonly bytes?: Uint8Array;
  /**
   * Writes the whole file (exactly `size` bytes) into `dst` in one call, for a file that is
   * produced rather than stored: a decompressed payload, whose decoder uses `dst` itself as its
   * window, so `dst` must be the destination in guest RAM, never a staging buffer. execute() calls
   * it for a copy of the whole file to one contiguous range. May leave `dst` partly written when
   * it throws (execute() restores it). `core` is the VM's Wasm core (its memory holds `dst`), for
   * decoders whose loops run there.
   */
  decodeInto?(dst: Uint8Array, core?: Core): Promise<void>;
}

export interface Source {
  /** Opens `name`; throws NOT_FOUND when there is no such file. */
  open(name: string): Promise<ImageFile>;
}

/**
 * The seL4 file server's lookup: the exact name first, then, if the name starts with "./",
 * the name without it.
 */
export function lookupNames(name: string): string[] {
  return name.startsWith("./") ? [name, name.slice(2)] : [name];
}

export function notFound(name: string, where: string): GuestImageError {
  return new GuestImageError("NOT_FOUND", `no file named "${name}" in ${where}`, { image: name, field: "name" });
}

/** Checks a positional read against the file size before it starts. */
export function checkRead(file: { name: string; size: number }, dst: Uint8Array, position: number): void {
  if (!Number.isSafeInteger(position) || position < 0 || position + dst.length > file.size) {
    throw new GuestImageError(
      "TRUNCATED",
      `read of ${hex(dst.length)} bytes at offset ${hex(position)} runs past the end of the file (${hex(file.size)} bytes)`,
      { image: file.name },
    );
  }
}

/** A file over bytes already in memory (the map and CPIO sources). */
export function bytesFile(name: string, bytes: Uint8Array): ImageFile {
  const file: ImageFile = {
    name,
    size: bytes.length,
    async read(dst, position) {
      checkRead(this, dst, position);
      dst.set(heldBytes(file)!.subarray(position, position + dst.length));
    },
    async close() {},
  };
  // Not enumerable: a wrapper made by spreading ({ ...file, read }) must not claim that reads it
  // changed still give these bytes.
  Object.defineProperty(file, "bytes", { value: bytes, enumerable: false });
  return file;
}

/**
 * An in-memory file's bytes (ImageFile.bytes), checked to be all still there: a buffer the caller
 * transferred or shrank since the file was opened is an IO error, not a short read.
 */
export function heldBytes(file: ImageFile): Uint8Array | undefined {
  const b = file.bytes;
  if (b && b.length !== file.size) {
    throw new GuestImageError(
      "IO",
      `the in-memory bytes of the file are ${hex(b.length)} bytes long, no longer ${hex(file.size)} (was their buffer transferred or resized?)`,
      { image: file.name },
    );
  }
  return b;
}

/** Reads [position, position + len) into a new buffer (for headers and tables, not payloads). */
export async function readBytes(file: ImageFile, position: number, len: number): Promise<Uint8Array> {
  const out = new Uint8Array(len);
  await file.read(out, position);
  return out;
}
