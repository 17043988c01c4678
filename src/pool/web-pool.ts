// createWebLoadPool: a load pool of Web Workers (module workers). The page must be cross-origin
// isolated (COOP same-origin + COEP require-corp) for shared memory.
import { GuestImageError } from "../errors.js";
import { LoadPool, type PoolWorker } from "./pool.js";

/**
 * A pool of `workers` module Web Workers running web-worker.js. `url`: where that script is
 * served (default: next to this module, which bundlers that understand `new URL(…, import.meta.url)`
 * resolve).
 */
export function createWebLoadPool(workers = 2, url: string | URL = new URL("./web-worker.js", import.meta.url)): LoadPool {
  if (!Number.isSafeInteger(workers) || workers < 1) throw new GuestImageError("BAD_ARGUMENT", `workers must be a positive integer, got ${String(workers)}`, { field: "workers" });
  return new LoadPool(Array.from({ length: workers }, (): PoolWorker => {
    const w = new Worker(url, { type: "module" });
    return {
      post: (m) => w.postMessage(m),
      listen: (onReply, onFail) => {
        w.onmessage = (e) => onReply(e.data);
        w.onerror = (e) => onFail(new Error(e.message || "worker error"));
      },
      terminate: () => w.terminate(),
    };
  }));
}
