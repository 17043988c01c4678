// The Web Worker side of a load pool (createWebLoadPool starts this file as a module worker).
import { handleMessage } from "./job.js";

const scope = globalThis as unknown as { onmessage: ((e: MessageEvent) => void) | null; postMessage(m: unknown): void };
scope.onmessage = (e: MessageEvent) => {
  void handleMessage(e.data).then((r) => scope.postMessage(r));
};
