// The Chromium side of the bench (bench/browser-run.mjs serves this page): the in-memory cases
// 2, 3, 4 and 7 against the same built library, with the same inputs and code as in Node
// (bench/lib/). Parameters come from the query string; the result is POSTed back to the server
// and left in window.__result.
import { elfFromMemory, firstLoad, loadLib, pieInput, rawFromMemory, relocCase, sharedMemory, x86Input } from "./lib/cases.mjs";
import { MiB } from "./lib/gen.mjs";

const q = new URLSearchParams(location.search);
const num = (k, d) => (q.has(k) ? Number(q.get(k)) : d);
const DIST = new URL("../dist/", import.meta.url).href;
const out = document.getElementById("out");
const log = (s) => (out.textContent += `\n${s}`);

async function bench() {
  const runs = num("runs", 5);
  const size = num("size", 256 * MiB);
  const elfSize = num("elfSize", 64 * MiB);
  const only = (q.get("only") ?? "raw,elf,reloc").split(",");
  const lib = await loadLib(DIST);
  const relocs = num("relocs", 1e6), x86Relocs = num("x86Relocs", 5e5);
  const pie = only.includes("reloc") ? pieInput(relocs) : null;
  const x86 = only.includes("reloc") ? x86Input(x86Relocs) : null;
  const need = Math.max(only.includes("raw") ? size : 0, elfSize * 1.25 + 2 * MiB, pie ? pie.imageSize + 4 * MiB : 0, x86 ? x86.imageSize + 0x2000000 : 0);
  const shared = sharedMemory(lib, Math.ceil(need / 65536) * 65536);
  const cases = {};
  if (only.includes("raw")) {
    cases.raw = { ours: (await rawFromMemory(lib, shared, { size, runs, mode: "warm" })).ms };
    log(`raw done`);
  }
  if (only.includes("elf")) {
    const filesz = elfSize / 4;
    cases.elf = { ours: (await elfFromMemory(lib, shared, { filesz, bss: filesz / 4, runs, mode: "warm" })).ms };
    log(`elf done`);
  }
  if (pie) {
    const r = await relocCase(lib, shared, { file: lib.bytesFile("pie.elf", pie.bytes), ramBase: 0x4000_0000, at: 0x4020_0000, runs, imageSize: pie.imageSize, segs: pie.segs });
    cases.relaC = { ours: r.ours, hash: r.oursHash };
    cases.relaJs = { ours: r.ours, js: r.js, hash: r.jsHash };
    const k = await relocCase(lib, shared, {
      file: lib.bytesFile("vmlinux", x86.kernel), relocsFile: lib.bytesFile("vmlinux.relocs", x86.relocs),
      at: x86.pbase + 16 * MiB, runs, imageSize: x86.imageSize, segs: x86.segs,
    });
    cases.x86C = { ours: k.ours, hash: k.oursHash };
    cases.x86Js = { ours: k.ours, js: k.js, hash: k.jsHash };
    log(`reloc done`);
  }
  return { userAgent: navigator.userAgent, crossOriginIsolated: globalThis.crossOriginIsolated, cases };
}

async function post(body) {
  window.__result = body;
  try {
    await fetch("/result", { method: "POST", body: JSON.stringify(body) });
  } catch {}
}

(q.get("mode") === "startup" ? firstLoad(DIST) : bench()).then(
  (result) => post({ ok: true, result }),
  (e) => post({ ok: false, error: String(e?.stack ?? e) }),
);
