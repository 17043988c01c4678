#!/usr/bin/env node
// make-samples.mjs — generate the bundled sample guest images in ./images.
//
// Models the seL4 VMM "qemu-arm-virt" guest:
//   RAM     0x40000000, 256 MiB
//   kernel  linked at 0x40080000 (ELF64 AArch64, ET_EXEC)
//   initrd  loaded at 0x4d700000 (gzip'd cpio newc)
//   DTB     loaded at 0x4f000000
//
// Outputs (all deterministic, byte-identical on every run, each < 64 KiB):
//   images/linux           tiny ELF64 "kernel" (text + data + BSS tail)
//   images/rootfs.cpio.gz  gzip'd cpio newc initramfs
//   images/linux.dtb       flattened device tree describing the machine
//   images/images.cpio     uncompressed cpio newc archive of the three above,
//                          named linux / linux-initrd / linux-dtb (the seL4
//                          VMM's default names for its file-server archive)
//   images/hello-x86.mb    tiny i386 Multiboot 1 kernel (a.out-kludge header,
//                          loaded at 1 MiB) that prints a greeting and its
//                          command line on COM1: what the demo page boots in v86
//
// Node built-ins only; no external tools at run time.
// Usage: node examples/make-samples.mjs

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------------------
// Machine layout (qemu-arm-virt as configured by the seL4 VMM examples)
// ---------------------------------------------------------------------------
const RAM_BASE = 0x40000000n;
const RAM_SIZE = 0x10000000n; // 256 MiB
const KERNEL_TEXT = 0x40080000n;
const KERNEL_DATA = 0x40090000n;
const INITRD_BASE = 0x4d700000n;
const UART_BASE = 0x09000000;

// ---------------------------------------------------------------------------
// AArch64 instruction encoders (Arm ARM, "A64 Instruction Set Encoding").
// Only the handful the sample kernel uses.
// ---------------------------------------------------------------------------
const a64 = {
  // MOVZ <Xd|Wd>, #imm16, LSL #(hw*16): sf|10|100101|hw|imm16|Rd
  movz: (sf, rd, imm16, hw = 0) =>
    ((sf << 31) | (0b10100101 << 23) | (hw << 21) | (imm16 << 5) | rd) >>> 0,
  // STR <Wt>, [<Xn>, #imm]: size=10|111|0|01|00|imm12|Rn|Rt (unsigned offset)
  strW: (rt, rn, imm = 0) => ((0xb9000000 | ((imm >> 2) << 10) | (rn << 5) | rt) >>> 0),
  // WFE: HINT #2
  wfe: () => 0xd503205f,
  // B <label>: 000101|imm26 (offset in instructions, two's complement)
  b: (deltaInsns) => ((0x14000000 | (deltaInsns & 0x03ffffff)) >>> 0),
};

// ---------------------------------------------------------------------------
// ELF64 writer (System V ABI "gABI" ch. 4 Object Files / ch. 5 Program
// Loading, ELF-64 Object File Format 1.5, plus the AArch64 ELF supplement
// (IHI0056) for EM_AARCH64 = 183).
// Header 64 bytes, program headers 56 bytes each, section headers 64 bytes.
// ---------------------------------------------------------------------------
const PT_LOAD = 1;
const PF_X = 1, PF_W = 2, PF_R = 4;
const SHT_PROGBITS = 1, SHT_STRTAB = 3, SHT_NOBITS = 8;
const SHF_WRITE = 1n, SHF_ALLOC = 2n, SHF_EXECINSTR = 4n;

const alignUp = (n, a) => Math.ceil(n / a) * a;

/**
 * Build an ELF64 little-endian ET_EXEC image.
 * segments: [{ name, vaddr, offset, data, memsz, flags, align, bssName }]
 * Each segment becomes one PT_LOAD and one SHT_PROGBITS section; a BSS tail
 * (memsz > data.length) also gets an SHT_NOBITS section named bssName.
 */
function buildElf64({ machine, entry, segments }) {
  const EHSIZE = 64, PHENTSIZE = 56, SHENTSIZE = 64;
  const phoff = EHSIZE;

  // Section list: index 0 is the mandatory SHN_UNDEF null section.
  const sections = [{ name: '', type: 0, flags: 0n, addr: 0n, offset: 0, size: 0, align: 0 }];
  for (const s of segments) {
    sections.push({
      name: s.name, type: SHT_PROGBITS,
      flags: SHF_ALLOC | (s.flags & PF_W ? SHF_WRITE : 0n) | (s.flags & PF_X ? SHF_EXECINSTR : 0n),
      addr: s.vaddr, offset: s.offset, size: s.data.length, align: s.align,
    });
  }
  let fileEnd = Math.max(...segments.map((s) => s.offset + s.data.length));
  for (const s of segments) {
    if (s.memsz > s.data.length) {
      sections.push({
        name: s.bssName, type: SHT_NOBITS, flags: SHF_ALLOC | SHF_WRITE,
        addr: s.vaddr + BigInt(s.data.length), offset: fileEnd,
        size: s.memsz - s.data.length, align: 16,
      });
    }
  }
  // Section-name string table (.shstrtab): NUL first, then NUL-terminated names.
  const shstrtabIndex = sections.length;
  sections.push({ name: '.shstrtab', type: SHT_STRTAB, flags: 0n, addr: 0n, offset: fileEnd, size: 0, align: 1 });
  let strtab = '\0';
  for (const sec of sections.slice(1)) {
    sec.nameOff = strtab.length;
    strtab += sec.name + '\0';
  }
  const strBytes = Buffer.from(strtab, 'latin1');
  sections[shstrtabIndex].size = strBytes.length;
  sections[0].nameOff = 0;
  const shoff = alignUp(fileEnd + strBytes.length, 8);
  const total = shoff + SHENTSIZE * sections.length;

  const buf = Buffer.alloc(total);
  // e_ident: magic, ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_NONE, ABI version 0, padding.
  buf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0], 0);
  buf.writeUInt16LE(2, 16);                 // e_type = ET_EXEC
  buf.writeUInt16LE(machine, 18);           // e_machine
  buf.writeUInt32LE(1, 20);                 // e_version = EV_CURRENT
  buf.writeBigUInt64LE(entry, 24);          // e_entry
  buf.writeBigUInt64LE(BigInt(phoff), 32);  // e_phoff
  buf.writeBigUInt64LE(BigInt(shoff), 40);  // e_shoff
  buf.writeUInt32LE(0, 48);                 // e_flags
  buf.writeUInt16LE(EHSIZE, 52);            // e_ehsize
  buf.writeUInt16LE(PHENTSIZE, 54);         // e_phentsize
  buf.writeUInt16LE(segments.length, 56);   // e_phnum
  buf.writeUInt16LE(SHENTSIZE, 58);         // e_shentsize
  buf.writeUInt16LE(sections.length, 60);   // e_shnum
  buf.writeUInt16LE(shstrtabIndex, 62);     // e_shstrndx

  // Program headers (Elf64_Phdr). gABI requires p_offset % p_align == p_vaddr % p_align.
  segments.forEach((s, i) => {
    if (BigInt(s.offset % s.align) !== s.vaddr % BigInt(s.align)) {
      throw new Error(`segment ${s.name}: offset/vaddr not congruent modulo p_align`);
    }
    const o = phoff + i * PHENTSIZE;
    buf.writeUInt32LE(PT_LOAD, o);                         // p_type
    buf.writeUInt32LE(s.flags, o + 4);                     // p_flags
    buf.writeBigUInt64LE(BigInt(s.offset), o + 8);         // p_offset
    buf.writeBigUInt64LE(s.vaddr, o + 16);                 // p_vaddr
    buf.writeBigUInt64LE(s.vaddr, o + 24);                 // p_paddr (= vaddr: identity)
    buf.writeBigUInt64LE(BigInt(s.data.length), o + 32);   // p_filesz
    buf.writeBigUInt64LE(BigInt(s.memsz), o + 40);         // p_memsz (> filesz => zero-fill)
    buf.writeBigUInt64LE(BigInt(s.align), o + 48);         // p_align
    s.data.copy(buf, s.offset);
  });
  strBytes.copy(buf, fileEnd);

  // Section headers (Elf64_Shdr).
  sections.forEach((sec, i) => {
    const o = shoff + i * SHENTSIZE;
    buf.writeUInt32LE(sec.nameOff, o);                     // sh_name
    buf.writeUInt32LE(sec.type, o + 4);                    // sh_type
    buf.writeBigUInt64LE(sec.flags, o + 8);                // sh_flags
    buf.writeBigUInt64LE(sec.addr, o + 16);                // sh_addr
    buf.writeBigUInt64LE(BigInt(sec.offset), o + 24);      // sh_offset
    buf.writeBigUInt64LE(BigInt(sec.size), o + 32);        // sh_size
    buf.writeUInt32LE(0, o + 40);                          // sh_link
    buf.writeUInt32LE(0, o + 44);                          // sh_info
    buf.writeBigUInt64LE(BigInt(sec.align), o + 48);       // sh_addralign
    buf.writeBigUInt64LE(0n, o + 56);                      // sh_entsize
  });
  return buf;
}

/** The sample "kernel": print "hi\n" on the PL011 UART, then sleep forever. */
function makeKernel() {
  const code = [
    a64.movz(1, 1, UART_BASE >>> 16, 1), // mov  x1, #0x09000000   (PL011 UARTDR)
    a64.movz(0, 0, 0x68),                // mov  w0, #'h'
    a64.strW(0, 1),                      // str  w0, [x1]
    a64.movz(0, 0, 0x69),                // mov  w0, #'i'
    a64.strW(0, 1),                      // str  w0, [x1]
    a64.movz(0, 0, 0x0a),                // mov  w0, #'\n'
    a64.strW(0, 1),                      // str  w0, [x1]
    a64.wfe(),                           // 1: wfe
    a64.b(-1),                           //    b 1b
  ];
  // .text: 8 KiB. After the code, each padding word is 0xC0DE0000 | word index,
  // so a misplaced or truncated copy is easy to spot in a hex dump.
  const text = Buffer.alloc(0x2000);
  for (let i = 0; i < text.length / 4; i++) {
    text.writeUInt32LE(i < code.length ? code[i] : (0xc0de0000 | i) >>> 0, i * 4);
  }
  // .data: 4 KiB of a repeated ASCII line; the segment has a 0x6000-byte BSS tail.
  const data = Buffer.alloc(0x1000);
  data.fill('guest-image sample kernel data\n', 'latin1');

  return buildElf64({
    machine: 183, // EM_AARCH64
    entry: KERNEL_TEXT,
    segments: [
      // p_align 0x1000 (not 0x10000) keeps the file small: 0x10000-congruent
      // offsets for these vaddrs would be 0 (clashing with the headers) or >= 64 KiB.
      { name: '.text', vaddr: KERNEL_TEXT, offset: 0x1000, data: text, memsz: text.length,
        flags: PF_R | PF_X, align: 0x1000 },
      { name: '.data', vaddr: KERNEL_DATA, offset: 0x3000, data, memsz: data.length + 0x6000,
        flags: PF_R | PF_W, align: 0x1000, bssName: '.bss' },
    ],
  });
}

// ---------------------------------------------------------------------------
// cpio "newc" writer (Linux Documentation/driver-api/early-userspace/
// buffer-format.rst, "initramfs buffer format"; same as GNU cpio -H newc).
// Header: "070701" + 13 eight-digit hex fields = 110 bytes; then the name
// with its NUL, padded so header+name is a multiple of 4; then the data,
// padded to a multiple of 4. The archive ends with an entry "TRAILER!!!".
// ---------------------------------------------------------------------------
const S_IFDIR = 0o040000, S_IFREG = 0o100000;

function cpioEntry({ ino, mode, nlink, name, data = Buffer.alloc(0) }) {
  const nameBytes = Buffer.from(name + '\0', 'latin1');
  const fields = [
    ino,              // c_ino
    mode,             // c_mode (file type + permissions)
    0,                // c_uid
    0,                // c_gid
    nlink,            // c_nlink
    0,                // c_mtime (fixed for reproducibility)
    data.length,      // c_filesize
    0, 0,             // c_devmajor, c_devminor
    0, 0,             // c_rdevmajor, c_rdevminor
    nameBytes.length, // c_namesize (includes the NUL)
    0,                // c_check (always 0 for newc)
  ];
  const header = '070701' + fields.map((v) => v.toString(16).padStart(8, '0')).join('');
  const headLen = alignUp(header.length + nameBytes.length, 4);
  const out = Buffer.alloc(headLen + alignUp(data.length, 4));
  out.write(header, 0, 'latin1');
  nameBytes.copy(out, header.length);
  data.copy(out, headLen);
  return out;
}

/**
 * entries: [{ name, type: 'dir' | 'file', perm, data? }] in archive order.
 * Inodes count up from 1; the trailer uses ino 0 and nlink 1 (as GNU cpio does).
 */
function buildCpio(entries) {
  const parts = entries.map((e, i) => cpioEntry({
    ino: i + 1,
    mode: (e.type === 'dir' ? S_IFDIR : S_IFREG) | e.perm,
    nlink: e.type === 'dir' ? 2 : 1, // no nested subdirectories here: "." + entry in parent
    name: e.name,
    data: e.data,
  }));
  parts.push(cpioEntry({ ino: 0, mode: 0, nlink: 1, name: 'TRAILER!!!' }));
  return Buffer.concat(parts);
}

function makeInitrd() {
  const init = [
    '#!/bin/sh',
    '# guest-image sample initrd: /init run by the kernel (rdinit=/init).',
    '# A real rootfs would put busybox in /bin; this one only shows the layout.',
    'mount -t proc proc /proc',
    'mount -t sysfs sysfs /sys',
    'echo "hello from the guest-image sample initrd"',
    'exec /bin/sh',
    '',
  ].join('\n');
  const cpio = buildCpio([
    { name: 'bin', type: 'dir', perm: 0o755 },
    { name: 'dev', type: 'dir', perm: 0o755 },
    { name: 'proc', type: 'dir', perm: 0o755 },
    { name: 'sys', type: 'dir', perm: 0o755 },
    { name: 'init', type: 'file', perm: 0o755, data: Buffer.from(init, 'latin1') },
    { name: 'etc', type: 'dir', perm: 0o755 },
    { name: 'etc/hostname', type: 'file', perm: 0o644, data: Buffer.from('guest-image\n', 'latin1') },
  ]);
  // Node's gzip header is fixed: MTIME 0, OS 3 (unix), no file name => deterministic.
  return gzipSync(cpio, { level: 9 });
}

// ---------------------------------------------------------------------------
// Flattened devicetree writer (Devicetree Specification v0.4, chapter 5
// "Flattened Devicetree (DTB) Format"). All integers big-endian.
//   5.2 header (40 bytes, version 17 / last_comp_version 16)
//   5.3 memory reservation block: 8-byte aligned, (address, size) u64 pairs,
//       terminated by an all-zero entry
//   5.4 structure block: 4-byte aligned tokens FDT_BEGIN_NODE (1) + name,
//       FDT_END_NODE (2), FDT_PROP (3) + len + nameoff + value, FDT_NOP (4),
//       FDT_END (9)
//   5.5 strings block: NUL-terminated property names (deduplicated here)
// ---------------------------------------------------------------------------
const FDT_MAGIC = 0xd00dfeed;
const FDT_BEGIN_NODE = 1, FDT_END_NODE = 2, FDT_PROP = 3, FDT_END = 9;

// Property value helpers (Devicetree Spec 2.2.4 "Property Values").
const u32s = (...vals) => {
  const b = Buffer.alloc(4 * vals.length);
  vals.forEach((v, i) => b.writeUInt32BE(Number(v) >>> 0, 4 * i));
  return b;
};
const u64s = (...vals) => {
  const b = Buffer.alloc(8 * vals.length);
  vals.forEach((v, i) => b.writeBigUInt64BE(BigInt(v), 8 * i));
  return b;
};
const str = (s) => Buffer.from(s + '\0', 'latin1');
const strList = (...ss) => Buffer.from(ss.map((s) => s + '\0').join(''), 'latin1');

/**
 * node: { name, props: [[name, Buffer], ...], children: [node, ...] }
 * Root node name is ''.
 */
function buildFdt(root, { bootCpu = 0 } = {}) {
  const struct = [];
  let strings = '';
  const stringOff = new Map();
  const nameOff = (name) => {
    if (!stringOff.has(name)) {
      stringOff.set(name, strings.length);
      strings += name + '\0';
    }
    return stringOff.get(name);
  };
  const pad4 = (b) => Buffer.concat([b, Buffer.alloc(alignUp(b.length, 4) - b.length)]);

  const emit = (node) => {
    struct.push(u32s(FDT_BEGIN_NODE), pad4(str(node.name)));
    for (const [name, value] of node.props) {
      struct.push(u32s(FDT_PROP, value.length, nameOff(name)), pad4(value));
    }
    for (const child of node.children ?? []) emit(child);
    struct.push(u32s(FDT_END_NODE));
  };
  emit(root);
  struct.push(u32s(FDT_END));

  const structBlock = Buffer.concat(struct);
  const stringsBlock = Buffer.from(strings, 'latin1');
  const rsvmap = Buffer.alloc(16); // no reservations: just the terminating zero entry

  const HEADER = 40;
  const offRsvmap = alignUp(HEADER, 8);
  const offStruct = alignUp(offRsvmap + rsvmap.length, 4);
  const offStrings = offStruct + structBlock.length;
  const totalsize = offStrings + stringsBlock.length;

  const header = u32s(
    FDT_MAGIC,            // magic
    totalsize,            // totalsize
    offStruct,            // off_dt_struct
    offStrings,           // off_dt_strings
    offRsvmap,            // off_mem_rsvmap
    17,                   // version
    16,                   // last_comp_version
    bootCpu,              // boot_cpuid_phys
    stringsBlock.length,  // size_dt_strings
    structBlock.length,   // size_dt_struct
  );
  const out = Buffer.alloc(totalsize);
  header.copy(out, 0);
  rsvmap.copy(out, offRsvmap);
  structBlock.copy(out, offStruct);
  stringsBlock.copy(out, offStrings);
  return out;
}

function makeDtb(initrdSize) {
  const initrdEnd = INITRD_BASE + BigInt(initrdSize);
  return {
    initrdEnd,
    dtb: buildFdt({
      name: '',
      props: [
        ['#address-cells', u32s(2)],
        ['#size-cells', u32s(2)],
        ['compatible', str('linux,dummy-virt')],
        ['model', str('guest-image sample')],
      ],
      children: [
        {
          name: 'chosen',
          props: [
            ['bootargs', str('console=ttyAMA0 rdinit=/init')],
            ['linux,initrd-start', u64s(INITRD_BASE)],
            ['linux,initrd-end', u64s(initrdEnd)],
            ['stdout-path', str('/pl011@9000000')],
          ],
        },
        {
          name: 'memory@40000000',
          props: [
            ['device_type', str('memory')],
            ['reg', u64s(RAM_BASE, RAM_SIZE)],
          ],
        },
        {
          name: 'cpus',
          props: [
            ['#address-cells', u32s(1)],
            ['#size-cells', u32s(0)],
          ],
          children: [
            {
              name: 'cpu@0',
              props: [
                ['device_type', str('cpu')],
                ['compatible', str('arm,cortex-a53')],
                ['reg', u32s(0)],
                ['enable-method', str('psci')],
              ],
            },
          ],
        },
        {
          name: 'psci',
          props: [
            ['compatible', str('arm,psci-1.0')],
            ['method', str('hvc')],
          ],
        },
        {
          name: 'pl011@9000000',
          props: [
            ['compatible', strList('arm,pl011', 'arm,primecell')],
            ['reg', u64s(UART_BASE, 0x1000)],
          ],
        },
      ],
    }),
  };
}

// ---------------------------------------------------------------------------
// x86 sample: a Multiboot 1 kernel, hand-encoded i386 machine code
// ---------------------------------------------------------------------------
// GNU Multiboot Specification 0.6.96: 3.1.1 (the header lies in the first 8 KiB, 32-bit aligned),
// 3.1.2 (magic 0x1BADB002, flags, checksum; flags bit 16 = the address fields at offsets 12..28
// are valid, so the file needs no ELF: it is loaded verbatim at load_addr), 3.2 (the machine
// state on entry: 32-bit protected mode, flat segments, EAX = 0x2BADB002, EBX = the info
// structure, ESP undefined), 3.3 (info: flags at +0, bit 2 = cmdline valid, cmdline at +16).
// The code sets up a stack, prints GREETING then the command line and CRLF on COM1 (a 16550 at
// I/O port 0x3F8, polling LSR bit 5 "transmitter holding register empty" before each byte) and
// halts. Encodings: Intel SDM vol. 2 (opcode in the comment next to each instruction).
const MB_LOAD = 0x100000; // 1 MiB: conventional RAM above the BIOS/VGA hole on every PC
const MB_HEADER_SIZE = 32; // magic, flags, checksum + header_addr … entry_addr
const MB_STACK = 0x1000; // bytes of BSS after the file, used as the stack
export const X86_GREETING = 'Hello from the guest-image x86 sample kernel, booted in v86!';

/** A tiny two-pass i386 assembler: items are raw bytes, labels, or an opcode with a label operand. */
function assembleI386(items, origin, symbols = {}) {
  const size = (it) => (it.label !== undefined ? 0 : it.bytes ? it.bytes.length : it.op.length + (it.rel8 !== undefined ? 1 : 4));
  const at = new Map(Object.entries(symbols));
  let pc = origin;
  for (const it of items) {
    if (it.label !== undefined) at.set(it.label, pc);
    pc += size(it);
  }
  const out = Buffer.alloc(pc - origin);
  pc = origin;
  for (const it of items) {
    const o = pc - origin;
    if (it.bytes) Buffer.from(it.bytes).copy(out, o);
    else if (it.op) {
      Buffer.from(it.op).copy(out, o);
      const end = pc + size(it);
      const target = it.rel8 ?? it.rel32 ?? it.abs32;
      if (!at.has(target)) throw new Error(`x86 sample: no label ${target}`);
      const t = at.get(target);
      if (it.rel8 !== undefined) {
        const d = t - end;
        if (d < -128 || d > 127) throw new Error(`x86 sample: rel8 to ${target} out of range`);
        out.writeInt8(d, o + it.op.length);
      } else if (it.rel32 !== undefined) out.writeInt32LE(t - end, o + it.op.length);
      else out.writeUInt32LE(t, o + it.op.length);
    }
    pc += size(it);
  }
  return out;
}

function makeX86Kernel() {
  const code = [
    { label: 'start' },
    { bytes: [0xfa] }, //                                cli
    { op: [0xbc], abs32: 'stack_top' }, //               mov esp, stack_top
    { op: [0xbe], abs32: 'greeting' }, //                mov esi, greeting
    { op: [0xe8], rel32: 'puts' }, //                    call puts
    { bytes: [0xf6, 0x03, 0x04] }, //                    test byte [ebx], 4      ; info flags bit 2: cmdline
    { op: [0x74], rel8: 'eol' }, //                      jz eol
    { bytes: [0x8b, 0x73, 0x10] }, //                    mov esi, [ebx+16]       ; info->cmdline
    { op: [0xe8], rel32: 'puts' }, //                    call puts
    { label: 'eol' },
    { op: [0xbe], abs32: 'crlf' }, //                    mov esi, crlf
    { op: [0xe8], rel32: 'puts' }, //                    call puts
    { label: 'halt' },
    { bytes: [0xf4] }, //                                hlt                     ; IF = 0: stays here
    { op: [0xeb], rel8: 'halt' }, //                     jmp halt
    { label: 'puts' }, //                                ; the NUL-terminated string at ESI
    { bytes: [0xac] }, //                                lodsb
    { bytes: [0x84, 0xc0] }, //                          test al, al
    { op: [0x74], rel8: 'puts_ret' }, //                 jz puts_ret
    { op: [0xe8], rel32: 'putc' }, //                    call putc
    { op: [0xeb], rel8: 'puts' }, //                     jmp puts
    { label: 'puts_ret' },
    { bytes: [0xc3] }, //                                ret
    { label: 'putc' }, //                                ; AL to COM1
    { bytes: [0x88, 0xc4] }, //                          mov ah, al
    { bytes: [0x66, 0xba, 0xfd, 0x03] }, //              mov dx, 0x3FD           ; line status register
    { label: 'putc_wait' },
    { bytes: [0xec] }, //                                in al, dx
    { bytes: [0xa8, 0x20] }, //                          test al, 0x20           ; THR empty
    { op: [0x74], rel8: 'putc_wait' }, //                jz putc_wait
    { bytes: [0x66, 0xba, 0xf8, 0x03] }, //              mov dx, 0x3F8           ; transmit holding register
    { bytes: [0x88, 0xe0] }, //                          mov al, ah
    { bytes: [0xee] }, //                                out dx, al
    { bytes: [0xc3] }, //                                ret
    { label: 'greeting' },
    { bytes: [...Buffer.from(X86_GREETING + '\r\nCommand line: ', 'latin1'), 0] },
    { label: 'crlf' },
    { bytes: [0x0d, 0x0a, 0] },
  ];
  // Instruction sizes do not depend on label values: assemble once to learn the size, then again
  // with the stack top (the end of the BSS that follows the file) known.
  const codeAt = MB_LOAD + MB_HEADER_SIZE;
  const fileEnd = alignUp(codeAt + assembleI386(code, codeAt, { stack_top: 0 }).length, 16);
  const stackTop = fileEnd + MB_STACK;
  const img = assembleI386(code, codeAt, { stack_top: stackTop });
  const entry = MB_LOAD + MB_HEADER_SIZE; // 'start' is the first item
  const flags = 0x00010000; // bit 16 only: addresses in the header, no requirements
  const magic = 0x1badb002;
  const header = Buffer.alloc(MB_HEADER_SIZE);
  header.writeUInt32LE(magic, 0);
  header.writeUInt32LE(flags, 4);
  header.writeUInt32LE((-(magic + flags)) >>> 0, 8); // magic + flags + checksum ≡ 0 (mod 2^32)
  header.writeUInt32LE(MB_LOAD, 12); //                header_addr: the header is the file's first byte
  header.writeUInt32LE(MB_LOAD, 16); //                load_addr
  header.writeUInt32LE(fileEnd, 20); //                load_end_addr: the whole (padded) file
  header.writeUInt32LE(stackTop, 24); //               bss_end_addr: zeroed stack after the file
  header.writeUInt32LE(entry, 28); //                  entry_addr
  const file = Buffer.alloc(fileEnd - MB_LOAD);
  header.copy(file, 0);
  img.copy(file, MB_HEADER_SIZE);
  return file;
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------
const outDir = join(dirname(fileURLToPath(import.meta.url)), 'images');
mkdirSync(outDir, { recursive: true });

const kernel = makeKernel();
const initrd = makeInitrd();
const { dtb, initrdEnd } = makeDtb(initrd.length);
const archive = buildCpio([
  { name: 'linux', type: 'file', perm: 0o644, data: kernel },
  { name: 'linux-initrd', type: 'file', perm: 0o644, data: initrd },
  { name: 'linux-dtb', type: 'file', perm: 0o644, data: dtb },
]);

const outputs = [
  ['linux', kernel],
  ['rootfs.cpio.gz', initrd],
  ['linux.dtb', dtb],
  ['images.cpio', archive],
  ['hello-x86.mb', makeX86Kernel()],
];
for (const [name, data] of outputs) {
  if (data.length >= 64 * 1024) throw new Error(`${name} is ${data.length} bytes (limit 64 KiB)`);
  const path = join(outDir, name);
  let existing;
  try { existing = readFileSync(path); } catch { /* not there yet */ }
  if (!existing || !existing.equals(data)) writeFileSync(path, data); // idempotent
  const sha = createHash('sha256').update(data).digest('hex').slice(0, 16);
  console.log(`${name.padEnd(16)} ${String(data.length).padStart(6)}  sha256:${sha}`);
}
