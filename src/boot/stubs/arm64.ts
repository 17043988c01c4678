// arm64 boot stub: for an emulator that can only set the PC. Entered at EL1 or EL2 with the MMU
// off (reset state), it masks DAIF, loads the booting.rst registers (x0 = DTB, x1 = x2 = x3 = 0)
// and branches to the kernel. QEMU's hw/arm/boot.c bootloader_aarch64 was the model; these words
// are ours (assembled with aarch64-linux-gnu-as and checked against its objdump in
// test/boot/stubs.test.ts).
//
// Layout (48 bytes, 8-byte aligned base: the literals are 64-bit loads and, with the MMU off,
// memory is Device-nGnRnE, where an unaligned load faults):
//   0x00  code (8 instructions)
//   0x20  .quad dtb
//   0x28  .quad kernel entry

/** Bytes of the arm64 stub; its base must be 8-byte aligned. */
export const ARM64_STUB_SIZE = 0x30;
export const ARM64_STUB_ALIGN = 8;

const CODE = [
  0xd5034fdf, // 0x00  msr  daifset, #0xf   D, A, I, F masked (booting.rst: "All forms of interrupts must be masked")
  0x580000e0, // 0x04  ldr  x0, 0x20        x0 = physical address of the DTB (imm19 = 7 words ahead)
  0xaa1f03e1, // 0x08  mov  x1, xzr         x1 = 0 (reserved)
  0xaa1f03e2, // 0x0c  mov  x2, xzr         x2 = 0 (reserved)
  0xaa1f03e3, // 0x10  mov  x3, xzr         x3 = 0 (reserved)
  0x580000a4, // 0x14  ldr  x4, 0x28        x4 = kernel entry (imm19 = 5 words ahead)
  0xd61f0080, // 0x18  br   x4              jump to the kernel
  0xd503201f, // 0x1c  nop                  pad: the literals start 8-byte aligned
];

/** The stub's bytes (little-endian) for a DTB at `dtb` and a kernel entered at `entry`. */
export function arm64Stub(o: { dtb: bigint; entry: bigint }): Uint8Array {
  const out = new Uint8Array(ARM64_STUB_SIZE);
  const dv = new DataView(out.buffer);
  CODE.forEach((w, i) => dv.setUint32(i * 4, w, true));
  dv.setBigUint64(0x20, o.dtb, true);
  dv.setBigUint64(0x28, o.entry, true);
  return out;
}
