// `npm test` on a machine without the test dependencies: one message naming every missing tool
// and fixture and the one command that installs them, within seconds, and the closing line CI reads.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { APT_PACKAGES } from "../scripts/test-deps.mjs";

describe("npm test preflight", () => {
  it("lists everything missing and the install command, before building anything", () => {
    // A PATH with node alone: no readelf, no QEMU, no cpio…; a fixture cache that does not exist.
    const bin = mkdtempSync(join(tmpdir(), "preflight-"));
    symlinkSync(process.execPath, join(bin, "node"));
    const t0 = Date.now();
    const r = spawnSync(join(bin, "node"), ["scripts/run-tests.mjs"], {
      env: { PATH: bin, GUEST_IMAGE_FIXTURES: "/nonexistent/guest-image-fixtures", HOME: "/nonexistent" },
      encoding: "utf8",
    });
    rmSync(bin, { recursive: true, force: true });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.status).toBe(1);
    expect(r.stdout.trim()).toBe("0 passed, 1 failed");
    for (const tool of ["readelf", "qemu-system-x86_64", "qemu-system-aarch64", "cpio", "fdtget", "mkimage", "i686-linux-gnu-as", "gdb-multiarch"]) {
      expect(r.stderr).toContain(tool);
    }
    // Every command-providing package is named once, with the fixtures and the install line.
    for (const { pkg, provides } of APT_PACKAGES) if (!provides.some((p) => p.startsWith("/"))) expect(r.stderr).toContain(`Debian package ${pkg}`);
    expect(r.stderr).toContain("fixtures in /nonexistent/guest-image-fixtures");
    expect(r.stderr).toContain("bash scripts/install-test-deps.sh && npm ci && npm test");
    expect(r.stderr.match(/lacks what the tests need/g)).toHaveLength(1);
  });
});
