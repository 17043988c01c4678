// The CPU state a Linux kernel's first instruction sees on arm64, arm and riscv, as plain data a
// VMM (or an emulator adapter) can load without decoding anything: the PC, every register the
// boot protocol defines (zeros included), the privilege level, and what the protocol requires of
// interrupts, the MMU and the caches.
//   arm64  Documentation/arch/arm64/booting.rst §4 "Call the kernel image"
//   arm    Documentation/arch/arm/booting.rst §7 "Calling the kernel image"
//   riscv  Documentation/arch/riscv/boot.rst "Pre-kernel Requirements and Constraints";
//          OpenSBI docs/firmware/fw_dynamic.md for the firmware hand-off (a2 = fw_dynamic_info)
// With a boot stub (stubs/*.ts) `pc` is the stub's address: the stub loads `regs` itself and
// jumps to `target`, so an emulator that can only set the PC (and, on riscv, start in the right
// privilege level) boots. Without a stub `pc` = `target` and the VMM sets `regs`.

/** Where the stub was placed (present only when bootLinux was asked for one). */
export interface BootStub {
  paddr: number;
  size: number;
}

interface CpuStateBase {
  /** Human-readable summary ("EL1h, MMU off, …"). Kept from the first version of the contract. */
  mode: string;
  /** Guest physical address of the first instruction to run: the stub's when there is one, else `target`. */
  pc: bigint;
  /** Where control reaches the kernel (or, riscv with firmware, the firmware): = pc without a stub. */
  target: bigint;
  /** Protocol registers at `target`, zeros included. A stub loads them; without one the VMM must. */
  regs: Record<string, bigint>;
  /** Every protocol masks (arm64 DAIF, arm I/F, riscv xIE) or requires off interrupts at entry. */
  interruptsMasked: true;
  /** MMU off (arm64/arm SCTLR.M = 0, riscv satp = 0). */
  mmu: false;
  /** Data cache off (arm64/arm SCTLR.C = 0). riscv has no architectural cache switch: false too. */
  dataCache: false;
  stub?: BootStub;
}

/** booting.rst: x0 = DTB, x1–x3 = 0 ("reserved for future use"), DAIF masked, MMU and D-cache off. */
export interface Arm64CpuState extends CpuStateBase {
  arch: "arm64";
  /**
   * Exception level: 1. booting.rst allows EL2 ("RECOMMENDED" to use virtualisation) or EL1; a
   * VMM's vCPU (KVM, QEMU virt without virtualization=on) starts at EL1, and that is what we state.
   */
  el: 1;
  /** PSTATE (SPSR_EL1 layout) at entry: D, A, I, F masked (bits 9–6), M[3:0] = 0b0101 EL1h → 0x3c5. */
  pstate: bigint;
  regs: { x0: bigint; x1: bigint; x2: bigint; x3: bigint };
}

/** booting.rst: r0 = 0, r1 = machine type (~0: device tree), r2 = DTB; SVC, IRQ/FIQ off, ARM state, MMU and D-cache off. */
export interface ArmCpuState extends CpuStateBase {
  arch: "arm";
  /** Processor mode at entry (booting.rst: SVC; HYP is allowed on CPUs with the virtualisation extensions). */
  cpuMode: "svc";
  /** CPSR at entry: M = 0b10011 (SVC), T = 0 (ARM state), F, I, A set → 0x1d3 (QEMU's reset value, less the flags). */
  cpsr: bigint;
  /** Instruction set at entry: the zImage entry and the stubs are A32 code. */
  isa: "arm";
  regs: { r0: bigint; r1: bigint; r2: bigint };
}

/**
 * boot.rst: a0 = hart id, a1 = device tree, satp = 0, the kernel entered in S-mode with an SBI
 * implementation below it. With firmware (OpenSBI fw_dynamic) the CPU starts in M-mode at the
 * firmware with a2 = fw_dynamic_info, and the firmware enters the kernel in S-mode.
 */
export interface RiscvCpuState extends CpuStateBase {
  arch: "riscv64" | "riscv32";
  /** Privilege level at `pc`: "M" (firmware given: it runs first) or "S" (the kernel itself). */
  priv: "M" | "S";
  /**
   * "required": the kernel is entered in S-mode and nothing we placed implements SBI: the
   * emulator must (QEMU: its own OpenSBI; an emulator's built-in SBI). "firmware": the firmware
   * we placed is the SBI implementation.
   */
  sbi: "required" | "firmware";
  /**
   * With firmware (priv "M"): "placed" when bootLinux placed it (`firmware`), "external" when it
   * was already in the machine (`firmwareAt`: QEMU virt's own OpenSBI with its default -bios).
   */
  firmware?: "placed" | "external";
  /** satp at entry: 0 (bare, MMU off). */
  satp: bigint;
  regs: { a0: bigint; a1: bigint; a2?: bigint };
}

export type ArmCpuStateVariant = Arm64CpuState | ArmCpuState | RiscvCpuState;

/** arm64 PSTATE at entry: PSR_D|PSR_A|PSR_I|PSR_F (0x3c0) | PSR_MODE_EL1h (0x5) — KVM's reset value for a vCPU. */
export const ARM64_ENTRY_PSTATE = 0x3c5n;
/** arm CPSR at entry: A (0x100) | I (0x80) | F (0x40) | SVC mode (0x13); T (0x20) clear. */
export const ARM_ENTRY_CPSR = 0x1d3n;

const common = { interruptsMasked: true, mmu: false, dataCache: false } as const;

export function arm64Cpu(o: { pc: bigint; target: bigint; dtb: bigint; stub?: BootStub }): Arm64CpuState {
  return {
    arch: "arm64",
    mode: "EL1h (EL2 also allowed), MMU off, D-cache off, DAIF masked",
    pc: o.pc, target: o.target, el: 1, pstate: ARM64_ENTRY_PSTATE, ...common,
    regs: { x0: o.dtb, x1: 0n, x2: 0n, x3: 0n },
    ...(o.stub ? { stub: o.stub } : {}),
  };
}

export function armCpu(o: { pc: bigint; target: bigint; dtb: bigint; stub?: BootStub }): ArmCpuState {
  return {
    arch: "arm",
    mode: "svc, MMU off, D-cache off, IRQ/FIQ masked, ARM (not Thumb)",
    pc: o.pc, target: o.target, cpuMode: "svc", cpsr: ARM_ENTRY_CPSR, isa: "arm", ...common,
    // booting.rst: r1 = machine type; ~0 says "no machine type, use the device tree" (QEMU's value).
    regs: { r0: 0n, r1: 0xffffffffn, r2: o.dtb },
    ...(o.stub ? { stub: o.stub } : {}),
  };
}

export function riscvCpu(o: {
  arch: "riscv64" | "riscv32"; pc: bigint; target: bigint; hart: bigint; dtb: bigint; fwInfo?: bigint; firmware?: "placed" | "external"; stub?: BootStub;
}): RiscvCpuState {
  const fw = o.fwInfo !== undefined;
  return {
    arch: o.arch,
    mode: fw ? "M-mode (firmware first), interrupts off" : "S-mode, satp = 0 (MMU off), interrupts off, SBI required from the emulator",
    pc: o.pc, target: o.target, priv: fw ? "M" : "S", sbi: fw ? "firmware" : "required", ...(fw ? { firmware: o.firmware ?? "placed" } : {}), satp: 0n, ...common,
    regs: fw ? { a0: o.hart, a1: o.dtb, a2: o.fwInfo } : { a0: o.hart, a1: o.dtb },
    ...(o.stub ? { stub: o.stub } : {}),
  };
}
