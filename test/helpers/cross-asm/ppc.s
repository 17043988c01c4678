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
	.4byte	_start
	.4byte	func2
	.4byte	data_start
	.4byte	ptrs
	.4byte	bss_start + 16
	.8byte	0x0123456789abcdef	/* plain data after the table */

	.bss
	.balign	16
	.globl	bss_start
bss_start:
	.skip	0x4000
