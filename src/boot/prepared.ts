// Prepared boots: bootLinux's work done once (detection, decompression, relocation, device tree
// edits, x86 zero page and tables) into a template, then instantiated into any number of VMs by
// copying the placed bytes and patching the per-boot random fields (/chosen rng-seed and
// kaslr-seed). The template is made by running bootLinux itself into a scratch VM with the
// target RAM map, so an instance is, by construction, what bootLinux would have written into an
// empty VM with that RAM map — test/boot/prepared.test.ts checks it byte for byte anyway.
import { GuestImageError } from "../errors.js";
import { digestHex, type MeasuredEvent } from "../measure.js";
import { hex } from "../num.js";
import type { RamRegion } from "../ram/guest-ram.js";
import type { Placement } from "../ram/ledger.js";
import type { Source } from "../sources/source.js";
import { checkReserved, createVm, type KeptImage, type ReservedRange, type Vm } from "../vm.js";
import { bootLinux, seedBytes, type BootLinuxOptions, type LinuxBoot } from "./linux.js";
import { setProp, findNode } from "../fdt/tree.js";

export interface PrepareBootOptions extends Omit<BootLinuxOptions, "seed"> {
  /** Where the kernel, initrd, device tree and firmware files are read from (once). */
  files: Source;
  /** The guest RAM map of the VMs the template is for (an instance needs exactly this map). */
  ram: RamRegion[];
  /** The target VMs' createVm `reserved` ranges (an instance needs exactly these). */
  vmReserved?: ReservedRange[];
}

export interface InstantiateOptions {
  /** Derive rng-seed / kaslr-seed from this seed (0 … 2^64 − 1); default: fresh random bytes. */
  seed?: number | bigint;
}

/** A template as plain, structured-clonable data (postMessage to a worker; see PreparedBoot.fromData). */
export interface PreparedBootData {
  kind: "guest-image prepared boot";
  version: 1;
  ram: RamRegion[];
  vmReserved: Required<ReservedRange>[];
  images: KeptImage[];
  ledger: Placement[];
  events: Array<Omit<MeasuredEvent, "index">> | null;
  seedSites: { rng: number; kaslr: number } | null;
  /** The boot as bootLinux returned it, without the direct-boot kernel image (see directImage). */
  boot: LinuxBoot;
  /** x86 direct boot: which of `images` is boot.kernel.direct.image (the same bytes; not held twice). */
  directImage: number | null;
}

/** x86 direct boot's record of the laid-out kernel (src/boot/x86-direct.ts), as far as it matters here. */
type WithDirect = { direct?: { image?: Uint8Array } };

/** The template's seed: fixed, so the template itself is reproducible; every instance patches it. */
const TEMPLATE_SEED = 0n;

export class PreparedBoot {
  /** @internal use prepareBoot() or PreparedBoot.fromData() */
  constructor(private readonly d: PreparedBootData) {}

  /** The RAM map an instance needs. */
  get ram(): readonly RamRegion[] {
    return this.d.ram;
  }

  /** The images an instance places (name, format, paddr, size), in placement order. */
  get images(): ReadonlyArray<Omit<KeptImage, "bytes">> {
    return this.d.images.map(({ bytes: _b, ...i }) => i);
  }

  /** Host bytes the template holds for its images (= the bytes it places). */
  get bytes(): number {
    return this.d.images.reduce((n, i) => n + i.bytes.length, 0);
  }

  /**
   * The template as structured-clonable data, for a worker. With `shared`, the image bytes are
   * copied once into one SharedArrayBuffer, so posting it to any number of workers copies nothing.
   */
  toData(shared = false): PreparedBootData {
    if (!shared) return this.d;
    const total = this.bytes;
    const sab = new Uint8Array(new SharedArrayBuffer(total));
    let o = 0;
    const images = this.d.images.map((i) => {
      sab.set(i.bytes, o);
      const bytes = sab.subarray(o, o + i.bytes.length);
      o += i.bytes.length;
      return { ...i, bytes };
    });
    return { ...this.d, images };
  }

  /** A template from toData()'s output (in a worker). */
  static fromData(data: PreparedBootData): PreparedBoot {
    if (!data || data.kind !== "guest-image prepared boot" || data.version !== 1 || !Array.isArray(data.images)) {
      throw new GuestImageError("BAD_ARGUMENT", "not a prepared boot's data (PreparedBoot.toData())", { field: "data" });
    }
    for (const i of data.images) {
      if (!(i.bytes instanceof Uint8Array) || i.bytes.length !== i.size) {
        throw new GuestImageError("BAD_ARGUMENT", `prepared boot image "${i.name}": ${i.bytes?.length} bytes for a size of ${i.size}`, { field: "images" });
      }
    }
    return new PreparedBoot(data);
  }

  /**
   * Places the template's images into `vm` (which must have the template's RAM map and reserved
   * ranges) and returns the boot: byte for byte what bootLinux with the same inputs writes into
   * an empty VM, with fresh (or `seed`-derived) rng-seed and kaslr-seed. One step: every check
   * and digest comes before the first write, and a VM transaction undoes it like any load.
   * The VM's reset() then writes these images back (from the template's bytes, not a copy).
   */
  async instantiate(vm: Vm, opts: InstantiateOptions = {}): Promise<LinuxBoot> {
    if (opts === null || typeof opts !== "object") throw new GuestImageError("BAD_ARGUMENT", "instantiate options must be an object", { field: "options" });
    const d = this.d;
    sameRam(vm, d);
    let patches: Array<{ paddr: number; bytes: Uint8Array }> = [];
    let seeds: { rng: Uint8Array; kaslr: Uint8Array } | undefined;
    if (d.seedSites) {
      seeds = seedBytes(opts.seed);
      patches = [{ paddr: d.seedSites.rng, bytes: seeds.rng }, { paddr: d.seedSites.kaslr, bytes: seeds.kaslr }];
    } else if (opts.seed !== undefined) {
      seedBytes(opts.seed); // checked as bootLinux checks it; nothing to derive (no device tree, as on x86)
    }
    let events: Array<Omit<MeasuredEvent, "index">> = [];
    if (vm.eventLog) {
      if (!d.events) throw new GuestImageError("UNSUPPORTED", "this template was prepared without digests (no WebCrypto where it was prepared), so it cannot be placed into a measuring VM", { field: "measure" });
      events = await Promise.all(d.events.map(async (e) => {
        const img = d.images.find((i) => i.paddr === e.paddr && i.size === e.size && i.name === e.name);
        const hit = img && patches.some((p) => p.paddr >= img.paddr && p.paddr + p.bytes.length <= img.paddr + img.size);
        if (!img || !hit) return e;
        const bytes = img.bytes.slice();
        for (const p of patches) bytes.set(p.bytes, p.paddr - img.paddr);
        return { ...e, digest: await digestHex([bytes]) };
      }));
    }
    vm.placeImages(d.images, d.ledger, patches, events);
    vm.resetState.boot = { cpu: structuredClone(d.boot.cpu), seedSites: d.seedSites ?? undefined, seed: opts.seed, makeSeeds: seedBytes };
    const boot = structuredClone(d.boot);
    const direct = (boot.kernel as WithDirect).direct;
    if (direct && d.directImage !== null) {
      // bootLinux returns the laid-out kernel too: the template's bytes, copied when first read
      // (a caller that writes to it must not change the template).
      const src = d.images[d.directImage].bytes;
      Object.defineProperty(direct, "image", {
        enumerable: true, configurable: true,
        get() {
          const own = src.slice();
          Object.defineProperty(direct, "image", { value: own, enumerable: true, writable: true, configurable: true });
          return own;
        },
      });
    }
    if (boot.dtb && seeds) {
      const chosen = findNode(boot.dtb.fdt, "/chosen");
      if (chosen) {
        setProp(chosen, "rng-seed", seeds.rng.slice());
        setProp(chosen, "kaslr-seed", seeds.kaslr.slice());
      }
    }
    return boot;
  }
}

function sameRam(vm: Vm, d: PreparedBootData): void {
  const key = (rs: ReadonlyArray<{ base: number; size: number; type?: number }>) =>
    [...rs].sort((a, b) => a.base - b.base).map((r) => `[${hex(r.base)}, +${hex(r.size)}${r.type !== undefined ? ` type ${r.type}` : ""})`).join(", ");
  if (key(vm.ram.regions) !== key(d.ram)) {
    throw new GuestImageError("BAD_ARGUMENT", `the VM's RAM ${key(vm.ram.regions)} is not the template's ${key(d.ram)}: a prepared boot's addresses hold only for its RAM map`, { field: "ram" });
  }
  if (key(vm.reserved) !== key(d.vmReserved)) {
    throw new GuestImageError("BAD_ARGUMENT", `the VM's reserved ranges (${key(vm.reserved) || "none"}) are not the template's (${key(d.vmReserved) || "none"})`, { field: "reserved" });
  }
}

/**
 * Does everything of a bootLinux that does not depend on the target VM's memory once, and returns
 * a template to instantiate into any number of VMs with the RAM map `ram`. Reads every file once;
 * holds the placed bytes (plus the boot record); the scratch VM it boots into is dropped.
 */
export async function prepareBoot(opts: PrepareBootOptions): Promise<PreparedBoot> {
  if (!opts || typeof opts !== "object") throw new GuestImageError("BAD_ARGUMENT", "prepareBoot needs an options object", { field: "options" });
  const { files, ram, vmReserved, ...boot } = opts;
  if ((boot as { seed?: unknown }).seed !== undefined) throw new GuestImageError("BAD_ARGUMENT", "prepareBoot takes no seed: give it to instantiate()", { field: "seed" });
  if (!files) throw new GuestImageError("BAD_ARGUMENT", "prepareBoot needs `files` (where kernel, initrd… are read from)", { field: "files" });
  const reserved = checkReserved(vmReserved, "vmReserved");
  const measure = typeof globalThis.crypto?.subtle?.digest === "function";
  const vm = await createVm({ ram, reserved, files, resettable: true, measure });
  const b = await bootLinux(vm, { ...boot, seed: TEMPLATE_SEED });
  const rec = vm.resetState.boot!;
  const images = vm.keptImages().map(({ digest: _d, ...i }) => i);
  // x86 direct boot: the laid-out kernel in the boot record is the kernel image placed; keep it once.
  let directImage: number | null = null;
  let record = b;
  const direct = (b.kernel as WithDirect).direct;
  if (direct?.image instanceof Uint8Array) {
    const at = images.findIndex((i) => i.name === b.kernel.name && i.paddr === b.kernel.paddr && i.size === direct.image!.length);
    if (at >= 0 && Buffer_equal(images[at].bytes, direct.image)) {
      directImage = at;
      record = { ...b, kernel: { ...b.kernel, direct: { ...direct, image: undefined } } as LinuxBoot["kernel"] };
    }
  }
  return new PreparedBoot({
    kind: "guest-image prepared boot",
    version: 1,
    ram: vm.ram.regions.map(({ base, size }) => ({ base, size })),
    vmReserved: reserved,
    images,
    ledger: vm.placed(),
    events: measure ? vm.measurements().map(({ index: _i, ...e }) => e) : null,
    seedSites: rec.seedSites ?? null,
    boot: record,
    directImage,
  });
}

function Buffer_equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
