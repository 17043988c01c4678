# A Multiboot 1 kernel (i386, GNU as) that reports over COM1 what its boot loader handed it:
# EAX, the info structure's flags, mem_lower/mem_upper, the command line, module 0 (length,
# byte sum, string), every memory map entry and the boot loader name, one "key=value" line each,
# then "END" and halts. The test compares these lines with what it asked the loader for; the
# layout read here is the spec's (GNU Multiboot 0.6.96, 3.3 "Boot information format").
	.set MB_MAGIC, 0x1BADB002
	.set MB_FLAGS, 0x00000003          # bit 0: page-aligned modules, bit 1: memory info
	.set COM1, 0x3F8

	.section .multiboot, "a"
	.align 4
	.long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

	.text
	.globl _start
_start:
	cli
	mov $stack_top, %esp
	mov %eax, %edi                      # the magic, kept until printed
	mov %ebx, %esi                      # the info structure

	mov $s_eax, %ecx; call puts; mov %edi, %eax; call puthex; call nl
	mov $s_ebx_ok, %ecx; call puts; xor %eax, %eax; test %esi, %esi; setnz %al; call puthex; call nl
	mov $s_flags, %ecx; call puts; mov 0(%esi), %eax; call puthex; call nl
	mov $s_lower, %ecx; call puts; mov 4(%esi), %eax; call puthex; call nl
	mov $s_upper, %ecx; call puts; mov 8(%esi), %eax; call puthex; call nl

	testl $0x4, 0(%esi)                 # flag 2: cmdline
	jz 1f
	mov $s_cmdline, %ecx; call puts; mov 16(%esi), %ecx; call puts; call nl
1:
	testl $0x8, 0(%esi)                 # flag 3: mods_count, mods_addr
	jz 3f
	mov $s_mods, %ecx; call puts; mov 20(%esi), %eax; call puthex; call nl
	cmpl $0, 20(%esi)
	je 3f
	mov 24(%esi), %ebx                  # module 0 {mod_start, mod_end, string, reserved}
	mov $s_mod_align, %ecx; call puts; mov 0(%ebx), %eax; and $0xfff, %eax; call puthex; call nl
	mov $s_mod_len, %ecx; call puts; mov 4(%ebx), %eax; sub 0(%ebx), %eax; call puthex; call nl
	mov 0(%ebx), %edx                   # sum of the module's bytes
	xor %eax, %eax
2:	cmp 4(%ebx), %edx
	jae 2f
	movzbl (%edx), %ecx
	add %ecx, %eax
	inc %edx
	jmp 2b
2:	push %eax
	mov $s_mod_sum, %ecx; call puts; pop %eax; call puthex; call nl
	cmpl $0, 8(%ebx)
	je 3f
	mov $s_mod_str, %ecx; call puts; mov 8(%ebx), %ecx; call puts; call nl
3:
	testl $0x40, 0(%esi)                # flag 6: mmap_length, mmap_addr
	jz 5f
	mov 48(%esi), %ebx                  # entry: u32 size, u64 base, u64 length, u32 type
	mov %ebx, %ebp
	add 44(%esi), %ebp                  # end of the buffer
4:	cmp %ebp, %ebx
	jae 5f
	mov $s_mmap, %ecx; call puts
	mov 8(%ebx), %eax; call puthex; mov 4(%ebx), %eax; call puthex; call sp
	mov 16(%ebx), %eax; call puthex; mov 12(%ebx), %eax; call puthex; call sp
	mov 20(%ebx), %eax; call puthex; call nl
	add 0(%ebx), %ebx
	add $4, %ebx
	jmp 4b
5:
	testl $0x200, 0(%esi)               # flag 9: boot_loader_name
	jz 6f
	mov $s_loader, %ecx; call puts; mov 64(%esi), %ecx; call puts; call nl
6:
	mov $s_end, %ecx; call puts; call nl
halt:
	hlt
	jmp halt

# putc: AL to COM1 once the transmitter holding register is empty (LSR bit 5).
putc:
	push %edx
	push %eax
	mov $COM1 + 5, %dx
7:	inb %dx, %al
	test $0x20, %al
	jz 7b
	pop %eax
	mov $COM1, %dx
	outb %al, %dx
	pop %edx
	ret
# puts: the NUL-terminated string at ECX.
puts:
	push %eax
8:	movb (%ecx), %al
	test %al, %al
	jz 9f
	call putc
	inc %ecx
	jmp 8b
9:	pop %eax
	ret
# puthex: EAX as 8 lower-case hex digits.
puthex:
	push %ecx
	push %edx
	mov %eax, %edx
	mov $8, %ecx
10:	rol $4, %edx
	mov %edx, %eax
	and $0xf, %eax
	movb hexdigits(%eax), %al
	call putc
	loop 10b
	pop %edx
	pop %ecx
	ret
nl:	push %eax; mov $'\n', %al; call putc; pop %eax; ret
sp:	push %eax; mov $' ', %al; call putc; pop %eax; ret

	.section .rodata
hexdigits: .ascii "0123456789abcdef"
s_eax:     .asciz "eax="
s_ebx_ok:  .asciz "ebx_nonzero="
s_flags:   .asciz "flags="
s_lower:   .asciz "mem_lower="
s_upper:   .asciz "mem_upper="
s_cmdline: .asciz "cmdline="
s_mods:    .asciz "mods_count="
s_mod_align: .asciz "mod0_start_page_offset="
s_mod_len: .asciz "mod0_len="
s_mod_sum: .asciz "mod0_sum="
s_mod_str: .asciz "mod0_string="
s_mmap:    .asciz "mmap="
s_loader:  .asciz "boot_loader_name="
s_end:     .asciz "END"

	.bss
	.align 16
	.skip 4096
stack_top:
