/* guest-image test fixture: SPARC V9 (ELF64, big-endian).
 * Built as a static ET_EXEC and as a static PIE (R_SPARC_RELATIVE). */
	.text
	.globl	_start
	.type	_start, @function
_start:
1:	ba	1b
	nop
	.size	_start, . - _start

	.type	func2, @function
func2:
	retl
	nop
	.size	func2, . - func2

	.include "data.inc"		/* note, .data with the pointer table, .bss */
