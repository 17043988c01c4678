// Linux EFI zboot images (CONFIG_EFI_ZBOOT, arm64/RISC-V/LoongArch vmlinuz.efi): a small EFI
// application whose payload is the compressed kernel Image. A loader that does not run EFI
// unwraps it: decompress the payload and load what comes out (an arm64 or RISC-V Image), as
// QEMU's unpack_efi_zboot_image (hw/core/loader.c) does.
//
// Header (drivers/firmware/efi/libstub/zboot-header.S; all little-endian):
//   0x00 "MZ" (PE/COFF MS-DOS magic)   0x04 "zimg" (image type)
//   0x08 u32 payload_offset            0x0c u32 payload_size (of the compressed payload)
//   0x10 8 reserved bytes              0x18 char compression_type[32], NUL-terminated
//   0x38 u32 Linux PE magic cd 23 82 81   0x3c u32 PE header offset
// compression_type is set by drivers/firmware/efi/libstub/Makefile.zboot: "gzip", "bzip2",
// "lz4", "lzma", "lzo", "xzkern" or "zstd22" (the kernel's compress command for each). For gzip
// the payload is a complete gzip member (its ISIZE is the uncompressed size); the others are
// built with the `_with_size` commands, which append the uncompressed size (4 bytes, little-
// endian, scripts/Makefile.lib size_append) right after the payload, outside payload_size: it is
// used when the stream itself declares no size. The uncompressed payload is the Image padded
// with zeros to its image_size.
import { GuestImageError } from "../errors.js";
import { hex } from "../num.js";
import { readBytes, type ImageFile } from "../sources/source.js";
import type { ImageFormat } from "./format.js";
import { codecNamed } from "../compress/registry.js";
import type { Codec } from "../compress/codec.js";
import { inspectCodecPayload, openCodecPayload, planDecodedKernel, sizeAppendAt } from "./compressed.js";
import { inspectMember, openPayload, planDecompressedKernel } from "./gzip.js";

/** compression_type → codec (Makefile.zboot's names: the kernel's compress commands). */
const ZBOOT_CODECS: Record<string, string> = { bzip2: "bzip2", lz4: "lz4", lzma: "lzma", lzo: "lzo", xzkern: "xz", zstd22: "zstd" };

function zbootCodec(image: string, type: string): Codec {
  const name = ZBOOT_CODECS[type];
  const codec = name === undefined ? undefined : codecNamed(name);
  if (!codec) {
    const known = ["gzip", ...Object.keys(ZBOOT_CODECS).filter((t) => codecNamed(ZBOOT_CODECS[t]))];
    throw new GuestImageError(
      "UNSUPPORTED",
      `EFI zboot compression_type is "${type}": ${name ? `no ${name} decoder is built in` : "not one Makefile.zboot writes"} (supported: ${known.map((k) => `"${k}"`).join(", ")})`,
      { image, field: "compression_type" },
    );
  }
  return codec;
}

export const ZBOOT_HEADER_SIZE = 64;
/** zboot-header.S / QEMU EFI_PE_LINUX_MAGIC: the Linux header magic at 0x38. */
const LINUX_PE_MAGIC = 0x818223cd;

/** "MZ" at 0 and "zimg" at 4. */
export function isZboot(h: Uint8Array): boolean {
  return h.length >= 8 && h[0] === 0x4d && h[1] === 0x5a && h[4] === 0x7a && h[5] === 0x69 && h[6] === 0x6d && h[7] === 0x67;
}

export interface ZbootHeader {
  payload_offset: number;
  payload_size: number;
  compression_type: string;
  pe_header_offset: number;
}

/** Reads and checks the header: magics, compression_type, and the payload inside the file. */
export async function readZbootHeader(file: ImageFile): Promise<ZbootHeader> {
  const image = file.name;
  if (file.size < ZBOOT_HEADER_SIZE) {
    throw new GuestImageError("TRUNCATED", `file is ${file.size} bytes, shorter than the ${ZBOOT_HEADER_SIZE}-byte EFI zboot header ("MZ", "zimg", …)`, { image, field: "zimg" });
  }
  const h = await readBytes(file, 0, ZBOOT_HEADER_SIZE);
  const dv = new DataView(h.buffer, h.byteOffset, h.byteLength);
  if (!isZboot(h)) throw new GuestImageError("BAD_MAGIC", `no "MZ" at 0 and "zimg" at 4: not an EFI zboot image`, { image, field: "zimg" });
  const linuxMagic = dv.getUint32(0x38, true);
  if (linuxMagic !== LINUX_PE_MAGIC) {
    throw new GuestImageError("BAD_MAGIC", `linux_magic at 0x38 is ${hex(linuxMagic)}, not the Linux PE magic ${hex(LINUX_PE_MAGIC)} (cd 23 82 81)`, { image, field: "linux_magic" });
  }
  const ct = h.subarray(0x18, 0x38);
  const nul = ct.indexOf(0);
  if (nul < 0) throw new GuestImageError("BAD_HEADER", "compression_type (0x18, 32 bytes) is not NUL-terminated", { image, field: "compression_type" });
  const hdr: ZbootHeader = {
    payload_offset: dv.getUint32(0x08, true),
    payload_size: dv.getUint32(0x0c, true),
    compression_type: Array.from(ct.subarray(0, nul), (c) => (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, "0")}`)).join(""),
    pe_header_offset: dv.getUint32(0x3c, true),
  };
  if (hdr.payload_offset < ZBOOT_HEADER_SIZE) {
    throw new GuestImageError("BAD_HEADER", `payload_offset ${hex(hdr.payload_offset)} lies inside the ${ZBOOT_HEADER_SIZE}-byte header`, { image, field: "payload_offset" });
  }
  if (hdr.payload_offset + hdr.payload_size > file.size) {
    throw new GuestImageError(
      "TRUNCATED",
      `payload [${hex(hdr.payload_offset)}, +payload_size ${hex(hdr.payload_size)}) runs past the end of the file (${hex(file.size)} bytes)`,
      { image, field: "payload_size" },
    );
  }
  return hdr;
}

export const zbootFormat: ImageFormat = {
  name: "efi-zboot",
  description: "a Linux EFI zboot image (compressed kernel in an EFI application)",
  test: isZboot,
  async planKernel(ctx) {
    const h = await readZbootHeader(ctx.file);
    const end = h.payload_offset + h.payload_size;
    if (h.compression_type !== "gzip") {
      const codec = zbootCodec(ctx.file.name, h.compression_type);
      const stated = await sizeAppendAt(ctx.file, end, "size_append");
      const f = await openCodecPayload(ctx, codec, { start: h.payload_offset, end, what: `EFI zboot payload (${h.compression_type})` }, { atOrAbove: ctx.at }, { statedSize: stated });
      return planDecodedKernel(ctx, f, { container: "efi-zboot" });
    }
    const gz = await openPayload(ctx, { start: h.payload_offset, end, what: "EFI zboot payload" }, { atOrAbove: ctx.at });
    return planDecompressedKernel(ctx, gz, { compression: "gzip", container: "efi-zboot" });
  },
  async inspect(file) {
    const h = await readZbootHeader(file);
    if (h.compression_type !== "gzip") {
      const end = h.payload_offset + h.payload_size;
      let codec: Codec;
      try {
        codec = zbootCodec(file.name, h.compression_type);
      } catch {
        return { ...h };
      }
      return { ...h, ...(await inspectCodecPayload(file, codec, h.payload_offset, end, `EFI zboot payload (${h.compression_type})`, await sizeAppendAt(file, end, "size_append"))) };
    }
    return { ...h, ...(await inspectMember(file, h.payload_offset, h.payload_offset + h.payload_size, "EFI zboot payload")) };
  },
};
