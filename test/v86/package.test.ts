// The guest-image/v86 entry: package.json "exports" points at the built adapter, v86 is an
// optional peer dependency (pinned as a dev dependency), and the adapter's import graph — what a
// browser or bundler loads — reaches no Node built-in and no bare package (not even "v86": the
// caller passes the emulator in). Scanned with TypeScript's own import scanner on dist/.
import { existsSync, readFileSync } from "node:fs";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const root = new URL("../../", import.meta.url);

function importGraph(entry: URL): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const visit = (file: URL) => {
    if (seen.has(file.href)) return;
    const specs = ts.preProcessFile(readFileSync(file, "utf8"), true, true).importedFiles.map((f) => f.fileName);
    seen.set(file.href, specs);
    for (const s of specs) if (s.startsWith("./") || s.startsWith("../")) visit(new URL(s, file));
  };
  visit(entry);
  return seen;
}

describe("guest-image/v86 package entry", () => {
  const pkg = JSON.parse(readFileSync(new URL("package.json", root), "utf8"));

  it("exports ./v86 → dist/adapters/v86.js; v86 is an optional peer and an exactly pinned dev dependency", () => {
    expect(pkg.exports["./v86"]).toEqual({ types: "./dist/adapters/v86.d.ts", default: "./dist/adapters/v86.js" });
    for (const f of ["dist/adapters/v86.js", "dist/adapters/v86.d.ts"]) expect(existsSync(new URL(f, root)), f).toBe(true);
    expect(pkg.peerDependenciesMeta?.v86?.optional).toBe(true);
    expect(pkg.devDependencies.v86).toMatch(/^\d+\.\d+\.\d+$/);
    const installed = JSON.parse(readFileSync(new URL("node_modules/v86/package.json", root), "utf8")).version as string;
    expect(installed.split("+")[0]).toBe(pkg.devDependencies.v86);
  });

  it("dist/adapters/v86.js imports only the library's own relative modules (browser-safe)", () => {
    const graph = importGraph(new URL("dist/adapters/v86.js", root));
    const bad: string[] = [];
    for (const [file, specs] of graph) {
      for (const s of specs) {
        if (!s.startsWith("./") && !s.startsWith("../")) bad.push(`${file.slice(root.href.length)} imports "${s}"`);
        else if (!existsSync(new URL(s, file))) bad.push(`${file.slice(root.href.length)} imports missing "${s}"`);
      }
    }
    expect(bad).toEqual([]);
    expect([...graph.keys()].some((f) => f.endsWith("dist/boot/linux.js"))).toBe(true);
  });
});
