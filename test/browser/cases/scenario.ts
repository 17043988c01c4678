// Loads that must give the same guest RAM everywhere: the digest test runs each one in Node
// (through a vitest browser command, test/browser/helpers/commands.ts) and in Chromium, and
// compares SHA-256 digests of all of guest RAM, plus the reported placements.
import type * as GuestImage from "../../../src/index.js";
import { MiB } from "./fixtures.js";

export interface Scenario {
  ram: { base: number; size: number };
  kernel?: { name: string; at?: number; align?: number };
  modules: Array<{ name: string; at: number; align?: number }>;
}

export const SCENARIOS = {
  /** The bundled samples in the seL4 qemu-arm-virt layout (what `npm start` loads). */
  samples: {
    ram: { base: 0x4000_0000, size: 256 * MiB },
    kernel: { name: "linux" },
    modules: [{ name: "rootfs.cpio.gz", at: 0x4d70_0000, align: 0x1000 }, { name: "linux.dtb", at: 0x4f00_0000 }],
  },
  /** The samples' seL4 archive names, the kernel moved to 0x40200000. */
  cpio: {
    ram: { base: 0x4000_0000, size: 256 * MiB },
    kernel: { name: "linux", at: 0x4010_0000, align: 0x20_0000 },
    modules: [{ name: "linux-initrd", at: 0x4d70_0000, align: 0x1000 }, { name: "./linux-dtb", at: 0x4f00_0000 }],
  },
  /** Synthetic: an ELF with scattered segments and a 20 MiB module (three read chunks). */
  synthetic: {
    ram: { base: 0x4000_0000, size: 64 * MiB },
    kernel: { name: "elf-scattered" },
    modules: [{ name: "big", at: 0x4100_0000, align: 0x1000 }],
  },
} satisfies Record<string, Scenario>;

export type ScenarioName = keyof typeof SCENARIOS;

export interface ScenarioResult {
  placed: Array<{ name: string; paddr: number; size: number }>;
  kernel: { paddr: number; size: number; entry: string; format: string } | null;
  modules: Array<{ name: string; paddr: number; size: number; format: string }>;
  sha256: string;
}

/** Runs a scenario with the given library build and source; `sha256` digests guest RAM. */
export async function runScenario(
  lib: Pick<typeof GuestImage, "createVm">,
  s: Scenario,
  files: GuestImage.Source,
  sha256: (bytes: Uint8Array) => Promise<string>,
): Promise<ScenarioResult> {
  const vm = await lib.createVm({ ram: [s.ram], files });
  const k = s.kernel ? await vm.loadKernel(s.kernel.name, { at: s.kernel.at, align: s.kernel.align }) : null;
  const modules = [];
  for (const m of s.modules) {
    const r = await vm.loadModule(m.name, { at: m.at, align: m.align });
    modules.push({ name: r.name, paddr: r.paddr, size: r.size, format: r.format });
  }
  return {
    placed: vm.placed().map(({ name, paddr, size }) => ({ name, paddr, size })),
    kernel: k && { paddr: k.paddr, size: k.size, entry: `0x${k.entry.toString(16)}`, format: k.format },
    modules,
    sha256: await sha256(vm.ram.view(s.ram.base, s.ram.size)),
  };
}
