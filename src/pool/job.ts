// One load job of a worker pool, the same in a Node worker thread and a Web Worker: a VM over a
// slot of a shared WebAssembly.Memory, and one bootLinux (a transaction) or one instantiation of a
// prepared boot (one step, checked before it writes). A job that fails leaves its slot as it was.
import { bootLinux, type BootLinuxOptions, type LinuxBoot } from "../boot/linux.js";
import { PreparedBoot, type PreparedBootData } from "../boot/prepared.js";
import { GuestImageError } from "../errors.js";
import type { RamRegion } from "../ram/guest-ram.js";
import type { Placement } from "../ram/ledger.js";
import { fromMap } from "../sources/memory.js";
import { createVm, type ReservedRange } from "../vm.js";

export interface LoadJob {
  /** A shared WebAssembly.Memory (shared: true); every job of a pool may use the same one. */
  memory: WebAssembly.Memory;
  /** Where this VM's guest RAM starts in `memory` (slots must not overlap: see poolSlots()). */
  memoryOffset: number;
  /** This VM's loader scratch area in `memory` (SCRATCH_BYTES), outside every slot's RAM. */
  scratchOffset: number;
  ram: RamRegion[];
  reserved?: ReservedRange[];
  /** Instantiate this prepared boot (PreparedBoot.toData(true): its bytes are shared, not copied)… */
  template?: PreparedBootData;
  /** … or run bootLinux with these options over `files` (SharedArrayBuffer-backed bytes copy nothing). */
  boot?: BootLinuxOptions;
  files?: Record<string, Uint8Array>;
  /** Seed for the instance's device-tree seeds (template jobs; boot jobs use boot.seed). */
  seed?: number | bigint;
}

export interface LoadJobResult {
  boot: LinuxBoot;
  placed: Placement[];
}

/** Templates seen by this worker, by identity of their data (a pool posts the same data object once per job). */
const templates = new WeakMap<PreparedBootData, PreparedBoot>();

export async function runLoadJob(job: LoadJob): Promise<LoadJobResult> {
  if (!job || typeof job !== "object") throw new GuestImageError("BAD_ARGUMENT", "a load job must be an object", { field: "job" });
  const vm = await createVm({ ram: job.ram, reserved: job.reserved, memory: job.memory, memoryOffset: job.memoryOffset, scratchOffset: job.scratchOffset, files: job.files && fromMap(job.files) });
  let boot: LinuxBoot;
  if (job.template) {
    let t = templates.get(job.template);
    if (!t) templates.set(job.template, (t = PreparedBoot.fromData(job.template)));
    boot = await t.instantiate(vm, { seed: job.seed });
  } else if (job.boot) {
    boot = await bootLinux(vm, job.boot);
  } else {
    throw new GuestImageError("BAD_ARGUMENT", "a load job needs `template` or `boot`", { field: "job" });
  }
  return { boot, placed: vm.placed() };
}

/** What a worker posts back: the result, or the error as plain data (code, message, image, field). */
export type PoolReply = { id: number; ok: true; result: LoadJobResult } | { id: number; ok: false; error: { code: string; message: string; image?: string; field?: string } };

/** The worker side of the protocol: { id, job } in, PoolReply out. */
export async function handleMessage(msg: { id: number; job: LoadJob }): Promise<PoolReply> {
  try {
    return { id: msg.id, ok: true, result: await runLoadJob(msg.job) };
  } catch (e) {
    const g = e instanceof GuestImageError ? e : undefined;
    return { id: msg.id, ok: false, error: { code: g?.code ?? "IO", message: (e as Error)?.message ?? String(e), image: g?.image, field: g?.field } };
  }
}
