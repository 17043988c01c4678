// bzImage direct boot (issue 13 §2): do on the host what the bzImage's own decompressor
// (arch/x86/boot/compressed: head_{32,64}.S, misc.c extract_kernel) does in the guest, and enter
// the kernel proper.
//
// The protected-mode part of a bzImage (protocol ≥ 2.08) carries a payload (payload_offset,
// relative to the protected-mode code, and payload_length; Documentation/arch/x86/boot.rst) that is
// the compressed vmlinux.bin — the kernel's ELF, stripped — followed by vmlinux.relocs (built by
// arch/x86/tools/relocs), and, after the compressed stream, the uncompressed length as a u32 LE
// (scripts/Makefile.lib size_append; mkpiggy.c reads it as z_output_len). misc.c then:
//   1. decompresses the payload (__decompress), here with src/compress/{xz,lzma,bzip2}.ts;
//   2. moves each PT_LOAD segment to its place (parse_elf: p_paddr − LOAD_PHYSICAL_ADDR from the
//      output start); the segments are laid out here as one image [lowest p_paddr, highest
//      p_paddr + p_memsz) with the gaps and every BSS zeroed, placed in one checked step;
//   3. applies the relocations when the kernel moved (handle_relocations): on 32-bit kernels the
//      32-bit group adds the physical delta (virtual = physical + PAGE_OFFSET, so both move); on
//      64-bit kernels the delta is virtual only (KASLR's virt_addr − LOAD_PHYSICAL_ADDR), which we
//      never randomise, so a 64-bit kernel placed elsewhere needs none: its startup_64 finds its
//      physical offset itself (head64.c __startup_64, load_delta / phys_base);
//   4. jumps to the ELF entry: startup_32 (head_32.S) with the 32-bit boot protocol state on
//      i386, startup_64 (head_64.S) with the 64-bit one on x86_64 — there is no 32-bit entry in
//      an x86_64 vmlinux.
// The zero page is filled from the bzImage's setup header exactly as for a normal boot.
//
// The decompressed vmlinux is held in host memory while its segments are laid out (the ELF file
// layout is not the memory layout); only the laid-out image is written to guest RAM.
import { CodecError } from "../compress/codec.js";
import { CODECS } from "../compress/registry.js";
import { GuestImageError, type ErrorCode } from "../errors.js";
import { protocolString, readBzImage, XLF_KERNEL_64, type BzImageKernelArch } from "../formats/bzimage.js";
import { readElf } from "../formats/elf.js";
import { hex } from "../num.js";
import { bytesFile, readBytes } from "../sources/source.js";
import type { LoadedKernel, Vm } from "../vm.js";

// The payload's decoder is found by magic in the codec registry (zstd, xz, lz4, lzo, bzip2,
// lzma); a gzip payload is refused with its name (gzip streams through the platform's inflater).

/** ELF e_machine (System V gABI): EM_386, EM_X86_64. */
const EM_386 = 3;
const EM_X86_64 = 62;
/** A decompressed kernel larger than this is refused before allocating it. */
const MAX_VMLINUX = 1024 * 1024 * 1024;

export interface X86DirectImage {
  /** The laid-out kernel: segments at p_paddr − `linkPaddr`, gaps and BSS zero, relocated for `paddr`. */
  image: Uint8Array;
  /** Lowest p_paddr (where the kernel was linked to run, LOAD_PHYSICAL_ADDR). */
  linkPaddr: number;
  /** Where it goes. */
  paddr: number;
  /** Physical address of the first instruction (startup_64 or startup_32). */
  entry: bigint;
  /** "xz", "lzma", "bzip2". */
  codec: string;
  /** Bytes the payload decompressed to (vmlinux.bin + relocs). */
  decompressedSize: number;
  /** Relocation sites patched (0 when the kernel stays at its link address or is 64-bit). */
  relocations: number;
  /** The bzImage's header record, for the zero page (code32_start / entries point into the image). */
  arch: BzImageKernelArch;
  /** The decompressed payload itself (vmlinux.bin, an ELF, then vmlinux.relocs): its notes name the PVH entry. */
  vmlinux: Uint8Array;
}

function codecError(e: CodecError, image: string): GuestImageError {
  const code: ErrorCode = e.kind === "truncated" ? "TRUNCATED" : e.kind === "checksum" ? "BAD_CHECKSUM" : e.kind === "too-large" ? "TOO_LARGE" : e.kind === "unsupported" ? "UNSUPPORTED" : "BAD_HEADER";
  return new GuestImageError(code, `bzImage payload at offset ${hex(e.offset)}: ${e.message}`, { image, field: "payload", cause: e });
}

/**
 * Decompresses a bzImage's payload and lays out the vmlinux inside it for `at` (default: its link
 * address). Nothing is written to guest RAM. Refuses, with the reason, a kernel without a payload,
 * a payload in a compression we cannot decode, a vmlinux for another architecture, and a move of
 * a kernel that is not relocatable.
 */
export async function prepareX86Direct(vm: Vm, name: string, opts: { arch: "x86" | "x86_64"; at?: number }): Promise<X86DirectImage> {
  const file = await vm.open(name);
  try {
    const bz = await readBzImage(file);
    const h = bz.header;
    const err = (code: ErrorCode, field: string, msg: string) => new GuestImageError(code, msg, { image: name, field });
    if (bz.version < 0x208 || !h.payload_offset || !h.payload_length) {
      throw err("UNSUPPORTED", "payload_offset", `direct boot needs the compressed kernel's location (payload_offset/payload_length, protocol 2.08+); this bzImage has protocol ${protocolString(bz.version)}${bz.version >= 0x208 ? ` and payload_offset ${hex(h.payload_offset ?? 0)}, payload_length ${hex(h.payload_length ?? 0)}` : ""}`);
    }
    if (h.payload_length < 8) throw err("BAD_HEADER", "payload_length", `payload_length ${hex(h.payload_length)} is too short for a compressed kernel and its 4-byte size`);
    const payload = await readBytes(file, bz.setupSize + h.payload_offset, h.payload_length);
    const codec = CODECS.find((c) => c.sniff(payload));
    if (!codec) {
      const magic = Array.from(payload.subarray(0, 6), (b) => b.toString(16).padStart(2, "0")).join(" ");
      throw err("UNSUPPORTED", "payload", `the payload (starting ${magic}) is not xz, lzma or bzip2, the compressions direct boot can decode`);
    }
    // mkpiggy.c: the uncompressed size is the payload's last 4 bytes (size_append).
    const tail = payload.length - 4;
    const size = (payload[tail]! | (payload[tail + 1]! << 8) | (payload[tail + 2]! << 16) | (payload[tail + 3]! << 24)) >>> 0;
    if (size === 0 || size > MAX_VMLINUX) {
      throw err("BAD_HEADER", "payload", `the payload's appended size ${hex(size)} (its last 4 bytes) is not between 1 and ${hex(MAX_VMLINUX)}`);
    }
    const out = new Uint8Array(size);
    let written: number;
    try {
      written = codec.decode(payload.subarray(0, tail), out).written;
    } catch (e) {
      if (e instanceof CodecError) throw codecError(e, name);
      throw e;
    }
    if (written !== size) throw err("BAD_HEADER", "payload", `the ${codec.name} payload decompressed to ${hex(written)} bytes, its appended size says ${hex(size)}`);

    // The ELF inside (vmlinux.bin), then its segments laid out as one image.
    const elfFile = bytesFile(`${name} (decompressed vmlinux)`, out);
    const elf = await readElf(elfFile);
    const wantMachine = opts.arch === "x86_64" ? EM_X86_64 : EM_386;
    if (elf.header.machine !== wantMachine) {
      throw err("UNSUPPORTED", "payload", `the decompressed kernel is an ELF for machine ${elf.header.machine}, not ${opts.arch === "x86_64" ? "x86-64 (62)" : "i386 (3)"}`);
    }
    let lo = elf.loads[0].paddr;
    let hi = 0n;
    for (const s of elf.loads) {
      if (s.paddr < lo) lo = s.paddr;
      if (s.paddr + s.memsz > hi) hi = s.paddr + s.memsz;
    }
    if (hi - lo > BigInt(MAX_VMLINUX)) throw err("BAD_HEADER", "payload", `the kernel's segments span ${hex(hi - lo)} bytes`);
    const linkPaddr = Number(lo);
    const image = new Uint8Array(Number(hi - lo));
    for (const s of elf.loads) {
      // readElf checked every segment lies inside the file and p_filesz ≤ p_memsz.
      image.set(out.subarray(Number(s.offset), Number(s.offset + s.filesz)), Number(s.paddr - lo));
    }
    const entryLink = elf.header.entry;
    if (entryLink < lo || entryLink >= hi) throw err("BAD_HEADER", "payload", `the kernel's entry ${hex(entryLink)} is outside its segments [${hex(lo)}, ${hex(hi)})`);

    // Where it goes: the link address, or (relocatable kernels) an address aligned to kernel_alignment.
    const paddr = opts.at ?? linkPaddr;
    let relocations = 0;
    if (paddr !== linkPaddr) {
      if (!bz.relocatable) throw err("BAD_ADDRESS", "load_address", `the kernel is not relocatable (relocatable_kernel 0): it runs only at its link address ${hex(linkPaddr)}, not ${hex(paddr)}`);
      const align = h.kernel_alignment ?? 0x200000;
      if (paddr % align !== 0) throw err("BAD_ADDRESS", "load_address", `${hex(paddr)} is not aligned to kernel_alignment ${hex(align)}`);
      if (opts.arch === "x86") relocations = relocate32(out, elf.contentEnd, image, elf.loads[0].vaddr - elf.loads[0].paddr, linkPaddr, paddr, name);
    }
    const entry = entryLink - lo + BigInt(paddr);
    const has64 = (bz.xloadflags & XLF_KERNEL_64) !== 0;
    const arch: BzImageKernelArch = {
      format: "bzimage",
      entry,
      entry32: entry,
      entry64: opts.arch === "x86_64" && has64 ? entry : null,
      protocol: protocolString(bz.version),
      protocol_version: bz.version,
      code32_start: paddr,
      setup_sects: bz.setupSects,
      setup_size: bz.setupSize,
      setup_bytes: bz.setup,
      header_end: bz.headerEnd,
      kernel_size: image.length,
      relocatable: bz.relocatable,
      kernel_alignment: h.kernel_alignment,
      pref_address: h.pref_address,
      runtime_start: paddr,
      init_size: h.init_size,
      xloadflags: bz.xloadflags,
      kernel_version_string: bz.kernelVersion,
      setup_header: h,
    };
    return { image, linkPaddr, paddr, entry, codec: codec.name, decompressedSize: size, relocations, arch, vmlinux: out };
  } finally {
    await file.close();
  }
}

/**
 * The 32-bit group of vmlinux.relocs (read backwards from the end of the decompressed data to a
 * zero word, misc.c handle_relocations): each word is the link-time virtual address of a 32-bit
 * field that holds an address; add the physical (= virtual, on i386) delta to it.
 */
function relocate32(data: Uint8Array, elfEnd: number, image: Uint8Array, virtToPhys: bigint, linkPaddr: number, paddr: number, name: string): number {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const iv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const delta = paddr - linkPaddr;
  const v2p = Number(virtToPhys & 0xffffffffn);
  let n = 0;
  for (let pos = data.length - 4; ; pos -= 4) {
    if (pos < elfEnd) throw new GuestImageError("RELOCATION", `the kernel's 32-bit relocations have no terminating zero word before the end of the ELF image (${hex(elfEnd)})`, { image: name, field: "relocs" });
    const site = dv.getUint32(pos, true);
    if (site === 0) return n;
    const off = ((site - v2p) >>> 0) - linkPaddr;
    if (off < 0 || off + 4 > image.length) {
      throw new GuestImageError("RELOCATION", `32-bit relocation at ${hex(pos)} names ${hex(site)}, outside the kernel [${hex(linkPaddr)}, ${hex(linkPaddr + image.length)}) (misc.c: "32-bit relocation outside of kernel")`, { image: name, field: "relocs" });
    }
    iv.setUint32(off, (iv.getUint32(off, true) + delta) >>> 0, true);
    n++;
  }
}

/** Places a prepared kernel in one checked step, recorded under the bzImage's name. */
export async function loadX86Direct(vm: Vm, name: string, opts: { arch: "x86" | "x86_64"; at?: number }): Promise<LoadedKernel & { direct: Omit<X86DirectImage, "vmlinux"> }> {
  // The decompressed payload (tens of MiB) is dropped here: a boot record that kept it would hold
  // it for as long as the caller keeps the boot (and a template or reset copy once more).
  const { vmlinux: _dropped, ...d } = await prepareX86Direct(vm, name, opts);
  const placed = await vm.place(name, d.image, { at: d.paddr, format: "vmlinux (direct)" });
  return { ...placed, entry: d.entry, arch: d.arch, direct: d };
}
