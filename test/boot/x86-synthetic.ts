// A synthetic x86 bzImage for the x86 boot tests, built from Linux Documentation/arch/x86/boot.rst's
// header table (not from src/): enough header for the loader, no real code.
const MiB = 1024 * 1024;

/** A minimal protocol-2.15 bzImage (boot.rst header table): 4 setup sectors, then 0x3000 bytes of kernel. */
export function bzImage(): Uint8Array {
  const b = new Uint8Array(0xa00 + 0x3000);
  const dv = new DataView(b.buffer);
  b[0x1f1] = 4; // setup_sects
  dv.setUint32(0x1f4, 0x300, true); // syssize (16-byte units)
  dv.setUint16(0x1fe, 0xaa55, true); // boot_flag
  b[0x200] = 0xeb; // jump
  b[0x201] = 0x26c - 0x202; // end of the 2.15 header
  dv.setUint32(0x202, 0x53726448, true); // "HdrS"
  dv.setUint16(0x206, 0x20f, true); // version
  b[0x211] = 0x01; // loadflags: LOADED_HIGH
  dv.setUint32(0x214, 0x100000, true); // code32_start
  dv.setUint32(0x22c, 0x7fffffff, true); // initrd_addr_max
  dv.setUint32(0x230, 0x200000, true); // kernel_alignment
  b[0x234] = 1; // relocatable_kernel
  dv.setUint16(0x236, 0x03, true); // xloadflags: KERNEL_64 | CAN_BE_LOADED_ABOVE_4G
  dv.setUint32(0x238, 0x7ff, true); // cmdline_size
  dv.setBigUint64(0x258, 0x1000000n, true); // pref_address
  dv.setUint32(0x260, 4 * MiB, true); // init_size
  return b;
}

