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

	.pushsection .note.guest-image, "a", @note
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
	.dword	0x1122334455667788
	.word	0xdeadbeef, 0xcafef00d
	.balign	8
	.globl	ptrs
ptrs:					/* RELATIVE relocations in the PIE */
	.dword	_start
	.dword	func2
	.dword	data_start
	.dword	ptrs
	.dword	bss_start + 16
	.dword	0x0123456789abcdef	/* plain data after the table */

	.bss
	.balign	16
	.globl	bss_start
bss_start:
	.skip	0x4000
