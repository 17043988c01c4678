// fromFiles in Chromium: the shared cases, plus a real FileList (what an <input type=file> or a
// drop gives), built with DataTransfer.
import { describe, expect, it } from "vitest";
import { createVm, fromFiles } from "../../src/index.js";
import { filesCases } from "./cases/files.cases.js";
import { pattern } from "./cases/fixtures.js";
import { expectBytes } from "./cases/url.cases.js";

filesCases();

describe("fromFiles with a FileList", () => {
  it("loads what an <input type=file multiple> holds", async () => {
    const dt = new DataTransfer();
    dt.items.add(new File([pattern(1000)], "kernel.bin"));
    dt.items.add(new File([pattern(200, 5)], "initrd.img"));
    const input = document.createElement("input");
    input.type = "file";
    input.multiple = true;
    input.files = dt.files;
    expect(input.files).toBeInstanceOf(FileList);
    const vm = await createVm({ ram: [{ base: 0x1000_0000, size: 1 << 20 }], files: fromFiles(input.files!) });
    await vm.loadModule("kernel.bin", { at: 0x1000_0000 });
    await vm.loadModule("initrd.img", { at: 0x1008_0000 });
    expectBytes(vm.ram.read(0x1000_0000, 1000), pattern(1000));
    expectBytes(vm.ram.read(0x1008_0000, 200), pattern(200, 5));
  });
});
