// Prints bench/results.json (or the file given) as the Markdown table the README shows.
// usage: node bench/table.mjs [results.json]
import { readFileSync } from "node:fs";

const r = JSON.parse(readFileSync(process.argv[2] ?? new URL("results.json", import.meta.url), "utf8"));
const gbs = (bytes, ms) => (bytes / (ms * 1e6)).toFixed(2);
const val = (row, s) => {
  if (!s) return "";
  if (row.kind === "throughput") return `${gbs(row.bytes, s.median)} GB/s`;
  if (row.kind === "count") return `${(row.count / s.median / 1e3).toFixed(0)} M/s`;
  return `${s.median.toFixed(row.unit === "MiB" ? 0 : 1)} ${row.unit}`;
};
const browser = r.browser && !r.browser.skipped;
const head = ["#", "case", "ours (Node)", "baseline", "ratio", "target"];
if (browser) head.push("Chromium (ratio)");
console.log(`| ${head.join(" | ")} |`);
console.log(`|${head.map(() => "---").join("|")}|`);
for (const row of r.rows) {
  if (!row.ours && !row.base) {
    console.log(`| ${row.id} | ${row.name} |  |  |  |  |${browser ? "  |" : ""}`);
    continue;
  }
  const target = row.target !== undefined ? `≥ ${row.target}` : row.limit !== undefined ? `≤ ${row.limit} ${row.unit}` : "";
  const ok = row.pass === undefined ? "" : row.pass ? " ✓" : " ✗";
  const cells = [
    row.id, row.name.trim(), val(row, row.ours), row.base ? `${row.baseName} ${val(row, row.base)}` : "",
    row.ratio !== undefined ? row.ratio.toFixed(2) : "", `${target}${ok}`,
  ];
  if (browser) cells.push(row.browser && !row.browser.error ? `${val(row, row.browser.ours)}${row.browser.ratio !== undefined ? ` (${row.browser.ratio.toFixed(2)})` : ""}` : "");
  console.log(`| ${cells.join(" | ")} |`);
}
const m = r.meta;
console.log(`\n${m.cpu} ×${m.cpus}, ${m.memGiB} GiB, Linux ${m.kernel}, Node ${m.node} (V8 ${m.v8}), gcc ${m.gcc}${browser ? `, ${r.browser.userAgent?.match(/HeadlessChrome\/[\d.]+/)?.[0] ?? "Chromium"}` : ""}; ${m.date.slice(0, 10)}, median of ${m.options.runs} runs.`);
