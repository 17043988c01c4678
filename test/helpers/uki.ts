// Builds Unified Kernel Images at test time the way ukify (systemd 253, its objcopy path) does:
// the systemd-boot EFI stub (Debian systemd-boot-efi), plus one `objcopy --add-section NAME=FILE
// --change-section-vma NAME=VMA` per section, the VMAs starting at the first SectionAlignment
// boundary after the stub's last section and each next one after the previous section's end.
// `objdump -h` is the independent reader the tests compare our PE reader with.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FIXTURES } from "../qemu/fixtures.js";

/** Debian systemd-boot-efi's x86-64 stub. */
export const X64_STUB = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";
/**
 * The arm64 stub (Debian systemd-boot-efi:arm64's linuxaa64.efi.stub) where the fixture script
 * puts it; until it does, arm64 UKIs are built on the x86-64 stub (a loader without firmware never
 * runs the stub: only the sections matter).
 */
export const AA64_STUB_FIXTURE = join(FIXTURES, "efi", "linuxaa64.efi.stub");

export interface ObjdumpSection {
  name: string;
  size: number;
  vma: bigint;
  fileOffset: number;
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** `objdump -h` of a PE file: name, size, VMA, file offset per section. */
export function objdumpSections(path: string, objdump = "objdump"): ObjdumpSection[] {
  const out: ObjdumpSection[] = [];
  for (const m of run(objdump, ["-h", path]).matchAll(/^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+2\*\*\d+/gm)) {
    out.push({ name: m[1], size: parseInt(m[2], 16), vma: BigInt(`0x${m[3]}`), fileOffset: parseInt(m[4], 16) });
  }
  return out;
}

/** `objdump -p`'s SectionAlignment. */
function sectionAlignment(path: string, objdump: string): bigint {
  const m = /SectionAlignment\s+([0-9a-f]+)/.exec(run(objdump, ["-p", path]));
  if (!m) throw new Error(`no SectionAlignment in objdump -p ${path}`);
  return BigInt(`0x${m[1]}`);
}

export interface UkiSectionInput {
  name: string;
  bytes: Uint8Array;
}

/** The objcopy/objdump pair for a stub: the host's for x86-64, the aarch64 cross tools for arm64. */
function tools(stub: string): { objcopy: string; objdump: string } {
  // The host's binutils do not read pei-aarch64 (Debian's x86-64 build has no aarch64 PE target).
  const r = spawnSync("objdump", ["-f", stub], { encoding: "utf8" });
  if (r.status === 0 && /pei-x86-64/.test(r.stdout)) return { objcopy: "objcopy", objdump: "objdump" };
  return { objcopy: "aarch64-linux-gnu-objcopy", objdump: "aarch64-linux-gnu-objdump" };
}

/**
 * The stub to build an arm64 UKI on: the real arm64 stub ($GUEST_IMAGE_AA64_STUB, else the
 * fixture scripts/fetch-fixtures.sh makes; missing, the test fails saying how to get it).
 */
export function arm64Stub(): string {
  const env = process.env["GUEST_IMAGE_AA64_STUB"];
  if (env) {
    if (!existsSync(env)) throw new Error(`GUEST_IMAGE_AA64_STUB=${env}: no such file`);
    return env;
  }
  if (!existsSync(AA64_STUB_FIXTURE)) throw new Error(`missing fixture ${AA64_STUB_FIXTURE}: run bash scripts/fetch-fixtures.sh`);
  return AA64_STUB_FIXTURE;
}

/**
 * A UKI: `stub` + `sections` in order (a ".profile" entry starts a profile). Returns the file's
 * bytes and objdump's view of it.
 */
export function buildUki(sections: UkiSectionInput[], opts: { stub?: string; removeStubSections?: string[] } = {}): { bytes: Uint8Array; objdump: ObjdumpSection[] } {
  const stub = opts.stub ?? X64_STUB;
  const { objcopy, objdump } = tools(stub);
  const dir = mkdtempSync(join(tmpdir(), "gi-uki-"));
  try {
    const align = sectionAlignment(stub, objdump);
    const stubSecs = objdumpSections(stub, objdump).filter((s) => !(opts.removeStubSections ?? []).includes(s.name));
    const last = stubSecs.reduce((m, s) => (s.vma + BigInt(s.size) > m ? s.vma + BigInt(s.size) : m), 0n);
    const up = (v: bigint) => ((v + align - 1n) / align) * align;
    let vma = up(last);
    const args: string[] = [];
    for (const r of opts.removeStubSections ?? []) args.push("--remove-section", r);
    sections.forEach((s, i) => {
      const f = join(dir, `s${i}.bin`);
      writeFileSync(f, s.bytes);
      args.push("--add-section", `${s.name}=${f}`, "--change-section-vma", `${s.name}=0x${vma.toString(16)}`);
      vma = up(vma + BigInt(s.bytes.length));
    });
    const out = join(dir, "uki.efi");
    run(objcopy, [...args, stub, out]);
    return { bytes: new Uint8Array(readFileSync(out)), objdump: objdumpSections(out, objdump) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `systemd-measure calculate --phase=` (systemd 252: the PCR 11 value before any boot phase). */
export function systemdMeasure(files: Partial<Record<"linux" | "osrel" | "cmdline" | "initrd" | "splash" | "dtb" | "pcrpkey", Uint8Array>>, banks: string[]): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), "gi-measure-"));
  try {
    const args = ["calculate", "--phase=", "--json=short", ...banks.map((b) => `--bank=${b}`)];
    for (const [k, v] of Object.entries(files)) {
      const f = join(dir, k);
      writeFileSync(f, v!);
      args.push(`--${k}=${f}`);
    }
    const j = JSON.parse(run("/lib/systemd/systemd-measure", args)) as Record<string, Array<{ pcr: number; hash: string }>>;
    return Object.fromEntries(Object.entries(j).map(([bank, v]) => [bank, v.find((x) => x.pcr === 11)!.hash]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Renames every section called `from` to `to` in a PE's section table (pe-format.md: Name[8] at
 * the start of each 40-byte header). objcopy adds one section per name, so a multi-profile UKI's
 * second .profile/.cmdline are added under placeholder names and renamed with this.
 */
export function renameSections(pe: Uint8Array, from: string, to: string): Uint8Array {
  const out = pe.slice();
  const dv = new DataView(out.buffer);
  const peAt = dv.getUint32(0x3c, true);
  const table = peAt + 24 + dv.getUint16(peAt + 20, true);
  for (let i = 0; i < dv.getUint16(peAt + 6, true); i++) {
    const o = table + i * 40;
    if (new TextDecoder().decode(out.subarray(o, o + 8)).replace(/\0+$/, "") === from) {
      out.fill(0, o, o + 8);
      out.set(new TextEncoder().encode(to), o);
    }
  }
  return out;
}
