// Multiboot 1 video mode (GNU Multiboot Specification 0.6.96). Expected offsets and values come
// from the spec text, written out here, not from the library's constants:
//   3.1.2 header flags bit 2: "information about the video mode table must be available to the
//         kernel"; 3.1.4 header fields mode_type (32), width (36), height (40), depth (44).
//   3.3 multiboot_info: flags bit 11 → 72 vbe_control_info (u32), 76 vbe_mode_info (u32),
//       80 vbe_mode (u16), 82 vbe_interface_seg, 84 vbe_interface_off, 86 vbe_interface_len (u16);
//       flags bit 12 → 88 framebuffer_addr (u64), 96 framebuffer_pitch, 100 framebuffer_width,
//       104 framebuffer_height (u32), 108 framebuffer_bpp (u8), 109 framebuffer_type (u8:
//       0 indexed, 1 direct RGB, 2 EGA text), 110 color_info: type 0 → palette_addr (u32),
//       palette_num_colors (u16); type 1 → red/green/blue field_position and mask_size (u8 each).
import { describe, expect, it } from "vitest";
import { buildMultibootInfo } from "../../src/boot/multiboot-info.js";
import type { MultibootKernelArch } from "../../src/formats/multiboot.js";
import { createVm, fromMap, GuestImageError } from "../../src/node.js";

const MiB = 0x100000;
const RAM = [{ base: 0, size: 16 * MiB }];
type Vm = Awaited<ReturnType<typeof createVm>>;

async function placed(info: { bytes: Uint8Array }, at = 0x9000): Promise<{ vm: Vm; dv: DataView }> {
  const vm = await createVm({ ram: RAM });
  await vm.place("multiboot-info", info.bytes, { at });
  return { vm, dv: new DataView(vm.ram.read(at, info.bytes.length).slice().buffer) };
}

/** A Multiboot kernel (spec 3.1.1, address fields, bit 16) with flags bit 2 and a video request. */
function videoKernel(): Uint8Array {
  const b = new Uint8Array(0x2000);
  const dv = new DataView(b.buffer);
  const flags = (1 << 2) | (1 << 16);
  dv.setUint32(0, 0x1badb002, true);
  dv.setUint32(4, flags, true);
  dv.setUint32(8, (0x1_0000_0000 - ((0x1badb002 + flags) % 0x1_0000_0000)) % 0x1_0000_0000, true);
  dv.setUint32(12, 0x100000, true); // header_addr
  dv.setUint32(16, 0x100000, true); // load_addr
  dv.setUint32(20, 0x102000, true); // load_end_addr
  dv.setUint32(24, 0, true); // bss_end_addr
  dv.setUint32(28, 0x100040, true); // entry_addr
  dv.setUint32(32, 0, true); // mode_type: linear graphics
  dv.setUint32(36, 1024, true); // width
  dv.setUint32(40, 768, true); // height
  dv.setUint32(44, 32, true); // depth
  return b;
}

describe("Multiboot info: framebuffer (flag 12) and VBE (flag 11) fields at the spec's offsets", () => {
  it("direct RGB framebuffer: flag 12, framebuffer_* and the RGB color_info", async () => {
    const info = buildMultibootInfo({
      at: 0x9000, ram: RAM,
      framebuffer: { addr: 0xfd00_0000, pitch: 4096, width: 1024, height: 768, bpp: 32, type: "rgb", red: { position: 16, size: 8 }, green: { position: 8, size: 8 }, blue: { position: 0, size: 8 } },
    });
    const { dv } = await placed(info);
    expect(dv.getUint32(0, true) & (1 << 12)).toBe(1 << 12);
    expect(dv.getUint32(0, true) & (1 << 11)).toBe(0);
    expect(dv.getBigUint64(88, true)).toBe(0xfd00_0000n);
    expect([dv.getUint32(96, true), dv.getUint32(100, true), dv.getUint32(104, true)]).toEqual([4096, 1024, 768]);
    expect([dv.getUint8(108), dv.getUint8(109)]).toEqual([32, 1]);
    expect([110, 111, 112, 113, 114, 115].map((o) => dv.getUint8(o))).toEqual([16, 8, 8, 8, 0, 8]);
  });

  it("framebuffer_addr is a u64: a framebuffer above 4 GiB is written whole", async () => {
    const info = buildMultibootInfo({ at: 0x9000, ram: RAM, framebuffer: { addr: 0x1_2000_0000, pitch: 2048, width: 512, height: 256, bpp: 32, type: "rgb", red: { position: 0, size: 8 }, green: { position: 8, size: 8 }, blue: { position: 16, size: 8 } } });
    const { dv } = await placed(info);
    expect(dv.getUint32(88, true)).toBe(0x2000_0000);
    expect(dv.getUint32(92, true)).toBe(1);
  });

  it("indexed colour: type 0, palette address (u32 at 110) and number of colours (u16 at 114)", async () => {
    const info = buildMultibootInfo({ at: 0x9000, ram: RAM, framebuffer: { addr: 0xa0000, pitch: 320, width: 320, height: 200, bpp: 8, type: "indexed", paletteAddr: 0x8000, paletteColors: 256 } });
    const { dv } = await placed(info);
    expect(dv.getUint8(109)).toBe(0);
    expect(dv.getUint32(110, true)).toBe(0x8000);
    expect(dv.getUint16(114, true)).toBe(256);
  });

  it("EGA text: type 2, width/height in characters, no color_info", async () => {
    const info = buildMultibootInfo({ at: 0x9000, ram: RAM, framebuffer: { addr: 0xb8000, pitch: 160, width: 80, height: 25, bpp: 16, type: "text" } });
    const { dv } = await placed(info);
    expect([dv.getBigUint64(88, true), dv.getUint32(96, true), dv.getUint32(100, true), dv.getUint32(104, true), dv.getUint8(108), dv.getUint8(109)]).toEqual([0xb8000n, 160, 80, 25, 16, 2]);
    expect([110, 111, 112, 113, 114, 115].map((o) => dv.getUint8(o))).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it("VBE: flag 11, vbe_control_info/mode_info (u32), vbe_mode and the interface (u16)", async () => {
    const info = buildMultibootInfo({ at: 0x9000, ram: RAM, vbe: { controlInfo: 0x7000, modeInfo: 0x7200, mode: 0x4118, interfaceSeg: 0xc000, interfaceOff: 0x1234, interfaceLen: 0x200 } });
    const { dv } = await placed(info);
    expect(dv.getUint32(0, true) & (1 << 11)).toBe(1 << 11);
    expect(dv.getUint32(0, true) & (1 << 12)).toBe(0);
    expect([dv.getUint32(72, true), dv.getUint32(76, true)]).toEqual([0x7000, 0x7200]);
    expect([80, 82, 84, 86].map((o) => dv.getUint16(o, true))).toEqual([0x4118, 0xc000, 0x1234, 0x200]);
  });

  it("neither given: flags 11 and 12 clear, bytes 72-115 zero", async () => {
    const { dv } = await placed(buildMultibootInfo({ at: 0x9000, ram: RAM }));
    expect(dv.getUint32(0, true) & ((1 << 11) | (1 << 12))).toBe(0);
    for (let o = 72; o < 116; o++) expect(dv.getUint8(o)).toBe(0);
  });

  it("out-of-range fields → BAD_ARGUMENT naming them", () => {
    const fb = { addr: 0xfd00_0000, pitch: 4096, width: 1024, height: 768, bpp: 32, type: "rgb" as const, red: { position: 16, size: 8 }, green: { position: 8, size: 8 }, blue: { position: 0, size: 8 } };
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e as GuestImageError;
      }
      return undefined;
    };
    expect(err(() => buildMultibootInfo({ at: 0x9000, ram: RAM, framebuffer: { ...fb, bpp: 256 } }))).toMatchObject({ code: "BAD_ARGUMENT", field: "framebuffer.bpp" });
    expect(err(() => buildMultibootInfo({ at: 0x9000, ram: RAM, framebuffer: { ...fb, type: "cga" } as never }))).toMatchObject({ code: "BAD_ARGUMENT", field: "framebuffer.type" });
    expect(err(() => buildMultibootInfo({ at: 0x9000, ram: RAM, vbe: { controlInfo: 0, modeInfo: 0, mode: 0x10000 } }))).toMatchObject({ code: "BAD_ARGUMENT", field: "vbe.mode" });
  });
});

describe("a kernel whose header sets flags bit 2 (video mode required)", () => {
  it("its load reports the request; without a framebuffer or VBE description the info builder refuses it (UNSUPPORTED, naming the flag)", async () => {
    const vm = await createVm({ ram: RAM, files: fromMap({ kernel: videoKernel() }) });
    const k = await vm.loadKernel("kernel");
    const a = k.arch as unknown as MultibootKernelArch;
    expect(a.requirements.video_mode).toBe(true);
    expect([a.mode_type, a.width, a.height, a.depth]).toEqual([0, 1024, 768, 32]);
    let e: unknown;
    try {
      buildMultibootInfo({ at: 0x9000, ram: vm.ram.regions, videoMode: a.requirements.video_mode });
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(GuestImageError);
    expect((e as GuestImageError).code).toBe("UNSUPPORTED");
    expect((e as GuestImageError).field).toBe("flags");
    expect((e as GuestImageError).message).toContain("flags bit 2");
  });

  it("with the framebuffer it asked for, the info carries it (flag 12)", async () => {
    const vm = await createVm({ ram: RAM, files: fromMap({ kernel: videoKernel() }) });
    const a = (await vm.loadKernel("kernel")).arch as unknown as MultibootKernelArch;
    const info = buildMultibootInfo({
      at: 0x9000, ram: vm.ram.regions, videoMode: a.requirements.video_mode,
      framebuffer: { addr: 0xfd00_0000, pitch: a.width! * 4, width: a.width!, height: a.height!, bpp: a.depth!, type: "rgb", red: { position: 16, size: 8 }, green: { position: 8, size: 8 }, blue: { position: 0, size: 8 } },
    });
    await vm.place("multiboot-info", info.bytes, { at: 0x9000 });
    const dv = new DataView(vm.ram.read(0x9000, 116).slice().buffer);
    expect(dv.getUint32(0, true) & (1 << 12)).toBe(1 << 12);
    expect([dv.getUint32(100, true), dv.getUint32(104, true), dv.getUint8(108)]).toEqual([1024, 768, 32]);
  });
});
