// The demo's "load in a Web Worker" mode: the page sends a shared WebAssembly.Memory and a load
// request; this worker loads into the memory and reports progress and the result. The page reads
// guest RAM straight from the shared memory, no copy back.
import { runLoad, type LoadRequest } from "./load.js";

self.onmessage = async (e: MessageEvent<{ req: LoadRequest; memory: WebAssembly.Memory; memoryOffset: number }>) => {
  const { req, memory, memoryOffset } = e.data;
  const result = await runLoad(req, (done, total) => postMessage({ progress: [done, total] }), memory, memoryOffset);
  postMessage({ result });
};
