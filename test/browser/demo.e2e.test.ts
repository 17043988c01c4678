// End to end: the demo page (web/) served the way `npm run web` serves it (Vite, web/vite.config.ts),
// driven in headless Chromium. Loads the bundled samples and checks the memory map's labels and
// the reported addresses against the samples' documented layout (examples/make-samples.mjs,
// README), loads them again in a Web Worker into shared memory, then loads a truncated ELF and
// checks the error. Screenshots go to a temp directory and to /tmp/guest-image-demo.png.
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ViteDevServer } from "vite";
import { haveChromium, launch } from "./helpers/chromium.js";

const images = new URL("../../examples/images/", import.meta.url);
const size = (name: string) => statSync(new URL(name, images)).size;
const firstBytes = (name: string) => [...readFileSync(new URL(name, images)).subarray(0, 16)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
const hex = (n: number) => `0x${n.toString(16)}`;

// The samples' layout (examples/make-samples.mjs; README "Quick start"): the kernel linked at
// 0x40080000, its PT_LOADs spanning [0x40080000, 0x40097000); the initrd at 0x4d700000 and the
// DTB at 0x4f000000, each its file verbatim.
const EXPECTED = [
  { name: "linux", start: 0x4008_0000, end: 0x4009_7000, entry: "0x40080000" },
  { name: "rootfs.cpio.gz", start: 0x4d70_0000, end: 0x4d70_0000 + size("rootfs.cpio.gz") },
  { name: "linux.dtb", start: 0x4f00_0000, end: 0x4f00_0000 + size("linux.dtb") },
];

describe.skipIf(!haveChromium)("demo page (npm run web) in headless Chromium", () => {
  let server: ViteDevServer;
  let browser: Awaited<ReturnType<typeof launch>>;
  let url: string;
  const shots = mkdtempSync(join(tmpdir(), "guest-image-demo-"));

  beforeAll(async () => {
    const { createServer } = await import("vite");
    server = await createServer({
      configFile: new URL("../../web/vite.config.ts", import.meta.url).pathname,
      server: { port: 0, strictPort: false, host: "127.0.0.1", hmr: false },
      logLevel: "warn",
    });
    await server.listen();
    url = server.resolvedUrls!.local[0];
    browser = await launch();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  const waitLoaded = () => browser.page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.state ?? ""), null, { timeout: 20_000 });

  it("loads the bundled samples with one click: map labels, reported addresses, load time", async () => {
    const { page } = browser;
    await page.goto(url);
    await page.click("#use-samples");
    await waitLoaded();
    expect(await page.evaluate(() => document.body.dataset.state)).toBe("done");
    expect(await page.locator("#error").isHidden()).toBe(true);

    // Detected formats, from each slot's header inspection.
    expect(await page.locator('.slot[data-slot="kernel"] .badge').getAttribute("data-format")).toBe("elf");
    expect(await page.locator('.slot[data-slot="initrd"] .badge').getAttribute("data-format")).toBe("gzip");
    expect(await page.locator('.slot[data-slot="dtb"] .badge').getAttribute("data-format")).toBe("fdt");
    expect(await page.locator('.slot[data-slot="kernel"] .fields').innerText()).toMatch(/machine\s+aarch64/);

    // The map: one labelled block per image, at its address, drawn to scale.
    const blocks = page.locator("svg.memory-map .map-image");
    expect(await blocks.count()).toBe(3);
    for (const e of EXPECTED) {
      const g = page.locator(`svg.memory-map .map-image[data-name="${e.name}"]`);
      expect(await g.getAttribute("data-start")).toBe(hex(e.start));
      expect(await g.getAttribute("data-end")).toBe(hex(e.end));
      const label = await g.locator(".map-label").textContent();
      expect(label).toContain(e.name);
      expect(label).toContain(`${hex(e.start)}–${hex(e.end)}`);
      // x of the block = 12 + (start − RAM base) / 256 MiB × 976 (viewBox units).
      const x = Number(await g.locator("rect.block").getAttribute("x"));
      expect(x).toBeCloseTo(12 + ((e.start - 0x4000_0000) / 0x1000_0000) * 976, 3);
    }
    expect(await page.locator("#map-caption").textContent()).toContain("[0x40000000, 0x50000000) · 256 MiB");

    // The placement table reports the same addresses, the entry point and the bytes now in RAM.
    for (const e of EXPECTED) {
      const row = page.locator(`#placements tr[data-name="${e.name}"]`);
      expect(await row.locator("td.start").textContent()).toBe(hex(e.start));
      expect(await row.locator("td.end").textContent()).toBe(hex(e.end));
      if (e.entry) expect(await row.locator("td.entry").textContent()).toBe(e.entry);
      if (e.name !== "linux") expect(await row.locator("td.bytes").textContent()).toBe(firstBytes(e.name));
    }
    expect(await page.locator("#load-time").textContent()).toMatch(/loaded in \d+(\.\d+)? ms/);

    await page.screenshot({ path: join(shots, "samples.png"), fullPage: true });
    await page.screenshot({ path: "/tmp/guest-image-demo.png", fullPage: true });
    expect(statSync(join(shots, "samples.png")).size).toBeGreaterThan(10_000);
    expect(browser.problems).toEqual([]);
  });

  it("loads the same images in a Web Worker into shared memory; the page reads the bytes back", async () => {
    const { page } = browser;
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    await page.check("#use-worker");
    await page.click("#load");
    await waitLoaded();
    expect(await page.evaluate(() => document.body.dataset.state)).toBe("done");
    expect(await page.locator("#stats").textContent()).toContain("in a Web Worker");
    for (const e of EXPECTED.slice(1)) {
      expect(await page.locator(`#placements tr[data-name="${e.name}"] td.bytes`).textContent()).toBe(firstBytes(e.name));
    }
    await page.uncheck("#use-worker");
  });

  it("a truncated ELF kernel: a readable TRUNCATED error, nothing placed", async () => {
    const { page } = browser;
    const linux = readFileSync(new URL("linux", images));
    // Headers intact, the second segment's bytes (at 0x3000) cut off.
    await page.setInputFiles('.slot[data-slot="kernel"] input.file-input', { name: "broken-linux", mimeType: "application/octet-stream", buffer: linux.subarray(0, 0x3400) });
    await page.waitForFunction(() => document.querySelector('.slot[data-slot="kernel"] .file-name')?.textContent === "broken-linux");
    await page.click("#load");
    await waitLoaded();
    expect(await page.evaluate(() => document.body.dataset.state)).toBe("error");
    const error = page.locator("#error");
    expect(await error.isVisible()).toBe(true);
    expect(await error.getAttribute("data-code")).toBe("TRUNCATED");
    const text = await error.innerText();
    expect(text).toContain("TRUNCATED");
    expect(text).toContain("broken-linux");
    expect(text).toMatch(/0x3000|0x4000|past the end|ended/);
    expect(await page.locator("svg.memory-map .map-image").count()).toBe(0);
    await page.screenshot({ path: join(shots, "error.png"), fullPage: true });
  });

  it("a damaged device tree: the slot warns, the load names the bad header field", async () => {
    const { page } = browser;
    await page.click('.slot[data-slot="kernel"] .clear');
    await page.setInputFiles('.slot[data-slot="dtb"] input.file-input', { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("this is not a device tree, just text") });
    await page.waitForSelector('.slot[data-slot="dtb"] .inspect-warning');
    expect(await page.locator('.slot[data-slot="dtb"] .inspect-warning').innerText()).toContain("not a device tree");
    // A real DTB cut short: its header (magic intact) says totalsize 0x31e, the file has 0x100.
    const dtb = readFileSync(new URL("linux.dtb", images));
    await page.setInputFiles('.slot[data-slot="dtb"] input.file-input', { name: "cut.dtb", mimeType: "application/octet-stream", buffer: dtb.subarray(0, 0x100) });
    await page.waitForFunction(() => document.querySelector('.slot[data-slot="dtb"] .file-name')?.textContent === "cut.dtb");
    await page.click("#load");
    await waitLoaded();
    expect(await page.evaluate(() => document.body.dataset.state)).toBe("error");
    const text = await page.locator("#error").innerText();
    expect(text).toContain("cut.dtb");
    expect(text).toContain("totalsize");
    // The initrd before it was placed; the DTB was not.
    expect(await page.locator("svg.memory-map .map-image").evaluateAll((gs) => gs.map((g) => g.getAttribute("data-name")))).toEqual(["rootfs.cpio.gz"]);
  });
});
