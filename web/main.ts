// The demo page: three image slots (kernel, initrd, device tree) filled by picking, dropping or
// the bundled samples; each file is inspected as soon as it is chosen; "Load" places them in a
// fresh VM and draws the memory map. State lives in `picks`; the DOM is re-rendered from it.
import { inspectFile, type Inspection } from "guest-image";
import { openRef, runLoad, toLoadError, type ImageRef, type LoadError, type LoadRequest, type LoadResult, type Slot } from "./load.js";
import { memoryMapSvg, niceStep } from "./map.js";
import { fmtHex, fmtSize, parseNum } from "./units.js";
// v86 and xterm.js (~0.5 MB) load on the first Boot click, not with the page.
type BootModule = typeof import("./boot.js");
let bootModule: BootModule | undefined;
const loadBootModule = async (): Promise<BootModule> => (bootModule ??= await import("./boot.js"));

interface Pick {
  name: string;
  src: ImageRef["src"];
  size?: number;
  inspection?: Inspection;
  inspectError?: LoadError;
}

const SLOTS: Array<{ id: Slot; title: string; hint: string }> = [
  { id: "kernel", title: "Kernel", hint: "ELF, arm64 Image, zImage, bzImage, uImage, raw…" },
  { id: "initrd", title: "Initrd", hint: "cpio, gzip, anything: placed verbatim" },
  { id: "dtb", title: "Device tree", hint: "DTB: its header is checked" },
];
const SAMPLES: Record<Slot, string> = { kernel: "linux", initrd: "rootfs.cpio.gz", dtb: "linux.dtb" };
const SAMPLE_RAM = { base: "0x40000000", size: "256M" };
const MiB = 1024 * 1024;

const picks: Record<Slot, Pick | null> = { kernel: null, initrd: null, dtb: null };
const $ = <T extends HTMLElement = HTMLElement>(sel: string, root: ParentNode = document) => root.querySelector<T>(sel)!;
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// ── slots ────────────────────────────────────────────────────────────────────────────────────

function buildSlots(): void {
  const root = $("#slots");
  for (const s of SLOTS) {
    const el = document.createElement("article");
    el.className = "card slot";
    el.dataset.slot = s.id;
    el.innerHTML = `
      <header class="slot-head">
        <h3>${s.title}</h3>
        <button class="icon clear" type="button" title="Remove this image" aria-label="Remove ${s.title.toLowerCase()}" hidden>
          <svg viewBox="0 0 20 20" aria-hidden="true"><path d="M5 5l10 10M15 5L5 15"/></svg>
        </button>
      </header>
      <label class="drop">
        <input type="file" class="file-input" aria-label="${s.title} file" />
        <span class="drop-empty">
          <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 16V4m0 0l-4 4m4-4l4 4M4 16v3a1 1 0 001 1h14a1 1 0 001-1v-3"/></svg>
          <span><strong>Drop a file</strong> or <u>browse</u></span>
          <small>${s.hint}</small>
        </span>
        <span class="drop-file" hidden><span class="file-name"></span><span class="file-meta"></span></span>
      </label>
      <div class="addr-row">
        <label class="field small"><span>Load address</span><input class="at" spellcheck="false" autocomplete="off" /></label>
        <label class="field small"><span>Align</span><input class="align" spellcheck="false" autocomplete="off" placeholder="none" /></label>
      </div>
      <div class="inspect"></div>`;
    const input = $<HTMLInputElement>(".file-input", el);
    input.addEventListener("change", () => {
      const f = input.files?.[0];
      if (f) void choose(s.id, { name: f.name, src: { blob: f }, size: f.size });
      input.value = "";
    });
    $(".clear", el).addEventListener("click", () => {
      picks[s.id] = null;
      render();
    });
    const drop = $(".drop", el);
    drop.addEventListener("dragover", (e) => {
      e.preventDefault();
      e.stopPropagation();
      drop.classList.add("over");
    });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      e.stopPropagation();
      drop.classList.remove("over");
      hideVeil();
      const f = e.dataTransfer?.files[0];
      if (f) void choose(s.id, { name: f.name, src: { blob: f }, size: f.size });
    });
    for (const inp of el.querySelectorAll("input.at, input.align")) inp.addEventListener("input", render);
    root.append(el);
  }
}

/** Puts a file in a slot and inspects it (headers only). */
async function choose(slot: Slot, pick: Pick): Promise<void> {
  picks[slot] = pick;
  render();
  await inspect(pick);
  render();
}

async function inspect(pick: Pick): Promise<void> {
  try {
    const file = await openRef({ slot: "kernel", name: pick.name, src: pick.src });
    try {
      pick.size = file.size;
      pick.inspection = await inspectFile(file);
    } finally {
      await file.close();
    }
  } catch (e) {
    pick.inspectError = toLoadError(e);
  }
}

function fieldValue(key: string, v: unknown): string {
  if (typeof v === "bigint") return fmtHex(v);
  if (typeof v === "number") return /size|addr|offset|crc|magic|load|entry|base|off_|ep$/i.test(key) && !/version|count|num/i.test(key) ? fmtHex(v) : String(v);
  if (v === null || v === undefined) return "—";
  if (typeof v === "object") return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? fmtHex(x) : x));
  return String(v);
}

/** Formats each slot expects; anything else is still loadable, with a warning. */
const EXPECTS: Partial<Record<Slot, { formats: string[]; what: string }>> = {
  dtb: { formats: ["fdt"], what: "a device tree (DTB)" },
};

function inspectionHtml(slot: Slot, p: Pick): string {
  if (p.inspectError) {
    return `<p class="inspect-error" data-code="${esc(p.inspectError.code)}"><span class="code">${esc(p.inspectError.code)}</span>${esc(p.inspectError.message)}</p>`;
  }
  const i = p.inspection;
  if (!i) return `<p class="muted">Reading headers…</p>`;
  const rows: Array<[string, string]> = [];
  const skip = new Set(["name", "format", "description", "segments"]);
  for (const [k, v] of Object.entries(i)) {
    if (skip.has(k) || v === null || v === undefined) continue;
    if (typeof v === "object" && typeof v !== "bigint" && !Array.isArray(v)) {
      for (const [k2, v2] of Object.entries(v as Record<string, unknown>)) rows.push([`${k}.${k2}`, fieldValue(k2, v2)]);
    } else rows.push([k, k === "size" ? `${fieldValue("size", v)} (${fmtSize(v as number)})` : fieldValue(k, v)]);
  }
  const expects = EXPECTS[slot];
  const warn = expects && !expects.formats.includes(i.format)
    ? `<p class="inspect-warning">This is not ${expects.what}: it would be placed as ${esc(i.description)}.</p>`
    : "";
  let html = warn + `<p class="detected"><span class="badge fmt-${esc(i.format)}" data-format="${esc(i.format)}">${esc(i.format)}</span><span>${esc(i.description)}</span></p>`;
  html += `<dl class="fields">${rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("")}</dl>`;
  if (i.segments?.length) {
    html += `<div class="table-wrap"><table class="segments"><thead><tr><th>Type</th><th>Offset</th><th>PhysAddr</th><th>FileSiz</th><th>MemSiz</th><th>Flg</th></tr></thead><tbody>`;
    for (const s of i.segments) {
      html += `<tr><td>${esc(s.type)}</td><td>${fmtHex(s.offset)}</td><td>${fmtHex(s.paddr)}</td><td>${fmtHex(s.filesz)}</td><td>${fmtHex(s.memsz)}</td><td>${esc(s.flags)}</td></tr>`;
    }
    html += `</tbody></table></div>`;
  }
  return html;
}

// ── addresses ────────────────────────────────────────────────────────────────────────────────

function ramFromInputs(): { base: number; size: number } | LoadError {
  const base = parseNum($<HTMLInputElement>("#ram-base").value);
  const size = parseNum($<HTMLInputElement>("#ram-size").value);
  if (base === null) return { code: "BAD_ARGUMENT", message: `RAM base "${$<HTMLInputElement>("#ram-base").value}" is not a number (try 0x40000000)` };
  if (size === null || size === 0) return { code: "BAD_ARGUMENT", message: `RAM size "${$<HTMLInputElement>("#ram-size").value}" is not a size (try 256M)` };
  return { base, size };
}

const alignDown = (v: number, a: number) => Math.floor(v / a) * a;

/** Where an empty address field puts an image (shown as the field's placeholder). */
function autoAddress(slot: Slot, ram: { base: number; size: number }): number | undefined {
  const end = ram.base + ram.size;
  const dtb = alignDown(end - Math.min(16 * MiB, ram.size / 8), 0x1000);
  if (slot === "dtb") return dtb;
  if (slot === "initrd") return alignDown(dtb - Math.max(picks.initrd?.size ?? 0, Math.min(25 * MiB, ram.size / 8)), 0x1000);
  const f = picks.kernel?.inspection?.format;
  return f === "elf" || f === "uimage" || f === "multiboot" ? undefined : ram.base + 0x20_0000;
}

function ownAddress(): number | undefined {
  const segs = picks.kernel?.inspection?.segments?.filter((s) => s.type === "LOAD" && s.memsz > 0n);
  return segs?.length ? Number(segs.reduce((m, s) => (s.paddr < m ? s.paddr : m), segs[0].paddr)) : undefined;
}

// ── render ───────────────────────────────────────────────────────────────────────────────────

function render(): void {
  const ram = ramFromInputs();
  for (const s of SLOTS) {
    const el = $(`.slot[data-slot="${s.id}"]`);
    const p = picks[s.id];
    el.classList.toggle("filled", !!p);
    $(".clear", el).hidden = !p;
    $(".drop-empty", el).hidden = !!p;
    $(".drop-file", el).hidden = !p;
    if (p) {
      $(".file-name", el).textContent = p.name;
      $(".file-meta", el).textContent = [p.size !== undefined ? fmtSize(p.size) : "", "blob" in p.src ? "local file" : "from URL"].filter(Boolean).join(" · ");
    }
    const inspectEl = $(".inspect", el);
    const html = p ? inspectionHtml(s.id, p) : "";
    if (inspectEl.dataset.html !== html) {
      inspectEl.innerHTML = html;
      inspectEl.dataset.html = html;
    }
    const at = $<HTMLInputElement>("input.at", el);
    if (!("code" in ram)) {
      const auto = autoAddress(s.id, ram);
      const own = s.id === "kernel" && auto === undefined ? ownAddress() : undefined;
      at.placeholder = auto !== undefined ? `auto · ${fmtHex(auto)}` : own !== undefined ? `own · ${fmtHex(own)}` : "the image's own";
    }
    if (s.id !== "kernel") $<HTMLInputElement>("input.align", el).placeholder = "0x1000";
  }
  $<HTMLButtonElement>("#load").disabled = !SLOTS.some((s) => picks[s.id]) || document.body.dataset.state === "loading";
  $<HTMLButtonElement>("#boot").disabled = !picks.kernel || document.body.dataset.state === "loading" || booting;
}

function showError(err: LoadError | null): void {
  const box = $("#error");
  box.hidden = !err;
  if (!err) return void (box.innerHTML = "");
  box.dataset.code = err.code;
  box.innerHTML = `<div class="error-code">${esc(err.code)}</div><div class="error-body"><p class="error-msg">${esc(err.message)}</p>${
    HINTS[err.code] ? `<p class="error-hint">${esc(HINTS[err.code])}</p>` : ""
  }</div>`;
}

const HINTS: Record<string, string> = {
  NOT_FOUND: "The file could not be found: check the name or pick it again.",
  BAD_MAGIC: "The file is not of the format it claims to be.",
  TRUNCATED: "The file is shorter than its own headers say: an incomplete download or a cut-off file?",
  BAD_HEADER: "A header field has a value the format does not allow: the file is damaged or not what it seems.",
  BAD_ALIGNMENT: "Alignment must be 0, 1 or a power of two.",
  BAD_ADDRESS: "The image cannot be placed at that address.",
  BAD_ARGUMENT: "Check the RAM and address fields.",
  OUT_OF_RAM: "Part of the image falls outside guest RAM: make RAM bigger or choose another load address.",
  OVERLAP: "Two images would overlap: change one load address.",
  BAD_CHECKSUM: "The file's checksum does not match its data: it is damaged.",
  RELOCATION: "The kernel has relocations a loader cannot apply: load it at its link address.",
  TOO_LARGE: "The image is larger than the loader allows here.",
  UNSUPPORTED: "The file is valid but uses a feature this loader does not implement.",
  IO: "Reading the file failed: try picking it again.",
};

const KIND_LABEL: Record<Slot, string> = { kernel: "kernel", initrd: "initrd", dtb: "device tree" };

function showResult(req: LoadRequest, r: LoadResult, worker: boolean): void {
  $("#result").hidden = false;
  const slotOf = (name: string) => req.images.find((i) => i.name === name)?.slot ?? "other";
  const total = r.placed.reduce((n, p) => n + p.size, 0);
  const rate = r.ms > 0 && total >= MiB ? ` · ${fmtSize(Math.round((total / r.ms) * 1000))}/s` : "";
  $("#stats").innerHTML = r.error
    ? `<span class="stat bad">load failed after ${r.ms.toFixed(1)} ms</span>`
    : `<span class="stat"><b>${r.loaded.length}</b> image${r.loaded.length === 1 ? "" : "s"}</span><span class="stat"><b>${fmtSize(total)}</b> in RAM</span><span class="stat" id="load-time">loaded in <b>${r.ms.toFixed(1)} ms</b>${rate}</span>${worker ? `<span class="stat">in a Web Worker, shared memory</span>` : ""}`;
  $("#map-caption").textContent = `Guest RAM [${fmtHex(req.ram.base)}, ${fmtHex(req.ram.base + req.ram.size)}) · ${fmtSize(req.ram.size)} · drawn to scale, a tick every ${fmtSize(niceStep(req.ram.size))}`;
  $("#map").innerHTML = memoryMapSvg(req.ram, r.placed.map((p) => ({ ...p, kind: slotOf(p.name) })));
  const rows = r.placed.map((p) => {
    const l = r.loaded.find((x) => x.name === p.name);
    const slot = slotOf(p.name);
    const bytes = (r.peek[p.name] ?? []).map((b) => b.toString(16).padStart(2, "0")).join(" ");
    return `<tr data-name="${esc(p.name)}"><td><span class="dot kind-${slot}"></span>${esc(p.name)}<small>${slot in KIND_LABEL ? KIND_LABEL[slot as Slot] : ""}</small></td><td>${esc(l?.format ?? "")}</td><td class="num start">${fmtHex(p.paddr)}</td><td class="num end">${fmtHex(p.paddr + p.size)}</td><td class="num">${fmtSize(p.size)}</td><td class="num entry">${l?.entry ?? ""}</td><td class="bytes">${bytes}</td></tr>`;
  });
  $("#placements tbody").innerHTML = rows.join("") || `<tr><td colspan="7" class="muted">Nothing was placed.</td></tr>`;
}

// ── loading ──────────────────────────────────────────────────────────────────────────────────

function buildRequest(): LoadRequest | LoadError {
  const ram = ramFromInputs();
  if ("code" in ram) return ram;
  const images: ImageRef[] = [];
  const used = new Set<string>();
  for (const s of SLOTS) {
    const p = picks[s.id];
    if (!p) continue;
    const el = $(`.slot[data-slot="${s.id}"]`);
    const atText = $<HTMLInputElement>("input.at", el).value.trim();
    const alignText = $<HTMLInputElement>("input.align", el).value.trim();
    const at = atText ? parseNum(atText) : autoAddress(s.id, ram);
    const align = alignText ? parseNum(alignText) : s.id === "kernel" ? undefined : 0x1000;
    if (at === null) return { code: "BAD_ARGUMENT", message: `${s.title}: load address "${atText}" is not a number`, image: p.name };
    if (align === null) return { code: "BAD_ARGUMENT", message: `${s.title}: alignment "${alignText}" is not a number`, image: p.name };
    let name = p.name;
    for (let k = 2; used.has(name); k++) name = `${p.name} (${k})`;
    used.add(name);
    images.push({ slot: s.id, name, src: p.src, at, align, bytes: p.size });
  }
  return { ram, images };
}

let busy = false;

async function load(): Promise<void> {
  if (busy) return;
  const req = buildRequest();
  showError(null);
  if ("code" in req) {
    showError(req);
    document.body.dataset.state = "error";
    return;
  }
  busy = true;
  document.body.dataset.state = "loading";
  render();
  const bar = $("#progress-bar");
  $("#progress").hidden = false;
  bar.style.width = "0%";
  const onProgress = (done: number, total: number) => (bar.style.width = `${total ? Math.min(100, (done / total) * 100) : 100}%`);
  const worker = $<HTMLInputElement>("#use-worker").checked;
  try {
    const r = worker ? await loadInWorker(req, onProgress) : await runLoad(req, onProgress);
    showResult(req, r, worker);
    showError(r.error ?? null);
    document.body.dataset.state = r.error ? "error" : "done";
  } catch (e) {
    showError(toLoadError(e));
    document.body.dataset.state = "error";
  } finally {
    busy = false;
    $("#progress").hidden = true;
    render();
  }
}

/** Loads in a Web Worker into a shared memory; the page reads the first bytes back itself. */
async function loadInWorker(req: LoadRequest, onProgress: (d: number, t: number) => void): Promise<LoadResult> {
  if (!crossOriginIsolated) {
    throw { code: "UNSUPPORTED", message: "a shared WebAssembly.Memory needs a cross-origin isolated page (COOP/COEP headers); npm run web sends them" };
  }
  const pages = Math.ceil(req.ram.size / 65536);
  if (pages > 65536 - 2) throw { code: "TOO_LARGE", message: "guest RAM does not fit in one 4 GiB WebAssembly memory" };
  const memory = new WebAssembly.Memory({ initial: pages, maximum: Math.min(65536, pages + 16), shared: true });
  const w = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
  try {
    const result = await new Promise<LoadResult>((ok, fail) => {
      w.onmessage = (e) => (e.data.progress ? onProgress(e.data.progress[0], e.data.progress[1]) : ok(e.data.result));
      w.onerror = (e) => fail({ code: "ERROR", message: `the worker failed: ${e.message}` });
      w.postMessage({ req, memory, memoryOffset: 0 });
    });
    // Read back from the shared memory on this thread: the worker's writes are visible here.
    const view = new Uint8Array(memory.buffer);
    for (const p of result.placed) {
      const lin = p.paddr - req.ram.base;
      result.peek[p.name] = [...view.subarray(lin, lin + Math.min(16, p.size))];
    }
    return result;
  } finally {
    w.terminate();
  }
}

async function useSamples(): Promise<void> {
  $<HTMLInputElement>("#ram-base").value = SAMPLE_RAM.base;
  $<HTMLInputElement>("#ram-size").value = SAMPLE_RAM.size;
  const base = new URL("samples/", document.baseURI).href;
  for (const s of SLOTS) {
    const el = $(`.slot[data-slot="${s.id}"]`);
    $<HTMLInputElement>("input.at", el).value = "";
    $<HTMLInputElement>("input.align", el).value = "";
    picks[s.id] = { name: SAMPLES[s.id], src: { base, file: SAMPLES[s.id] } };
  }
  render();
  await Promise.all(SLOTS.map((s) => inspect(picks[s.id]!)));
  render();
  await load();
}

// ── page-wide drop: sort files into slots by detected format ────────────────────────────────────

function slotFor(i: Inspection | undefined, name: string): Slot {
  if (i?.format === "fdt") return "dtb";
  if (/initrd|initramfs|rootfs|ramdisk|\.cpio/i.test(name) || ["gzip", "xz", "zstd", "lz4", "lzma", "bzip2", "lzo", "cpio"].includes(i?.format ?? "")) return "initrd";
  return "kernel";
}

function hideVeil(): void {
  $("#dropveil").hidden = true;
}

function setupPageDrop(): void {
  let depth = 0;
  document.addEventListener("dragenter", (e) => {
    if (!e.dataTransfer?.types.includes("Files")) return;
    depth++;
    $("#dropveil").hidden = false;
  });
  document.addEventListener("dragleave", () => {
    if (--depth <= 0) {
      depth = 0;
      hideVeil();
    }
  });
  document.addEventListener("dragover", (e) => e.preventDefault());
  document.addEventListener("drop", async (e) => {
    e.preventDefault();
    depth = 0;
    hideVeil();
    const files = [...(e.dataTransfer?.files ?? [])];
    for (const f of files) {
      const p: Pick = { name: f.name, src: { blob: f }, size: f.size };
      await inspect(p);
      picks[slotFor(p.inspection, f.name)] = p;
      render();
    }
  });
}

// ── boot in v86 ──────────────────────────────────────────────────────────────────────────────

/** The bundled x86 sample (examples/make-samples.mjs): what Boot runs while the samples are chosen. */
const X86_SAMPLE = "hello-x86.mb";
const X86_FORMATS = ["bzimage", "multiboot", "multiboot2"];
let booting = false;

/** Kernel and initrd for v86: the chosen ones, or the x86 sample when the samples' AArch64 kernel is chosen. */
function bootImages(): { kernel: ImageRef; initrd?: ImageRef; note: string } | LoadError {
  const k = picks.kernel;
  if (!k) return { code: "BAD_ARGUMENT", message: "choose a kernel first (an x86 bzImage, Multiboot or Multiboot 2 kernel)" };
  const initrd = picks.initrd ? { slot: "initrd" as const, name: picks.initrd.name, src: picks.initrd.src, bytes: picks.initrd.size } : undefined;
  const fmt = k.inspection?.format;
  const isSample = !("blob" in k.src) && k.src.file === SAMPLES.kernel;
  if (isSample && !X86_FORMATS.includes(fmt ?? "")) {
    const base = new URL("samples/", document.baseURI).href;
    return {
      kernel: { slot: "kernel", name: X86_SAMPLE, src: { base, file: X86_SAMPLE } },
      initrd,
      note: `v86 is a 32-bit x86 PC: the bundled AArch64 sample cannot run there, so this boots the bundled x86 sample ${X86_SAMPLE} (a Multiboot kernel) with ${initrd ? `${initrd.name} as its module` : "no module"}.`,
    };
  }
  if (fmt && !X86_FORMATS.includes(fmt)) {
    return { code: "UNSUPPORTED", message: `${k.name} is ${k.inspection!.description}: v86 boots 32-bit x86 kernels (a bzImage, a Multiboot or a Multiboot 2 kernel)`, image: k.name };
  }
  return { kernel: { slot: "kernel", name: k.name, src: k.src, bytes: k.size }, initrd, note: "" };
}

async function boot(): Promise<void> {
  if (booting) return;
  const t0 = performance.now();
  showError(null);
  const imgs = bootImages();
  if ("code" in imgs) {
    showError(imgs);
    document.body.dataset.boot = "error";
    return;
  }
  booting = true;
  document.body.dataset.boot = "placing";
  render();
  const bar = $("#progress-bar");
  $("#progress").hidden = false;
  bar.style.width = "0%";
  $("#console").hidden = false;
  $("#boot-note").textContent = imgs.note;
  const stats = $("#boot-stats");
  stats.innerHTML = `<span class="stat">placing…</span>`;
  let first = "";
  let placed = "";
  const status = (bytes: number | null) => {
    stats.innerHTML = `${placed}${first}<span class="stat live" id="boot-bytes">${bytes === null ? "running, waiting for the guest…" : `<b>${bytes}</b> bytes from the guest`}</span>`;
  };
  try {
    const { bootInV86 } = await loadBootModule();
    // Direct boot applies to a bzImage only (the samples' Multiboot kernel boots as it is).
    const direct = $<HTMLInputElement>("#direct-boot").checked && imgs.kernel.name !== X86_SAMPLE && picks.kernel?.inspection?.format === "bzimage";
    await bootInV86({ kernel: imgs.kernel, initrd: imgs.initrd, cmdline: $<HTMLInputElement>("#cmdline").value, direct }, $("#terminal"), t0, {
      onProgress: (d, t) => (bar.style.width = `${t ? Math.min(100, (d / t) * 100) : 100}%`),
      onPlaced: (b) => {
        // Direct boot: the kernel placed is the vmlinux the host decompressed from the bzImage's payload.
        const label = b.protocol === "linux" ? `Linux 32-bit boot protocol${b.linux!.kernel.format === "vmlinux (direct)" ? ", direct boot (kernel decompressed on the host)" : ""}` : b.protocol === "multiboot2" ? "Multiboot 2" : "Multiboot 1";
        const kernelName = b.protocol === "linux" ? b.linux!.kernel.name : b.protocol === "multiboot2" ? b.multiboot2!.kernel.name : b.multiboot!.kernel.name;
        placed = `<span class="stat" id="boot-protocol">${label}</span><span class="stat" id="place-time">placed in <b>${b.placeMs.toFixed(1)} ms</b></span>`;
        status(null);
        showBootMap(b.ram, b.placed, kernelName, imgs.initrd?.name);
        document.body.dataset.boot = "running";
      },
      onFirstByte: (ms) => {
        first = `<span class="stat" id="first-byte">first guest byte <b>${(ms / 1000).toFixed(2)} s</b> after the click</span>`;
      },
      onBytes: (n) => status(n),
    });
  } catch (e) {
    showError(toLoadError(e));
    document.body.dataset.boot = "error";
    stats.innerHTML = `<span class="stat bad">boot failed</span>`;
  } finally {
    booting = false;
    $("#progress").hidden = true;
    render();
  }
}

/** The memory map of a v86 boot: v86's guest RAM from 0, with what guest-image placed in it. */
function showBootMap(ram: { base: number; size: number }, placed: Array<{ name: string; paddr: number; size: number }>, kernel: string, initrd?: string): void {
  $("#result").hidden = false;
  const kind = (n: string) => (n === kernel ? "kernel" : n === initrd ? "initrd" : "other");
  const total = placed.reduce((n, p) => n + p.size, 0);
  $("#stats").innerHTML = `<span class="stat"><b>${placed.length}</b> placements</span><span class="stat"><b>${fmtSize(total)}</b> in v86's RAM</span>`;
  $("#map-caption").textContent = `v86 guest RAM [${fmtHex(ram.base)}, ${fmtHex(ram.base + ram.size)}) · ${fmtSize(ram.size)} · drawn to scale, a tick every ${fmtSize(niceStep(ram.size))}`;
  $("#map").innerHTML = memoryMapSvg(ram, placed.map((p) => ({ ...p, kind: kind(p.name) })));
  $("#placements tbody").innerHTML = placed
    .map((p) => `<tr data-name="${esc(p.name)}"><td><span class="dot kind-${kind(p.name)}"></span>${esc(p.name)}</td><td></td><td class="num start">${fmtHex(p.paddr)}</td><td class="num end">${fmtHex(p.paddr + p.size)}</td><td class="num">${fmtSize(p.size)}</td><td></td><td></td></tr>`)
    .join("");
}

// For the end-to-end test and the curious: the guest's serial output so far.
(globalThis as unknown as { guestImageDemo: unknown }).guestImageDemo = { serial: () => bootModule?.serialOutput() ?? "" };

buildSlots();
setupPageDrop();
$("#load").addEventListener("click", () => void load());
$("#boot").addEventListener("click", () => void boot());
$("#use-samples").addEventListener("click", () => void useSamples());
for (const id of ["#ram-base", "#ram-size"]) $(id).addEventListener("input", render);
document.body.dataset.state = "idle";
render();
