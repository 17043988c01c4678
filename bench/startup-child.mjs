// Case 7, run in a fresh node process per sample: import of the built library, then the first
// load (Wasm compile + instantiate + a 4 KiB module) and a second one. Prints JSON.
import { firstLoad } from "./lib/cases.mjs";

console.log(JSON.stringify(await firstLoad(process.argv[2])));
