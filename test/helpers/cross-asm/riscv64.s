/* guest-image test fixture: RISC-V 64 (ELF64, little-endian).
 * Built as a static ET_EXEC and as a static PIE (R_RISCV_RELATIVE).
 * .text uses PC-relative addressing only (lla = auipc/addi). */
	.option	norelax
	.text
	.globl	_start
	.type	_start, @function
_start:
	lla	a0, data_start
	ld	a1, 0(a0)
	lla	a2, bss_start
	sd	a1, 0(a2)
1:	wfi
	j	1b
	.size	_start, . - _start

	.type	func2, @function
func2:
	li	a0, 0
	ret
	.size	func2, . - func2

	.include "data.inc"		/* note, .data with the pointer table, .bss */
