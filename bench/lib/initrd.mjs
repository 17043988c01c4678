// The marker initrd every real boot uses, tests and bench alike: a newc cpio (Linux
// Documentation/driver-api/early-userspace/buffer-format.rst) holding a static busybox and an
// /init script that prints a marker line from userspace and powers the machine off. Reaching the
// marker proves the kernel ran from what was placed, found the initrd where the hand-off said,
// unpacked it and started init.
//
// Plain .mjs so the bench runs it under node without a build or TS loader; the tests reach it
// through test/realboot/initrd.ts (which finds busybox in the fixture cache).
//
// The archive is written here rather than by GNU cpio because it needs a /dev/console character
// device node (the kernel opens it for init's stdin/stdout), which cpio can only copy from a real
// node (mknod needs root). The kernel itself is the reader that checks the format.

const enc = new TextEncoder();

/**
 * The initrd as newc cpio bytes (uncompressed; the kernel accepts that as it is).
 * @param {Uint8Array} busybox the static busybox binary, stored as /bin/busybox
 * @param {{ marker: string, script?: string, end?: "poweroff" | "reboot" | "halt", files?: Record<string, Uint8Array | string> }} options
 *   marker: the line /init prints once userspace runs; script: shell lines run after /proc and /sys
 *   are mounted, before the marker; end: what /init does after it (default poweroff); files: extra
 *   files, path (no leading slash) → content
 * @returns {Uint8Array}
 */
export function markerInitrdBytes(busybox, options) {
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
  w.file("bin/busybox", busybox, 0o755);
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
  parts = [];
  length = 0;
  ino = 1;

  dir(path) {
    this.entry(path, S_IFDIR | 0o755, new Uint8Array(0), 0, 0, 2);
  }
  charDevice(path, major, minor, perm) {
    this.entry(path, S_IFCHR | perm, new Uint8Array(0), major, minor, 1);
  }
  file(path, content, perm) {
    const data = typeof content === "string" ? enc.encode(content) : content;
    this.entry(path, S_IFREG | perm, data, 0, 0, 1);
  }
  finish() {
    this.entry("TRAILER!!!", 0, new Uint8Array(0), 0, 0, 1, 0);
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const p of this.parts) { out.set(p, o); o += p.length; }
    return out;
  }

  entry(name, mode, data, rmajor, rminor, nlink, ino = this.ino++) {
    const nameBytes = enc.encode(`${name}\0`);
    const fields = [ino, mode, 0, 0, nlink, 0, data.length, 0, 0, rmajor, rminor, nameBytes.length, 0];
    this.push(enc.encode(`070701${fields.map((f) => f.toString(16).padStart(8, "0")).join("")}`));
    this.push(nameBytes);
    this.pad();
    this.push(data);
    this.pad();
  }
  push(b) {
    this.parts.push(b);
    this.length += b.length;
  }
  pad() {
    const n = (4 - (this.length % 4)) % 4;
    if (n) this.push(new Uint8Array(n));
  }
}
