// Fuzz seeds: small images crafted from each format's spec (fuzz/builders.mjs), and heads of the
// real images (the Debian kernels scripts/fetch-fixtures.sh caches, the bundled examples), cut to
// at most 64 KiB with their size fields adjusted so they still load into the fuzz VM's RAM.
// Each seed: { id, format, role, bytes, fields, fixup }. `format` is what detection should
// say for the unmutated seed; `role` picks the lanes (kernel, module, cpio); `fixup` names the
// checksum to recompute after a mutation (multiboot, uimage, gzip) so mutants get past it.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, openSync, readSync, closeSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";
import * as b from "./builders.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const FIXTURES = process.env.GUEST_IMAGE_FIXTURES ?? join(homedir(), ".cache", "guest-image-fixtures");
const HEAD = 64 * 1024;

/** Every format the fuzzer knows, as detection names them (plus cpio, the archive source). */
export const FORMATS = ["multiboot", "multiboot2", "elf", "uki", "bzimage", "uimage", "efi-zboot", "arm64-image", "riscv-image", "zimage", "fdt", "gzip", "zstd", "xz", "lz4", "lzo", "bzip2", "lzma", "raw", "cpio"];

/**
 * `cmd` (a shell pipeline of the reference compressors: zstd, lz4, lzop, xz, bzip2, lzma) run on
 * `input`; throws if it fails, so a missing tool is a loud error, not a lane without seeds.
 */
function compress(cmd, input) {
  const r = spawnSync("sh", ["-c", cmd], { input, maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`fuzz seeds: \`${cmd}\` failed (${r.error?.message ?? r.stderr}); install zstd, lz4, lzop, xz-utils, bzip2`);
  return { bytes: new Uint8Array(r.stdout), fields: [] };
}

function readHead(path, n = HEAD) {
  const fd = openSync(path, "r");
  try {
    const len = Math.min(n, statSync(path).size);
    const out = new Uint8Array(len);
    readSync(fd, out, 0, len, 0);
    return out;
  } finally {
    closeSync(fd);
  }
}

const tryRead = (path, n) => (existsSync(path) ? readHead(path, n) : null);

/** Header field tables (offsets from the specs) for seeds that did not come from a builder. */
function fieldTable(format, bytes) {
  const F = (name, off, size, le = true) => ({ name, off, size, le });
  switch (format) {
    case "bzimage":
      return [F("setup_sects", 0x1f1, 1), F("syssize", 0x1f4, 4), F("boot_flag", 0x1fe, 2), F("jump_offset", 0x201, 1), F("version", 0x206, 2),
        F("kernel_version", 0x20e, 2), F("loadflags", 0x211, 1), F("code32_start", 0x214, 4), F("kernel_alignment", 0x230, 4),
        F("relocatable_kernel", 0x234, 1), F("xloadflags", 0x236, 2), F("payload_offset", 0x248, 4), F("payload_length", 0x24c, 4),
        F("pref_address", 0x258, 8), F("init_size", 0x260, 4), F("kernel_info_offset", 0x268, 4)];
    case "arm64-image":
    case "riscv-image":
      return [F("text_offset", 8, 8), F("image_size", 16, 8), F("flags", 24, 8), F("version", 32, 4), F("magic", 0x38, 4), F("res5", 0x3c, 4)];
    case "zimage":
      return [F("magic", 0x24, 4), F("start", 0x28, 4), F("end", 0x2c, 4), F("endian_flag", 0x30, 4)];
    case "uimage":
      return [F("ih_hcrc", 4, 4, false), F("ih_size", 12, 4, false), F("ih_load", 16, 4, false), F("ih_ep", 20, 4, false), F("ih_dcrc", 24, 4, false),
        F("ih_os", 28, 1), F("ih_arch", 29, 1), F("ih_type", 30, 1), F("ih_comp", 31, 1)];
    case "fdt":
      return ["magic", "totalsize", "off_dt_struct", "off_dt_strings", "off_mem_rsvmap", "version", "last_comp_version", "boot_cpuid_phys", "size_dt_strings", "size_dt_struct"]
        .map((n, i) => F(n, i * 4, 4, false));
    case "gzip":
      return [F("FLG", 3, 1), F("MTIME", 4, 4), F("CRC32", bytes.length - 8, 4), F("ISIZE", bytes.length - 4, 4)];
    case "elf": {
      if (bytes.length < 64) return [];
      const is64 = bytes[4] === 2;
      const le = bytes[5] !== 2;
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const ws = is64 ? 8 : 4;
      const out = [F("e_type", 16, 2, le), F("e_machine", 18, 2, le), F("e_entry", 24, ws, le), F("e_phoff", 24 + ws, ws, le), F("e_phentsize", 30 + 3 * ws, 2, le), F("e_phnum", 32 + 3 * ws, 2, le)];
      const phoff = Number(is64 ? dv.getBigUint64(24 + ws, le) : BigInt(dv.getUint32(28, le)));
      const phnum = dv.getUint16(32 + 3 * ws, le);
      for (let i = 0; i < phnum && phoff + (i + 1) * (is64 ? 56 : 32) <= bytes.length; i++) {
        const p = phoff + i * (is64 ? 56 : 32);
        if (is64) out.push(F(`p${i}.p_offset`, p + 8, 8, le), F(`p${i}.p_vaddr`, p + 16, 8, le), F(`p${i}.p_paddr`, p + 24, 8, le), F(`p${i}.p_filesz`, p + 32, 8, le), F(`p${i}.p_memsz`, p + 40, 8, le));
        else out.push(F(`p${i}.p_offset`, p + 4, 4, le), F(`p${i}.p_vaddr`, p + 8, 4, le), F(`p${i}.p_paddr`, p + 12, 4, le), F(`p${i}.p_filesz`, p + 16, 4, le), F(`p${i}.p_memsz`, p + 20, 4, le));
      }
      return out;
    }
    default:
      return [];
  }
}

function poke(bytes, off, size, v, le = true) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (size === 4) dv.setUint32(off, Number(BigInt(v) & 0xffffffffn), le);
  else if (size === 8) dv.setBigUint64(off, BigInt(v), le);
  return bytes;
}

/** Seeds derived from the real images, when they are present (empty list otherwise). */
function realSeeds() {
  const out = [];
  const fx = (p, n) => tryRead(join(FIXTURES, p), n);
  const add = (id, format, role, bytes, fixup = null) => bytes && out.push({ id, format, role, bytes, fields: fieldTable(format, bytes), fixup, real: true });

  const bz = fx("amd64/bzImage");
  if (bz) {
    // Debian's bzImage head; syssize, pref_address and init_size adjusted so it fits the fuzz RAM.
    const setup = ((bz[0x1f1] || 4) + 1) * 512;
    poke(bz, 0x1f4, 4, Math.floor((bz.length - setup) / 16));
    poke(bz, 0x258, 8, 0x200000n);
    poke(bz, 0x260, 4, 0x100000);
    poke(bz, 0x24c, 4, Math.max(0, bz.length - setup - new DataView(bz.buffer).getUint32(0x248, true))); // payload_length
    add("bzimage-debian-head", "bzimage", "kernel", bz);
    add("bzimage-debian-raw-head", "bzimage", "kernel", fx("amd64/bzImage", 0x4000));
  }
  const img = fx("arm64/Image");
  if (img) {
    poke(img, 16, 8, 0x20000n); // image_size
    add("arm64-debian-head", "arm64-image", "kernel", img);
    const gz = b.gzip(img).bytes;
    add("gzip-debian-image-head", "gzip", "kernel", gz, "gzip");
    add("zboot-debian-image-head", "efi-zboot", "kernel", b.zboot(gz).bytes);
    for (const [f, comp, data] of [["arm64/uImage", 0, img], ["arm64/uImage.gz", 1, gz], ["arm64/uImage-noload", 0, img]]) {
      const h = fx(f, 64);
      if (!h) continue;
      const u = b.concat(h, data);
      poke(u, 12, 4, data.length, false);
      u[31] = comp;
      b.fixUImage(u, true);
      add(`uimage-debian-${f.split("/")[1]}`, "uimage", "kernel", u, "uimage");
    }
  }
  const z = fx("armhf/zImage");
  if (z) {
    const start = new DataView(z.buffer).getUint32(0x28, true);
    poke(z, 0x2c, 4, start + z.length);
    add("zimage-debian-head", "zimage", "kernel", z);
    const h = fx("armhf/uImage", 64);
    if (h) {
      const u = b.concat(h, z);
      poke(u, 12, 4, z.length, false);
      b.fixUImage(u, true);
      add("uimage-debian-armhf", "uimage", "kernel", u, "uimage");
    }
  }
  add("fdt-tiny-arm", "fdt", "module", fx("dtb/tiny-arm.dtb"));
  add("cpio-initrd", "cpio", "cpio", fx("initrd/initrd.cpio"));
  add("gzip-initrd", "gzip", "module", fx("initrd/initrd.cpio.gz"), "gzip");
  add("uimage-uinitrd", "uimage", "module", fx("initrd/uInitrd"), "uimage");
  // The bundled examples (always in the repo).
  const ex = (p) => tryRead(join(ROOT, "examples", "images", p), 1 << 20);
  add("elf-example-linux", "elf", "kernel", ex("linux"));
  add("fdt-example", "fdt", "module", ex("linux.dtb"));
  add("gzip-example-rootfs", "gzip", "module", ex("rootfs.cpio.gz"), "gzip");
  add("cpio-example-images", "cpio", "cpio", ex("images.cpio"));
  return out;
}

/** Seeds built from the specs (always available, deterministic). */
function craftedSeeds() {
  const out = [];
  const add = (id, format, role, r, fixup = null) => out.push({ id, format, role, bytes: r.bytes, fields: r.fields, fixup });
  const F = b.filler;

  add("mb-aout", "multiboot", "kernel", b.multibootAout(), "multiboot");
  add("mb-aout-deep", "multiboot", "kernel", b.multibootAout({ hoff: 0x1fe0, len: 0x3000, load_end_addr: 0, bss_end_addr: 0 }), "multiboot");
  add("mb-aout-video", "multiboot", "kernel", b.multibootAout({ flags: (1 << 16) | 0x7 }), "multiboot");
  add("mb-aout-top4g", "multiboot", "kernel", b.multibootAout({ load_addr: 0xfff00000, len: 0x1000, bss_end_addr: 0xffffff00 }), "multiboot");
  // Multiboot 2: address tag (plain, from the file's start, relocatable low/high, every optional
  // tag), ELF32 and ELF64 containers with information requests, entry override and relocation.
  const R = (min, max, align, pref) => ({ type: 10, u32: [min, max, align, pref] });
  add("mb2-aout", "multiboot2", "kernel", b.multiboot2Aout(), "multiboot2");
  add("mb2-aout-from-start", "multiboot2", "kernel", b.multiboot2Aout({ load_addr: 0xffffffff, header_addr: 0x100040, load_end_addr: 0, bss_end_addr: 0, entry_addr: 0x100100 }), "multiboot2");
  add("mb2-aout-reloc-low", "multiboot2", "kernel", b.multiboot2Aout({ extra: [R(0x80000, 0x40400000, 0x1000, 1)] }), "multiboot2");
  add("mb2-aout-reloc-high", "multiboot2", "kernel", b.multiboot2Aout({ extra: [R(0x100000, 0xfffff000, 0x200000, 2)] }), "multiboot2");
  add("mb2-aout-tags", "multiboot2", "kernel", b.multiboot2Aout({
    extra: [{ type: 1, u32: [1, 2, 3, 4, 6, 9, 21] }, { type: 1, flags: 1, u32: [5, 7, 8, 14, 15] }, { type: 4, flags: 1, u32: [3] }, { type: 5, flags: 1, u32: [1024, 768, 32] }, { type: 6 }, { type: 7 }, { type: 8, flags: 1, u32: [0x100100] }],
  }), "multiboot2");
  add("mb2-aout-top4g", "multiboot2", "kernel", b.multiboot2Aout({ load_addr: 0xfff00000, len: 0x1000, bss_end_addr: 0xffffff00, entry_addr: 0xfff00100 }), "multiboot2");
  {
    const h = (tags) => b.multiboot2({ hoff: 0, len: 0x100, tags }).bytes;
    const seg = (tags, seed) => b.concat(h(tags), F(0x200, seed));
    add("mb2-elf32", "multiboot2", "kernel", b.elf({ class: 32, machine: b.EM.i386, entry: 0xc0100010n, segments: [{ vaddr: 0xc0100000n, paddr: 0x100000n, data: seg([{ type: 1, u32: [1, 3, 6, 9] }], 31), memsz: 0x2000n }] }), "multiboot2");
    add("mb2-elf64", "multiboot2", "kernel", b.elf({ class: 64, machine: b.EM.x86_64, entry: 0x100010n, segments: [{ vaddr: 0x100000n, paddr: 0x100000n, data: seg([{ type: 3, u32: [0x100020] }, { type: 6 }], 32) }] }), "multiboot2");
    add("mb2-elf64-reloc", "multiboot2", "kernel", b.elf({ class: 64, machine: b.EM.x86_64, entry: 0x200010n, segments: [{ vaddr: 0x200000n, paddr: 0x200000n, data: seg([R(0x100000, 0x40400000, 0x200000, 0)], 33) }] }), "multiboot2");
  }
  add("mb-elf", "multiboot", "kernel", b.multibootElf(), "multiboot");
  add("mb-elf-identity", "multiboot", "kernel", b.multibootElf({ vaddr: 0x100000n, paddr: 0x100000n }), "multiboot");
  {
    // The same Multiboot header inside an ELF64 and a big-endian ELF32: both must be refused.
    const mbh = new Uint8Array(0x40);
    new DataView(mbh.buffer).setUint32(0, b.MB_MAGIC, true);
    new DataView(mbh.buffer).setUint32(4, 3, true);
    new DataView(mbh.buffer).setUint32(8, (-(b.MB_MAGIC + 3)) >>> 0, true);
    add("mb-elf64", "multiboot", "kernel", b.elf({ class: 64, machine: b.EM.x86_64, segments: [{ vaddr: 0x100000n, paddr: 0x100000n, data: b.concat(mbh, F(0x100, 19)) }] }), "multiboot");
    add("mb-elf32-arm", "multiboot", "kernel", b.elf({ class: 32, machine: b.EM.arm, segments: [{ vaddr: 0x100000n, paddr: 0x100000n, data: b.concat(mbh, F(0x100, 20)) }] }), "multiboot");
  }

  add("elf64-x86-rela", "elf", "kernel", b.elf({ class: 64, machine: b.EM.x86_64, entry: 0x100010n, relocs: 4, segments: [{ vaddr: 0x100000n, paddr: 0x100000n, data: F(0x300, 1), memsz: 0x2000n }] }));
  add("elf64-x86-relocs", "elf", "kernel", b.elf({ class: 64, machine: b.EM.x86_64, entry: 0xffffffff81000000n, segments: [{ vaddr: 0xffffffff81000000n, paddr: 0x100000n, data: F(0x400, 2), memsz: 0x1000n }], x86relocs: [0x81000010, 0x81000020] }));
  add("elf32-i386-rel", "elf", "kernel", b.elf({ class: 32, machine: b.EM.i386, relocs: 3, segments: [{ vaddr: 0x100000n, paddr: 0x100000n, data: F(0x200, 3) }, { vaddr: 0x102000n, paddr: 0x102000n, data: F(0x100, 4), memsz: 0x800n, flags: 6 }], x86relocs: [0x100008] }));
  add("elf64-aarch64", "elf", "kernel", b.elf({ class: 64, machine: b.EM.aarch64, entry: 0x40080000n, relocs: 2, segments: [{ vaddr: 0x40080000n, paddr: 0x40080000n, data: F(0x500, 5) }, { vaddr: 0x40090000n, paddr: 0x40090000n, data: F(0x80, 6), memsz: 0x3000n, flags: 6 }] }));
  add("elf64-riscv-dyn", "elf", "kernel", b.elf({ class: 64, machine: b.EM.riscv, type: 3, entry: 0x80n, relocs: 5, segments: [{ vaddr: 0n, paddr: 0n, data: F(0x400, 7), memsz: 0x1000n }] }));
  add("elf32-arm-be", "elf", "kernel", b.elf({ class: 32, be: true, machine: b.EM.arm, segments: [{ vaddr: 0x40008000n, paddr: 0x40008000n, data: F(0x200, 8) }] }));
  add("elf64-mips-be", "elf", "kernel", b.elf({ class: 64, be: true, machine: b.EM.mips, segments: [{ vaddr: 0xffffffff80100000n, paddr: 0x100000n, data: F(0x200, 9), memsz: 0x400n }] }));
  add("elf64-empty-seg", "elf", "kernel", b.elf({ class: 64, segments: [{ vaddr: 0x100000n, paddr: 0x100000n, data: new Uint8Array(0), memsz: 0x1000n }, { type: 4, vaddr: 0n, paddr: 0n, data: F(0x20, 10) }] }));
  add("elf64-near-2^53", "elf", "kernel", b.elf({ class: 64, machine: b.EM.aarch64, segments: [{ vaddr: BigInt(2 ** 53 - 0x200000), paddr: BigInt(2 ** 53 - 0x200000), data: F(0x100, 11), memsz: 0x1000n }] }));
  add("elf64-cross-4g", "elf", "kernel", b.elf({ class: 64, segments: [{ vaddr: 0xfffff000n, paddr: 0xfffff000n, data: F(0x1800, 12) }] }));

  add("bz-default", "bzimage", "kernel", b.bzImage());
  add("bz-kernel-info", "bzimage", "kernel", b.bzImage({ kernelInfo: { setup_type_max: 0x80000009 } }));
  // PVH kernels (src/formats/elf-notes.ts): notes in several PT_NOTEs, 4- and 8-aligned, several per segment.
  {
    const le64 = (v) => { const d = new Uint8Array(8); new DataView(d.buffer).setBigUint64(0, BigInt(v), true); return d; };
    const le32 = (v) => { const d = new Uint8Array(4); new DataView(d.buffer).setUint32(0, v, true); return d; };
    const prop = b.elfNotes([{ name: "GNU", type: 5, desc: F(16, 40) }], { align: 8 });
    const xen = b.elfNotes([{ name: "Xen", type: 6, desc: b.ascii("linux\0") }, { name: "GNU", type: 3, desc: F(20, 41) }, { name: "Xen", type: 18, desc: le64(0x100010) }]);
    const xen8 = b.elfNotes([{ name: "Xen", type: 7, desc: b.ascii("2.6\0") }, { name: "Xen", type: 18, desc: le64(0x100010) }], { align: 8 });
    const xen32 = b.elfNotes([{ name: "Xen", type: 18, desc: le32(0x100010) }]);
    const withNotes = (id, cls, machine, blocks) => {
      const r = b.elf({ class: cls, machine, entry: 0x100000n, segments: [{ vaddr: 0x100000n, paddr: 0x100000n, data: F(0x200, 42), memsz: 0x1000n }, ...blocks.map(([blk, align]) => ({ type: 4, flags: 4, vaddr: 0n, paddr: 0n, data: blk.bytes, align: BigInt(align) }))] });
      // The note fields, at the file offset each block landed at.
      const fields = [...r.fields];
      blocks.forEach(([blk], k) => {
        const at = b.indexOf(r.bytes, blk.bytes);
        if (at >= 0) for (const f of blk.fields) fields.push({ ...f, name: `seg${k + 1}.${f.name}`, off: at + f.off });
      });
      out.push({ id, format: "elf", role: "kernel", bytes: r.bytes, fields, fixup: null, pvh: true });
    };
    withNotes("elf64-pvh-two-notes", 64, b.EM.x86_64, [[prop, 8], [xen, 4]]);
    withNotes("elf64-pvh-8-aligned", 64, b.EM.x86_64, [[xen8, 8]]);
    withNotes("elf32-pvh", 32, b.EM.i386, [[xen32, 4]]);
  }
  add("bz-fixed", "bzimage", "kernel", b.bzImage({ relocatable_kernel: 0, pref_address: 0x100000n, init_size: 0x80000 }));
  add("bz-2.04", "bzimage", "kernel", b.bzImage({ version: 0x0204, jump: 0x30, setup_sects: 1 }));
  add("bz-32bit", "bzimage", "kernel", b.bzImage({ xloadflags: 0, init_size: 0 }));

  const a64 = b.arm64Image({ len: 0x2000 });
  add("arm64", "arm64-image", "kernel", a64);
  add("arm64-legacy", "arm64-image", "kernel", b.arm64Image({ image_size: 0n, text_offset: 0x80000n }));
  add("arm64-textoff", "arm64-image", "kernel", b.arm64Image({ text_offset: 0x80000n, image_size: 0x10000n }));
  add("arm64-short-size", "arm64-image", "kernel", b.arm64Image({ image_size: 0x100n }));
  add("riscv", "riscv-image", "kernel", b.riscvImage());
  add("riscv-text0", "riscv-image", "kernel", b.riscvImage({ text_offset: 0n, image_size: 0x8000n }));

  add("zimage-pie", "zimage", "kernel", b.zImage());
  add("zimage-fixed", "zimage", "kernel", b.zImage({ start: 0x40008000 }));
  const dtb = b.fdt(b.sampleTree());
  add("zimage-dtb", "zimage", "kernel", b.zImage({ appendDtb: dtb.bytes }));
  add("zimage-top", "zimage", "kernel", b.zImage({ start: 0xffffd000 }));

  add("uimage-kernel", "uimage", "kernel", b.uImage(a64.bytes, { load: 0x40080000 }), "uimage");
  add("uimage-kernel-gz", "uimage", "kernel", b.uImage(b.gzip(a64.bytes).bytes, { load: 0x40080000, comp: b.IH.COMP_GZIP }), "uimage");
  add("uimage-noload", "uimage", "kernel", b.uImage(a64.bytes, { type: b.IH.KERNEL_NOLOAD, load: 0, ep: 0x40 }), "uimage");
  add("uimage-high", "uimage", "kernel", b.uImage(F(0x800, 13), { load: 0xffe00000, arch: b.IH.ARCH_ARM }), "uimage");
  add("uimage-ramdisk", "uimage", "module", b.uImage(b.gzip(F(0x400, 14)).bytes, { type: b.IH.RAMDISK, comp: b.IH.COMP_GZIP, load: 0 }), "uimage");
  add("uimage-fdt", "uimage", "module", b.uImage(dtb.bytes, { type: b.IH.FLATDT, load: 0 }), "uimage");

  add("zboot", "efi-zboot", "kernel", b.zboot(b.gzip(a64.bytes).bytes));
  add("zboot-riscv", "efi-zboot", "kernel", b.zboot(b.gzip(b.riscvImage({ text_offset: 0n }).bytes).bytes, { payload_offset: 0x40 }));

  const T = (t) => new TextEncoder().encode(t);
  add("uki-arm64", "uki", "kernel", b.uki([{ name: ".osrel", data: T('ID=fuzz\nNAME="Fuzz"\n') }, { name: ".ucode", data: F(0x80, 21) }, { name: ".initrd", data: F(0x300, 22) }, { name: ".dtb", data: dtb.bytes }, { name: ".linux", data: a64.bytes }]));
  add("uki-x86-cmdline", "uki", "kernel", b.uki([{ name: ".cmdline", data: T("console=ttyS0\n") }, { name: ".uname", data: T("6.1.0\n") }, { name: ".linux", data: b.bzImage({ kernelLen: 0x2000, init_size: 0x80000 }).bytes }]));
  add("uki-profiles", "uki", "kernel", b.uki([{ name: ".linux", data: a64.bytes }, { name: ".profile", data: T("ID=a\n") }, { name: ".initrd", data: F(0x100, 23) }, { name: ".profile", data: T("ID=b\nTITLE=B\n") }, { name: ".dtb", data: dtb.bytes }]));
  add("uki-vsize0", "uki", "kernel", b.uki([{ name: ".linux", data: a64.bytes, virtualSize: 0 }, { name: ".initrd", data: F(0x40, 24) }]));
  add("fdt", "fdt", "module", dtb);
  add("fdt-rsv", "fdt", "module", b.fdt(b.sampleTree(), { rsv: [[0x40000000n, 0x1000n], [0xffffffffffff0000n, 0x10000n]] }));
  add("fdt-v16-slack", "fdt", "module", b.fdt({ name: "", props: [["a", b.be32(1)]], children: [{ name: "n@1", props: [] }] }, { version: 16, slack: 0x40 }));

  add("gzip-arm64", "gzip", "kernel", b.gzip(a64.bytes), "gzip");
  add("gzip-elf", "gzip", "kernel", b.gzip(out.find((s) => s.id === "elf64-aarch64").bytes, { fname: "vmlinux", fhcrc: true }), "gzip");
  add("gzip-riscv", "gzip", "kernel", b.gzip(b.riscvImage({ text_offset: 0n }).bytes, { level: 1 }), "gzip");
  add("gzip-raw", "gzip", "module", b.gzip(F(0x3000, 15)), "gzip");
  add("gzip-stored", "gzip", "module", b.gzip(F(0x200, 16), { level: 0 }), "gzip");
  add("gzip-zeros-1m", "gzip", "kernel", b.gzip(new Uint8Array(1 << 20), { level: 9 }), "gzip");

  // One lane per codec: kernels compressed by the reference tools (some without checksums, so
  // mutants reach the decoder's own checks), as raw streams and inside zboot/uImage containers.
  const sizeAppend = (r, n) => ({ bytes: new Uint8Array([...r.bytes, n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24]), fields: [] });
  const img = a64.bytes;
  add("zstd-arm64", "zstd", "kernel", compress("zstd -q -c -3", img));
  add("zstd-nocheck-fcs", "zstd", "kernel", compress(`zstd -q -c -19 --no-check --stream-size=${img.length}`, img));
  add("zstd-module", "zstd", "module", compress("zstd -q -c -1", F(0x2000, 21)));
  add("lz4-frame", "lz4", "kernel", compress("lz4 -c -q -BD -B4 --no-frame-crc", img));
  add("lz4-legacy-size", "lz4", "kernel", sizeAppend(compress("lz4 -l -c -q", img), img.length));
  add("lzo-arm64", "lzo", "kernel", compress("lzop -c -1", img));
  add("lzo-nocheck", "lzo", "kernel", compress("lzop -c -9 --no-checksum", img));
  add("xz-arm64", "xz", "kernel", compress("xz -c --check=none", img));
  add("xz-crc64", "xz", "kernel", compress("xz -c -1 --check=crc64", img));
  add("bzip2-arm64", "bzip2", "kernel", compress("bzip2 -c -1", img));
  add("lzma-arm64", "lzma", "kernel", sizeAppend(compress("lzma -c", img), img.length));
  // zboot: size_append right after the payload, outside payload_size (Makefile.zboot)
  const zb = (r, type) => b.zboot(sizeAppend(r, img.length).bytes, { compression_type: type, payload_size: r.bytes.length });
  add("zboot-zstd", "efi-zboot", "kernel", zb(compress("zstd -q -c", img), "zstd22"));
  add("zboot-lz4", "efi-zboot", "kernel", zb(compress("lz4 -l -c -q", img), "lz4"));
  // U-Boot include/image.h IH_COMP_LZO 4, IH_COMP_ZSTD 6
  add("uimage-kernel-lzo", "uimage", "kernel", b.uImage(compress("lzop -c", img).bytes, { load: 0x40080000, comp: 4 }), "uimage");
  add("uimage-kernel-zstd", "uimage", "kernel", b.uImage(compress("zstd -q -c", img).bytes, { load: 0x40080000, comp: 6 }), "uimage");

  add("raw", "raw", "kernel", { bytes: F(0x1000, 17), fields: [] });
  add("raw-tiny", "raw", "module", { bytes: Uint8Array.of(0x90), fields: [] });
  add("raw-zeros", "raw", "module", { bytes: new Uint8Array(0x800), fields: [] });

  add("cpio", "cpio", "cpio", b.cpio([{ name: "linux", data: out.find((s) => s.id === "elf64-aarch64").bytes }, { name: "./linux.dtb", data: dtb.bytes }, { name: "dir", mode: 0o40755 }, { name: "initrd", data: b.gzip(F(0x100, 18)).bytes }]));
  return out;
}

let cache;
/** All seeds (crafted + real), or those of one format. */
export function seeds(format) {
  cache ??= [...craftedSeeds(), ...realSeeds()];
  return format ? cache.filter((s) => s.format === format) : cache;
}

export { zlib };
