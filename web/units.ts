// Numbers as people type and read them: 0x hex or decimal, sizes with K/M/G (powers of 1024).

export const fmtHex = (n: number | bigint) => `0x${n.toString(16)}`;

export function fmtSize(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 100 || Number.isInteger(v) ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}

/** "0x40000000", "1073741824", "256M", "1 GiB", "64k" → a number; null if not a number. */
export function parseNum(text: string): number | null {
  const m = /^\s*(0x[0-9a-f_]+|\d[\d_]*)\s*(?:([kmgt])(?:i?b)?)?\s*$/i.exec(text);
  if (!m) return null;
  const digits = m[1].replace(/_/g, "");
  const v = digits.toLowerCase().startsWith("0x") ? parseInt(digits.slice(2), 16) : parseInt(digits, 10);
  const mult = m[2] ? 1024 ** ("kmgt".indexOf(m[2].toLowerCase()) + 1) : 1;
  const n = v * mult;
  return Number.isSafeInteger(n) ? n : null;
}
