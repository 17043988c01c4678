#!/usr/bin/env node
// Prints the Debian archive and security URIs this machine's apt is configured with, so
// scripts/fetch-fixtures.sh fetches through them and the repository names no mirror host.
//
// Reads /etc/apt/sources.list, /etc/apt/sources.list.d/*.list (one-line "deb [opts] URI SUITE
// COMPONENT…") and /etc/apt/sources.list.d/*.sources (deb822: Types/URIs/Suites/Enabled
// paragraphs) — the files apt itself reads (files with other extensions are ignored, as apt does).
// The archive is the first "deb" source whose suite is a Debian release name (bookworm, trixie, sid
// or a stable/testing/unstable alias, with an optional -updates/-backports tail, never -security);
// the security archive is the first whose suite ends in "-security". Output, one per line:
//   archive <URI>
//   security <URI>        (omitted when none is configured)
// Exits 1, saying why, when no Debian archive is configured. DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR
// in the environment override what the files say (for machines whose apt points elsewhere).
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const ETC = process.env.APT_ETC ?? "/etc/apt";
const RELEASES = /^(buster|bullseye|bookworm|trixie|forky|duke|sid|oldstable|stable|testing|unstable)(-updates|-backports|-proposed-updates)?$/;
const SECURITY = /^[a-z]+-security$|^[a-z]+\/updates$/;

/** @type {{ uri: string, suite: string }[]} */
const sources = [];

function oneLine(text) {
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*/, "").trim();
    if (!line.startsWith("deb ") && !line.startsWith("deb\t")) continue;
    const words = line.replace(/\[[^\]]*\]/, " ").split(/\s+/).slice(1);
    if (words.length >= 2) sources.push({ uri: words[0], suite: words[1] });
  }
}

function deb822(text) {
  for (const para of text.split(/\n\s*\n/)) {
    const fields = new Map();
    let last = "";
    for (const raw of para.split("\n")) {
      if (raw.startsWith("#")) continue;
      if (/^\s/.test(raw) && last) { fields.set(last, `${fields.get(last)} ${raw.trim()}`); continue; }
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(raw);
      if (m) { last = m[1].toLowerCase(); fields.set(last, m[2].trim()); }
    }
    if (!fields.has("uris") || !fields.has("suites")) continue;
    if ((fields.get("enabled") ?? "yes").toLowerCase() === "no") continue;
    if (!(fields.get("types") ?? "").split(/\s+/).includes("deb")) continue;
    for (const uri of fields.get("uris").split(/\s+/)) {
      for (const suite of fields.get("suites").split(/\s+/)) sources.push({ uri, suite });
    }
  }
}

if (existsSync(join(ETC, "sources.list"))) oneLine(readFileSync(join(ETC, "sources.list"), "utf8"));
const dir = join(ETC, "sources.list.d");
if (existsSync(dir)) {
  for (const f of readdirSync(dir).sort()) {
    if (f.endsWith(".list")) oneLine(readFileSync(join(dir, f), "utf8"));
    else if (f.endsWith(".sources")) deb822(readFileSync(join(dir, f), "utf8"));
  }
}

const strip = (u) => u.replace(/\/+$/, "");
const archive = process.env.DEBIAN_MIRROR ?? sources.find((s) => RELEASES.test(s.suite))?.uri;
const security = process.env.DEBIAN_SECURITY_MIRROR ?? sources.find((s) => SECURITY.test(s.suite))?.uri;
if (!archive) {
  console.error(`apt-sources: no Debian archive among the apt sources in ${ETC} (found: ${sources.map((s) => `${s.uri} ${s.suite}`).join(", ") || "none"}); set DEBIAN_MIRROR`);
  process.exit(1);
}
console.log(`archive ${strip(archive)}`);
if (security) console.log(`security ${strip(security)}`);
