// The Node worker_threads side of a load pool (createNodeLoadPool starts this file).
import { parentPort } from "node:worker_threads";
import "../node.js"; // node:zlib, node:crypto and zlib.crc32 registered, as in the main thread
import { handleMessage } from "./job.js";

parentPort!.on("message", (m) => {
  void handleMessage(m).then((r) => parentPort!.postMessage(r));
});
