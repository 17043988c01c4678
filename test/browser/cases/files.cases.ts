// fromFiles over File/Blob objects. Runs in Node (test/files.test.ts: Node 20 has Blob and File)
// and in Chromium (test/browser/files.browser.test.ts, which adds a real FileList).
import { describe, expect, it } from "vitest";
import { createVm, fromFiles, GuestImageError } from "../../../src/index.js";
import { BIG, MiB, pattern } from "./fixtures.js";
import { expectBytes } from "./url.cases.js";

async function caught(p: Promise<unknown> | (() => unknown)): Promise<GuestImageError> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(GuestImageError);
    return e as GuestImageError;
  }
  throw new Error("expected a GuestImageError");
}

export function filesCases() {
  describe("fromFiles", () => {
    const kernel = new File([pattern(5000)], "Image");
    const dtb = new File([pattern(300, 1)], "board.dtb");

    it("looks Files up by name (and without a leading ./), and loads them byte for byte", async () => {
      const vm = await createVm({ ram: [{ base: 0x8000_0000, size: MiB }], files: fromFiles([kernel, dtb]) });
      await vm.loadModule("Image", { at: 0x8000_0000 });
      await vm.loadModule("./board.dtb", { at: 0x8008_0000 });
      expectBytes(vm.ram.read(0x8000_0000, 5000), pattern(5000));
      expectBytes(vm.ram.read(0x8008_0000, 300), pattern(300, 1));
      expect(vm.placed().map((p) => p.name)).toEqual(["Image", "./board.dtb"]);
    });

    it("takes a map (or record) of names to plain Blobs", async () => {
      const blob = new Blob([pattern(64, 2)]);
      for (const files of [new Map([["initrd", blob]]), { initrd: blob }]) {
        const vm = await createVm({ ram: [{ base: 0, size: MiB }], files: fromFiles(files) });
        await vm.loadModule("initrd", { at: 0x100 });
        expectBytes(vm.ram.read(0x100, 64), pattern(64, 2));
      }
    });

    it("reads positionally with Blob.slice, across its 8 MiB pieces, reporting progress", async () => {
      const data = pattern(BIG);
      const vm = await createVm({ ram: [{ base: 0, size: 24 * MiB }], files: fromFiles([new File([data], "big")]) });
      const progress: number[] = [];
      await vm.loadModule("big", { at: 0x1000, onProgress: (l, t) => progress.push(l / t) });
      expect(progress.at(-1)).toBe(1);
      expectBytes(vm.ram.read(0x1000, BIG), data);
      const f = await fromFiles({ big: new Blob([data]) }).open("big");
      const dst = new Uint8Array(9 * MiB);
      await f.read(dst, 5 * MiB + 3);
      expectBytes(dst, data.subarray(5 * MiB + 3, 14 * MiB + 3));
      expect((await caught(f.read(new Uint8Array(10), BIG - 5))).code).toBe("TRUNCATED");
    });

    it("refuses unknown names (listing the known ones), nameless Blobs in a list and duplicate names", async () => {
      const err = await caught(fromFiles([kernel, dtb]).open("linux"));
      expect(err.code).toBe("NOT_FOUND");
      expect(err.message).toContain('"Image", "board.dtb"');
      expect((await caught(() => fromFiles([new Blob([new Uint8Array(1)])] as unknown as File[]))).code).toBe("BAD_ARGUMENT");
      expect((await caught(() => fromFiles([kernel, new File([new Uint8Array(1)], "Image")]))).code).toBe("BAD_ARGUMENT");
      expect((await caught(() => fromFiles({ x: new Uint8Array(3) } as unknown as Record<string, Blob>))).code).toBe("BAD_ARGUMENT");
    });
  });
}
