// Packaging for browsers and bundlers: the default entry (dist/index.js, what browsers and
// bundlers resolve) must reach no Node built-in and no bare package, through any static or
// dynamic import; the Node entry adds the Node-only sources. Reads the built output (npm test
// builds first), with TypeScript's own import scanner so comments and strings cannot fool it.
import { existsSync, readFileSync } from "node:fs";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const root = new URL("../", import.meta.url);

/** Every module reachable from `entry`, with the specifiers each one imports. */
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

const rel = (href: string) => href.slice(root.href.length);

describe("package entries", () => {
  it("package.json: browsers and bundlers get dist/index.js, Node gets dist/node.js", () => {
    const pkg = JSON.parse(readFileSync(new URL("package.json", root), "utf8"));
    expect(pkg.type).toBe("module");
    expect(pkg.exports["."].default).toEqual({ types: "./dist/index.d.ts", default: "./dist/index.js" });
    expect(pkg.exports["."].node.default).toBe("./dist/node.js");
    expect(pkg.exports["./node"].default).toBe("./dist/node.js");
    for (const f of ["dist/index.js", "dist/index.d.ts", "dist/node.js", "dist/node.d.ts"]) expect(existsSync(new URL(f, root)), f).toBe(true);
  });

  it("dist/index.js imports only its own relative modules: no node:*, no bare packages, all present", () => {
    const graph = importGraph(new URL("dist/index.js", root));
    expect(graph.size).toBeGreaterThan(10);
    const bad: string[] = [];
    for (const [file, specs] of graph) {
      for (const s of specs) {
        if (!s.startsWith("./") && !s.startsWith("../")) bad.push(`${rel(file)} imports "${s}"`);
        else if (!existsSync(new URL(s, file))) bad.push(`${rel(file)} imports missing "${s}"`);
      }
    }
    expect(bad).toEqual([]);
    // The browser sources are in it; the Node-only one is not.
    const files = [...graph.keys()].map(rel);
    expect(files).toContain("dist/sources/url.js");
    expect(files).toContain("dist/sources/files.js");
    expect(files).not.toContain("dist/sources/directory.js");
  });

  it("the scan does see Node built-ins where they are (dist/node.js reaches node:fs)", () => {
    const specs = [...importGraph(new URL("dist/node.js", root)).values()].flat();
    expect(specs).toContain("node:fs");
  });
});
