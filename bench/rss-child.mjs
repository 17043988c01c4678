// Case 8, run in its own process: a VM with `ram` bytes of guest RAM, then a raw module of a
// page-cached file loaded into it. "dirty": every guest RAM page written first (RAM an earlier
// guest used), so execute() saves each chunk for rollback instead of finding it zero.
// usage: node rss-child.mjs <dist URL> <file> <ram bytes> fresh|dirty   → JSON on stdout
import { basename, dirname } from "node:path";

const [base, file, ramArg, mode] = process.argv.slice(2);
const lib = await import(base + "node.js");
const ram = Number(ramArg);
const vm = await lib.createVm({ ram: [{ base: 0, size: ram }], files: lib.fromDirectory(dirname(file)) });
if (mode === "dirty") new Uint8Array(vm.memory.buffer, 0, ram).fill(0xa5);
const before = process.resourceUsage().maxRSS;
const beforeRss = process.memoryUsage().rss;
const t0 = performance.now();
await vm.loadModule(basename(file), { at: ram - (await (await vm.open(basename(file))).size) });
const ms = performance.now() - t0;
console.log(JSON.stringify({ beforeMaxRssKiB: before, beforeRssKiB: Math.round(beforeRss / 1024), maxRssKiB: process.resourceUsage().maxRSS, ms }));
