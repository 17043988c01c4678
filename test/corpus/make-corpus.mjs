#!/usr/bin/env node
// Writes the regression corpus files of test/corpus/ and their entries in index.json, each built
// field by field from its format's spec (fuzz/builders.mjs) to recreate a known loader bug:
// the expected error code is what the spec makes of the bad field, with the field named. Entries
// the fuzzer found (fuzz-*.bin) are kept as they are in index.json. Re-run after changing a recipe:
//   node test/corpus/make-corpus.mjs
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";
import * as b from "../../fuzz/builders.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const MiB = 1 << 20;
const hex = (v) => `0x${BigInt(v).toString(16)}`;

/** @type {Record<string, object>} */
const entries = {};
function add(file, bytes, expect) {
  if (bytes.length > 64 * 1024) throw new Error(`${file}: ${bytes.length} bytes, over the 64 KiB corpus limit`);
  writeFileSync(join(HERE, file), bytes);
  entries[file] = expect;
}
const poke = (bytes, off, size, v, le = true) => {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (size === 1) dv.setUint8(off, Number(v));
  else if (size === 2) dv.setUint16(off, Number(v), le);
  else if (size === 4) dv.setUint32(off, Number(BigInt(v) & 0xffffffffn), le);
  else dv.setBigUint64(off, BigInt(v), le);
  return bytes;
};

// ── Multiboot (GNU Multiboot 0.6.96 §3.1.3; QEMU hw/i386/multiboot.c) ──
// CVE-2017-14167: QEMU computed the load offset and sizes from the address fields in unsigned
// 32-bit arithmetic without checking their order, so crafted values wrapped and the copy ran
// past its heap buffer. The fix (QEMU ed4f86e8b6) rejects each of these shapes.
const LOAD = 0x100000;
add("cve-2017-14167-header-addr-below-load-addr.mb", b.multibootAout({ header_addr: LOAD - 0x1000 }).bytes, {
  code: "BAD_HEADER", field: "header_addr", api: "kernel",
  why: "CVE-2017-14167: header_addr < load_addr; QEMU's header_addr − load_addr wrapped to ~4 GiB",
});
add("cve-2017-14167-load-starts-before-file.mb", b.multibootAout({ hoff: 0x40, header_addr: LOAD + 0x10000 }).bytes, {
  code: "BAD_HEADER", field: "load_addr", api: "kernel",
  why: "CVE-2017-14167: header_addr − load_addr (0x10000) is more than the header's file offset (0x40): the load would start 0xffc0 bytes before the file",
});
add("cve-2017-14167-load-end-past-file.mb", b.multibootAout({ load_end_addr: LOAD + MiB }).bytes, {
  code: "TRUNCATED", field: "load_end_addr", api: "kernel",
  why: "CVE-2017-14167: load_end_addr − load_addr (1 MiB) is more than the 8 KiB file holds",
});
add("cve-2017-14167-load-end-below-load-addr.mb", b.multibootAout({ load_end_addr: LOAD - 0x1000 }).bytes, {
  code: "BAD_HEADER", field: "load_end_addr", api: "kernel",
  why: "CVE-2017-14167: load_end_addr < load_addr; the size load_end_addr − load_addr wrapped",
});
add("cve-2017-14167-load-wraps-4g.mb", b.multibootAout({ load_addr: 0xfffff000, load_end_addr: 0, bss_end_addr: 0, entry_addr: 0xfffff100 }).bytes, {
  code: "BAD_HEADER", field: "load_addr", api: "kernel",
  why: "CVE-2017-14167 shape: load_addr 0xfffff000 + the whole 8 KiB file (load_end_addr 0) ends past 4 GiB",
});
add("ghsa-f49v-45qp-cv53-load-end-past-bss-end.mb", b.multibootAout({ load_end_addr: LOAD + 0x2000, bss_end_addr: LOAD + 0x1000 }).bytes, {
  code: "BAD_HEADER", field: "bss_end_addr", api: "kernel",
  why: "GHSA-f49v-45qp-cv53: load_end_addr > bss_end_addr; QEMU sized its buffer by bss_end_addr − load_addr and read load_end_addr − load_addr bytes into it",
});
{
  const mb = b.multibootAout({ len: 0x3000, hoff: 8192 - 16, flags: (1 << 16) | 0x4 });
  add("multiboot-header-runs-past-8k.mb", mb.bytes, {
    code: "BAD_HEADER", field: "flags", api: "kernel",
    why: "Multiboot §3.1.1: the header lies within the first 8192 bytes; flags bit 2 needs 48 bytes from offset 0x1ff0",
  });
  add("multiboot-unknown-required-flag.mb", b.multibootAout({ flags: (1 << 16) | 0x8 }).bytes, {
    code: "UNSUPPORTED", field: "flags", api: "kernel",
    why: "Multiboot §3.1.2: a required flag (bits 0-15) the loader does not know (bit 3) must make it fail",
  });
}

// ── Multiboot 2 (The Multiboot2 Specification 2.0 §3.1): the same address arithmetic as
// Multiboot 1's CVE shapes, in the address tag, plus the tag walk and the relocatable tag ──
{
  const mb2 = (o, why, code, field) => ({ code, field, api: "kernel", why });
  add("mb2-header-addr-below-load-addr.mb2", b.multiboot2Aout({ header_addr: LOAD - 0x1000 }).bytes,
    mb2({}, "CVE-2017-14167 shape in the address tag (§3.1.5): header_addr < load_addr, header_addr − load_addr would wrap", "BAD_HEADER", "header_addr"));
  add("mb2-load-starts-before-file.mb2", b.multiboot2Aout({ header_addr: LOAD + 0x10000 }).bytes,
    mb2({}, "§3.1.5: header offset 0x40 − (header_addr − load_addr = 0x10000) is negative: the load would start before the file", "BAD_HEADER", "load_addr"));
  add("mb2-load-end-past-file.mb2", b.multiboot2Aout({ load_end_addr: LOAD + MiB }).bytes,
    mb2({}, "§3.1.5: load_end_addr − load_addr (1 MiB) is more than the 8 KiB file holds", "TRUNCATED", "load_end_addr"));
  add("mb2-load-wraps-4g.mb2", b.multiboot2Aout({ load_addr: 0xfffff000, load_end_addr: 0, bss_end_addr: 0, entry_addr: 0xfffff100 }).bytes,
    mb2({}, "§3.1.5: load_addr 0xfffff000 + the whole 8 KiB file (load_end_addr 0) ends past 4 GiB", "BAD_HEADER", "load_addr"));
  add("mb2-load-end-past-bss-end.mb2", b.multiboot2Aout({ load_end_addr: LOAD + 0x2000, bss_end_addr: LOAD + 0x1000 }).bytes,
    mb2({}, "GHSA-f49v-45qp-cv53 shape: load_end_addr > bss_end_addr", "BAD_HEADER", "bss_end_addr"));
  const tagPastEnd = b.multiboot2Aout().bytes;
  poke(tagPastEnd, 0x40 + 16 + 4, 4, 0xfffffff8); // the address tag's size
  add("mb2-tag-size-past-header.mb2", tagPastEnd,
    mb2({}, "§3.1.3: a tag whose size (0xfffffff8) runs past header_length; a walk trusting it would leave the header (or wrap)", "BAD_HEADER", "tag.size"));
  const zeroTag = b.multiboot2Aout().bytes;
  poke(zeroTag, 0x40 + 16 + 4, 4, 0);
  add("mb2-tag-size-zero.mb2", zeroTag,
    mb2({}, "§3.1.3: a tag of size 0 would make a walk loop forever on the same tag", "BAD_HEADER", "tag.size"));
  const longHeader = b.multiboot2Aout({ hoff: 0x7000, len: 0x9000, header_length: 0x1008 }).bytes;
  add("mb2-header-length-past-32k.mb2", longHeader,
    mb2({}, "§3.1: the header must lie within the first 32768 bytes; 0x7000 + header_length 0x1008 does not", "BAD_HEADER", "header_length"));
  add("mb2-relocatable-image-larger-than-range.mb2", b.multiboot2Aout({ extra: [{ type: 10, u32: [0x100000, 0x101000, 0x1000, 1] }] }).bytes,
    mb2({}, "§3.1.13: the image (0x5000 bytes) cannot lie within [min_addr, max_addr] = [0x100000, 0x101000]", "BAD_HEADER", "max_addr"));
  add("mb2-required-bootdev.mb2", b.multiboot2Aout({ extra: [{ type: 1, u32: [5] }] }).bytes,
    mb2({}, "§3.1.4: a required information request (BIOS boot device, 5) the loader cannot provide must make it fail", "UNSUPPORTED", "mbi_tag_types"));
}

// ── Device tree (Devicetree Specification v0.4 §5.2; QEMU load_device_tree) ──
// CVE-2018-20815: QEMU sized its buffer from the file size, then loaded the file with an unbounded
// load_image(), so a file larger than the size it had been told overflowed the buffer.
const dtb = b.fdt(b.sampleTree(0x40000000n, 16n * BigInt(MiB))).bytes;
add("cve-2018-20815-dtb-totalsize-past-file.dtb", dtb.slice(0, dtb.length - 0x20), {
  code: "TRUNCATED", field: "totalsize", api: "module", at: "0x40000000", fdt: { code: "TRUNCATED", field: "totalsize" },
  why: "CVE-2018-20815 shape: totalsize declares more bytes than the file has",
});
add("cve-2018-20815-dtb-larger-than-declared.dtb", b.concat(dtb, new Uint8Array(0x1000).fill(0xee)), {
  code: null, api: "module", at: "0x40000000", size: hex(dtb.length + 0x1000), fdt: { code: null },
  why: "CVE-2018-20815 shape: the file is larger than its totalsize; it loads verbatim, and every byte written lies inside the range the result reports",
});
{
  let node = { name: "n", props: [] };
  for (let i = 0; i < 70; i++) node = { name: `n${i}`, children: [node] };
  const deep = b.fdt({ name: "", props: [], children: [node] }).bytes;
  add("fdt-nesting-deeper-than-64.dtb", deep, {
    code: null, api: "module", at: "0x40000000", size: hex(deep.length),
    fdt: { code: "TOO_LARGE", field: "dt_struct" },
    why: "parseFdt bounds nesting (Linux FDT_MAX_DEPTH 64) so a hostile tree cannot exhaust the stack; as a module the blob only needs a sound header",
  });
}

// ── x86 bzImage (Documentation/arch/x86/boot.rst; rust-vmm linux-loader) ──
{
  const f = new Uint8Array(0x400);
  poke(f, 0x1f1, 1, 0); // setup_sects 0 means 4: a 0xa00-byte real-mode part
  poke(f, 0x1fe, 2, 0xaa55);
  f.set([0xeb, 0x6a], 0x200);
  f.set(b.ascii("HdrS"), 0x202);
  poke(f, 0x206, 2, 0x020f);
  poke(f, 0x211, 1, 0x01);
  add("linux-loader-fuzz-invalid-bzimage.bin", f, {
    code: "TRUNCATED", field: "setup_sects", api: "kernel",
    why: "linux-loader tests/fuzz_invalid_bzimage.bin shape: the file (0x400 bytes) is shorter than its setup ((0+4+1)×512 = 0xa00); linux-loader's Underflow",
  });
}
add("bzimage-syssize-past-file.bin", b.bzImage({ syssize: 0x100000 }).bytes, {
  code: "TRUNCATED", field: "syssize", api: "kernel",
  why: "boot.rst syssize: 16-byte paragraphs of protected-mode code; 16 MiB claimed, 16 KiB present",
});
add("bzimage-backward-jump.bin", b.bzImage({ jump: 0x80 }).bytes, {
  code: "BAD_HEADER", field: "jump", api: "kernel",
  why: "boot.rst jump: a signed offset from 0x202; 0x80 is a backward jump, so the header's end is unknown",
});
add("bzimage-window-past-2pow53.bin", b.bzImage({ pref_address: 1n << 63n, init_size: 0x1000000 }).bytes, {
  code: "BAD_ADDRESS", field: "load_address", api: "kernel",
  why: "boot.rst init_size: a relocatable kernel decompresses at align_up(max(load, pref_address)); pref_address 2^63 puts that window past 2^53",
});

// ── ELF (System V gABI; rust-vmm linux-loader #125; QEMU elf_ops) ──
{
  const e = b.elf({ class: 64, segments: [{ vaddr: 0x100000n, paddr: 0x100000n, data: b.filler(0x100) }] }).bytes;
  const cut = e.slice(0, 64 + 56);
  poke(cut, 56, 2, 8); // e_phnum 8: the table would need 8 × 56 bytes from e_phoff 0x40
  add("linux-loader-125-elf-phdrs-past-eof.elf", cut, {
    code: "TRUNCATED", field: "e_phoff", api: "kernel",
    why: "linux-loader #125: program headers beyond the end of the file must be an error, not a short read",
  });
  const far = e.slice();
  poke(far, 32, 8, 0xffffffffffffffffn); // e_phoff
  add("elf-phoff-2pow64-1.elf", far, {
    code: "TRUNCATED", field: "e_phoff", api: "kernel",
    why: "gABI e_phoff 2^64−1: e_phoff + e_phnum × e_phentsize runs past the file (and past 2^64)",
  });
}
add("elf-filesz-greater-than-memsz.elf", b.elf({ class: 64, segments: [{ vaddr: 0x100000n, paddr: 0x100000n, data: b.filler(0x200), memsz: 0x100n }] }).bytes, {
  code: "BAD_HEADER", field: "p_filesz", api: "kernel",
  why: "gABI: p_filesz may not be larger than p_memsz (QEMU elf_ops checks it)",
});
add("elf64-paddr-plus-memsz-wraps.elf", b.elf({ class: 64, segments: [{ vaddr: 0x100000n, paddr: 0xfffffffffffff000n, data: b.filler(0x100), memsz: 0x2000n }] }).bytes, {
  code: "BAD_HEADER", field: "p_paddr", api: "kernel",
  why: "p_paddr 0xfffffffffffff000 + p_memsz 0x2000 wraps past 2^64",
});
add("elf32-paddr-plus-memsz-wraps.elf", b.elf({ class: 32, machine: b.EM.i386, segments: [{ vaddr: 0x100000n, paddr: 0xfffff000n, data: b.filler(0x100), memsz: 0x2000n }] }).bytes, {
  code: "BAD_HEADER", field: "p_paddr", api: "kernel",
  why: "ELF32: p_paddr 0xfffff000 + p_memsz 0x2000 wraps past 2^32",
});
{
  const e = b.elf({ class: 64, segments: [{ vaddr: 0x100000n, paddr: 0x100000n, data: b.filler(0x100) }] }).bytes;
  poke(e, 56, 2, 0xffff);
  add("elf-phnum-pn-xnum.elf", e, {
    code: "UNSUPPORTED", field: "e_phnum", api: "kernel",
    why: "gABI: e_phnum 0xffff is PN_XNUM (the real count is in section header 0's sh_info), not 65535 program headers",
  });
}
add("elf-overlapping-segments.elf", b.elf({ class: 64, segments: [{ vaddr: 0x100000n, paddr: 0x100000n, data: b.filler(0x100), memsz: 0x2000n }, { vaddr: 0x101000n, paddr: 0x101000n, data: b.filler(0x100, 2) }] }).bytes, {
  code: "BAD_HEADER", field: "p_paddr", api: "kernel",
  why: "two PT_LOAD segments claim the same physical bytes; which one wins would depend on load order",
});

// ── gzip (RFC 1952) ──
{
  // 63 MiB of zeros deflate to about 61 KiB: ISIZE honest, then lying.
  const zeros = new Uint8Array(63 * MiB);
  const deflate = zlib.deflateRawSync(zeros, { level: 9, strategy: zlib.constants.Z_RLE });
  const honest = b.gzip(zeros, { deflate });
  add("gzip-bomb-63mib-zeros.gz", honest.bytes, {
    code: "TOO_LARGE", field: "ISIZE", api: "kernel", at: "0x40000000",
    why: "a decompression bomb whose ISIZE (63 MiB) says more than the 16 MiB of RAM from the target: refused before decompressing",
  });
  const liar = honest.bytes.slice();
  poke(liar, liar.length - 4, 4, 0x1000);
  add("gzip-bomb-63mib-zeros-isize-lies.gz", liar, {
    code: "TOO_LARGE", field: "ISIZE", api: "kernel", at: "0x40000000",
    why: "the same bomb with ISIZE 0x1000: decompression must stop once the output passes ISIZE, not run to 63 MiB",
  });
  const zero = b.gzip(b.filler(0x100), { isize: 0 });
  add("gzip-isize-zero.gz", zero.bytes, {
    code: "BAD_HEADER", field: "ISIZE", api: "kernel", at: "0x40000000",
    why: "RFC 1952 ISIZE 0 for non-empty data: the size cannot be trusted (empty, or a multiple of 4 GiB)",
  });
}

// ── U-Boot uImage (include/image.h; boot/image.c image_check_hcrc/dcrc) ──
{
  const data = b.arm64Image({ len: 0x2000 }).bytes;
  const good = b.uImage(data, { load: 0x40080000 }).bytes;
  const badH = good.slice();
  poke(badH, 4, 4, (new DataView(good.buffer).getUint32(4, false) ^ 1) >>> 0, false);
  add("uimage-wrong-header-crc.uimg", badH, {
    code: "BAD_CHECKSUM", field: "ih_hcrc", api: "kernel", at: "0x40080000",
    why: "U-Boot image_check_hcrc: CRC-32 of the header with ih_hcrc zeroed must equal ih_hcrc",
  });
  add("uimage-wrong-data-crc.uimg", b.uImage(data, { load: 0x40080000, dcrc: (b.crc32(data) ^ 0x80000000) >>> 0 }).bytes, {
    code: "BAD_CHECKSUM", field: "ih_dcrc", api: "kernel", at: "0x40080000",
    why: "U-Boot image_check_dcrc: CRC-32 of the ih_size data bytes must equal ih_dcrc (checked in guest RAM, rolled back)",
  });
  const gz = b.gzip(data).bytes;
  add("uimage-gzip-wrong-data-crc.uimg", b.uImage(gz, { load: 0x40080000, comp: b.IH.COMP_GZIP, dcrc: (b.crc32(gz) + 1) >>> 0 }).bytes, {
    code: "BAD_CHECKSUM", field: "ih_dcrc", api: "kernel", at: "0x40080000",
    why: "ih_dcrc covers the compressed bytes of a gzip uImage; a mismatch rolls the decompressed load back",
  });
  const rd = b.gzip(b.filler(0x800, 4)).bytes;
  add("uimage-ramdisk-wrong-data-crc.uimg", b.uImage(rd, { type: b.IH.RAMDISK, comp: b.IH.COMP_GZIP, load: 0, dcrc: 0x12345678 }).bytes, {
    code: "BAD_CHECKSUM", field: "ih_dcrc", api: "module", at: "0x40100000",
    why: "a ramdisk uImage's data CRC is checked before the module is committed",
  });
  add("uimage-size-past-file.uimg", b.uImage(data, { load: 0x40080000, size: 0x10000 }).bytes, {
    code: "TRUNCATED", field: "ih_size", api: "kernel", at: "0x40080000",
    why: "ih_size (0x10000) + the 64-byte header runs past the 0x2040-byte file",
  });
}

// ── ARM zImage (arch/arm/boot/compressed/head.S), arm64/RISC-V Image (booting.rst) ──
add("zimage-end-below-start.zimg", b.zImage({ start: 0x40008000, end: 0x40000000 }).bytes, {
  code: "BAD_HEADER", field: "end", api: "kernel",
  why: "zImage end (0x40000000) below start (0x40008000): end − start would wrap",
});
add("arm64-image-size-exceeds-ram.img", b.arm64Image({ image_size: 0x40000000n }).bytes, {
  code: "OUT_OF_RAM", api: "kernel", at: "0x40000000",
  why: "booting.rst image_size: the kernel needs 1 GiB from its load address; the VM has 16 MiB there",
});
add("arm64-image-size-wraps-2pow64.img", b.arm64Image({ text_offset: 0x80000n, image_size: 0xfffffffffff80001n }).bytes, {
  code: "BAD_HEADER", field: "text_offset", api: "kernel", at: "0x40000000",
  why: "text_offset 0x80000 + image_size 0xfffffffffff80001 wraps past 2^64",
});
add("arm64-image-size-past-2pow53.img", b.arm64Image({ image_size: 1n << 60n }).bytes, {
  code: "BAD_ADDRESS", field: "image_size", api: "kernel", at: "0x40000000",
  why: "image_size 2^60: the image would end past 2^53 − 1, beyond any exact guest address",
});
add("riscv-image-size-zero.img", b.riscvImage({ image_size: 0n }).bytes, {
  code: "BAD_HEADER", field: "image_size", api: "kernel", at: "0x80000000",
  why: "boot-image-header.rst: image_size is mandatory for RISC-V (no legacy zero rule as on arm64)",
});
add("zboot-payload-past-end.efi", b.zboot(b.gzip(b.arm64Image().bytes).bytes, { payload_size: 0x100000 }).bytes, {
  code: "TRUNCATED", field: "payload_size", api: "kernel", at: "0x40000000",
  why: "zboot-header.S payload_offset + payload_size runs past the end of the file",
});

// ── ELF notes / PVH entry (gABI "Note Section", Xen elfnote.h) — api "pvh": bootLinux x86Entry "pvh" ──
{
  const le64 = (v) => { const d = new Uint8Array(8); new DataView(d.buffer).setBigUint64(0, BigInt(v), true); return d; };
  const pvhElf = (notes, seg = {}) => b.elf({ class: 64, machine: b.EM.x86_64, entry: 0x100000n, segments: [{ vaddr: 0x100000n, paddr: 0x100000n, data: b.filler(0x200, 50), memsz: 0x1000n }, { type: 4, flags: 4, vaddr: 0n, paddr: 0n, data: notes.bytes, align: 4n, ...seg }] }).bytes;
  const notes = () => b.elfNotes([{ name: "Xen", type: 6, desc: b.ascii("linux\0") }, { name: "Xen", type: 18, desc: le64(0x100010) }]);
  const n1 = notes();
  poke(n1.bytes, n1.fields.find((f) => f.name === "note0.n_descsz").off, 4, 0x100);
  add("elf-note-descsz-past-segment.elf", pvhElf(n1), {
    code: "BAD_HEADER", field: "n_descsz", api: "pvh",
    why: "a note whose n_descsz runs past its PT_NOTE: walking on would read the next note (the PVH entry) from the wrong place",
  });
  add("elf-pvh-entry-above-4g.elf", pvhElf(b.elfNotes([{ name: "Xen", type: 18, desc: le64(0x100000010n) }])), {
    code: "BAD_HEADER", field: "desc", api: "pvh",
    why: "XEN_ELFNOTE_PHYS32_ENTRY is a 32-bit physical address (protected mode, paging off); 0x100000010 is not one",
  });
  add("elf-pvh-note-past-file.elf", pvhElf(notes(), { filesz: 0x100000n }), {
    code: "TRUNCATED", field: "p_offset", api: "pvh",
    why: "a PT_NOTE whose p_offset + p_filesz runs past the end of the file",
  });
}

// ── bzImage kernel_info (boot.rst, protocol 2.15) — api "setup-data": bootLinux with a setup_data chain ──
{
  const k = b.bzImage({ kernelInfo: {} });
  const off = (name) => k.fields.find((f) => f.name === name).off;
  add("bzimage-kernel-info-bad-magic.bin", poke(k.bytes.slice(), off("kernel_info.size") - 4, 4, 0x4c546f50), {
    code: "BAD_MAGIC", field: "kernel_info.header", api: "setup-data",
    why: "kernel_info must start \"LToP\"; without it setup_type_max is unknown and setup_data types cannot be checked",
  });
  add("bzimage-kernel-info-size-total-past-file.bin", poke(k.bytes.slice(), off("kernel_info.size_total"), 4, 0x100000), {
    code: "TRUNCATED", field: "kernel_info.size_total", api: "setup-data",
    why: "kernel_info.size_total 1 MiB runs past the end of a 20 KiB image",
  });
}

// ── Unified Kernel Images (UAPI.5 UKI; pe-format.md section headers) ──
{
  const a64 = b.arm64Image().bytes;
  const T = (t) => new TextEncoder().encode(t);
  const patch = (img, field, v) => {
    const f = img.fields.find((x) => x.name === field);
    const dv = new DataView(img.bytes.buffer);
    if (f.size === 2) dv.setUint16(f.off, v, true);
    else dv.setUint32(f.off, v, true);
    return img.bytes;
  };
  add("uki-linux-rawdata-past-end.efi", patch(b.uki([{ name: ".cmdline", data: T("x") }, { name: ".linux", data: a64 }]), ".linux[1].SizeOfRawData", 0x100000), {
    code: "TRUNCATED", field: "sections[1].SizeOfRawData", api: "kernel", at: "0x40000000",
    why: "pe-format.md: a section's raw data [PointerToRawData, +SizeOfRawData) must lie in the file; 1 MiB claimed",
  });
  add("uki-rawdata-pointer-near-4g.efi", patch(b.uki([{ name: ".linux", data: a64 }]), ".linux[0].PointerToRawData", 0xffffff00), {
    code: "TRUNCATED", field: "sections[0].SizeOfRawData", api: "kernel", at: "0x40000000",
    why: "PointerToRawData 0xffffff00 + SizeOfRawData passes 2^32: must not wrap into the file",
  });
  add("uki-virtualsize-exceeds-rawdata.efi", patch(b.uki([{ name: ".linux", data: a64 }]), ".linux[0].VirtualSize", 0x7fffffff), {
    code: "BAD_HEADER", field: "sections[0].VirtualSize", api: "kernel", at: "0x40000000",
    why: "systemd-stub uses VirtualSize bytes of a UKI section; past SizeOfRawData they are not in the file",
  });
  add("uki-97-sections.efi", patch(b.uki([{ name: ".linux", data: a64 }]), "NumberOfSections", 97), {
    code: "TOO_LARGE", field: "NumberOfSections", api: "kernel", at: "0x40000000",
    why: "pe-format.md: the loader limits the number of sections to 96",
  });
  add("uki-duplicate-initrd.efi", b.uki([{ name: ".linux", data: a64 }, { name: ".initrd", data: b.filler(0x40) }, { name: ".initrd", data: b.filler(0x40, 2) }]).bytes, {
    code: "BAD_HEADER", field: "sections[2].Name", api: "kernel", at: "0x40000000",
    why: "UKI: each section at most once in the base (or a profile); which .initrd would the kernel get?",
  });
}

// ── cpio newc (buffer-format.rst) ──
{
  const c = b.cpio([{ name: "kernel", data: b.filler(0x40) }]).bytes;
  const bad = c.slice();
  bad.set(b.ascii("00100000"), 6 + 6 * 8); // c_filesize 1 MiB
  add("cpio-filesize-past-end.cpio", bad, {
    code: "TRUNCATED", field: "c_filesize", api: "cpio",
    why: "a newc entry whose c_filesize runs past the archive must not become a file reading beyond it",
  });
}

// ── 1 GiB gzip bomb: built at test time from this recipe (it would be ~1 MiB as a file) ──
writeFileSync(join(HERE, "gzip-bomb-1gib-zeros.recipe.json"), JSON.stringify({ recipe: "gzip of zeros", bytes: 1024 * MiB, isize: "honest", deflate: "zlib level 9, Z_RLE" }, null, 2) + "\n");
entries["gzip-bomb-1gib-zeros.recipe.json"] = {
  code: "TOO_LARGE", field: "ISIZE", api: "kernel", at: "0x40000000",
  why: "the issue's bomb: 1 GiB of zeros (about 1 MiB gzipped) refused without the process growing by more than the target range plus a constant",
};

const indexPath = join(HERE, "index.json");
const old = existsSync(indexPath) ? JSON.parse(readFileSync(indexPath, "utf8")) : {};
const merged = { ...Object.fromEntries(Object.entries(old).filter(([k]) => k.startsWith("fuzz-"))), ...entries };
const sorted = Object.fromEntries(Object.keys(merged).sort().map((k) => [k, merged[k]]));
writeFileSync(indexPath, JSON.stringify(sorted, null, 2) + "\n");
console.log(`${Object.keys(entries).length} corpus entries written`);
