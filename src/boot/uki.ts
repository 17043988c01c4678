// Booting a Unified Kernel Image without firmware: what systemd-stub would hand the kernel, taken
// from the UKI's sections (src/formats/uki.ts) and handed over by the kernel's own protocol
// through bootLinux:
//   kernel   .linux (a bzImage on x86, an Image on arm64/riscv), detected like any kernel file
//   initrd   .ucode, then .initrd, then the caller's initrd, one after the other in RAM as ONE
//            range (systemd-stub passes microcode first so the kernel's early loader finds it;
//            the kernel reads concatenated cpio archives as one)
//   cmdline  .cmdline (newlines → spaces, as systemd-stub's mangle_stub_cmdline); the caller's
//            cmdline replaces it only with cmdlineOverride: true (systemd-stub ignores the boot
//            loader's command line for a UKI with .cmdline under Secure Boot; we refuse rather
//            than ignore silently)
//   dtb      .dtb, unless the caller gives a device tree (arm64/riscv; on x86 only a caller's, as SETUP_DTB)
// Measured boot: the PCR 11 value systemd-stub would leave (ukiPcr11 below).
import { GuestImageError } from "../errors.js";
import { hex } from "../num.js";
import { readUki, selectProfile, sectionText, sliceFile, concatFile, stubCmdline, UKI_SECTIONS, type UkiSection } from "../formats/uki.js";
import { isUki } from "../formats/uki.js";
import { HEAD_BYTES } from "../formats/format.js";
import { readBytes, type ImageFile, type Source } from "../sources/source.js";
import type { Vm } from "../vm.js";
import type { BootLinuxOptions } from "./linux.js";

export type PcrBank = "sha1" | "sha256" | "sha384" | "sha512";
const BANKS: Record<PcrBank, { algo: string; size: number }> = {
  sha1: { algo: "SHA-1", size: 20 }, sha256: { algo: "SHA-256", size: 32 }, sha384: { algo: "SHA-384", size: 48 }, sha512: { algo: "SHA-512", size: 64 },
};

/** One measured section: the two PCR 11 extends systemd-stub makes for it. */
export interface UkiMeasurement {
  section: string;
  size: number;
  /** Digest of the section name with its terminating NUL, per bank (lower-case hex). */
  name_digest: Partial<Record<PcrBank, string>>;
  /** Digest of the section's content (VirtualSize bytes), per bank. */
  content_digest: Partial<Record<PcrBank, string>>;
}

export interface UkiPcr11 {
  /** Sections in the order they are measured. */
  measurements: UkiMeasurement[];
  /** PCR 11 after the stub's measurements, starting from zeros, per bank (lower-case hex). */
  pcr11: Partial<Record<PcrBank, string>>;
}

export interface UkiBootInfo {
  /** The UKI's file name. */
  file: string;
  /** The profile booted (null: a UKI without profiles). */
  profile: number | null;
  /** The sections this boot used (base and profile), name → [offset, size) in the file. */
  sections: Array<{ name: string; profile: number | null; offset: number; size: number }>;
  /** Where the command line came from: the UKI's .cmdline, the caller, or neither. */
  cmdline_source: "uki" | "caller" | "none";
  dtb_source: "uki" | "caller" | "none";
  /** The pieces of the initrd, in RAM order (.ucode, .initrd, the caller's file). */
  initrd_parts: string[];
  /** With measure: true. */
  measured?: UkiPcr11;
}

const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

async function digest(bank: PcrBank, data: Uint8Array): Promise<Uint8Array> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) throw new GuestImageError("UNSUPPORTED", "UKI measurement needs WebCrypto (crypto.subtle)", { field: "measure" });
  return new Uint8Array(await subtle.digest(BANKS[bank].algo, data as Uint8Array<ArrayBuffer>));
}

/**
 * The PCR 11 value systemd-stub leaves after measuring a UKI (systemd-stub(7), "TPM PCR
 * Measurements"; the UKI specification's canonical order): for each section present, in the order
 * .linux .osrel .cmdline .initrd .ucode .splash .dtb .uname .sbat .pcrpkey .profile (.pcrsig is
 * not measured, it holds the signatures of this very value), extend with the digest of the section
 * name including its NUL, then with the digest of the content. PCR 11 starts at zeros; extend is
 * PCR = H(PCR || digest). `sections` is the boot's selection (base overlaid by the profile).
 */
export async function ukiPcr11(file: ImageFile, sections: ReadonlyMap<string, UkiSection>, bankList: readonly PcrBank[] = ["sha256"]): Promise<UkiPcr11> {
  const banks: readonly PcrBank[] = bankList;
  const ok = Array.isArray(bankList) && banks.length > 0 && banks.every((b) => typeof b === "string" && Object.hasOwn(BANKS, b));
  if (!ok) {
    throw new GuestImageError("BAD_ARGUMENT", `pcrBanks must be a non-empty list of ${Object.keys(BANKS).join(", ")}, got ${JSON.stringify(bankList)}`, { field: "pcrBanks" });
  }
  const pcr = new Map<PcrBank, Uint8Array>(banks.map((b) => [b, new Uint8Array(BANKS[b].size)]));
  const extend = async (b: PcrBank, d: Uint8Array) => {
    const cur = pcr.get(b)!;
    const both = new Uint8Array(cur.length + d.length);
    both.set(cur);
    both.set(d, cur.length);
    pcr.set(b, await digest(b, both));
  };
  const measurements: UkiMeasurement[] = [];
  for (const name of UKI_SECTIONS) {
    if (name === ".pcrsig") continue;
    const s = sections.get(name);
    if (!s) continue;
    const nameBytes = new TextEncoder().encode(name + "\0");
    const content = await readBytes(file, s.offset, s.size);
    const m: UkiMeasurement = { section: name, size: s.size, name_digest: {}, content_digest: {} };
    for (const b of banks) {
      const nd = await digest(b, nameBytes);
      const cd = await digest(b, content);
      m.name_digest[b] = toHex(nd);
      m.content_digest[b] = toHex(cd);
      await extend(b, nd);
      await extend(b, cd);
    }
    measurements.push(m);
  }
  const pcr11: Partial<Record<PcrBank, string>> = {};
  for (const b of banks) pcr11[b] = toHex(pcr.get(b)!);
  return { measurements, pcr11 };
}

/** Measures a UKI file without booting it (profile as in bootLinux). */
export async function measureUki(file: ImageFile, opts: { profile?: number | string; pcrBanks?: PcrBank[] } = {}): Promise<UkiPcr11 & { profile: number | null }> {
  const uki = await readUki(file);
  const sel = selectProfile(uki, opts.profile, file.name);
  return { profile: sel.profile, ...(await ukiPcr11(file, sel.sections, opts.pcrBanks)) };
}

/**
 * When `opts.kernel` is a UKI: a view of `vm` whose files also hold the UKI's pieces, and the
 * bootLinux options that name them. Null when the kernel is not a UKI (then the UKI-only options
 * are refused).
 */
export async function prepareUkiBoot(vm: Vm, opts: BootLinuxOptions): Promise<{ vm: Vm; opts: BootLinuxOptions; info: UkiBootInfo } | null> {
  const name = opts.kernel;
  const file = await vm.open(name);
  try {
    const head = await readBytes(file, 0, Math.min(HEAD_BYTES, file.size));
    if (!isUki(head)) {
      for (const k of ["profile", "cmdlineOverride", "measure", "pcrBanks"] as const) {
        if (opts[k] !== undefined) throw new GuestImageError("BAD_ARGUMENT", `${k} is for Unified Kernel Images, and ${name} is not one (no PE .linux section)`, { image: name, field: k });
      }
      return null;
    }
    if (opts.cmdlineOverride !== undefined && typeof opts.cmdlineOverride !== "boolean") {
      throw new GuestImageError("BAD_ARGUMENT", `cmdlineOverride must be true or false, got ${String(opts.cmdlineOverride)}`, { field: "cmdlineOverride" });
    }
    if (opts.measure !== undefined && typeof opts.measure !== "boolean") {
      throw new GuestImageError("BAD_ARGUMENT", `measure must be true or false, got ${String(opts.measure)}`, { field: "measure" });
    }
    const uki = await readUki(file);
    const sel = selectProfile(uki, opts.profile, name);
    const sec = sel.sections;
    const info: UkiBootInfo = {
      file: name, profile: sel.profile,
      sections: [...sec.values()].sort((a, b) => a.index - b.index).map((s) => ({ name: s.name, profile: s.profile, offset: s.offset, size: s.size })),
      cmdline_source: "none", dtb_source: "none", initrd_parts: [],
    };
    const next: BootLinuxOptions = { ...opts };
    delete next.profile;
    delete next.cmdlineOverride;
    delete next.measure;
    delete next.pcrBanks;

    // Command line.
    const cmd = sec.get(".cmdline");
    if (cmd) {
      if (opts.cmdline !== undefined && !opts.cmdlineOverride) {
        throw new GuestImageError(
          "BAD_ARGUMENT",
          `the UKI has a .cmdline section (${hex(cmd.size)} bytes) and a cmdline was given: pass cmdlineOverride: true to replace the UKI's command line, or drop cmdline`,
          { image: name, field: "cmdline" },
        );
      }
      if (opts.cmdline !== undefined) info.cmdline_source = "caller";
      else {
        next.cmdline = stubCmdline(await sectionText(file, cmd));
        info.cmdline_source = "uki";
      }
    } else if (opts.cmdline !== undefined) info.cmdline_source = "caller";

    // Device tree: the caller's wins. On x86 bootLinux hands the caller's over as a SETUP_DTB
    // setup_data entry, but the UKI's .dtb is not used there: systemd-stub installs .dtb as an EFI
    // configuration table, which only the arm64/arm/riscv EFI stubs read; an x86 kernel takes a tree
    // only from SETUP_DTB, which systemd-stub never builds.
    const dtb = sec.get(".dtb");
    const x86 = opts.arch === "x86" || opts.arch === "x86_64";
    if (opts.dtb !== undefined) info.dtb_source = "caller";
    else if (dtb && !x86) {
      if (dtb.size === 0) throw new GuestImageError("BAD_HEADER", "the .dtb section is empty", { image: name, field: ".dtb" });
      next.dtb = await readBytes(file, dtb.offset, dtb.size);
      info.dtb_source = "uki";
    }

    // Kernel and initrd: files of the overlay source, read from the UKI on demand.
    const linux = sec.get(".linux")!;
    if (linux.size === 0) throw new GuestImageError("BAD_HEADER", "the .linux section is empty", { image: name, field: ".linux" });
    const kernelName = `${name}:.linux`;
    const initrdName = `${name}:initrd`;
    const pieces = [sec.get(".ucode"), sec.get(".initrd")].filter((s): s is UkiSection => s !== undefined && s.size > 0);
    info.initrd_parts = [...pieces.map((s) => `${name}:${s.name}`), ...(opts.initrd !== undefined ? [opts.initrd] : [])];
    next.kernel = kernelName;
    if (pieces.length) next.initrd = initrdName;
    const under = vm.files!;
    const overlay: Source = {
      async open(n) {
        if (n === kernelName) {
          const f = await under.open(name);
          const s = sliceFile(f, kernelName, linux.offset, linux.size);
          return { ...s, read: s.read, close: () => f.close() };
        }
        if (n === initrdName && pieces.length) {
          const f = await under.open(name);
          const parts: ImageFile[] = pieces.map((p) => sliceFile(f, `${name}:${p.name}`, p.offset, p.size));
          let extra: ImageFile | undefined;
          if (opts.initrd !== undefined) {
            try {
              extra = await vm.open(opts.initrd);
            } catch (e) {
              await f.close();
              throw e;
            }
            parts.push(extra);
          }
          return concatFile(initrdName, parts, async () => {
            await extra?.close();
            await f.close();
          });
        }
        return under.open(n);
      },
    };
    if (opts.measure) info.measured = await ukiPcr11(file, sec, opts.pcrBanks ?? ["sha256"]);
    const view = Object.create(vm, { files: { value: overlay } }) as Vm;
    return { vm: view, opts: next, info };
  } finally {
    await file.close();
  }
}
