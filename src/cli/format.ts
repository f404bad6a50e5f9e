/** Small text-formatting helpers for human-readable CLI output. */

/** 1234567 -> "1,234,567". */
export function formatCount(n: number): string {
  return Math.round(n)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** Bytes in binary units: 512 B, 4.3 KiB, 1.25 GiB. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/**
 * Text from a file made safe for a terminal: control characters (escape sequences that could move the cursor,
 * recolour or retitle the terminal) are shown as escapes (\x1b, \t, ...) instead of being printed.
 */
export function printable(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  return s.replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g, (c) =>
    c === "\t" ? "\\t" : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

/** Cuts a string to at most `max` characters (one line), marking the cut with "...". */
export function truncate(s: string, max: number): string {
  const line = s.replace(/\s*\n\s*/g, " ");
  return line.length <= max ? line : `${line.slice(0, max - 3)}...`;
}

/** Left-aligned columns separated by two spaces; `rightAlign` lists columns to align right. */
export function formatTable(header: string[], rows: string[][], rightAlign: number[] = []): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => (rightAlign.includes(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}
