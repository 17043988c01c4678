// The real-boot initrd against GNU cpio (the reference reader): every entry, its type and mode,
// and busybox byte for byte.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { busyboxPath, markerInitrd } from "./initrd.js";

describe("markerInitrd", () => {
  it("is a newc archive GNU cpio lists and extracts: /init, busybox, /dev/console", () => {
    const archive = markerInitrd("arm64", { marker: "GUEST-IMAGE-MARKER", script: "cat /proc/cmdline", files: { "etc/x": "y" } });
    const listing = execFileSync("cpio", ["-itv", "--quiet"], { input: archive }).toString();
    const lines = listing.trim().split("\n");
    const byName = new Map(lines.map((l) => [l.split(/\s+/).pop()!, l]));
    expect([...byName.keys()].sort()).toEqual(["bin", "bin/busybox", "dev", "dev/console", "dev/null", "etc", "etc/x", "init", "proc", "sys", "tmp"]);
    expect(byName.get("dev/console")).toMatch(/^crw-------\s.*\s5,\s+1\s/);
    expect(byName.get("init")).toMatch(/^-rwxr-xr-x/);
    expect(byName.get("bin")).toMatch(/^drwxr-xr-x/);

    const dir = mkdtempSync(join(tmpdir(), "initrd-"));
    try {
      execFileSync("cpio", ["-id", "--quiet", "--no-absolute-filenames", "bin/busybox", "init"], { input: archive, cwd: dir });
      expect(readFileSync(join(dir, "bin/busybox")).equals(readFileSync(busyboxPath("arm64")))).toBe(true);
      const init = readFileSync(join(dir, "init"), "utf8");
      expect(init.startsWith("#!/bin/busybox sh\n")).toBe(true);
      expect(init).toContain('echo "GUEST-IMAGE-MARKER"');
      expect(init).toContain("cat /proc/cmdline");
      expect(init).toContain("poweroff -f");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
