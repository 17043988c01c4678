/* guest-image test fixture: s390x (ELF64, big-endian).
 * Built as a static ET_EXEC and as a static PIE (R_390_RELATIVE). */
	.text
	.globl	_start
	.type	_start, @function
_start:
	larl	%r1, data_start
	lg	%r2, 0(%r1)
1:	j	1b
	.size	_start, . - _start

	.type	func2, @function
func2:
	br	%r14
	.size	func2, . - func2

	.include "data.inc"		/* note, .data with the pointer table, .bss */
