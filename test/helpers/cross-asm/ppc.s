/* guest-image test fixture: PowerPC, assembled three ways (test/helpers/cross-elf.ts):
 *   ppc      PowerPC 32 (ELF32, big-endian), PIE with R_PPC_RELATIVE
 *   ppc64    PowerPC 64 (ELF64, big-endian, the linker's default ABI), PIE with R_PPC64_RELATIVE
 *   ppc64le  PowerPC 64 (ELF64, little-endian, ELFv2 ABI), PIE with R_PPC64_RELATIVE
 * Each is built as a static ET_EXEC and as a static PIE. */
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
