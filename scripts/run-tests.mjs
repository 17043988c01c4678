// Runs the vitest suite and ends with the plain "N passed, N failed" line CI reads.
// Extra arguments go to vitest (e.g. `npm test -- test/elf.test.ts`). It checks the machine first
// (scripts/test-deps.mjs), then builds, then runs vitest.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { INSTALL_COMMAND, missingTestDeps } from "./test-deps.mjs";

// Before anything else: does this machine have what the tests use? If not, one message naming all
// of it and the one command that installs it (instead of dozens of unrelated failures).
// GUEST_IMAGE_SKIP_PREFLIGHT=1 runs anyway (e.g. a subset of tests that needs none of it).
if (!process.env.GUEST_IMAGE_SKIP_PREFLIGHT) {
  const missing = missingTestDeps();
  if (missing.length) {
    console.error(`npm test: this machine lacks what the tests need:\n  - ${missing.join("\n  - ")}\n` +
      `Install all of it (Debian, as root; then run the tests again):\n  ${INSTALL_COMMAND}\n` +
      `or in one line, as the README says:  bash scripts/install-test-deps.sh && npm ci && npm test`);
    console.log("0 passed, 1 failed");
    process.exit(1);
  }
}

const build = spawnSync("npm", ["run", "build", "--silent"], { stdio: "inherit" });
if (build.status !== 0) {
  console.log("0 passed, 1 failed");
  process.exit(build.status || 1);
}

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
