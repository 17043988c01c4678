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

	.include "data.inc"		/* note, .data with the pointer table, .bss */
