// fromUrl against the image test server (test/browser/helpers/image-server.ts). The same cases
// run in Node (test/url.test.ts, undici's fetch, a node:http server) and in Chromium
// (test/browser/url.browser.test.ts, the browser's fetch, the same handler as Vite middleware).
// Expected bytes come from a plain fetch().arrayBuffer() or from fixtures.ts, never from the
// library itself.
import { describe, expect, it } from "vitest";
import { createVm, fromMap, fromUrl, GuestImageError, type Vm } from "../../../src/index.js";
import { BIG, MiB, pattern, scatteredElf } from "./fixtures.js";
import type { LoggedRequest } from "../helpers/image-server.js";

/** SHA-256 of bytes anywhere (a copy first: WebCrypto refuses views of shared memory). */
export async function sha256(bytes: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", bytes.slice());
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Byte equality that reports the first difference instead of diffing megabytes. */
export function expectBytes(got: Uint8Array, want: Uint8Array, what = "bytes"): void {
  let i = 0;
  const n = Math.min(got.length, want.length);
  while (i < n && got[i] === want[i]) i++;
  expect(i === n && got.length === want.length ? "equal" : `${what}: length ${got.length} vs ${want.length}, first difference at ${i}: ${got[i]} vs ${want[i]}`).toBe("equal");
}

async function caught(p: Promise<unknown>): Promise<GuestImageError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(GuestImageError);
    return e as GuestImageError;
  }
  throw new Error("expected a GuestImageError");
}

/** RAM and ledger fingerprint, to show a failed load changed nothing. */
async function state(vm: Vm) {
  return { ram: await sha256(vm.ram.read(vm.ram.regions[0].base, vm.ram.regions[0].size)), placed: JSON.stringify(vm.placed()) };
}

export function urlCases(origin: () => string) {
  const base = (mode: string) => `${origin()}/gi/${mode}/`;
  const log = async (): Promise<LoggedRequest[]> => (await fetch(`${origin()}/gi/log?reset`)).json();
  const expected = async (file: string) => new Uint8Array(await (await fetch(`${base("norange")}${file}`)).arrayBuffer());

  describe("fromUrl: streaming into guest RAM", () => {
    it("loads a sample module byte for byte from one GET", async () => {
      const want = await expected("rootfs.cpio.gz");
      await log();
      const vm = await createVm({ ram: [{ base: 0x4000_0000, size: MiB }], files: fromUrl(base("range")) });
      const r = await vm.loadModule("rootfs.cpio.gz", { at: 0x4000_1000 });
      expect(r).toMatchObject({ format: "gzip", paddr: 0x4000_1000, size: want.length });
      expectBytes(vm.ram.read(0x4000_1000, want.length), want);
      expect(await log()).toEqual([{ mode: "range", file: "rootfs.cpio.gz", range: null }]);
    });

    it("streams a 20 MiB module in 8 MiB chunks with progress, from the one response open() started", async () => {
      await log();
      const vm = await createVm({ ram: [{ base: 0, size: 32 * MiB }], files: fromUrl(base("range")) });
      const progress: Array<[number, number]> = [];
      await vm.loadModule("big", { at: 0x10_0000, onProgress: (l, t) => progress.push([l, t]) });
      expect(progress).toEqual([[8 * MiB, BIG], [16 * MiB, BIG], [BIG, BIG]]);
      expect(await sha256(vm.ram.read(0x10_0000, BIG))).toBe(await sha256(pattern(BIG)));
      expect(await log()).toEqual([{ mode: "range", file: "big", range: null }]);
    });

    it("resolves names against the base like new URL(name, base)", async () => {
      const files = fromUrl(`${base("range")}sub/`);
      const f = await files.open("../linux.dtb");
      expect(f.size).toBe((await expected("linux.dtb")).length);
      await f.close();
    });
  });

  describe("fromUrl: seeking (ELF segments out of file order)", () => {
    const elf = scatteredElf();

    async function loadBoth(mode: string) {
      const ram = [{ base: 0x4000_0000, size: 8 * MiB }];
      const viaUrl = await createVm({ ram, files: fromUrl(base(mode)) });
      const viaMap = await createVm({ ram, files: fromMap({ "elf-scattered": elf }) });
      await log();
      const k = await viaUrl.loadKernel("elf-scattered");
      const requests = await log();
      await viaMap.loadKernel("elf-scattered");
      expect(k.entry).toBe(0x4008_0000n);
      expect(await sha256(viaUrl.ram.read(0x4000_0000, 8 * MiB))).toBe(await sha256(viaMap.ram.read(0x4000_0000, 8 * MiB)));
      // The segments' bytes are the fixture's, at their p_paddr, BSS zeroed.
      expectBytes(viaUrl.ram.read(0x4010_0000, 40 * 1024), pattern(40 * 1024, 2));
      expectBytes(viaUrl.ram.read(0x4020_0000, 1536 * 1024), pattern(1536 * 1024, 3));
      return requests;
    }

    // The reads: headers at 0 (the GET open() sent), segment 0 at 2 MiB (300 KiB), segment 1
    // back at 0x20000 (40 KiB), segment 2 at 3 MiB (1.5 MiB, to the end of the 4.5 MiB file).
    const last = elf.length - 1;
    const seg1 = `bytes=${0x2_0000}-${0x2_0000 + 40 * 1024 - 1}`;

    it("uses Range requests when the server advertises Accept-Ranges: bytes", async () => {
      const requests = await loadBoth("range");
      // Segment 0: an open-ended range (segment 2 continues it); segment 1: a range of its own.
      expect(requests.map((r) => r.range)).toEqual([null, `bytes=${0x20_0000}-${last}`, seg1]);
      expect(requests.every((r) => r.file === "elf-scattered")).toBe(true);
    });

    it("probes with a Range request when Accept-Ranges is absent, and keeps using ranges once one works", async () => {
      const requests = await loadBoth("range-quiet");
      expect(requests.map((r) => r.range)).toEqual([null, `bytes=${0x20_0000}-${last}`, seg1]);
    });

    it("re-fetches from the start and skips when the server ignores Range (same bytes)", async () => {
      const requests = await loadBoth("norange");
      // The probe is answered 200 (the whole file): skipped forward to 2 MiB; segment 1 lies
      // behind, so one more GET from the start.
      expect(requests.map((r) => r.range)).toEqual([null, `bytes=${0x20_0000}-${last}`, null]);
    });

    it("never sends Range to a server that says Accept-Ranges: none", async () => {
      const requests = await loadBoth("none");
      expect(requests.map((r) => r.range)).toEqual([null, null]);
    });

    it("falls back to plain GETs when a Range request is refused outright (a CORS preflight that fails)", async () => {
      const refusing: typeof fetch = (input, init) =>
        new Headers(init?.headers).has("range") ? Promise.reject(new TypeError("Failed to fetch")) : fetch(input, init);
      const ram = [{ base: 0x4000_0000, size: 8 * MiB }];
      const viaUrl = await createVm({ ram, files: fromUrl(base("range-quiet"), { fetch: refusing }) });
      const viaMap = await createVm({ ram, files: fromMap({ "elf-scattered": elf }) });
      await log();
      await viaUrl.loadKernel("elf-scattered");
      await viaMap.loadKernel("elf-scattered");
      expect((await log()).map((r) => r.range)).toEqual([null, null]);
      expect(await sha256(viaUrl.ram.read(0x4000_0000, 8 * MiB))).toBe(await sha256(viaMap.ram.read(0x4000_0000, 8 * MiB)));
    });

    it("positional reads anywhere return the file's bytes (cache, cursor, range, re-fetch)", async () => {
      const want = pattern(BIG);
      for (const mode of ["range", "norange"]) {
        const f = await fromUrl(base(mode)).open("big");
        expect(f.size).toBe(BIG);
        for (const [pos, len] of [[0, 100], [50, 70_000], [9 * MiB, 1000], [1000, 10], [9 * MiB + 1000, 3 * MiB], [BIG - 7, 7], [70_000, 5]]) {
          const dst = new Uint8Array(len);
          await f.read(dst, pos);
          expectBytes(dst, want.subarray(pos, pos + len), `${mode} [${pos}, +${len})`);
        }
        const err = await caught(f.read(new Uint8Array(8), BIG - 4));
        expect(err.code).toBe("TRUNCATED");
        await f.close();
      }
    });
  });

  describe("fromUrl: refusals and failures leave RAM and the ledger as they were", () => {
    async function vmWithOldBytes(mode: string, ramSize = 32 * MiB) {
      const vm = await createVm({ ram: [{ base: 0, size: ramSize }], files: fromUrl(base(mode)) });
      vm.ram.write(0x10_0000, pattern(2 * MiB, 9)); // not zero: rollback must restore, not just zero
      await vm.place("earlier", new Uint8Array([1, 2, 3]), { at: 0x10 });
      return vm;
    }

    it("refuses a Content-Length bigger than guest RAM before writing anything (OUT_OF_RAM)", async () => {
      const vm = await vmWithOldBytes("huge", 16 * MiB);
      const before = await state(vm);
      const t0 = performance.now();
      const err = await caught(vm.loadModule("big", { at: 0x10_0000 }));
      expect(err.code).toBe("OUT_OF_RAM");
      expect(err.message).toContain("0x20100000"); // 0x100000 + 512 MiB: the announced end
      expect(performance.now() - t0).toBeLessThan(5000);
      expect(await state(vm)).toEqual(before);
    });

    it("a connection cut after 10 MiB of 20 → IO, guest RAM restored", async () => {
      const vm = await vmWithOldBytes(`cut-${10 * MiB}`);
      const before = await state(vm);
      const progress: number[] = [];
      const err = await caught(vm.loadModule("big", { at: 0x10_0000, onProgress: (l) => progress.push(l) }));
      expect(err.code).toBe("IO");
      expect(err.image).toBe("big");
      expect(progress).toEqual([8 * MiB]); // the first chunk was written, then undone
      expect(await state(vm)).toEqual(before);
    });

    it("a body shorter than its Content-Range → TRUNCATED, guest RAM restored", async () => {
      const vm = await vmWithOldBytes("lying-range");
      const before = await state(vm);
      const err = await caught(vm.loadKernel("elf-scattered", { at: 0x10_0000 }));
      expect(err.code).toBe("TRUNCATED");
      expect(err.message).toMatch(/ended at offset 0x[0-9a-f]+/);
      expect(await state(vm)).toEqual(before);
    });

    it("a stream that ends cleanly before Content-Length → TRUNCATED, guest RAM restored", async () => {
      const data = pattern(12 * MiB);
      const shortFetch: typeof fetch = async () =>
        new Response(
          new ReadableStream({
            start(c) {
              c.enqueue(data.subarray(0, 9 * MiB)); // then close: 3 MiB short
              c.close();
            },
          }),
          { headers: { "content-length": String(data.length) } },
        );
      const vm = await createVm({ ram: [{ base: 0, size: 32 * MiB }], files: fromUrl("http://127.0.0.1/x/", { fetch: shortFetch }) });
      vm.ram.write(0x10_0000, pattern(2 * MiB, 9));
      const before = await state(vm);
      const err = await caught(vm.loadModule("m", { at: 0x10_0000 }));
      expect(err.code).toBe("TRUNCATED");
      expect(err.message).toContain(`ended at offset ${"0x" + (9 * MiB).toString(16)}`);
      expect(await state(vm)).toEqual(before);
    });

    it("aborting mid-way (AbortSignal) → IO, guest RAM restored", async () => {
      const ac = new AbortController();
      const vm = await createVm({ ram: [{ base: 0, size: 32 * MiB }], files: fromUrl(base("slow"), { signal: ac.signal }) });
      vm.ram.write(0x10_0000, pattern(2 * MiB, 9));
      const before = await state(vm);
      const err = await caught(vm.loadModule("big", { at: 0x10_0000, onProgress: () => ac.abort() }));
      expect(err.code).toBe("IO");
      expect(await state(vm)).toEqual(before);
    });

    it("no Content-Length (chunked): read into a bounded buffer, refused past maxBuffer", async () => {
      const vm = await createVm({ ram: [{ base: 0, size: 32 * MiB }], files: fromUrl(base("chunked")) });
      await vm.loadModule("linux.dtb", { at: 0x1000 });
      const want = await expected("linux.dtb");
      expectBytes(vm.ram.read(0x1000, want.length), want);
      const small = await createVm({ ram: [{ base: 0, size: 32 * MiB }], files: fromUrl(base("chunked"), { maxBuffer: MiB }) });
      const err = await caught(small.loadModule("big", { at: 0x1000 }));
      expect(err.code).toBe("TOO_LARGE");
      expect(small.placed()).toEqual([]);
    });

    it("HTTP 404 → NOT_FOUND, other HTTP errors → IO, a bad mode of server → IO", async () => {
      expect((await caught(fromUrl(base("range")).open("no-such-file"))).code).toBe("NOT_FOUND");
      expect((await caught(fromUrl(base("no-such-mode")).open("linux"))).code).toBe("IO");
      const unreachable = fromUrl("http://127.0.0.1:9/");
      const err = await caught(unreachable.open("linux"));
      expect(err.code).toBe("IO");
      expect(err.message).toContain("http://127.0.0.1:9/linux");
    });
  });
}
