// riscv boot stubs: for an emulator that can only set the PC (and start the hart in the right
// privilege level). Two variants, both position independent (auipc):
//
//   "M"  firmware placed by bootLinux or already in the machine (firmwareAt; OpenSBI
//        fw_dynamic): runs in M-mode at reset, masks
//        machine interrupts and jumps to the firmware with a0 = hart id, a1 = DTB,
//        a2 = fw_dynamic_info (OpenSBI docs/firmware/fw_dynamic.md); the firmware then enters
//        the kernel in S-mode. QEMU's hw/riscv/boot.c reset vector ("mrom.reset") was the model.
//   "S"  no firmware: the kernel needs an SBI implementation below it (boot.rst), which an M-mode
//        stub cannot provide, so this variant must be entered in S-mode by the emulator's own SBI
//        (QEMU: its OpenSBI, whose next stage is this stub; an emulator with SBI built in: its
//        reset state). It masks supervisor interrupts, clears satp (boot.rst: "$satp = 0") and
//        jumps to the kernel with a0 = hart id, a1 = DTB (a2 = 0).
//
// The hart id is a literal, not read from mhartid: S-mode cannot read it, and the DTB's
// /cpus and boot_cpuid_phys were written for this hart.
// These words are ours, assembled with riscv64-linux-gnu-as -mno-relax and checked against its
// objdump in test/boot/stubs.test.ts.
//
// Layout (32 bytes of code, then 4 xlen literals; base 8-byte aligned):
//   0x00  csrci {m,s}status, {MIE,SIE}
//   0x04  csrw  {mie,satp}, zero
//   0x08  auipc t0, 0                      t0 = base + 8
//   0x0c  l{d,w} a0, hart
//   0x10  l{d,w} a1, dtb
//   0x14  l{d,w} a2, a2 literal
//   0x18  l{d,w} t0, target
//   0x1c  jalr  zero, 0(t0)
//   0x20  literals: hart, dtb, a2, target (xlen bytes each)

export const RISCV_STUB_ALIGN = 8;
export const riscvStubSize = (xlen: 32 | 64) => 0x20 + 4 * (xlen / 8);

/** I-type load into `rd` from t0 (x5) + `off`: funct3 3 = ld, 2 = lw; opcode 0x03 LOAD. */
const load = (xlen: 32 | 64, rd: number, off: number) => ((off << 20) | (5 << 15) | ((xlen === 64 ? 3 : 2) << 12) | (rd << 7) | 0x03) >>> 0;

export function riscvStub(o: { xlen: 32 | 64; priv: "M" | "S"; hart: bigint; dtb: bigint; a2: bigint; target: bigint }): Uint8Array {
  const w = o.xlen / 8;
  // Literal i lies at base + 0x20 + i·w = t0 + 0x18 + i·w.
  const lit = (i: number) => 0x18 + i * w;
  const code = [
    o.priv === "M"
      ? 0x30047073 // csrci mstatus, 8     mstatus.MIE = 0
      : 0x10017073, // csrci sstatus, 2    sstatus.SIE = 0
    o.priv === "M"
      ? 0x30401073 // csrw  mie, zero      every machine interrupt source disabled
      : 0x18001073, // csrw  satp, zero    bare addressing: MMU off (boot.rst)
    0x00000297, // auipc t0, 0                 t0 = address of this instruction (base + 8)
    load(o.xlen, 10, lit(0)), // l{d,w} a0, 0x18(t0) / 0x18(t0)   a0 = hart id
    load(o.xlen, 11, lit(1)), // l{d,w} a1, 0x20(t0) / 0x1c(t0)   a1 = DTB
    load(o.xlen, 12, lit(2)), // l{d,w} a2, 0x28(t0) / 0x20(t0)   a2 = fw_dynamic_info (M) or 0 (S)
    load(o.xlen, 5, lit(3)), //  l{d,w} t0, 0x30(t0) / 0x24(t0)   t0 = firmware (M) or kernel (S) entry
    0x00028067, // jalr  zero, 0(t0)           jump, no link
  ];
  const out = new Uint8Array(riscvStubSize(o.xlen));
  const dv = new DataView(out.buffer);
  code.forEach((x, i) => dv.setUint32(i * 4, x, true));
  [o.hart, o.dtb, o.a2, o.target].forEach((v, i) => {
    if (w === 8) dv.setBigUint64(0x20 + i * 8, v, true);
    else dv.setUint32(0x20 + i * 4, Number(v & 0xffffffffn), true);
  });
  return out;
}
