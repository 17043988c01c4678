// What a format module provides. Each format is one module under src/formats/ exporting an
// ImageFormat; detect.ts lists them in sniffing order. A format module turns headers into a
// LoadPlan and never writes guest RAM or touches the VM.
import type { Core } from "../core/core.js";
import type { LoadPlan } from "../plan.js";
import type { GuestRam } from "../ram/guest-ram.js";
import type { ImageFile } from "../sources/source.js";

/** What a kernel plan reports: entry point and the format's arch record (kernel_image_arch). */
export interface KernelResult {
  format: string;
  entry: bigint;
  arch: KernelArchBase;
}

export interface KernelArchBase {
  format: string;
  entry: bigint;
}

export interface ModuleResult {
  format: string;
}

export interface FormatContext {
  file: ImageFile;
  /** The file's first HEAD_BYTES bytes (all of it if shorter). */
  head: Uint8Array;
  /** Requested base: the load address rounded up to `align`; undefined = where the image asks to be. */
  at: number | undefined;
  /** The alignment asked for (0 or 1: none; else a power of two). */
  align: number;
  /** Guest RAM, for placement rules that depend on it (read-only use). */
  ram: GuestRam;
  /** Whether [paddr, paddr + size) overlaps an image already placed (placement rules that must find the lowest free base). */
  occupied?(paddr: number, size: number): boolean;
  core: Core;
  /** Opens another file from the VM's source (closed by the VM after the load). */
  open(name: string): Promise<ImageFile>;
  /** Name of Linux x86 relocs data, if the caller gave one. */
  relocs: string | undefined;
  /** Detects and plans a payload (decompressed or unwrapped) as a kernel, with this context's at/align unless overridden. */
  planKernel(inner: ImageFile, override?: { at?: number; head?: Uint8Array }): Promise<LoadPlan<KernelResult>>;
}

export interface ImageFormat {
  /** Stable name reported as `format` ("elf", "arm64-image", …). */
  name: string;
  /** What the file is, for messages: "a device tree blob (DTB)". */
  description: string;
  /** Recognises the format from the file's first bytes and its size. */
  test(head: Uint8Array, size: number): boolean;
  /** Plans the file as a kernel; absent: the format cannot be a kernel (see notAKernel). */
  planKernel?(ctx: FormatContext): Promise<LoadPlan<KernelResult>>;
  /** Plans the file as a module; absent: it is placed verbatim (after `checkModule`). */
  planModule?(ctx: FormatContext): Promise<LoadPlan<ModuleResult>>;
  /** Validates a module that is placed verbatim (e.g. a DTB header check). */
  checkModule?(file: ImageFile): Promise<void>;
  /** Why it is refused as a kernel, with what to do instead. */
  notAKernel?: string;
  /** Header fields for `inspect`. */
  inspect?(file: ImageFile, head: Uint8Array): Promise<Record<string, unknown>>;
}

/** Bytes of a decompressed payload's start kept for detection and planning (Multiboot headers sit in the first 8 KiB). */
export const HEAD_BYTES = 8192;

/**
 * Bytes of a file's start handed to detection: Multiboot 2 headers may sit anywhere in the first
 * 32 KiB (Multiboot2 Specification 3.1). A decompressed payload keeps HEAD_BYTES only (the gzip
 * reader's held head; a gzip'd Multiboot 2 kernel must have its header in the first 8 KiB).
 */
export const SNIFF_BYTES = 32768;
