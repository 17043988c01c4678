// Sources: a CPIO newc archive written by GNU cpio (the reference writer), a Node directory, and
// an in-memory map, with the seL4 file server's lookup rule (exact name, then without "./").
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { createVm, fromCpio, fromDirectory, fromMap, GuestImageError, parseCpio } from "../src/node.js";

let dir: string;
let archive: Uint8Array;
const files: Record<string, Uint8Array> = {
  linux: new Uint8Array(5000).map((_, i) => (i * 31) & 0xff),
  "linux-initrd": new Uint8Array(3).fill(7),
  "sub/dir/x.bin": new Uint8Array([1, 2, 3, 4, 5]),
  empty: new Uint8Array(0),
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "gi-src-"));
  for (const [name, bytes] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), bytes);
  }
  // GNU cpio writes the archive: names as listed on stdin (it strips a leading "./"), directories included.
  const list = ["linux", "linux-initrd", "sub", "sub/dir", "sub/dir/x.bin", "empty", "./dotted"].join("\n") + "\n";
  writeFileSync(join(dir, "dotted"), new Uint8Array([42]));
  archive = new Uint8Array(execFileSync("cpio", ["--quiet", "-o", "-H", "newc"], { cwd: dir, input: list })); // a copy, not a Buffer view
});

describe("CPIO newc source (archive made by GNU cpio)", () => {
  it("lists every entry with the sizes cpio stored", () => {
    const entries = parseCpio(archive);
    const sizes = Object.fromEntries(entries.map((e) => [e.name, e.size]));
    expect(sizes).toMatchObject({ linux: 5000, "linux-initrd": 3, "sub/dir/x.bin": 5, empty: 0, dotted: 1 });
    // cpio -t agrees on the names and their order.
    const listed = execFileSync("cpio", ["--quiet", "-it"], { input: archive }).toString().trim().split("\n");
    expect(entries.map((e) => e.name)).toEqual(listed);
  });

  it("serves file contents byte for byte into guest RAM", async () => {
    const vm = await createVm({ ram: [{ base: 0x4000_0000, size: 0x10_0000 }], files: fromCpio(archive) });
    await vm.loadModule("linux", { at: 0x4000_0000 });
    await vm.loadModule("sub/dir/x.bin", { at: 0x4008_0000 });
    expect(vm.ram.read(0x4000_0000, 5000)).toEqual(files.linux);
    expect([...vm.ram.read(0x4008_0000, 5)]).toEqual([1, 2, 3, 4, 5]);
  });

  it("looks names up like the seL4 file server: exact, then without a leading ./", async () => {
    const src = fromCpio(archive);
    expect((await src.open("./linux")).size).toBe(5000); // retried as "linux"
    expect((await src.open("dotted")).size).toBe(1);
    await expect(src.open("../linux")).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(src.open("sub/dir")).rejects.toMatchObject({ code: "NOT_FOUND" }); // directories are not files
  });

  it("rejects damaged archives with typed errors", () => {
    const cut = archive.slice(0, 200);
    expect(() => parseCpio(cut)).toThrow(GuestImageError);
    try {
      parseCpio(cut);
    } catch (e) {
      expect((e as GuestImageError).code).toBe("TRUNCATED");
    }
    const badMagic = archive.slice();
    badMagic[0] = 0x31;
    expect(() => parseCpio(badMagic)).toThrow(/magic/);
    const badHex = archive.slice();
    badHex[6 + 6 * 8] = 0x5a; // 'Z' in c_filesize
    expect(() => parseCpio(badHex)).toThrow(/c_filesize/);
    expect(() => parseCpio(new Uint8Array(0))).toThrow(GuestImageError);
  });

  it("reads the bundled sample archive (the seL4 default names)", async () => {
    const sample = readFileSync(new URL("../examples/images/images.cpio", import.meta.url));
    const names = parseCpio(sample).map((e) => e.name);
    expect(names).toEqual(["linux", "linux-initrd", "linux-dtb"]);
  });
});

describe("directory source", () => {
  it("reads files by relative name, with the ./ retry", async () => {
    const src = fromDirectory(dir);
    const f = await src.open("./sub/dir/x.bin");
    const buf = new Uint8Array(3);
    await f.read(buf, 2);
    expect([...buf]).toEqual([3, 4, 5]);
    await f.close();
  });

  it("refuses names that leave the directory and reports missing files", async () => {
    const src = fromDirectory(join(dir, "sub"));
    await expect(src.open("../linux")).rejects.toMatchObject({ code: "BAD_ARGUMENT" });
    await expect(src.open("/etc/passwd")).rejects.toMatchObject({ code: "BAD_ARGUMENT" });
    await expect(src.open("nope")).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("never returns a short read: reading past the end is TRUNCATED", async () => {
    const f = await fromDirectory(dir).open("linux-initrd");
    await expect(f.read(new Uint8Array(4), 0)).rejects.toMatchObject({ code: "TRUNCATED" });
    await f.close();
  });
});

describe("in-memory source", () => {
  it("serves bytes and follows the same lookup rule: exact name first, then without ./", async () => {
    const src = fromMap({ a: new Uint8Array([1]), "./b": new Uint8Array([1, 2]), b: new Uint8Array([3]) });
    expect((await src.open("./a")).size).toBe(1);
    expect((await src.open("./b")).size).toBe(2); // the exact "./b" wins over "b"
    await expect(src.open("c/./a")).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(src.open("x")).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(() => fromMap({ a: [1, 2] as unknown as Uint8Array })).toThrow(GuestImageError);
  });
});
