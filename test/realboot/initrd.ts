// The initrd every real-boot test boots: a newc cpio (Linux Documentation/driver-api/early-userspace/
// buffer-format.rst) holding Debian's static busybox (from the fixture cache, see
// scripts/fetch-fixtures.sh) and an /init script that prints a marker line from userspace and
// powers the machine off. Reaching the marker proves the kernel ran from what we placed, found
// the initrd where the hand-off said, unpacked it and started init.
//
// The archive is written here rather than by GNU cpio because it needs a /dev/console character
// device node (the kernel opens it for init's stdin/stdout), which cpio can only copy from a real
// node (mknod needs root). The kernel itself is the reader that checks the format.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { FIXTURES } from "../qemu/fixtures.js";

/** Debian architecture names, as in the fixture cache (busybox/<arch>/busybox). */
export type DebianArch = "amd64" | "i386" | "arm64" | "armhf" | "riscv64";

export interface MarkerInitrdOptions {
  /** The line /init prints once userspace runs. */
  marker: string;
  /**
   * Extra shell lines run by /init after /proc and /sys are mounted and before the marker is
   * printed (e.g. `cat /proc/cmdline`). busybox applets are reachable by name (PATH=/bin).
   */
  script?: string;
  /** What /init does after the marker: "poweroff" (default), "reboot", or "halt". */
  end?: "poweroff" | "reboot" | "halt";
  /** Extra files, path (no leading slash) → content. */
  files?: Record<string, Uint8Array | string>;
}

/** The path of the static busybox for `arch`; throws, naming the fixture script, when absent. */
export function busyboxPath(arch: DebianArch): string {
  const p = join(FIXTURES, "busybox", arch, "busybox");
  if (!existsSync(p)) throw new Error(`missing fixture ${p}: run bash scripts/fetch-fixtures.sh`);
  return p;
}

/** The initrd as newc cpio bytes (uncompressed; the kernel accepts that as it is). */
export function markerInitrd(arch: DebianArch, options: MarkerInitrdOptions): Uint8Array {
  const end = options.end ?? "poweroff";
  const init = [
    "#!/bin/busybox sh",
    "/bin/busybox --install -s /bin",
    "export PATH=/bin",
    "mount -t proc proc /proc",
    "mount -t sysfs sysfs /sys",
    options.script ?? "",
    `echo "${options.marker}"`,
    `${end} -f`,
    // poweroff can fail where there is no way to power off (x86 without ACPI): stay quiet then.
    "while true; do sleep 1000; done",
    "",
  ].join("\n");
  const w = new NewcWriter();
  for (const d of ["bin", "dev", "proc", "sys", "tmp", "etc"]) w.dir(d);
  w.charDevice("dev/console", 5, 1, 0o600);
  w.charDevice("dev/null", 1, 3, 0o666);
  w.file("bin/busybox", readFileSync(busyboxPath(arch)), 0o755);
  w.file("init", init, 0o755);
  for (const [path, content] of Object.entries(options.files ?? {})) w.file(path, content, 0o644);
  return w.finish();
}

// newc header: "070701" then 13 eight-digit hex fields (ino, mode, uid, gid, nlink, mtime,
// filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check), the name with its NUL,
// padded to 4; then the data, padded to 4. "TRAILER!!!" ends the archive.
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFCHR = 0o020000;

class NewcWriter {
  private readonly parts: Uint8Array[] = [];
  private length = 0;
  private ino = 1;

  dir(path: string): void {
    this.entry(path, S_IFDIR | 0o755, new Uint8Array(0), 0, 0, 2);
  }
  charDevice(path: string, major: number, minor: number, perm: number): void {
    this.entry(path, S_IFCHR | perm, new Uint8Array(0), major, minor, 1);
  }
  file(path: string, content: Uint8Array | string, perm: number): void {
    const data = typeof content === "string" ? new TextEncoder().encode(content) : content;
    this.entry(path, S_IFREG | perm, data, 0, 0, 1);
  }
  finish(): Uint8Array {
    this.entry("TRAILER!!!", 0, new Uint8Array(0), 0, 0, 1, 0);
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const p of this.parts) { out.set(p, o); o += p.length; }
    return out;
  }

  private entry(name: string, mode: number, data: Uint8Array, rmajor: number, rminor: number, nlink: number, ino = this.ino++): void {
    const nameBytes = new TextEncoder().encode(`${name}\0`);
    const fields = [ino, mode, 0, 0, nlink, 0, data.length, 0, 0, rmajor, rminor, nameBytes.length, 0];
    const header = new TextEncoder().encode(`070701${fields.map((f) => f.toString(16).padStart(8, "0")).join("")}`);
    this.push(header);
    this.push(nameBytes);
    this.pad();
    this.push(data);
    this.pad();
  }
  private push(b: Uint8Array): void {
    this.parts.push(b);
    this.length += b.length;
  }
  private pad(): void {
    const n = (4 - (this.length % 4)) % 4;
    if (n) this.push(new Uint8Array(n));
  }
}
