// A pool of workers (Node worker_threads or Web Workers) loading VMs into shared memories: each
// job goes to an idle worker; results and typed errors come back as promises. The platform parts
// (how to start a worker, how messages arrive) are in node-pool.ts and web-pool.ts.
import { SCRATCH_BYTES } from "../core/core.js";
import { GuestImageError, type ErrorCode } from "../errors.js";
import { hex } from "../num.js";
import type { RamRegion } from "../ram/guest-ram.js";
import type { LoadJob, LoadJobResult, PoolReply } from "./job.js";

export type { LoadJob, LoadJobResult } from "./job.js";

/** The little a pool needs of a worker. */
export interface PoolWorker {
  post(msg: { id: number; job: LoadJob }): void;
  /** Registers the handler for replies and for the worker dying (an error event, an exit). */
  listen(onReply: (r: PoolReply) => void, onFail: (e: Error) => void): void;
  terminate(): void | Promise<unknown>;
}

export class LoadPool {
  private readonly idle: PoolWorker[];
  private readonly queue: Array<{ job: LoadJob; ok: (r: LoadJobResult) => void; fail: (e: Error) => void }> = [];
  private readonly running = new Map<number, { w: PoolWorker; ok: (r: LoadJobResult) => void; fail: (e: Error) => void }>();
  private nextId = 1;
  private closed = false;

  constructor(private readonly workers: PoolWorker[]) {
    if (!workers.length) throw new GuestImageError("BAD_ARGUMENT", "a load pool needs at least one worker", { field: "workers" });
    this.idle = [...workers];
    for (const w of workers) {
      w.listen(
        (r) => {
          const job = this.running.get(r.id);
          if (!job) return;
          this.running.delete(r.id);
          this.idle.push(w);
          if (r.ok) job.ok(r.result);
          else job.fail(new GuestImageError(r.error.code as ErrorCode, r.error.message, { image: r.error.image, field: r.error.field }));
          this.pump();
        },
        (e) => {
          for (const [id, j] of this.running) if (j.w === w) {
            this.running.delete(id);
            j.fail(new GuestImageError("IO", `worker failed: ${e.message}`, { cause: e }));
          }
        },
      );
    }
  }

  /** Workers in the pool. */
  get size(): number {
    return this.workers.length;
  }

  /** Runs one load job on the next idle worker. */
  run(job: LoadJob): Promise<LoadJobResult> {
    if (this.closed) return Promise.reject(new GuestImageError("BAD_ARGUMENT", "the pool is closed", { field: "pool" }));
    return new Promise((ok, fail) => {
      this.queue.push({ job, ok, fail });
      this.pump();
    });
  }

  /** Ends every worker (jobs still queued are refused). */
  async close(): Promise<void> {
    this.closed = true;
    for (const q of this.queue.splice(0)) q.fail(new GuestImageError("BAD_ARGUMENT", "the pool was closed", { field: "pool" }));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private pump(): void {
    while (this.idle.length && this.queue.length) {
      const w = this.idle.shift()!;
      const q = this.queue.shift()!;
      const id = this.nextId++;
      this.running.set(id, { w, ok: q.ok, fail: q.fail });
      w.post({ id, job: q.job });
    }
  }
}

const PAGE = 65536;

/**
 * One shared WebAssembly.Memory holding `count` VMs with the RAM map `ram` side by side, and each
 * VM's place in it: guest RAM at memoryOffset, the loader's scratch area after all the RAM.
 */
export function poolSlots(count: number, ram: RamRegion[]): { memory: WebAssembly.Memory; slots: Array<{ memoryOffset: number; scratchOffset: number }> } {
  if (!Number.isSafeInteger(count) || count < 1) throw new GuestImageError("BAD_ARGUMENT", `count must be a positive integer, got ${String(count)}`, { field: "count" });
  // Guest RAM occupies [memoryOffset, memoryOffset + sum of sizes) (GuestRam lays regions end to end).
  const ramBytes = ram.reduce((n, r) => n + r.size, 0);
  const slot = Math.ceil(ramBytes / PAGE) * PAGE;
  const scratch = Math.ceil(SCRATCH_BYTES / 16) * 16;
  const total = count * slot + count * scratch;
  const pages = Math.ceil(total / PAGE);
  if (pages > 65536) throw new GuestImageError("TOO_LARGE", `${count} VMs of ${hex(ramBytes)} bytes need ${hex(total)} bytes: more than one 4 GiB memory`, { field: "count" });
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const slots = Array.from({ length: count }, (_, i) => ({ memoryOffset: i * slot, scratchOffset: count * slot + i * scratch }));
  return { memory, slots };
}

/** Copies files into SharedArrayBuffers, so posting them to workers copies nothing. */
export function shareFiles(files: Record<string, Uint8Array>): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(files)) {
    const s = new Uint8Array(new SharedArrayBuffer(v.length));
    s.set(v);
    out[k] = s;
  }
  return out;
}
