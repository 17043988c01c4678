// End to end: the demo page's "Boot in v86" (web/boot.ts), served as `npm run web` serves it and
// driven in headless Chromium. With the bundled samples, Boot runs the x86 sample kernel
// (examples/images/hello-x86.mb) and its greeting with the page's command line appears on the
// serial console; then Debian's 686 kernel and a marker initrd, picked as files, boot to
// userspace on the page. Screenshots go to a temp directory and /tmp/guest-image-v86-*.png.
import { mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ViteDevServer } from "vite";
import { readFixture } from "../qemu/fixtures.js";
import { markerInitrd } from "../realboot/initrd.js";
import { haveChromium, launch } from "./helpers/chromium.js";

const GREETING = "Hello from the guest-image x86 sample kernel, booted in v86!";

describe.skipIf(!haveChromium)("demo page: Boot in v86", () => {
  let server: ViteDevServer;
  let browser: Awaited<ReturnType<typeof launch>>;
  let url: string;
  const shots = mkdtempSync(join(tmpdir(), "guest-image-v86-demo-"));

  beforeAll(async () => {
    const { createServer } = await import("vite");
    server = await createServer({
      configFile: new URL("../../web/vite.config.ts", import.meta.url).pathname,
      server: { port: 0, strictPort: false, host: "127.0.0.1", hmr: false },
      logLevel: "warn",
    });
    await server.listen();
    url = server.resolvedUrls!.local[0];
    browser = await launch({ viewport: { width: 1280, height: 1100 } });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  const serial = () => browser.page.evaluate(() => (globalThis as unknown as { guestImageDemo: { serial(): string } }).guestImageDemo.serial());
  const waitSerial = (text: string, timeout: number) =>
    browser.page
      .waitForFunction((t) => (globalThis as unknown as { guestImageDemo: { serial(): string } }).guestImageDemo.serial().includes(t), text, { timeout, polling: 250 })
      .catch(async (e) => {
        throw new Error(`${(e as Error).message}; serial so far: ${JSON.stringify((await serial()).slice(-800))}`);
      });

  it("samples → Boot: the x86 sample greets on the serial console with the page's command line", { timeout: 120_000 }, async () => {
    const { page } = browser;
    await page.goto(url);
    await page.click("#use-samples");
    await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.state ?? ""), null, { timeout: 30_000 });
    await page.fill("#cmdline", "hello from the e2e test");
    await page.click("#boot");
    await waitSerial("Command line: hello from the e2e test\r\n", 60_000);
    expect(await serial()).toBe(`${GREETING}\r\nCommand line: hello from the e2e test\r\n`);
    // The terminal shows it, the time to the first byte is reported, the map shows the placement.
    await page.waitForFunction((g) => document.querySelector("#terminal")?.textContent?.includes(g), GREETING, { timeout: 10_000 });
    expect(await page.locator("#first-byte").textContent()).toMatch(/first guest byte \d+\.\d\d s after the click/);
    expect(await page.locator("#boot-note").textContent()).toContain("hello-x86.mb");
    expect(await page.locator('svg.memory-map .map-image[data-name="hello-x86.mb"]').getAttribute("data-start")).toBe("0x100000");
    expect(await page.locator("#map-caption").textContent()).toContain("v86 guest RAM [0x0, 0x8000000)");
    await page.screenshot({ path: join(shots, "v86-sample.png"), fullPage: true });
    await page.screenshot({ path: "/tmp/guest-image-v86-sample.png", fullPage: true });
    expect(statSync(join(shots, "v86-sample.png")).size).toBeGreaterThan(10_000);
    expect(browser.problems).toEqual([]);
  });

  /** Records every width the progress bar is given (the page sets style.width as bootV86 reports). */
  const watchProgress = () =>
    browser.page.evaluate(() => {
      const bar = document.querySelector<HTMLElement>("#progress-bar")!;
      const widths: string[] = [];
      (globalThis as unknown as { progressWidths: string[] }).progressWidths = widths;
      new MutationObserver(() => widths.push(bar.style.width)).observe(bar, { attributes: true, attributeFilter: ["style"] });
    });
  const progressWidths = async () => (await browser.page.evaluate(() => (globalThis as unknown as { progressWidths: string[] }).progressWidths)).map((w) => parseFloat(w));
  /**
   * The bar moved through the Linux boot's copies (bootLinux's summed onProgress) and ended full.
   * (Not monotonic by design: a small placement that starts after the initrd, such as the zero
   * page, grows the total, so the bar can step back a hair before it ends at 100%.)
   */
  const expectProgress = (w: number[]) => {
    expect(w[0]).toBe(0);
    // Each image is copied in 8 MiB chunks: at least the step after the kernel, before the initrd.
    expect(w.filter((x) => x > 0 && x < 100).length, `bar widths ${JSON.stringify(w)}`).toBeGreaterThan(0);
    expect(w[w.length - 1]).toBe(100);
  };

  it("Debian 686 kernel + marker initrd picked as files boot to userspace on the page", { timeout: 360_000 }, async () => {
    const { page } = browser;
    const marker = `GUEST-IMAGE-V86-DEMO-${Date.now().toString(36).toUpperCase()}`;
    await watchProgress();
    const bz = readFixture("i386/bzImage");
    const initrd = markerInitrd("i386", { marker });
    await page.setInputFiles('.slot[data-slot="kernel"] input.file-input', { name: "bzImage-686", mimeType: "application/octet-stream", buffer: Buffer.from(bz) });
    await page.setInputFiles('.slot[data-slot="initrd"] input.file-input', { name: "initrd.cpio", mimeType: "application/octet-stream", buffer: Buffer.from(initrd) });
    await page.waitForFunction(() => document.querySelector('.slot[data-slot="kernel"] .badge')?.getAttribute("data-format") === "bzimage", null, { timeout: 20_000 });
    await page.fill("#cmdline", "console=ttyS0");
    await page.click("#boot");
    await waitSerial(marker, 300_000);
    expect(await page.evaluate(() => document.body.dataset.boot)).toBe("running");
    expect(await page.locator("#boot-note").textContent()).toBe("");
    expect(await page.locator('svg.memory-map .map-image[data-name="bzImage-686"]').count()).toBe(1);
    expect(await page.locator('svg.memory-map .map-image[data-name="initrd.cpio"]').count()).toBe(1);
    expect(await page.locator("#boot-protocol").textContent()).toBe("Linux 32-bit boot protocol");
    const widths = await progressWidths();
    expectProgress(widths);
    // The kernel goes first and the initrd's size is in the total from the start: the bar's first
    // step is the protected-mode kernel's share (boot.rst: the file after (setup_sects + 1) × 512).
    const kernelBytes = bz.length - (bz[0x1f1]! + 1) * 512;
    expect(widths.find((x) => x > 0)).toBeCloseTo((100 * kernelBytes) / (kernelBytes + initrd.length), 2);
    await page.screenshot({ path: join(shots, "v86-debian.png"), fullPage: true });
    await page.screenshot({ path: "/tmp/guest-image-v86-debian.png", fullPage: true });
    expect(browser.problems).toEqual([]);
  });

  it("Direct boot checked: the same kernel boots to userspace with the decompressed kernel placed", { timeout: 360_000 }, async () => {
    const { page } = browser;
    const marker = `GUEST-IMAGE-V86-DIRECT-${Date.now().toString(36).toUpperCase()}`;
    await page.setInputFiles('.slot[data-slot="initrd"] input.file-input', { name: "initrd.cpio", mimeType: "application/octet-stream", buffer: Buffer.from(markerInitrd("i386", { marker })) });
    await page.waitForFunction(() => document.querySelector('.slot[data-slot="kernel"] .badge')?.getAttribute("data-format") === "bzimage", null, { timeout: 20_000 });
    await page.check("#direct-boot");
    await watchProgress();
    await page.click("#boot");
    await waitSerial(marker, 300_000);
    expect(await page.evaluate(() => document.body.dataset.boot)).toBe("running");
    expect(await page.locator("#boot-protocol").textContent()).toBe("Linux 32-bit boot protocol, direct boot (kernel decompressed on the host)");
    expect(await page.locator('svg.memory-map .map-image[data-name="bzImage-686"]').count()).toBe(1);
    expectProgress(await progressWidths());
    expect(browser.problems).toEqual([]);
  });
});
