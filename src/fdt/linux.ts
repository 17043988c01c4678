// What a Linux boot loader writes into the device tree it hands the kernel: /chosen bootargs,
// linux,initrd-start/end, and /memory reg for the RAM the VM really has
// (Documentation/devicetree/usage-model.rst "Runtime configuration"; Devicetree Specification
// v0.4 §3.4 "/memory node", §3.6 "/chosen Node"; Linux drivers/of/fdt.c
// early_init_dt_check_for_initrd reads the initrd properties with the cell count their length
// gives, so 1 or 2 cells both work).
import { hex } from "../num.js";
import type { RamRegion } from "../ram/guest-ram.js";
import {
  baseName, cellsValue, cellWidths, ensureNode, findNode, getProp, readString, setProp, stringValue, type Fdt, type FdtNode,
} from "./tree.js";

export interface LinuxFdtEdits {
  /** Set /chosen bootargs (left as it is when undefined). */
  bootargs?: string;
  /** Set /chosen linux,initrd-start / linux,initrd-end (end is exclusive). */
  initrd?: { start: number; end: number };
  /**
   * Cells per initrd property. Default: the root's #address-cells, widened to 2 when the value
   * does not fit in 1 (Linux reads any width).
   */
  initrdCells?: number;
  /** Rewrite the memory node's reg to these regions (sorted by base). */
  memory?: readonly RamRegion[];
  /**
   * How the memory node is rewritten. "exact" (default): the first memory node gets every
   * region, other memory nodes are removed and the unit address follows the lowest base, so the
   * tree states the VM's RAM and nothing else. "qemu": only the first node matching "/memory" gets
   * reg = the regions, as QEMU's arm_load_dtb does (no renaming, no removal).
   */
  memoryMode?: "exact" | "qemu";
  /**
   * /chosen rng-seed (bytes for the kernel's entropy pool, drivers/of/fdt.c
   * early_init_dt_scan_chosen) and kaslr-seed (u64, arm64 KASLR). Both replace whatever the
   * input tree had, so no seed is ever handed on from one boot to the next.
   */
  seeds?: { rng: Uint8Array; kaslr: bigint };
}

const isMemoryNode = (n: FdtNode) => readString(getProp(n, "device_type")) === "memory" || baseName(n.name) === "memory";

/** Applies the edits in place. /chosen is created when missing (§3.6: it "shall" exist, yet often does not). */
export function applyLinuxEdits(fdt: Fdt, edits: LinuxFdtEdits): void {
  const rootCells = cellWidths(fdt.root);
  if (edits.bootargs !== undefined || edits.initrd) {
    const chosen = ensureNode(fdt, "/chosen");
    if (edits.bootargs !== undefined) setProp(chosen, "bootargs", stringValue(edits.bootargs));
    if (edits.initrd) {
      const { start, end } = edits.initrd;
      const cellsFor = (v: number) => edits.initrdCells ?? (rootCells.address === 1 && v > 0xffffffff ? 2 : Math.min(Math.max(rootCells.address, 1), 2));
      setProp(chosen, "linux,initrd-start", cellsValue([{ value: start, cells: cellsFor(start), what: "linux,initrd-start" }]));
      setProp(chosen, "linux,initrd-end", cellsValue([{ value: end, cells: cellsFor(end), what: "linux,initrd-end" }]));
    }
  }
  if (edits.seeds) {
    const chosen = ensureNode(fdt, "/chosen");
    setProp(chosen, "rng-seed", edits.seeds.rng.slice());
    setProp(chosen, "kaslr-seed", cellsValue([{ value: edits.seeds.kaslr, cells: 2, what: "kaslr-seed" }]));
  }
  if (edits.memory) {
    const regions = [...edits.memory].sort((a, b) => a.base - b.base);
    const reg = cellsValue(regions.flatMap((r, i) => [
      { value: r.base, cells: rootCells.address, what: `memory reg[${i}] address` },
      { value: r.size, cells: rootCells.size, what: `memory reg[${i}] size` },
    ]));
    const root = fdt.root;
    const mems = root.children.filter(isMemoryNode);
    if (edits.memoryMode === "qemu" && findNode(fdt, "/memory")) {
      // libfdt path semantics: "/memory" is the first child named memory or memory@….
      setProp(findNode(fdt, "/memory")!, "reg", reg);
      return;
    }
    let node = mems[0];
    root.children = root.children.filter((c) => c === node || !isMemoryNode(c));
    if (!node) {
      node = { name: "memory", props: [], children: [] };
      root.children.push(node);
    }
    const unit = `memory@${regions.length ? hex(regions[0].base).slice(2) : "0"}`;
    if (node.name.includes("@") || !mems.length) node.name = unit;
    setProp(node, "device_type", stringValue("memory"));
    setProp(node, "reg", reg);
  }
}
