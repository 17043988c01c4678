// The seL4 VMM interface (libsel4vmmplatsupport include/sel4vmmplatsupport/guest_image.h), names
// and parameters exactly as there, over the idiomatic Vm API. One consistent contract for all
// architectures that fixes libsel4vm's known bugs (README, "Differences from libsel4vm"):
// - base B = load_address rounded up to alignment (0 or 1: none; else a power of two);
// - alignment and size are always filled; size = bytes the image occupies in guest RAM;
// - errors are thrown as GuestImageError (never a −1 after a partial write): on failure guest
//   RAM and the ledger are unchanged and the struct passed in is not touched.
import { GuestImageError } from "./errors.js";
import { Vm as VmClass, type KernelArch, type Vm } from "./vm.js";

/** guest_image_t: where one image went. */
export interface guest_image_t {
  load_paddr: number;
  alignment: number;
  size: number;
}

/**
 * guest_kernel_image_arch_t. seL4's x86 struct has the inputs `is_reloc_enabled` and
 * `relocs_file` and the outputs `entry`, `relocation_offset`, `link_paddr`, `link_vaddr`; ours
 * carries those (for every architecture) plus the format, machine and segment list.
 */
export type guest_kernel_image_arch_t = Partial<KernelArch> & {
  /** Input: apply Linux x86 `relocs` data from `relocs_file`. */
  is_reloc_enabled?: boolean;
  /** Input: name of the relocs data in the VM's files (may be the kernel itself). */
  relocs_file?: string | null;
};

/** guest_kernel_image_t */
export interface guest_kernel_image_t {
  kernel_image: guest_image_t;
  kernel_image_arch: guest_kernel_image_arch_t;
}

/**
 * Loads the kernel `kernel_name` at `load_address` rounded up to `alignment`. An ELF image is
 * moved as a whole to that base (and relocated); a raw image is placed there with entry = base.
 * Fills and returns `guest_kernel_image` (a new one if omitted).
 */
export async function vm_load_guest_kernel(
  vm: Vm,
  kernel_name: string,
  load_address: number,
  alignment: number,
  guest_kernel_image?: guest_kernel_image_t,
): Promise<guest_kernel_image_t> {
  checkVm(vm);
  checkStruct(guest_kernel_image, "guest_kernel_image", kernel_name);
  const input = guest_kernel_image?.kernel_image_arch;
  if (input?.is_reloc_enabled && (typeof input.relocs_file !== "string" || input.relocs_file === "")) {
    throw new GuestImageError("BAD_ARGUMENT", "is_reloc_enabled is set but relocs_file names no file", { image: kernel_name, field: "relocs_file" });
  }
  const relocs = input?.is_reloc_enabled ? (input.relocs_file as string) : undefined;
  const k = await vm.loadKernel(kernel_name, { at: load_address, align: alignment, relocs: relocs ?? undefined });
  const out = guest_kernel_image ?? ({} as guest_kernel_image_t);
  out.kernel_image = { load_paddr: k.paddr, alignment: k.alignment, size: k.size };
  out.kernel_image_arch = { ...k.arch };
  return out;
}

/**
 * Loads the module `module_name` (initrd, device tree, any file) verbatim at `load_address`
 * rounded up to `alignment`. Fills and returns `guest_image` (a new one if omitted).
 */
export async function vm_load_guest_module(
  vm: Vm,
  module_name: string,
  load_address: number,
  alignment: number,
  guest_image?: guest_image_t,
): Promise<guest_image_t> {
  checkVm(vm);
  checkStruct(guest_image, "guest_image", module_name);
  const m = await vm.loadModule(module_name, { at: load_address, align: alignment });
  const out = guest_image ?? ({} as guest_image_t);
  out.load_paddr = m.paddr;
  out.alignment = m.alignment;
  out.size = m.size;
  return out;
}

/** Checked before anything is loaded, so a bad argument cannot leave an image placed. */
function checkVm(vm: Vm): void {
  if (!(vm instanceof VmClass)) throw new GuestImageError("BAD_ARGUMENT", "vm must be a VM made by createVm()", { field: "vm" });
}

function checkStruct(v: unknown, what: string, image: string): void {
  if (v !== undefined && v !== null && typeof v !== "object") {
    throw new GuestImageError("BAD_ARGUMENT", `${what} must be an object (or omitted), got ${typeof v}`, { image, field: what });
  }
}
