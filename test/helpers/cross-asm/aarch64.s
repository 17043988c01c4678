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

	.pushsection .note.guest-image, "a", %note
	.balign	4
	.long	2f - 1f			/* n_namesz */
	.long	4f - 3f			/* n_descsz */
	.long	0x47494d47		/* n_type */
1:	.asciz	"GuestImage"
2:	.balign	4
3:	.long	0x00010000, 0x00000040
4:	.popsection

	.data
	.balign	8
	.globl	data_start
data_start:
	.ascii	"guest-image data"
	.xword	0x1122334455667788
	.word	0xdeadbeef, 0xcafef00d
	.balign	8
	.globl	ptrs
ptrs:					/* RELATIVE relocations in the PIE */
	.xword	_start
	.xword	func2
	.xword	data_start
	.xword	ptrs
	.xword	bss_start + 16
	.xword	0x0123456789abcdef	/* plain data after the table */

	.bss
	.balign	16
	.globl	bss_start
bss_start:
	.skip	0x4000
