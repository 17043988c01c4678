// cpio archives (an initramfs): recognised so that one passed as a kernel — plain or inside
// gzip — is refused with a message saying what it is. As a module it is placed verbatim.
// Magic numbers: "070701" (newc), "070702" (newc with checksum), "070707" (portable ASCII/odc)
// — Linux Documentation/driver-api/early-userspace/buffer-format.rst, GNU cpio manual.
import type { ImageFormat } from "./format.js";

const MAGICS = ["070701", "070702", "070707"];

export const cpioFormat: ImageFormat = {
  name: "cpio",
  description: "a cpio archive (an initramfs)",
  test: (h) => h.length >= 6 && MAGICS.includes(String.fromCharCode(...h.subarray(0, 6))),
  notAKernel: "a cpio archive (an initramfs), not a kernel: load it as a module (the initrd)",
};
