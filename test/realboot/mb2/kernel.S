# A Multiboot 2 test kernel (i386 32-bit protected-mode code; assembled into an ELF32 i386 or an
# ELF64 x86-64 container). It checks nothing itself: it prints what it was handed over COM1
# (port 0x3f8, polled), one "MB2T ..." line per fact, so a test can compare the output of a boot
# by guest-image with the output of a boot by GRUB and with what the test gave.
#
#   MB2T START <runtime address of _start>      MB2T EAX <eax>   MB2T CR0 <cr0>   MB2T EFLAGS <eflags>
#   MB2T TAG <type> <size>                       (every tag, in order)
#   MB2T CMDLINE "<string>"                      MB2T LOADER "<string>"
#   MB2T MODULE <start> <end> <djb2-xor checksum of [start, end)> "<string>"
#   MB2T MEMINFO <mem_lower> <mem_upper>         MB2T MMAP <entry_size> <entry_version>
#   MB2T MMAPE <base hi><base lo> <length hi><length lo> <type>
#   MB2T ELF <num> <entsize> <shndx>             MB2T SECT <i> <sh_type> <sh_size> <checksum at sh_addr or ->
#   MB2T LOADBASE <load_base_addr>               MB2T END <total_size>   then it halts.
#
# No numeric local labels: in Intel syntax "1b" reads as a binary number.
# Variants: --defsym ELF64=1 (x86-64 container), RELOC=1 (relocatable tag), AOUT=1 (address and
# entry tags, linked into a flat binary).
# Position independent: every data reference is ebp-relative (ebp = runtime − link address), so
# the relocatable variant (--defsym RELOC=1) runs wherever the loader moved it.
# Checksum: h = 5381; for each byte b: h = h * 33 ^ b (mod 2^32).

        .intel_syntax noprefix
        .code32

        .set MB2_MAGIC, 0xe85250d6
        .set MB2_ARCH, 0

        .section .text
        .balign 8
mb2_header:
        .long MB2_MAGIC
        .long MB2_ARCH
        .long mb2_header_end - mb2_header
        .long -(MB2_MAGIC + MB2_ARCH + (mb2_header_end - mb2_header))
        # information request (required): command line, loader name, modules, basic meminfo,
        # memory map, ELF sections
        .balign 8
        .short 1, 0
        .long 8 + 4 * 6
        .long 1, 2, 3, 4, 6, 9
        # information request (optional): load base address, ACPI new RSDP
        .balign 8
        .short 1, 1
        .long 8 + 4 * 2
        .long 21, 15
        # module alignment
        .balign 8
        .short 6, 0
        .long 8
.ifdef AOUT
        # address tag (a flat binary: header_addr = load_addr = the file's first byte; load_end_addr
        # 0: the whole file; BSS to the stack's end) and entry address tag
        .balign 8
        .short 2, 0
        .long 24
        .long mb2_header, mb2_header, 0, stack_top
        .balign 8
        .short 3, 0
        .long 12
        .long _start
.endif
.ifdef RELOC
        # relocatable: min_addr 0x300000, max_addr 0x2000000, align 2 MiB, preference 1 (lowest)
        .balign 8
        .short 10, 0
        .long 24
        .long 0x300000, 0x2000000, 0x200000, 1
.endif
        .balign 8
        .short 0, 0
        .long 8
mb2_header_end:

        .globl _start
_start:
        cli
        mov edi, eax                    # keep the magic
        # ESP is undefined at entry (spec 3.3), and finding where we run takes a call: borrow the
        # 8-byte fixed part of the information structure (RAM) as a one-slot stack. The push
        # lands on its "reserved" field, which the kernel must ignore anyway.
        lea esp, [ebx + 8]
        call .L3_1
.L3_1:      pop ebp
        sub ebp, offset .L3_1              # ebp = runtime − link
        lea esp, [ebp + stack_top]
        mov esi, ebx                    # esi = info (kept for the walk)

        lea eax, [ebp + _start]
        push offset s_start
        call putline
        mov eax, edi
        push offset s_eax
        call putline
        mov eax, cr0
        push offset s_cr0
        call putline
        pushfd
        pop eax
        push offset s_eflags
        call putline
        cmp edi, 0x36d76289
        jne halt                        # not a Multiboot2 hand-off: print nothing more

        mov ebx, esi                    # ebx = info start
        mov ecx, [ebx]                  # total_size
        lea edx, [ebx + ecx]            # edx = end of the structure
        lea edi, [ebx + 8]              # edi = first tag
tag_loop:
        lea eax, [edi + 8]
        cmp eax, edx
        ja bad_walk
        mov eax, [edi]
        test eax, eax
        jz tag_end
        push offset s_tag
        call putl
        mov esi, edi                    # type, size
        mov ecx, 2
        call putfields
        mov eax, [edi]
        cmp eax, 1
        je t_cmdline
        cmp eax, 2
        je t_loader
        cmp eax, 3
        je t_module
        cmp eax, 4
        je t_meminfo
        cmp eax, 6
        je t_mmap
        cmp eax, 9
        je t_elf
        cmp eax, 21
        je t_loadbase
tag_next:
        mov eax, [edi + 4]
        add eax, 7
        and eax, ~7
        add edi, eax
        jmp tag_loop

t_cmdline:
        push offset s_cmdline
        call putl
        jmp t_string
t_loader:
        push offset s_loader
        call putl
t_string:
        mov eax, 8                      # the string: [edi + 8, edi + size)
        call tagq
        jmp tag_next
t_module:
        push offset s_module
        call putl
        mov eax, [edi + 8]
        call puthex
        call space
        mov eax, [edi + 12]
        call puthex
        call space
        mov esi, [edi + 8]
        mov ecx, [edi + 12]
        sub ecx, esi
        call checksum
        call puthex
        call space
        mov eax, 16                     # the string: [edi + 16, edi + size)
        call tagq
        jmp tag_next
t_meminfo:
        push offset s_meminfo
        call putl
        lea esi, [edi + 8]              # mem_lower, mem_upper
        mov ecx, 2
        call putfields
        jmp tag_next
t_mmap:
        push offset s_mmap
        call putl
        lea esi, [edi + 8]              # entry_size, entry_version
        mov ecx, 2
        call putfields
        lea esi, [edi + 16]             # esi = entry
        mov ecx, [edi + 4]
        add ecx, edi                    # ecx = end of the tag
.L10_1:      mov eax, [edi + 8]
        add eax, esi
        cmp eax, ecx
        ja tag_next
        push offset s_mmape
        call putl
        call put64                      # base_addr
        call space
        add esi, 8
        call put64                      # length
        call space
        mov eax, [esi + 8]              # type
        call puthex
        call newline
        sub esi, 8
        add esi, [edi + 8]
        jmp .L10_1
t_elf:
        push offset s_elf
        call putl
        lea esi, [edi + 8]              # num, entsize, shndx
        mov ecx, 3
        call putfields
        push ebx
        push edx
        xor edx, edx                    # edx = section index
        lea ebx, [edi + 20]             # ebx = section header
.L11_2:      cmp edx, [edi + 8]
        jae .L11_4
        push offset s_sect
        call putl
        mov eax, edx
        call puthex
        call space
        mov eax, [ebx + 4]              # sh_type (both classes)
        call puthex
        call space
.ifdef ELF64
        mov ecx, [ebx + 32]             # sh_size (low half)
        mov esi, [ebx + 16]             # sh_addr (low half)
.else
        mov ecx, [ebx + 20]
        mov esi, [ebx + 12]
.endif
        mov eax, ecx
        call puthex
        call space
        test esi, esi
        jz .L11_3
        test ecx, ecx
        jz .L11_3
        cmp dword ptr [ebx + 4], 8      # SHT_NOBITS: no bytes to sum
        je .L11_3
        call checksum
        call puthex
        call newline
        jmp .L11_5
.L11_3:      mov al, '-'
        call putc
        call newline
.L11_5:      add ebx, [edi + 12]
        inc edx
        jmp .L11_2
.L11_4:      pop edx
        pop ebx
        jmp tag_next
t_loadbase:
        mov eax, [edi + 8]
        push offset s_loadbase
        call putline
        jmp tag_next

tag_end:
        mov eax, [ebx]
        push offset s_end
        call putline
        jmp halt
bad_walk:
        push offset s_bad
        call putl
halt:
        cli
        hlt
        jmp halt

# putl: prints the label whose link address the caller pushed (at [ebp + it]: position
# independent) and pops it; clobbers nothing
putl:
        push esi
        mov esi, [esp + 8]
        add esi, ebp
        call puts
        pop esi
        ret 4

# putline: "<pushed label><eax in hex>\n", pops the label; clobbers nothing
putline:
        push eax
        mov eax, [esp + 8]              # the label
        push eax
        call putl
        pop eax
        call puthex
        call newline
        ret 4

# put64: the little-endian qword at esi as 16 hex digits; clobbers nothing
put64:
        push eax
        mov eax, [esi + 4]
        call puthex
        mov eax, [esi]
        call puthex
        pop eax
        ret

# putfields: ecx dwords from esi in hex, a space between, then a newline; clobbers nothing
putfields:
        push eax
        push esi
        push ecx
        jmp .L15_2
.L15_1:      call space
.L15_2:      mov eax, [esi]
        call puthex
        add esi, 4
        dec ecx
        jnz .L15_1
        call newline
        pop ecx
        pop esi
        pop eax
        ret

# checksum: esi = start, ecx = length → eax (h = h * 33 ^ b, from 5381); clobbers nothing else
checksum:
        push esi
        push ecx
        push edx
        mov eax, 5381
.L16_1:      test ecx, ecx
        jz .L16_2
        imul eax, eax, 33
        movzx edx, byte ptr [esi]
        xor eax, edx
        inc esi
        dec ecx
        jmp .L16_1
.L16_2:      pop edx
        pop ecx
        pop esi
        ret

# tagq: putq of the tag at edi's bytes from offset eax to its end (size at [edi + 4]); clobbers
# esi, ecx
tagq:
        lea esi, [edi + eax]
        mov ecx, [edi + 4]
        sub ecx, eax
        jmp putq

# putq: esi = string, ecx = bytes at most; prints "<string up to NUL>" and a newline
putq:
        push eax
        push esi
        push ecx
        mov al, '"'
        call putc
.L17_1:      test ecx, ecx
        jz .L17_2
        lodsb
        test al, al
        jz .L17_2
        call putc
        dec ecx
        jmp .L17_1
.L17_2:      mov al, '"'
        call putc
        call newline
        pop ecx
        pop esi
        pop eax
        ret

# puts: esi = NUL-terminated string
puts:
        push eax
        push esi
.L18_1:      lodsb
        test al, al
        jz .L18_2
        call putc
        jmp .L18_1
.L18_2:      pop esi
        pop eax
        ret

# puthex: eax as 8 lowercase hex digits
puthex:
        push ecx
        push edx
        push eax
        mov edx, eax
        mov ecx, 8
.L19_1:      rol edx, 4
        mov al, dl
        and al, 0xf
        add al, '0'
        cmp al, '9'
        jbe .L19_2
        add al, 39
.L19_2:      call putc
        loop .L19_1
        pop eax
        pop edx
        pop ecx
        ret

space:
        push eax
        mov al, ' '
        call putc
        pop eax
        ret
newline:
        push eax
        mov al, 10
        call putc
        pop eax
        ret

# putc: al to COM1 once its transmitter holding register is empty (LSR bit 5)
putc:
        push edx
        push eax
        mov dx, 0x3fd
.L22_1:      in al, dx
        test al, 0x20
        jz .L22_1
        pop eax
        mov dx, 0x3f8
        out dx, al
        pop edx
        ret

        .section .rodata
s_start:    .asciz "MB2T START "
s_eax:      .asciz "MB2T EAX "
s_cr0:      .asciz "MB2T CR0 "
s_eflags:   .asciz "MB2T EFLAGS "
s_tag:      .asciz "MB2T TAG "
s_cmdline:  .asciz "MB2T CMDLINE "
s_loader:   .asciz "MB2T LOADER "
s_module:   .asciz "MB2T MODULE "
s_meminfo:  .asciz "MB2T MEMINFO "
s_mmap:     .asciz "MB2T MMAP "
s_mmape:    .asciz "MB2T MMAPE "
s_elf:      .asciz "MB2T ELF "
s_sect:     .asciz "MB2T SECT "
s_loadbase: .asciz "MB2T LOADBASE "
s_end:      .asciz "MB2T END "
s_bad:      .asciz "MB2T BADWALK\n"

        .section .bss
        .balign 16
stack:  .skip 4096
stack_top:
