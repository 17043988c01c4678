/* guest-image test fixture: 32-bit ARM (ELF32, little-endian, EABI5 hard-float,
 * REL relocations). Built as a static ET_EXEC and as a static PIE
 * (R_ARM_RELATIVE). .text uses no absolute addresses (no literal pools).
 * Note: '@' starts a comment on ARM, hence %function / %note. */
	.syntax	unified
	.arch	armv7-a
	.fpu	vfpv3-d16
	.eabi_attribute	Tag_ABI_VFP_args, 1	/* hard-float calling convention */
	.arm
	.text
	.globl	_start
	.type	_start, %function
_start:
	mov	r0, #1
	add	r0, r0, #0x41
	mov	r1, #0
1:	wfi
	b	1b
	.size	_start, . - _start

	.type	func2, %function
func2:
	mov	r0, #0
	bx	lr
	.size	func2, . - func2

	.pushsection .note.guest-image, "a", %note
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
ptrs:					/* RELATIVE relocations in the PIE */
	.long	_start
	.long	func2
	.long	data_start
	.long	ptrs
	.long	bss_start + 16
	.long	0x01234567		/* plain data after the table */

	.bss
	.balign	16
	.globl	bss_start
bss_start:
	.skip	0x4000
