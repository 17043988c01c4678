// The Chromium half of `npm run bench`: serves the repository's dist/ and bench/ from a small
// node:http server on 127.0.0.1, opens bench/browser.html in headless Chromium and collects what
// the page POSTs back (cases 2, 3, 4 on in-memory sources; case 7 as a fresh browser per run).
//
// Chromium is driven with playwright-core when it is installed (launchPersistentContext, the
// flags of shared/reference/toolchain.md §5); without it, the chromium binary is started directly
// in headless mode on the page's URL and stopped once the page has reported. No Chromium: skipped.
//
// Standalone: node bench/browser-run.mjs [--quick] [--runs N] [--size S] …  (prints JSON)
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:http";
import os from "node:os";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const TYPES = { ".html": "text/html", ".mjs": "text/javascript", ".js": "text/javascript", ".json": "application/json", ".map": "application/json" };

/** Static files under root/dist and root/bench, plus POST /result (resolves the next waiter). */
function serve(root) {
  const waiters = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    if (req.method === "POST" && url.pathname === "/result") {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        res.end("ok");
        waiters.shift()?.(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      });
      return;
    }
    const path = normalize(join(root, decodeURIComponent(url.pathname)));
    const allowed = [join(root, "dist") + sep, join(root, "bench") + sep].some((d) => path.startsWith(d));
    if (!allowed || !existsSync(path) || !statSync(path).isFile()) {
      res.writeHead(404).end();
      return;
    }
    // Cross-origin isolation gives performance.now() 5 µs resolution instead of 100 µs.
    res.writeHead(200, {
      "content-type": TYPES[extname(path)] ?? "application/octet-stream",
      "cross-origin-opener-policy": "same-origin",
      "cross-origin-embedder-policy": "require-corp",
      "cache-control": "no-store",
    });
    res.end(readFileSync(path));
  });
  const next = (ms) =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no result from the page within ${ms / 1000} s`)), ms);
      waiters.push((v) => {
        clearTimeout(t);
        resolve(v);
      });
    });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, port: server.address().port, next })));
}

async function playwright() {
  try {
    return (await import("playwright-core")).chromium;
  } catch {
    return null;
  }
}

/** Opens `url` in a fresh headless Chromium (own profile) and returns what the page posts. */
async function visit(pw, url, next, timeoutMs) {
  const profile = mkdtempSync(join(os.tmpdir(), "chromium-profile-"));
  const result = next(timeoutMs);
  try {
    if (pw) {
      const ctx = await pw.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS });
      try {
        const page = ctx.pages()[0] ?? (await ctx.newPage());
        await page.goto(url);
        return await result;
      } finally {
        await ctx.close();
      }
    }
    const child = spawn(CHROMIUM, ["--headless", ...FLAGS, `--user-data-dir=${profile}`, url], { stdio: "ignore", detached: true });
    const exited = new Promise((resolve) => child.on("exit", resolve));
    try {
      return await Promise.race([result, exited.then((code) => Promise.reject(new Error(`chromium exited (${code}) before the page reported`)))]);
    } finally {
      try {
        process.kill(-child.pid, "SIGTERM"); // the process group of the chromium we started
      } catch {}
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    }
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

/**
 * Runs the browser cases with the harness's options `o` (runs, size, elfSize, relocs, x86Relocs,
 * only). Returns { driver, chromium, cases: {raw, elf, relaC, relaJs, x86C, x86Js, startup} } or
 * { skipped: reason }.
 */
export async function runBrowser(o, root = join(HERE, "..")) {
  if (!existsSync(CHROMIUM)) return { skipped: `no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)` };
  const pw = await playwright();
  const driver = pw ? "playwright-core" : "chromium --headless (playwright-core not installed)";
  const want = (c) => !o.only || o.only.has(c);
  const { server, port, next } = await serve(root);
  const base = `http://127.0.0.1:${port}/bench/browser.html`;
  const out = { driver, cases: {} };
  try {
    const only = [want("raw-mem") && "raw", want("elf") && "elf", want("reloc") && "reloc"].filter(Boolean);
    if (only.length) {
      const qs = new URLSearchParams({ runs: o.runs, size: o.size, elfSize: o.elfSize, relocs: o.relocs, x86Relocs: o.x86Relocs, only: only.join(",") });
      process.stdout.write(`Chromium (${driver}): cases ${only.join(", ")} …`);
      const r = await visit(pw, `${base}?${qs}`, next, 600_000);
      console.log(r.ok ? " done" : " failed");
      if (!r.ok) out.error = r.error;
      else {
        Object.assign(out.cases, r.result.cases);
        out.userAgent = r.result.userAgent;
        out.crossOriginIsolated = r.result.crossOriginIsolated;
      }
    }
    if (want("startup")) {
      const samples = [];
      for (let i = 0; i < o.runs; i++) {
        const r = await visit(pw, `${base}?mode=startup&i=${i}`, next, 60_000);
        if (!r.ok) throw new Error(r.error);
        samples.push(r.result);
      }
      out.cases.startup = Object.fromEntries(
        [["ours", "firstLoadMs"], ["importMs"], ["createVmMs"], ["loadModuleMs"], ["secondLoadMs"]].map(([k, f = k]) => [k, samples.map((s) => s[f])]),
      );
    }
  } catch (e) {
    out.error = String(e?.message ?? e);
  } finally {
    server.close();
  }
  if (out.error) for (const k of ["raw", "elf", "relaC", "relaJs", "x86C", "x86Js", "startup"]) out.cases[k] ??= { error: "failed (see results.json)" };
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const a = process.argv.slice(2);
  const quick = a.includes("--quick");
  const arg = (k, d) => (a.includes(k) ? Number(a[a.indexOf(k) + 1]) : d);
  const M = 1024 * 1024;
  const o = {
    runs: arg("--runs", quick ? 3 : 5), size: arg("--size", quick ? 16 * M : 256 * M), elfSize: arg("--elf-size", quick ? 8 * M : 64 * M),
    relocs: arg("--relocs", quick ? 1e5 : 1e6), x86Relocs: arg("--x86-relocs", quick ? 5e4 : 5e5), only: null,
  };
  console.log(JSON.stringify(await runBrowser(o), null, 1));
}
