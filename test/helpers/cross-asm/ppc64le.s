/* guest-image test fixture: PowerPC 64 (ELF64, little-endian, ELFv2 ABI).
 * Built as a static ET_EXEC and as a static PIE (R_PPC64_RELATIVE). */
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
