/* guest-image test fixture: AArch64 (ELF64, little-endian).
 * Built as a static ET_EXEC and as a static PIE (R_AARCH64_RELATIVE).
 * .text uses PC-relative addressing only (adrp/add). */
	.text
	.globl	_start
	.type	_start, %function
_start:
	adrp	x0, data_start
	add	x0, x0, :lo12:data_start
	ldr	x1, [x0]
	adrp	x2, bss_start
	add	x2, x2, :lo12:bss_start
	str	x1, [x2]
1:	wfi
	b	1b
	.size	_start, . - _start

	.type	func2, %function
func2:
	mov	x0, #0
	ret
	.size	func2, . - func2

	.include "data.inc"		/* note, .data with the pointer table, .bss */
