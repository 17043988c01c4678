// The bounded CI slice of the mutation fuzzer (fuzz/engine.mjs): every format for a few seconds
// with a fixed seed, so a failure here reproduces with
//   npm run fuzz -- --seed 20260601 --format <format> --seconds <same>
// (`npm run fuzz` runs the same engine on dist/; this runs it on src/ through vitest). The whole
// slice takes about FUZZ_SLICE_SECONDS (default 48) seconds.
import { describe, expect, it } from "vitest";
import * as lib from "../../src/node.js";
import * as inflate from "../../src/compress/inflate.js";
import { FORMATS, fuzz } from "../../fuzz/engine.mjs";

const TOTAL = Number(process.env.FUZZ_SLICE_SECONDS ?? 48);
const SEED = 20260601;

describe("fuzz slice (fixed seed)", () => {
  for (const format of FORMATS) {
    it(`${format}: mutants keep every invariant`, async () => {
      const { stats, findings } = await fuzz({ lib, inflate, seconds: TOTAL / FORMATS.length, formats: [format], seed: SEED });
      const report = findings.map((f) => `${f.violation.kind} (seed image ${f.seed}, case ${JSON.stringify(f.case)}):\n${f.violation.detail}`);
      expect(report).toEqual([]);
      expect(stats[format].execs).toBeGreaterThan(50);
    }, 60_000);
  }
});
