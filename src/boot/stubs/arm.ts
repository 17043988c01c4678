// arm (A32) boot stub: for an emulator that can only set the PC. Entered in ARM state in SVC mode
// with the MMU off (reset state), it masks IRQ and FIQ, loads the booting.rst registers (r0 = 0,
// r1 = ~0: no machine type, the DTB describes the board; r2 = DTB) and jumps to the kernel.
// QEMU's hw/arm/boot.c bootloader (the arm32 variant) was the model; these words are ours
// (assembled with arm-linux-gnueabihf-as -march=armv7-a and checked against its objdump in
// test/boot/stubs.test.ts).
//
// Layout (28 bytes, 4-byte aligned base):
//   0x00  code (5 instructions)
//   0x14  .word dtb
//   0x18  .word kernel entry

export const ARM_STUB_SIZE = 0x1c;
export const ARM_STUB_ALIGN = 4;

const CODE = [
  0xf10c00c0, // 0x00  cpsid if          IRQ and FIQ masked (booting.rst: "All forms of interrupts must be disabled")
  0xe3a00000, // 0x04  mov   r0, #0      r0 = 0
  0xe3e01000, // 0x08  mvn   r1, #0      r1 = 0xffffffff: no machine type, boot by device tree
  0xe59f2000, // 0x0c  ldr   r2, [pc]    r2 = DTB (pc reads as 0x14 here)
  0xe59ff000, // 0x10  ldr   pc, [pc]    jump to the kernel entry at 0x18 (ARM state: bit 0 clear)
];

export function armStub(o: { dtb: bigint; entry: bigint }): Uint8Array {
  const out = new Uint8Array(ARM_STUB_SIZE);
  const dv = new DataView(out.buffer);
  CODE.forEach((w, i) => dv.setUint32(i * 4, w, true));
  dv.setUint32(0x14, Number(o.dtb), true);
  dv.setUint32(0x18, Number(o.entry), true);
  return out;
}
