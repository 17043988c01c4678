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

	.pushsection .note.guest-image, "a", @note
	.balign	4
	.4byte	2f - 1f			/* n_namesz */
	.4byte	4f - 3f			/* n_descsz */
	.4byte	0x47494d47		/* n_type */
1:	.asciz	"GuestImage"
2:	.balign	4
3:	.4byte	0x00010000, 0x00000040
4:	.popsection

	.data
	.balign	8
	.globl	data_start
data_start:
	.ascii	"guest-image data"
	.8byte	0x1122334455667788
	.4byte	0xdeadbeef, 0xcafef00d
	.balign	8
	.globl	ptrs
ptrs:					/* RELATIVE relocations in the PIE */
	.8byte	_start
	.8byte	func2
	.8byte	data_start
	.8byte	ptrs
	.8byte	bss_start + 16
	.8byte	0x0123456789abcdef	/* plain data after the table */

	.bss
	.balign	16
	.globl	bss_start
bss_start:
	.skip	0x4000
