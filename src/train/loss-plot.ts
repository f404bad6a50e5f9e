// The training loss curve as a small standalone SVG: the raw per-step losses in light grey and a moving average on
// top, on a log-scaled y axis (diffusion losses fall fast, then slowly).

/** Options of {@link lossCurveSvg}. */
export interface LossPlotOptions {
  width?: number;
  height?: number;
  /** Window of the moving average (default max(1, n / 50)). */
  smoothing?: number;
  title?: string;
}

function movingAverage(xs: readonly number[], window: number): number[] {
  const out: number[] = [];
  let sum = 0;
  for (let i = 0; i < xs.length; i++) {
    sum += xs[i]!;
    if (i >= window) sum -= xs[i - window]!;
    out.push(sum / Math.min(i + 1, window));
  }
  return out;
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" })[c]!);
}

/** An SVG document plotting `losses` (one per step, step 1 first). Non-positive or non-finite values are skipped. */
export function lossCurveSvg(losses: readonly number[], opts: LossPlotOptions = {}): string {
  const w = opts.width ?? 640;
  const h = opts.height ?? 320;
  const m = { left: 56, right: 16, top: 28, bottom: 36 };
  const pw = w - m.left - m.right;
  const ph = h - m.top - m.bottom;
  const n = losses.length;
  const title = escapeXml(opts.title ?? `training loss (${n} steps)`);
  const head = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="11">
<rect width="${w}" height="${h}" fill="white"/>
<text x="${w / 2}" y="16" text-anchor="middle" font-size="13">${title}</text>`;
  const valid = losses.filter((v) => Number.isFinite(v) && v > 0);
  if (valid.length === 0)
    return `${head}\n<text x="${w / 2}" y="${h / 2}" text-anchor="middle">no data</text>\n</svg>\n`;
  const lo = Math.log10(Math.min(...valid));
  const hi = Math.log10(Math.max(...valid));
  const yLo = Math.floor(lo * 4) / 4;
  const yHi = Math.max(yLo + 0.25, Math.ceil(hi * 4) / 4);
  const x = (i: number): number => m.left + (n <= 1 ? 0 : (i / (n - 1)) * pw);
  const y = (v: number): number => m.top + ph - ((Math.log10(v) - yLo) / (yHi - yLo)) * ph;
  const path = (vs: readonly number[]): string => {
    const parts: string[] = [];
    vs.forEach((v, i) => {
      if (Number.isFinite(v) && v > 0)
        parts.push(`${parts.length ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    });
    return parts.join("");
  };
  const window = opts.smoothing ?? Math.max(1, Math.round(n / 50));
  const lines: string[] = [head];
  // y grid at powers of ten and their 2x / 5x
  for (let e = Math.floor(yLo); e <= Math.ceil(yHi); e++) {
    for (const k of [1, 2, 5]) {
      const v = k * 10 ** e;
      const lv = Math.log10(v);
      if (lv < yLo - 1e-9 || lv > yHi + 1e-9) continue;
      const yy = y(v).toFixed(1);
      lines.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${yy}" y2="${yy}" stroke="#e5e5e5"/>`);
      lines.push(
        `<text x="${m.left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">${v.toPrecision(2)}</text>`,
      );
    }
  }
  // x ticks: about 5
  const stepTick = Math.max(1, 10 ** Math.floor(Math.log10(Math.max(1, n / 5))));
  for (let s = 0; s <= n; s += stepTick * (n / stepTick > 10 ? 2 : 1)) {
    const xx = x(Math.max(0, s - 1)).toFixed(1);
    lines.push(`<text x="${xx}" y="${m.top + ph + 16}" text-anchor="middle">${s}</text>`);
  }
  lines.push(`<text x="${m.left + pw / 2}" y="${h - 4}" text-anchor="middle">step</text>`);
  lines.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  lines.push(`<path d="${path(losses)}" fill="none" stroke="#bbb" stroke-width="0.8"/>`);
  lines.push(
    `<path d="${path(movingAverage(losses, window))}" fill="none" stroke="#1f5fbf" stroke-width="1.6"/>`,
  );
  lines.push("</svg>");
  return `${lines.join("\n")}\n`;
}
