// The bench's v86 initrd: a newc cpio (Linux Documentation/driver-api/early-userspace/
// buffer-format.rst) with Debian's static busybox (fixture busybox/i386/busybox), /dev/console
// and an /init that prints a marker line and powers off — the shape test/realboot/initrd.ts
// builds for the tests, written again here because the bench runs plain .mjs without a TS loader.
import { readFileSync } from "node:fs";

const S_IFDIR = 0o040000, S_IFREG = 0o100000, S_IFCHR = 0o020000;
const enc = new TextEncoder();

export function markerInitrdI386(busyboxPath, marker) {
  const parts = [];
  let length = 0;
  let ino = 1;
  const push = (b) => { parts.push(b); length += b.length; };
  const pad = () => { const n = (4 - (length % 4)) % 4; if (n) push(new Uint8Array(n)); };
  const entry = (name, mode, data = new Uint8Array(0), rdev = [0, 0], nlink = 1, i = ino++) => {
    const nameBytes = enc.encode(`${name}\0`);
    // "070701", then ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
    const fields = [i, mode, 0, 0, nlink, 0, data.length, 0, 0, rdev[0], rdev[1], nameBytes.length, 0];
    push(enc.encode(`070701${fields.map((f) => f.toString(16).padStart(8, "0")).join("")}`));
    push(nameBytes);
    pad();
    push(data);
    pad();
  };
  for (const d of ["bin", "dev", "proc", "sys"]) entry(d, S_IFDIR | 0o755, undefined, undefined, 2);
  entry("dev/console", S_IFCHR | 0o600, undefined, [5, 1]);
  entry("bin/busybox", S_IFREG | 0o755, new Uint8Array(readFileSync(busyboxPath)));
  const init = ["#!/bin/busybox sh", "/bin/busybox --install -s /bin", "export PATH=/bin", `echo "${marker}"`, "poweroff -f", "while true; do sleep 1000; done", ""].join("\n");
  entry("init", S_IFREG | 0o755, enc.encode(init));
  entry("TRAILER!!!", 0, undefined, undefined, 1, 0);
  const out = new Uint8Array(length);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
