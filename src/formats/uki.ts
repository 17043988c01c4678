// Unified Kernel Images (UAPI.5, "Unified Kernel Image" specification; systemd-stub(7)): a PE/COFF
// EFI application — normally systemd-stub — whose named sections carry the boot resources:
//   .linux    the kernel (a bzImage on x86, an arm64/RISC-V Image…), the one required section
//   .osrel    os-release(5) of the OS          .cmdline  the kernel command line
//   .initrd   an initrd                         .ucode    microcode initrd, handed over BEFORE .initrd
//   .splash   a boot splash bitmap              .dtb      a device tree
//   .uname    the kernel's `uname -r`           .sbat     SBAT revocation metadata
//   .pcrsig   signed PCR 11 values (JSON)       .pcrpkey  the public key of those signatures
//   .profile  multi-profile UKIs (systemd 257): a separator; the sections after a .profile, up to
//             the next one, belong to that profile; those before the first .profile are the base,
//             shared by every profile. A profile's section replaces the base's section of that name.
//             Its content is os-release-like ("ID=…", "TITLE=…"). Without a choice, systemd-stub
//             boots profile 0.
// A loader without firmware does not run the stub: it reads the sections and boots the embedded
// kernel by the kernel's own protocol (src/boot/linux.ts, src/boot/uki.ts).
//
// A section's content is its VirtualSize bytes from PointerToRawData (systemd-stub measures and
// uses VirtualSize; the raw data is padded to FileAlignment). A VirtualSize of 0 (some older
// objcopy outputs) means SizeOfRawData. A VirtualSize past SizeOfRawData would be zero fill
// that is not in the file: refused for the UKI sections, whose content must be in the file.
import { GuestImageError } from "../errors.js";
import { hex } from "../num.js";
import type { LoadPlan } from "../plan.js";
import { checkRead, heldBytes, readBytes, type ImageFile } from "../sources/source.js";
import { SNIFF_BYTES, type ImageFormat, type KernelResult } from "./format.js";
import { peSectionNamesInHead, readPe, type PeHeaders, type PeSection } from "./pe.js";

/** The sections the UKI specification names, in its canonical (PCR 11 measurement) order. */
export const UKI_SECTIONS = [
  ".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".uname", ".sbat", ".pcrsig", ".pcrpkey", ".profile",
] as const;
export type UkiSectionName = (typeof UKI_SECTIONS)[number];
/** Sections newer specifications add (.dtbauto, .hwids, .efifw): listed, not used or measured here. */
const UNHANDLED_UKI_SECTIONS = [".dtbauto", ".hwids", ".efifw"];
const isUkiName = (n: string): n is UkiSectionName => (UKI_SECTIONS as readonly string[]).includes(n);

export interface UkiSection {
  name: string;
  /** Index in the PE section table. */
  index: number;
  /** null: the base (before the first .profile); else the profile's number. */
  profile: number | null;
  /** File offset and length of the content. */
  offset: number;
  size: number;
  /** Where the PE image maps it (RVA), for people. */
  virtual_address: number;
}

export interface UkiProfile {
  index: number;
  /** ID= and TITLE= of the .profile section, when present. */
  id: string | null;
  title: string | null;
  fields: Record<string, string>;
  /** Names of the sections the profile carries (besides .profile). */
  sections: string[];
}

export interface Uki {
  pe: PeHeaders;
  /** The UKI sections (and any other named sections after the first .profile), in file order. */
  sections: UkiSection[];
  profiles: UkiProfile[];
}

/** The sections one boot uses: the base overlaid by the chosen profile's. */
export interface UkiSelection {
  profile: number | null;
  sections: Map<string, UkiSection>;
}

/** A PE whose section table (inside the first bytes) has a `.linux` section. */
export function isUki(head: Uint8Array): boolean {
  return peSectionNamesInHead(head)?.includes(".linux") ?? false;
}

/** Reads the PE headers and sorts the sections into base and profiles, checking every range. */
export async function readUki(file: ImageFile): Promise<Uki> {
  const image = file.name;
  const pe = await readPe(file);
  const sections: UkiSection[] = [];
  const profiles: UkiProfile[] = [];
  let profile: number | null = null;
  const seen = new Set<string>();
  for (const s of pe.sections) {
    if (s.name === ".profile") {
      profile = profiles.length;
      seen.clear();
    }
    const uki = isUkiName(s.name) || UNHANDLED_UKI_SECTIONS.includes(s.name);
    // Stub sections (.text, .data, .reloc…) before the first .profile are the stub's own, not UKI content.
    if (!uki && profile === null) continue;
    const field = `sections[${s.index}]`;
    const range = contentRange(s, image, field);
    if (isUkiName(s.name)) {
      if (seen.has(s.name)) {
        throw new GuestImageError("BAD_HEADER", `${field} is a second "${s.name}" in the ${profile === null ? "base" : `profile ${profile}`}: each UKI section appears at most once per profile`, { image, field: `${field}.Name` });
      }
      seen.add(s.name);
    }
    sections.push({ name: s.name, index: s.index, profile, offset: range.offset, size: range.size, virtual_address: s.virtual_address });
    if (s.name === ".profile") {
      const fields = parseOsRelease(await readText(file, range, image, ".profile"));
      profiles.push({ index: profile!, id: fields.ID ?? null, title: fields.TITLE ?? null, fields, sections: [] });
    } else if (profile !== null) profiles[profile].sections.push(s.name);
  }
  if (!sections.some((s) => s.name === ".linux")) {
    throw new GuestImageError("BAD_MAGIC", "the PE image has no .linux section: not a Unified Kernel Image", { image, field: ".linux" });
  }
  return { pe, sections, profiles };
}

function contentRange(s: PeSection, image: string, field: string): { offset: number; size: number } {
  const size = s.virtual_size === 0 ? s.size_of_raw_data : s.virtual_size;
  if (size > s.size_of_raw_data) {
    throw new GuestImageError(
      "BAD_HEADER",
      `section "${s.name}": ${field}.VirtualSize ${hex(s.virtual_size)} exceeds its SizeOfRawData ${hex(s.size_of_raw_data)}; a UKI section's content must be in the file`,
      { image, field: `${field}.VirtualSize` },
    );
  }
  if (size > 0 && s.pointer_to_raw_data === 0) {
    throw new GuestImageError("BAD_HEADER", `section "${s.name}" has ${hex(size)} bytes of content but ${field}.PointerToRawData is 0`, { image, field: `${field}.PointerToRawData` });
  }
  return { offset: s.pointer_to_raw_data, size };
}

/**
 * The sections a boot uses. `profile`: a profile number, or a profile's ID; undefined = profile 0
 * when the UKI has profiles (systemd-stub's default), else the base alone.
 */
export function selectProfile(uki: Uki, profile: number | string | undefined, image: string): UkiSelection {
  let chosen: number | null = null;
  if (profile !== undefined) {
    if (typeof profile === "number") {
      if (!Number.isSafeInteger(profile) || profile < 0 || profile >= uki.profiles.length) {
        throw new GuestImageError("BAD_ARGUMENT", `profile ${String(profile)} does not exist: the UKI has ${uki.profiles.length} profile(s)${uki.profiles.length ? ` (0 … ${uki.profiles.length - 1})` : ""}`, { image, field: "profile" });
      }
      chosen = profile;
    } else if (typeof profile === "string") {
      const p = uki.profiles.find((x) => x.id === profile);
      if (!p) {
        throw new GuestImageError("BAD_ARGUMENT", `no profile with ID=${JSON.stringify(profile)} (IDs: ${uki.profiles.map((x) => x.id ?? `#${x.index} (no ID)`).join(", ") || "the UKI has no profiles"})`, { image, field: "profile" });
      }
      chosen = p.index;
    } else {
      throw new GuestImageError("BAD_ARGUMENT", `profile must be a profile number or ID string, got ${typeof profile}`, { image, field: "profile" });
    }
  } else if (uki.profiles.length) chosen = 0;
  const sections = new Map<string, UkiSection>();
  for (const s of uki.sections) if (s.profile === null && isUkiName(s.name)) sections.set(s.name, s);
  if (chosen !== null) for (const s of uki.sections) if (s.profile === chosen && isUkiName(s.name)) sections.set(s.name, s);
  if (!sections.has(".linux")) {
    throw new GuestImageError("BAD_HEADER", `${chosen === null ? "the base" : `profile ${chosen}`} has no .linux section (neither its own nor the base's)`, { image, field: ".linux" });
  }
  return { profile: chosen, sections };
}

/** A file over [offset, offset + size) of `parent` (closing it does not close the parent). */
export function sliceFile(parent: ImageFile, name: string, offset: number, size: number): ImageFile {
  if (offset + size > parent.size) {
    throw new GuestImageError("TRUNCATED", `[${hex(offset)}, +${hex(size)}) runs past the end of the file (${hex(parent.size)} bytes)`, { image: parent.name, field: name });
  }
  const file: ImageFile = {
    name,
    size,
    async read(dst, position) {
      checkRead(file, dst, position);
      await parent.read(dst, offset + position);
    },
    async close() {},
  };
  const held = heldBytes(parent);
  if (held) Object.defineProperty(file, "bytes", { value: held.subarray(offset, offset + size), enumerable: false });
  return file;
}

/** A file that is `parts` one after the other (the .ucode + .initrd + caller initrd the kernel sees as one). */
export function concatFile(name: string, parts: readonly ImageFile[], onClose: () => Promise<void> = async () => {}): ImageFile {
  const starts: number[] = [];
  let size = 0;
  for (const p of parts) {
    starts.push(size);
    size += p.size;
  }
  const file: ImageFile = {
    name,
    size,
    async read(dst, position) {
      checkRead(file, dst, position);
      let done = 0;
      for (let i = 0; i < parts.length && done < dst.length; i++) {
        const at = position + done;
        const end = starts[i] + parts[i].size;
        if (at >= end) continue;
        const n = Math.min(end - at, dst.length - done);
        await parts[i].read(dst.subarray(done, done + n), at - starts[i]);
        done += n;
      }
    },
    close: onClose,
  };
  return file;
}

async function readText(file: ImageFile, r: { offset: number; size: number }, image: string, what: string): Promise<string> {
  // Text sections are small; a multi-megabyte "os-release" is a broken file, not one to read into memory.
  if (r.size > 1 << 20) throw new GuestImageError("TOO_LARGE", `${what} is ${hex(r.size)} bytes; a text section of more than 1 MiB is not read`, { image, field: what });
  const b = await readBytes(file, r.offset, r.size);
  return new TextDecoder("utf-8", { fatal: false }).decode(b);
}

/** The text of a section (.cmdline, .uname, .osrel, .profile), NULs at the end dropped. */
export async function sectionText(file: ImageFile, s: UkiSection): Promise<string> {
  return (await readText(file, s, file.name, s.name)).replace(/\0+$/, "");
}

/**
 * systemd-stub's handling of .cmdline (mangle_stub_cmdline): control characters (the file's
 * newlines) become spaces, trailing whitespace goes.
 */
export function stubCmdline(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f]/g, " ").replace(/\s+$/, "");
}

/**
 * os-release(5): KEY=VALUE lines, '#' comments, values optionally in single or double quotes with
 * backslash escapes for $ " \ ` inside double quotes.
 */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2];
    if (v.length >= 2 && v[0] === '"' && v.endsWith('"')) v = v.slice(1, -1).replace(/\\([$"\\`])/g, "$1");
    else if (v.length >= 2 && v[0] === "'" && v.endsWith("'")) v = v.slice(1, -1);
    out[m[1]] = v;
  }
  return out;
}

export const ukiFormat: ImageFormat = {
  name: "uki",
  description: "a Unified Kernel Image (EFI stub + .linux, .initrd, .cmdline… sections)",
  test: isUki,
  // loadKernel: the embedded kernel (the base's, or profile 0's), detected and planned by its own
  // format. bootLinux also hands over the initrd, command line and device tree.
  async planKernel(ctx): Promise<LoadPlan<KernelResult>> {
    const uki = await readUki(ctx.file);
    const linux = selectProfile(uki, undefined, ctx.file.name).sections.get(".linux")!;
    const inner = sliceFile(ctx.file, `${ctx.file.name}:.linux`, linux.offset, linux.size);
    // The section is a file of its own, sniffed like any kernel file (SNIFF_BYTES: Multiboot 2 scans 32 KiB).
    const head = await readBytes(inner, 0, Math.min(SNIFF_BYTES, inner.size));
    return ctx.planKernel(inner, { head });
  },
  async inspect(file) {
    const uki = await readUki(file);
    const base = uki.sections.filter((s) => s.profile === null);
    const get = (n: string) => base.find((s) => s.name === n);
    const text = async (n: string) => {
      const s = get(n);
      return s ? sectionText(file, s) : null;
    };
    const osrelText = await text(".osrel");
    const cmdline = await text(".cmdline");
    const linux = get(".linux");
    let linuxFormat: string | null = null;
    if (linux) {
      // The embedded kernel's format, by the same sniffing order as any file (imported lazily: detect imports this module).
      const { sniff } = await import("./detect.js");
      linuxFormat = (await sniff(sliceFile(file, `${file.name}:.linux`, linux.offset, linux.size))).format.name;
    }
    return {
      machine: uki.pe.machine_name,
      pe: { magic: uki.pe.magic, machine: uki.pe.machine, image_base: uki.pe.image_base, section_alignment: uki.pe.section_alignment, file_alignment: uki.pe.file_alignment, entry_point: uki.pe.entry_point },
      sections: uki.sections.map((s) => ({ name: s.name, profile: s.profile, offset: s.offset, size: s.size, virtual_address: s.virtual_address })),
      profiles: uki.profiles,
      linux_format: linuxFormat,
      cmdline: cmdline === null ? null : stubCmdline(cmdline),
      uname: (await text(".uname"))?.trim() ?? null,
      osrel: osrelText === null ? null : parseOsRelease(osrelText),
    };
  },
};
