// A cpio archive (an initramfs) — plain, or gzip'd as initrds usually are — passed as a kernel is
// refused with a message saying what it is; as a module it is placed verbatim. The archives are
// the bundled sample initrd and one written by GNU cpio.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { createVm, fromMap, GuestImageError, vm_load_guest_kernel } from "../../src/node.js";

const gz = new Uint8Array(readFileSync(new URL("../../examples/images/rootfs.cpio.gz", import.meta.url)));
const plain = new Uint8Array(gunzipSync(gz));
const odc = new Uint8Array(execFileSync("cpio", ["--quiet", "-o", "-H", "odc"], { input: "/dev/null\n" }));

async function vmWith() {
  const vm = await createVm({ ram: [{ base: 0x4000_0000, size: 0x100_0000 }], files: fromMap({ "initrd.gz": gz, initrd: plain, odc }) });
  vm.ram.view(0x4000_0000, 0x100_0000).fill(0xee);
  return vm;
}

describe("cpio archives", () => {
  it("as a kernel (gzip'd, plain newc, odc): UNSUPPORTED naming a cpio archive, nothing changed", async () => {
    for (const name of ["initrd.gz", "initrd", "odc"]) {
      const vm = await vmWith();
      const before = vm.ram.read(0x4000_0000, 0x100_0000);
      for (const load of [() => vm.loadKernel(name, { at: 0x4000_0000 }), () => vm_load_guest_kernel(vm, name, 0x4000_0000, 0)]) {
        const e = await load().catch((x) => x);
        expect(e, name).toBeInstanceOf(GuestImageError);
        expect(e.code).toBe("UNSUPPORTED");
        expect(e.message).toMatch(/cpio archive/);
        expect(e.message).toContain(name);
      }
      expect(vm.placed()).toEqual([]);
      expect(Buffer.from(vm.ram.read(0x4000_0000, 0x100_0000)).equals(Buffer.from(before))).toBe(true);
    }
  });

  it("as a module: verbatim (the gzip'd one stays compressed for the kernel to unpack)", async () => {
    const vm = await vmWith();
    const a = await vm.loadModule("initrd.gz", { at: 0x4080_0000 });
    const b = await vm.loadModule("initrd", { at: 0x40a0_0000 });
    expect(a).toMatchObject({ format: "gzip", size: gz.length });
    expect(b).toMatchObject({ format: "cpio", size: plain.length });
    expect(Buffer.from(vm.ram.read(0x4080_0000, gz.length)).equals(Buffer.from(gz))).toBe(true);
    expect(Buffer.from(vm.ram.read(0x40a0_0000, plain.length)).equals(Buffer.from(plain))).toBe(true);
  });
});
