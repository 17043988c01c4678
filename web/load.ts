// One load, as the demo runs it: on the page, or in a Web Worker into a shared memory (the same
// code, see worker.ts). Plain data in and out, so it crosses postMessage unchanged.
import { createVm, fromFiles, fromUrl, GuestImageError, type ImageFile, type Source } from "guest-image";

export type Slot = "kernel" | "initrd" | "dtb";

export interface ImageRef {
  slot: Slot;
  /** Unique name of the image in this load (the file's name). */
  name: string;
  /** Where the bytes are: a URL (base + file name) or a File the user picked. */
  src: { base: string; file: string } | { blob: File };
  /** Load address; undefined: the image's own (ELF kernels). */
  at?: number;
  align?: number;
  /** File size, when known (for overall progress). */
  bytes?: number;
}

export interface LoadRequest {
  ram: { base: number; size: number };
  images: ImageRef[];
}

export interface Loaded {
  slot: Slot;
  name: string;
  format: string;
  paddr: number;
  size: number;
  entry?: string;
}

export interface LoadError {
  code: string;
  message: string;
  image?: string;
}

export interface LoadResult {
  loaded: Loaded[];
  placed: Array<{ name: string; paddr: number; size: number }>;
  /** The first bytes of each placed image, read back from guest RAM. */
  peek: Record<string, number[]>;
  error?: LoadError;
  ms: number;
}

export function openRef(ref: ImageRef): Promise<ImageFile> {
  return "blob" in ref.src ? fromFiles({ [ref.name]: ref.src.blob }).open(ref.name) : fromUrl(ref.src.base).open(ref.src.file);
}

export function toLoadError(e: unknown): LoadError {
  if (e instanceof GuestImageError) return { code: e.code, message: e.message, image: e.image };
  const o = e as Partial<LoadError> | null;
  if (o && typeof o.code === "string" && typeof o.message === "string") return { code: o.code, message: o.message };
  return { code: "ERROR", message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
}

/**
 * Creates a VM (in `memory` at `memoryOffset` when given) and loads every image in order: the
 * kernel first, then the modules. Stops at the first failure and reports what was placed.
 */
export async function runLoad(
  req: LoadRequest,
  onProgress: (done: number, total: number) => void,
  memory?: WebAssembly.Memory,
  memoryOffset = 0,
): Promise<LoadResult> {
  const files: Source = {
    async open(name) {
      const ref = req.images.find((r) => r.name === name);
      if (!ref) throw new GuestImageError("NOT_FOUND", `no image named "${name}" in this load`, { image: name });
      return openRef(ref);
    },
  };
  const loaded: Loaded[] = [];
  const t0 = performance.now();
  let error: LoadError | undefined;
  let vm: Awaited<ReturnType<typeof createVm>> | undefined;
  try {
    vm = await createVm({ ram: [req.ram], files, memory, memoryOffset });
    let before = 0;
    const grand = req.images.reduce((n, r) => n + (r.bytes ?? 0), 0);
    for (const ref of req.images) {
      const progress = (l: number, t: number) => onProgress(before + l, Math.max(grand, before + t));
      if (ref.slot === "kernel") {
        const k = await vm.loadKernel(ref.name, { at: ref.at, align: ref.align, onProgress: progress });
        loaded.push({ slot: ref.slot, name: ref.name, format: k.format, paddr: k.paddr, size: k.size, entry: `0x${k.entry.toString(16)}` });
      } else {
        if (ref.at === undefined) throw new GuestImageError("BAD_ARGUMENT", "a module needs a load address", { image: ref.name, field: "at" });
        const m = await vm.loadModule(ref.name, { at: ref.at, align: ref.align, onProgress: progress });
        loaded.push({ slot: ref.slot, name: ref.name, format: m.format, paddr: m.paddr, size: m.size });
      }
      before += ref.bytes ?? 0;
    }
  } catch (e) {
    error = toLoadError(e);
  }
  const ms = performance.now() - t0;
  const placed = vm ? vm.placed().map(({ name, paddr, size }) => ({ name, paddr, size })) : [];
  const peek: Record<string, number[]> = {};
  for (const p of placed) peek[p.name] = [...vm!.ram.read(p.paddr, Math.min(16, p.size))];
  return { loaded, placed, peek, error, ms };
}
