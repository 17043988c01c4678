// createNodeLoadPool: a load pool of Node worker threads.
import { Worker } from "node:worker_threads";
import { GuestImageError } from "../errors.js";
import { LoadPool, type PoolWorker } from "./pool.js";

/** A pool of `workers` Node worker threads (default: 2), each running src/pool/node-worker.ts. */
export function createNodeLoadPool(workers = 2): LoadPool {
  if (!Number.isSafeInteger(workers) || workers < 1) throw new GuestImageError("BAD_ARGUMENT", `workers must be a positive integer, got ${String(workers)}`, { field: "workers" });
  const url = new URL("./node-worker.js", import.meta.url);
  return new LoadPool(Array.from({ length: workers }, (): PoolWorker => {
    const w = new Worker(url);
    return {
      post: (m) => w.postMessage(m),
      listen: (onReply, onFail) => {
        w.on("message", onReply);
        w.on("error", onFail);
        w.on("exit", (code) => onFail(new Error(`worker exited with code ${code}`)));
      },
      terminate: () => w.terminate(),
    };
  }));
}
