// Runs the vitest suite and ends with the plain "N passed, N failed" line CI reads.
// Extra arguments go to vitest (e.g. `npm test -- test/elf.test.ts`).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";

const report = "test-report.json";
rmSync(report, { force: true });
const r = spawnSync(
  process.execPath,
  ["node_modules/vitest/vitest.mjs", "run", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`, ...process.argv.slice(2)],
  { stdio: "inherit" },
);
if (!existsSync(report)) {
  console.log("0 passed, 1 failed");
  process.exit(r.status || 1);
}
const j = JSON.parse(readFileSync(report, "utf8"));
const skipped = j.numPendingTests + j.numTodoTests;
console.log(`${j.numPassedTests} passed, ${j.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(r.status ?? 1);
