// The same load gives the same guest RAM in Node and in Chromium. Node's side runs through the
// `nodeLoad` browser command (test/browser/helpers/commands.ts: dist/node.js, files from disk
// with fromDirectory / fromCpio / fromMap); Chromium's side reads the same files over HTTP
// with fromUrl, or as Files with fromFiles. Compared: SHA-256 of all of guest RAM, the ledger
// and every reported address.
import { describe, expect, it } from "vitest";
import { commands } from "vitest/browser";
import { createVm, fromCpio, fromFiles, fromUrl } from "../../src/index.js";
import { SCENARIOS, runScenario, type ScenarioResult } from "./cases/scenario.js";
import { sha256 } from "./cases/url.cases.js";

const fetchBytes = async (url: string) => new Uint8Array(await (await fetch(url)).arrayBuffer());
const lib = { createVm };

function sane(r: ScenarioResult) {
  expect(r.placed.length).toBeGreaterThan(1);
  expect(r.sha256).toMatch(/^[0-9a-f]{64}$/);
}

describe("same guest RAM in Node and Chromium", () => {
  it("bundled samples: Node fromDirectory = Chromium fromUrl = Chromium fromFiles", async () => {
    const node = await commands.nodeLoad("samples");
    sane(node);
    expect(node.kernel).toMatchObject({ paddr: 0x4008_0000, entry: "0x40080000", format: "elf" });
    expect(node.modules.map((m) => m.paddr)).toEqual([0x4d70_0000, 0x4f00_0000]);
    const viaUrl = await runScenario(lib, SCENARIOS.samples, fromUrl("/gi/range/"), sha256);
    expect(viaUrl).toEqual(node);
    const names = ["linux", "rootfs.cpio.gz", "linux.dtb"];
    const picked = await Promise.all(names.map(async (n) => new File([await fetchBytes(`/gi/norange/${n}`)], n)));
    expect(await runScenario(lib, SCENARIOS.samples, fromFiles(picked), sha256)).toEqual(node);
  });

  it("the samples' seL4 archive, kernel moved: Node fromCpio = Chromium fromCpio", async () => {
    const node = await commands.nodeLoad("cpio");
    sane(node);
    const archive = await fetchBytes("/gi/range/images.cpio");
    expect(await runScenario(lib, SCENARIOS.cpio, fromCpio(archive), sha256)).toEqual(node);
  });

  it("scattered ELF + 20 MiB module: Node fromMap = Chromium fromUrl with and without Range support", async () => {
    const node = await commands.nodeLoad("synthetic");
    sane(node);
    expect(await runScenario(lib, SCENARIOS.synthetic, fromUrl("/gi/range/"), sha256)).toEqual(node);
    expect(await runScenario(lib, SCENARIOS.synthetic, fromUrl("/gi/norange/"), sha256)).toEqual(node);
  });
});
