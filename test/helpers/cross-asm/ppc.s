/* guest-image test fixture: PowerPC 32 (ELF32, big-endian).
 * Built as a static ET_EXEC and as a static PIE (R_PPC_RELATIVE). */
	.text
	.globl	_start
	.type	_start, @function
_start:
1:	b	1b
	.size	_start, . - _start

	.type	func2, @function
func2:
	blr
	.size	func2, . - func2

	.include "data.inc"		/* note, .data with the pointer table, .bss */
