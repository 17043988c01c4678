/**
 * The one error type the library throws. `code` is stable and meant for programs; `message`
 * names the image, the field and the bad value, for people.
 */
export type ErrorCode =
  | "NOT_FOUND" // no such file in the VM's source
  | "BAD_MAGIC" // the file is not of the format it was asked to be
  | "TRUNCATED" // a header or a range it names runs past the end of the file
  | "BAD_HEADER" // a header field has a value the format does not allow
  | "BAD_ALIGNMENT" // an alignment that is not 0, 1 or a power of two
  | "BAD_ADDRESS" // an address the image cannot be placed at (negative, past 2^53, not allowed)
  | "BAD_ARGUMENT" // an API or CLI argument out of its domain (RAM layout, names, numbers)
  | "OUT_OF_RAM" // a byte of the image would land outside every declared RAM region
  | "OVERLAP" // the image would overlap one already placed
  | "BAD_CHECKSUM" // a checksum in the file does not match its data
  | "RELOCATION" // relocation data that cannot be applied
  | "TOO_LARGE" // larger than guest RAM or a bound the library enforces
  | "UNSUPPORTED" // a valid file using a feature this library does not implement
  | "IO"; // the source failed while reading

export interface ErrorDetails {
  /** The image (file) name the error is about. */
  image?: string;
  /** The header field or argument that was wrong, e.g. "p_filesz" or "alignment". */
  field?: string;
  cause?: unknown;
}

export class GuestImageError extends Error {
  readonly code: ErrorCode;
  readonly image?: string;
  readonly field?: string;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(details.image !== undefined ? `${details.image}: ${message}` : message, { cause: details.cause });
    this.name = "GuestImageError";
    this.code = code;
    this.image = details.image;
    this.field = details.field;
  }
}

export function isGuestImageError(e: unknown): e is GuestImageError {
  return e instanceof GuestImageError;
}
