// Public exports for every platform (no Node built-ins). Node-only pieces: "guest-image/node".
export { createVm, Vm } from "./vm.js";
export type { CreateVmOptions, KernelArch, KernelLoadOptions, LoadedImage, LoadedKernel, ModuleLoadOptions } from "./vm.js";
export { vm_load_guest_kernel, vm_load_guest_module } from "./guest_image.js";
export type { guest_image_t, guest_kernel_image_t, guest_kernel_image_arch_t } from "./guest_image.js";
export { GuestImageError, isGuestImageError } from "./errors.js";
export type { ErrorCode } from "./errors.js";
export { GuestRam } from "./ram/guest-ram.js";
export type { RamRegion, RamPiece } from "./ram/guest-ram.js";
export type { Placement } from "./ram/ledger.js";
export { fromMap } from "./sources/memory.js";
export { fromCpio, parseCpio } from "./sources/cpio.js";
export type { CpioEntry } from "./sources/cpio.js";
export type { ImageFile, Source } from "./sources/source.js";
export { inspectFile } from "./inspect.js";
export type { Inspection, InspectSegment } from "./inspect.js";
export type { ElfKernelArch } from "./formats/elf.js";
export type { RawKernelArch } from "./formats/raw.js";
export { SCRATCH_BYTES } from "./core/core.js";
