// The memory map: guest RAM as a bar drawn to scale (linear in guest physical address), every
// placed image a block at its true position and width (at least a hairline, so a 798-byte DTB in
// 256 MiB stays visible), each with a label (name, range, size) set in lanes above and below the
// bar so labels never overlap, joined to their block by a leader line.
import { fmtHex, fmtSize } from "./units.js";

export interface MapImage {
  name: string;
  paddr: number;
  size: number;
  kind: string;
}

const W = 1000;
const PAD = 12;
const BAR_H = 44;
const LANE_H = 46;
const CHAR_W = 7.1; // 12px monospace advance
const AXIS_H = 34;

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

interface Placed extends MapImage {
  x0: number;
  x1: number;
  cx: number;
  label: { x: number; w: number; lane: number; lines: [string, string] };
}

export function memoryMapSvg(ram: { base: number; size: number }, images: MapImage[]): string {
  const sx = (p: number) => PAD + ((p - ram.base) / ram.size) * (W - 2 * PAD);
  const sorted = [...images].sort((a, b) => a.paddr - b.paddr);
  // Lanes alternate above (0, 2, 4…) and below (1, 3, 5…) the bar; each remembers its right edge.
  const laneEnd: number[] = [];
  const placed: Placed[] = sorted.map((im) => {
    const x0 = sx(im.paddr);
    const x1 = Math.max(sx(im.paddr + im.size), x0 + 2);
    const cx = (x0 + x1) / 2;
    const lines: [string, string] = [im.name, `${fmtHex(im.paddr)}–${fmtHex(im.paddr + im.size)} · ${fmtSize(im.size)}`];
    const w = Math.max(lines[0].length * (CHAR_W + 0.6), lines[1].length * CHAR_W) + 16;
    const x = Math.min(Math.max(PAD, cx - w / 2), W - PAD - w);
    let lane = 0;
    while (laneEnd[lane] !== undefined && laneEnd[lane] > x - 8) lane++;
    laneEnd[lane] = x + w;
    return { ...im, x0, x1, cx, label: { x, w, lane, lines } };
  });
  const above = Math.ceil(laneEnd.length / 2);
  const below = Math.floor(laneEnd.length / 2);
  const barY = 8 + above * LANE_H + 14;
  const height = barY + BAR_H + 14 + below * LANE_H + AXIS_H;
  const axisY = height - AXIS_H + 10;
  const laneY = (lane: number) => (lane % 2 === 0 ? barY - 14 - (lane / 2 + 1) * LANE_H + 6 : barY + BAR_H + 14 + ((lane - 1) / 2) * LANE_H);

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="memory-map" viewBox="0 0 ${W} ${height}" width="100%" role="img" aria-label="Memory map of guest RAM ${fmtHex(ram.base)}–${fmtHex(ram.base + ram.size)}">`,
    `<defs><pattern id="free" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="8" height="8" class="free-bg"/><line x1="0" y1="0" x2="0" y2="8" class="free-line"/></pattern></defs>`,
    `<rect class="ram" x="${PAD}" y="${barY}" width="${W - 2 * PAD}" height="${BAR_H}" rx="6" fill="url(#free)"/>`,
  );
  // Axis: RAM start and end, and round addresses in between.
  const step = niceStep(ram.size);
  const ticks = new Set<number>([ram.base, ram.base + ram.size]);
  for (let t = Math.ceil(ram.base / step) * step; t < ram.base + ram.size; t += step) ticks.add(t);
  const axis = [...ticks].sort((a, b) => a - b);
  for (const t of axis) {
    const x = sx(t);
    const anchor = t === ram.base ? "start" : t === ram.base + ram.size ? "end" : "middle";
    const near = axis.some((o) => o !== t && Math.abs(sx(o) - x) < 70 && (o === ram.base || o === ram.base + ram.size));
    parts.push(`<line class="tick" x1="${x}" x2="${x}" y1="${barY + BAR_H}" y2="${axisY - 4}"/>`);
    if (!near || t === ram.base || t === ram.base + ram.size) parts.push(`<text class="tick-label" x="${x}" y="${axisY + 10}" text-anchor="${anchor}">${fmtHex(t)}</text>`);
  }
  for (const p of placed) {
    const { x, w, lane, lines } = p.label;
    const y = laneY(lane);
    const up = lane % 2 === 0;
    const lx = Math.min(Math.max(p.cx, x + 6), x + w - 6);
    parts.push(
      `<g class="map-image kind-${esc(p.kind)}" data-name="${esc(p.name)}" data-start="${fmtHex(p.paddr)}" data-end="${fmtHex(p.paddr + p.size)}" data-size="${p.size}">`,
      `<title>${esc(p.name)}: [${fmtHex(p.paddr)}, ${fmtHex(p.paddr + p.size)}) ${fmtSize(p.size)}</title>`,
      `<rect class="block" x="${p.x0}" y="${barY}" width="${p.x1 - p.x0}" height="${BAR_H}" rx="${p.x1 - p.x0 > 6 ? 3 : 0}"/>`,
      `<polyline class="leader" points="${lx},${up ? y + 36 : y} ${p.cx},${up ? barY - 3 : barY + BAR_H + 3}"/>`,
      `<g class="map-label"><rect class="label-bg" x="${x}" y="${y}" width="${w}" height="36" rx="6"/>`,
      `<text class="label-name" x="${x + 8}" y="${y + 15}">${esc(lines[0])}</text>`,
      `<text class="label-range" x="${x + 8}" y="${y + 30}">${esc(lines[1])}</text></g>`,
      `</g>`,
    );
  }
  parts.push(`</svg>`);
  return parts.join("");
}

/** A power-of-two step giving 4–8 ticks. */
export function niceStep(size: number): number {
  let step = 2 ** Math.floor(Math.log2(size));
  while (size / step < 4) step /= 2;
  return Math.max(step, 1);
}
