// Tiled VAE decoding (diffusers' `AutoencoderKL.tiled_decode` / `enable_tiling()`): the latent is cut into
// overlapping tiles, each tile is decoded on its own, and neighbouring tiles are blended linearly over their
// overlap, so the memory of a decode is that of one tile however large the image. Tiles are visited row by row
// and only the previous row of decoded tiles is kept (diffusers keeps them all); the result is the same. Blending and
// placing run as ops on the latent's device: no tile is read back.
import { add, clone, copy_, mul, narrow, sub } from "../../ops/index.js";
import { tensor, zeros } from "../../tensor/create.js";
import { ArgumentError } from "../../tensor/errors.js";
import { release, tidy } from "../../tensor/scope.js";
import type { Tensor } from "../../tensor/tensor.js";

/** Options of a tiled decode. */
export interface VAETilingOptions {
  /** Side of a decoded tile in pixels (diffusers' `tile_sample_min_size`; default: the config's sample_size). */
  tileSize?: number;
  /** Fraction of a tile shared with each neighbour (diffusers' `tile_overlap_factor`; default 0.25). */
  overlap?: number;
}

/**
 * b with its first `extent` rows (dim 2) or columns (dim 3) replaced by a * (1 - t) + b * t, t = y / extent, where a
 * contributes its last `extent` rows/columns (diffusers' blend_v / blend_h). Computed on the tiles' device.
 */
function blend(a: Tensor, b: Tensor, extent: number, dim: 2 | 3): Tensor {
  const e = Math.min(a.shape[dim]!, b.shape[dim]!, extent);
  if (e === 0) return b;
  const other = dim === 2 ? 3 : 2;
  const span = Math.min(a.shape[other]!, b.shape[other]!);
  const region = (t: Tensor, start: number) => narrow(narrow(t, dim, start, e), other, 0, span);
  // the weight of a, 1 - t; b + (a - b)(1 - t) equals a * (1 - t) + b * t and is exact where the tiles agree
  const weightOfA = tensor(
    Float32Array.from({ length: e }, (_, y) => 1 - y / e),
    dim === 2 ? [1, 1, e, 1] : [1, 1, 1, e],
    { device: b.device },
  );
  const head = region(b, 0);
  const mixed = add(head, mul(sub(region(a, a.shape[dim]! - e), head), weightOfA));
  const out = clone(b);
  copy_(region(out, 0), mixed);
  return out;
}

/**
 * Decodes latent z [B, c, h, w] tile by tile: `decodeTile` maps a latent tile [B, c, th, tw] to its image
 * [B, C, th * factor, tw * factor]. Latent tiles are `tileSize / factor` wide and start every
 * `floor(tile * (1 - overlap))` latent pixels; each decoded tile is blended with the tile above and the tile to
 * its left over `tileSize - stride * factor` pixels, then cropped to `stride * factor` pixels and placed. A latent
 * that fits in one tile is decoded whole (the result is then the untiled one exactly).
 */
export function tiledDecode(
  z: Tensor,
  factor: number,
  decodeTile: (tile: Tensor) => Tensor,
  opts: Required<VAETilingOptions>,
): Tensor {
  const { tileSize, overlap } = opts;
  if (!Number.isInteger(tileSize) || tileSize < factor || tileSize % factor !== 0) {
    throw new ArgumentError(
      `tiled decode: tileSize must be a positive multiple of the VAE's scale factor ${factor}, got ${tileSize}`,
    );
  }
  if (!(overlap >= 0 && overlap < 1)) {
    throw new ArgumentError(`tiled decode: overlap must be in [0, 1), got ${overlap}`);
  }
  const [batch, , h, w] = z.shape as [number, number, number, number];
  const lt = tileSize / factor;
  if (h <= lt && w <= lt) return decodeTile(z);
  const stride = Math.max(1, Math.floor(lt * (1 - overlap)));
  const keep = stride * factor; // pixels each tile contributes along a dim (diffusers' row_limit)
  const extent = tileSize - keep; // blend width (diffusers' blend_extent)
  const outH = h * factor;
  const outW = w * factor;
  let out: Tensor | null = null;
  let above: Tensor[] = [];
  for (let i = 0; i < h; i += stride) {
    const row: Tensor[] = [];
    for (let j = 0, col = 0; j < w; j += stride, col++) {
      const latent = narrow(narrow(z, 2, i, Math.min(lt, h - i)), 3, j, Math.min(lt, w - j));
      // a tile's intermediates are freed before the next tile (on a GPU the peak is one tile's decode)
      const tile = tidy(() => {
        let t = decodeTile(latent);
        if (i > 0) t = blend(above[col]!, t, extent, 2);
        if (j > 0) t = blend(row[col - 1]!, t, extent, 3);
        return t;
      });
      row.push(tile);
      // place the kept top-left part of the tile
      out ??= zeros([batch, tile.shape[1]!, outH, outW], { device: tile.device });
      const rows = Math.min(keep, tile.shape[2]!, outH - i * factor);
      const cols = Math.min(keep, tile.shape[3]!, outW - j * factor);
      copy_(
        narrow(narrow(out, 2, i * factor, rows), 3, j * factor, cols),
        narrow(narrow(tile, 2, 0, rows), 3, 0, cols),
      );
    }
    for (const t of above) release(t);
    above = row;
  }
  for (const t of above) release(t);
  return out!;
}
