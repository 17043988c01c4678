/* guest-image test fixture: x86_64 (ELF64, little-endian).
 * Assembled and linked at test time by test/helpers/cross-elf.ts, both as a
 * static ET_EXEC and as a static PIE (ET_DYN with R_X86_64_RELATIVE relocs).
 * Keep .text free of absolute addresses (PC-relative only) so the PIE has
 * no text relocations; all dynamic relocations live in .data (ptrs table). */
	.text
	.globl	_start
	.type	_start, @function
_start:
	lea	data_start(%rip), %rax
	mov	(%rax), %rbx
	lea	bss_start(%rip), %rcx
	mov	%rbx, (%rcx)
1:	hlt
	jmp	1b
	.size	_start, . - _start

	.type	func2, @function
func2:
	xor	%eax, %eax
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
	.quad	0x1122334455667788
	.long	0xdeadbeef, 0xcafef00d
	.balign	8
	.globl	ptrs
ptrs:					/* RELATIVE relocations in the PIE */
	.quad	_start
	.quad	func2
	.quad	data_start
	.quad	ptrs
	.quad	bss_start + 16
	.quad	0x0123456789abcdef	/* plain data after the table */

	.bss
	.balign	16
	.globl	bss_start
bss_start:
	.skip	0x4000
