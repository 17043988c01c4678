/**
 * Builds test/v86/mbi-kernel.s with Debian's i686 binutils (as, ld) into a Multiboot ELF linked
 * at 1 MiB, in a private temp directory. Throws (never skips) when the tools are missing.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const SRC = fileURLToPath(new URL("./mbi-kernel.s", import.meta.url));
const LD = `ENTRY(_start)
SECTIONS {
	. = 0x100000;
	.text : { *(.multiboot) *(.text) }
	.rodata : { *(.rodata) }
	.data : { *(.data) }
	.bss : { *(.bss) }
}
`;

function run(cmd: string, args: string[], cwd: string): void {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", env: { ...process.env, LC_ALL: "C" } });
  if (r.error || r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.error?.message ?? r.stderr} (Debian package binutils-i686-linux-gnu)`);
}

/** The kernel's bytes. */
export function buildMbiKernel(): Uint8Array {
  const d = mkdtempSync(join(tmpdir(), "guest-image-v86-mbi-"));
  try {
    writeFileSync(join(d, "k.ld"), LD);
    run("i686-linux-gnu-as", ["--32", "-o", "k.o", SRC], d);
    run("i686-linux-gnu-ld", ["-m", "elf_i386", "--build-id=none", "-static", "-z", "max-page-size=0x1000", "--no-warn-rwx-segments", "-T", "k.ld", "-o", "k.elf", "k.o"], d);
    return new Uint8Array(readFileSync(join(d, "k.elf")));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
}
