// vitest browser commands: code the browser tests run on the Node side. `nodeLoad` runs a
// scenario with the Node build (dist/node.js, built by `npm test`'s pretest) reading files from
// disk, so a browser test can compare Chromium's guest RAM with Node's.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { BrowserCommand } from "vitest/node";
import { SCENARIOS, runScenario, type ScenarioName, type ScenarioResult } from "../cases/scenario.js";
import { SYNTHETIC } from "../cases/fixtures.js";

const root = new URL("../../../", import.meta.url);

export const nodeLoad: BrowserCommand<[name: ScenarioName]> = async (_ctx, name): Promise<ScenarioResult> => {
  const lib = (await import(new URL("dist/node.js", root).href)) as typeof import("../../../src/node.js");
  const images = new URL("examples/images/", root);
  const files =
    name === "samples" ? lib.fromDirectory(images.pathname)
    : name === "cpio" ? lib.fromCpio(new Uint8Array(readFileSync(new URL("images.cpio", images))))
    : lib.fromMap(Object.fromEntries(Object.entries(SYNTHETIC).map(([k, make]) => [k, make()])));
  return runScenario(lib, SCENARIOS[name], files, async (b) => createHash("sha256").update(b).digest("hex"));
};

declare module "vitest/browser" {
  interface BrowserCommands {
    nodeLoad(name: ScenarioName): Promise<ScenarioResult>;
  }
}
