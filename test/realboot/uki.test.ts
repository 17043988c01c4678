// Proof by booting (issue 14 §3): Unified Kernel Images built at test time the way ukify does
// (objcopy onto Debian's systemd-boot EFI stub, test/helpers/uki.ts) around Debian's amd64
// bzImage and arm64 Image, with the marker initrd in .initrd, a small cpio in .ucode and the
// command line in .cmdline, boot to userspace from guest-image's RAM in QEMU without -kernel
// (and without UEFI firmware: the stub never runs). The oracles are the kernel itself: /init
// prints the marker, /proc/cmdline (the .cmdline text reached the kernel) and a file that is
// only in the .ucode archive (the two sections reached it as one initrd, .ucode first).
// Negative control: profile 1 of the same UKI carries a .cmdline naming a missing rdinit, so a
// boot that really takes the command line from the chosen profile never reaches the marker.
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { bootLinux, createVm, fromMap } from "../../src/node.js";
import type { X86CpuState } from "../../src/boot/cpu-x86.js";
import { readFixture } from "../qemu/fixtures.js";
import { arm64Stub, buildUki, renameSections, X64_STUB } from "../helpers/uki.js";
import { markerInitrd, type DebianArch } from "./initrd.js";
import { bootQemu, machineDtb, MACHINES } from "./qemu-boot.js";
import { bootX86 } from "./x86-qemu.js";

const MiB = 1024 * 1024;
const enc = (s: string) => new TextEncoder().encode(s);
const UCODE_FILE = "ucode-section-was-here";

/** A newc archive with one file, written by GNU cpio (the .ucode piece; the kernel reads concatenated archives). */
function ucodeCpio(token: string): Uint8Array {
  const r = spawnSync("sh", ["-c", `d=$(mktemp -d) && cd "$d" && printf '%s\\n' "${token}" > ${UCODE_FILE} && echo ${UCODE_FILE} | cpio -o -H newc --quiet; rm -rf "$d"`], { maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`cpio: ${r.stderr}`);
  return new Uint8Array(r.stdout);
}

/** A two-profile UKI: profile 0 boots with `cmdline`, profile 1 with `badCmdline`. */
function twoProfileUki(o: { stub: string; arch: DebianArch; linux: Uint8Array; marker: string; token: string; cmdline: string; badCmdline: string; dtb?: Uint8Array }): Uint8Array {
  const initrd = markerInitrd(o.arch, { marker: o.marker, script: `echo "cmdline: $(cat /proc/cmdline)"\necho "ucode: $(cat /${UCODE_FILE})"` });
  const { bytes } = buildUki(
    [
      { name: ".osrel", bytes: enc("ID=guest-image-test\nNAME=\"guest-image UKI test\"\n") },
      ...(o.dtb ? [{ name: ".dtb", bytes: o.dtb }] : []),
      { name: ".ucode", bytes: ucodeCpio(o.token) },
      { name: ".initrd", bytes: initrd },
      { name: ".linux", bytes: o.linux },
      { name: ".profile", bytes: enc("ID=good\nTITLE=Good\n") },
      { name: ".cmdline", bytes: enc(`${o.cmdline}\n`) },
      // objcopy adds one section per name: the second profile's pieces get placeholder names, renamed below.
      { name: ".profil1", bytes: enc("ID=bad\nTITLE=No init\n") },
      { name: ".cmdlin1", bytes: enc(`${o.badCmdline}\n`) },
    ],
    { stub: o.stub },
  );
  return renameSections(renameSections(bytes, ".profil1", ".profile"), ".cmdlin1", ".cmdline");
}

describe.concurrent("UKI real boots (QEMU, no -kernel, no firmware)", () => {
  const x86 = () => {
    const marker = `uki-x86-${randomUUID()}`;
    const token = randomUUID();
    const cmdline = `console=ttyS0 panic=-1 uki.test=${token}`;
    const uki = twoProfileUki({ stub: X64_STUB, arch: "amd64", linux: readFixture("amd64/bzImage"), marker, token, cmdline, badCmdline: "console=ttyS0 panic=-1 rdinit=/no-such-init" });
    return { marker, token, cmdline, uki };
  };
  const x86Boot = async (uki: Uint8Array, profile: number) => {
    const vm = await createVm({ ram: [{ base: 0, size: 256 * MiB }], files: fromMap({ "linux.efi": uki }) });
    const b = await bootLinux(vm, { arch: "x86_64", kernel: "linux.efi", profile });
    const pieces = vm.placed().map((p) => ({ paddr: p.paddr, bytes: vm.ram.read(p.paddr, p.size) }));
    return { b, pieces };
  };

  it("x86_64: Debian's bzImage in .linux, .ucode + .initrd, .cmdline (profile 0) reach userspace", async () => {
    const { marker, token, cmdline, uki } = x86();
    const { b, pieces } = await x86Boot(uki, 0);
    expect(b.uki).toMatchObject({ profile: 0, cmdline_source: "uki", initrd_parts: ["linux.efi:.ucode", "linux.efi:.initrd"] });
    const r = await bootX86({ cpu: b.cpu as X86CpuState, pieces, marker });
    if (!r.marker) throw new Error(`no marker after ${r.seconds.toFixed(1)} s; serial tail:\n${r.serial.slice(-3000)}`);
    expect(r.serial).toContain(`cmdline: ${cmdline}`);
    expect(r.serial).toContain(`ucode: ${token}`);
  }, 600_000);

  it("x86_64 negative control: profile 1's .cmdline (rdinit=/no-such-init) never reaches the marker", async () => {
    const { marker, uki } = x86();
    const { b, pieces } = await x86Boot(uki, 1);
    expect(b.uki!.profile).toBe(1);
    const r = await bootX86({ cpu: b.cpu as X86CpuState, pieces, marker, stopOn: /end Kernel panic|Kernel panic/ });
    expect(r.marker).toBe(false);
    expect(r.serial).toContain("/no-such-init"); // the kernel names the init it could not run
  }, 600_000);

  const M = MACHINES.arm64;
  const arm64 = () => {
    const marker = `uki-arm64-${randomUUID()}`;
    const token = randomUUID();
    const cmdline = `console=${M.console} uki.test=${token}`;
    const uki = twoProfileUki({
      stub: arm64Stub(), arch: "arm64", linux: readFixture("arm64/Image"), marker, token, cmdline, badCmdline: `console=${M.console} rdinit=/no-such-init`, dtb: machineDtb(M),
    });
    return { marker, token, cmdline, uki };
  };
  const armBoot = async (uki: Uint8Array, profile: number) => {
    const vm = await createVm({ ram: [M.ram], files: fromMap({ "linux.efi": uki }) });
    const b = await bootLinux(vm, { arch: "arm64", kernel: "linux.efi", profile });
    return { b, read: (paddr: number, size: number) => vm.ram.read(paddr, size) };
  };

  it("arm64: Debian's Image in .linux, .dtb (QEMU virt's tree), .ucode + .initrd, .cmdline reach userspace", async () => {
    const { marker, token, cmdline, uki } = arm64();
    // Which stub the UKI was built on (the real arm64 one when available), for the log.
    console.log(`arm64 UKI stub: ${arm64Stub()}`);
    const { b, read } = await armBoot(uki, 0);
    expect(b.uki).toMatchObject({ profile: 0, cmdline_source: "uki", dtb_source: "uki" });
    const r = await bootQemu({ machine: M, read, placements: b.placements, cpu: b.cpu, marker, timeoutMs: 90_000 });
    expect(r.found, `${r.command}\n${r.serial.slice(-3000)}`).toBe(true);
    expect(r.serial).toContain(`cmdline: ${cmdline}`);
    expect(r.serial).toContain(`ucode: ${token}`);
  }, 600_000);

  it("arm64 negative control: profile 1's .cmdline never reaches the marker", async () => {
    const { marker, uki } = arm64();
    const { b, read } = await armBoot(uki, 1);
    const r = await bootQemu({ machine: M, read, placements: b.placements, cpu: b.cpu, marker, timeoutMs: 30_000 });
    expect(r.found).toBe(false);
    expect(r.serial).toContain("/no-such-init");
  }, 600_000);
});
