/* guest-image test fixture: MIPS32 big-endian (ELF32, o32, non-PIC).
 * Built as a static ET_EXEC only (no PIE fixture for MIPS). */
	.abicalls
	.option	pic0
	.set	noreorder
	.text
	.globl	_start
	.type	_start, @function
	.ent	_start
_start:
	lui	$t0, %hi(data_start)
	addiu	$t0, $t0, %lo(data_start)
	lw	$t1, 0($t0)
	lui	$t2, %hi(bss_start)
	sw	$t1, %lo(bss_start)($t2)
1:	b	1b
	nop
	.end	_start
	.size	_start, . - _start

	.type	func2, @function
	.ent	func2
func2:
	jr	$ra
	move	$v0, $zero
	.end	func2
	.size	func2, . - func2

	.pushsection .note.guest-image, "a", @note
	.balign	4
	.long	2f - 1f			/* n_namesz */
	.long	4f - 3f			/* n_descsz */
	.long	0x47494d47		/* n_type */
1:	.asciz	"GuestImage"
2:	.balign	4
3:	.long	0x00010000, 0x00000020
4:	.popsection

	.data
	.balign	4
	.globl	data_start
data_start:
	.ascii	"guest-image data"
	.long	0x11223344, 0x55667788
	.long	0xdeadbeef, 0xcafef00d
	.globl	ptrs
ptrs:
	.long	_start
	.long	func2
	.long	data_start
	.long	ptrs
	.long	bss_start + 16
	.long	0x01234567

	.bss
	.balign	16
	.globl	bss_start
bss_start:
	.skip	0x4000
