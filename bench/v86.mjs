// Case 9 (npm run bench): time to the userspace marker in v86 (Node), Debian bookworm's 686 kernel
// (fixture i386/bzImage) + a busybox marker initrd, three ways in interleaved rounds:
//   ours      guest-image/v86: bootV86 places the images straight into v86's RAM and starts the
//             CPU at the 32-bit entry (no BIOS)
//   direct    the same with direct: true (issue 13 §2): the xz payload is decompressed on the
//             host and the vmlinux entered at startup_32, so the guest's decompressor never runs
//   baseline  v86's own bzimage/initrd/cmdline options booting through SeaBIOS (Debian package
//             seabios: /usr/share/seabios/bios.bin, vgabios-stdvga.bin), as v86 documents it
// Both are timed from `new V86(…)` (Wasm compile included on both sides) to the marker on COM1;
// the time bootV86 itself spends placing (for direct, decompressing too) is reported alongside.
// Rows: 9 ours vs SeaBIOS; 9d direct vs ours (the normal bzImage path), same rounds. Inputs come from the fixture cache
// (scripts/fetch-fixtures.sh); nothing is downloaded.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { join } from "node:path";
import { markerInitrdBytes } from "./lib/initrd.mjs";

const FIXTURES = process.env.GUEST_IMAGE_FIXTURES ?? join(homedir(), ".cache", "guest-image-fixtures");
const SEABIOS = "/usr/share/seabios/bios.bin";
const VGABIOS = "/usr/share/seabios/vgabios-stdvga.bin";
const MEMORY = 128 * 1024 * 1024;
const TIMEOUT_MS = 300_000;
const CMDLINE = "console=ttyS0 quiet";

/** Boots once; resolves with { ms, placeMs? } when the marker appears on COM1. */
async function bootOnce(V86, wasm, how, files, adapter, fromMap) {
  const marker = `GUEST-IMAGE-BENCH-${Math.random().toString(36).slice(2, 10).toUpperCase()}`;
  const initrd = markerInitrdBytes(files.busybox, { marker });
  const t0 = performance.now();
  const common = { wasm_path: wasm, memory_size: MEMORY, vga_memory_size: 8 * 1024 * 1024, autostart: false, disable_keyboard: true, disable_mouse: true, disable_speaker: true };
  const emulator = how !== "seabios"
    ? new V86(common)
    : new V86({ ...common, bios: { buffer: files.bios.buffer }, vga_bios: { buffer: files.vgabios.buffer }, bzimage: { buffer: files.kernel.slice().buffer }, initrd: { buffer: initrd.slice().buffer }, cmdline: CMDLINE });
  let out = "";
  const seen = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`v86 (${how}): no marker within ${TIMEOUT_MS / 1000} s; COM1 tail ${JSON.stringify(out.slice(-300))}`)), TIMEOUT_MS);
    emulator.add_listener("serial0-output-byte", (b) => {
      out += String.fromCharCode(b);
      if (out.includes(marker)) {
        clearTimeout(timer);
        resolve(performance.now());
      }
    });
  });
  try {
    await new Promise((resolve) => emulator.add_listener("emulator-loaded", resolve));
    let placeMs;
    if (how !== "seabios") {
      const boot = await adapter.bootV86(emulator, { files: fromMap({ bzImage: files.kernel, "initrd.cpio": initrd }), kernel: "bzImage", initrd: "initrd.cpio", cmdline: CMDLINE, direct: how === "direct" });
      placeMs = boot.placeMs;
    }
    emulator.run();
    const t1 = await seen;
    return { ms: t1 - t0, placeMs };
  } finally {
    await emulator.destroy();
  }
}

/** Runs the case; `row` and `notes` are run.mjs's table helpers. Throws when an input is missing. */
export async function v86Case({ dist, runs, row, notes }) {
  const need = { kernel: join(FIXTURES, "i386/bzImage"), busybox: join(FIXTURES, "busybox/i386/busybox"), bios: SEABIOS, vgabios: VGABIOS };
  for (const [k, p] of Object.entries(need)) {
    if (!existsSync(p)) throw new Error(`case 9 (v86): ${k} ${p} is missing (${k === "bios" || k === "vgabios" ? "apt-get install seabios" : "bash scripts/fetch-fixtures.sh"})`);
  }
  const files = { kernel: new Uint8Array(readFileSync(need.kernel)), busybox: new Uint8Array(readFileSync(need.busybox)), bios: new Uint8Array(readFileSync(SEABIOS)), vgabios: new Uint8Array(readFileSync(VGABIOS)) };
  const require = createRequire(import.meta.url);
  const wasm = require.resolve("v86/build/v86.wasm");
  const { V86 } = await import("v86");
  const adapter = await import(dist + "adapters/v86.js");
  const { fromMap } = await import(dist + "index.js");
  const ours = [], base = [], place = [], direct = [], placeDirect = [];
  for (let i = 0; i < runs; i++) {
    // Rotate which side goes first, so drift in machine load falls on all three.
    const order = ["ours", "direct", "seabios"];
    for (const how of [...order.slice(i % 3), ...order.slice(0, i % 3)]) {
      const r = await bootOnce(V86, wasm, how, files, adapter, fromMap);
      if (how === "ours") { ours.push(r.ms); place.push(r.placeMs); } else if (how === "direct") { direct.push(r.ms); placeDirect.push(r.placeMs); } else base.push(r.ms);
      process.stdout.write(`  v86 ${how} run ${i + 1}/${runs}: ${(r.ms / 1000).toFixed(2)} s${r.placeMs !== undefined ? ` (placing ${r.placeMs.toFixed(1)} ms)` : ""}\n`);
    }
  }
  const r = row({ id: "9", name: "v86: Debian 686 + initrd to userspace marker (s)", kind: "value", unit: "s", ours: ours.map((x) => x / 1000), base: base.map((x) => x / 1000), baseName: "v86 bzimage+initrd via SeaBIOS" });
  r.extra = { placeMs: place };
  const sorted = [...place].sort((a, b) => a - b);
  const rd = row({ id: "9d", name: "v86: the same by direct boot (host xz decompression, startup_32) (s)", kind: "value", unit: "s", ours: direct.map((x) => x / 1000), base: ours.map((x) => x / 1000), baseName: "guest-image/v86, normal bzImage path" });
  rd.extra = { placeMs: placeDirect };
  const sortedD = [...placeDirect].sort((a, b) => a - b);
  notes.push(
    `9: v86 ${"0.5.462"} in Node, ${MEMORY / 2 ** 20} MiB, from new V86() to the marker; guest-image/v86 ${r.ours.median.toFixed(1)} s vs v86's own bzimage/initrd through SeaBIOS ${r.base.median.toFixed(1)} s ` +
      `(ratio ${r.ratio.toFixed(2)}: > 1 means guest-image is faster); bootV86 placing (checks + copies into v86's RAM) median ${sorted[sorted.length >> 1].toFixed(1)} ms.`,
    `9d: direct boot ${rd.ours.median.toFixed(1)} s vs the normal bzImage path ${rd.base.median.toFixed(1)} s (ratio ${rd.ratio.toFixed(2)}: > 1 means direct is faster; ` +
      `${(rd.base.median - rd.ours.median).toFixed(1)} s saved by the medians); bootV86 with direct (host xz decompression + placing) median ${sortedD[sortedD.length >> 1].toFixed(1)} ms.`,
  );
}
