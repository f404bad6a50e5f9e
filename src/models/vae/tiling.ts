// Tiled VAE decoding (diffusers' `AutoencoderKL.tiled_decode` / `enable_tiling()`): the latent is cut into
// overlapping tiles, each tile is decoded on its own, and neighbouring tiles are blended linearly over their
// overlap, so the memory of a decode is that of one tile however large the image. Tiles are visited row by row
// and only the previous row of decoded tiles is kept (diffusers keeps them all); the result is the same.
import { narrow } from "../../ops/index.js";
import { ArgumentError } from "../../tensor/errors.js";
import { Tensor } from "../../tensor/tensor.js";

/** Options of a tiled decode. */
export interface VAETilingOptions {
  /** Side of a decoded tile in pixels (diffusers' `tile_sample_min_size`; default: the config's sample_size). */
  tileSize?: number;
  /** Fraction of a tile shared with each neighbour (diffusers' `tile_overlap_factor`; default 0.25). */
  overlap?: number;
}

/** A decoded tile: [B, C, th, tw] values, contiguous. */
interface DecodedTile {
  data: Float32Array;
  h: number;
  w: number;
}

/**
 * b = a * (1 - t) + b * t over the first `extent` rows (vertical) or columns of b, t = y / extent, with a's last
 * `extent` rows/columns (diffusers' blend_v / blend_h), in place in b.
 */
function blend(a: DecodedTile, b: DecodedTile, planes: number, extent: number, vertical: boolean): void {
  const e = Math.min(vertical ? a.h : a.w, vertical ? b.h : b.w, extent);
  for (let p = 0; p < planes; p++) {
    const ao = p * a.h * a.w;
    const bo = p * b.h * b.w;
    if (vertical) {
      const w = Math.min(a.w, b.w);
      for (let y = 0; y < e; y++) {
        const t = y / e;
        const ar = ao + (a.h - e + y) * a.w;
        const br = bo + y * b.w;
        for (let x = 0; x < w; x++) b.data[br + x] = a.data[ar + x]! * (1 - t) + b.data[br + x]! * t;
      }
    } else {
      const h = Math.min(a.h, b.h);
      for (let y = 0; y < h; y++) {
        const ar = ao + y * a.w + a.w - e;
        const br = bo + y * b.w;
        for (let x = 0; x < e; x++) {
          const t = x / e;
          b.data[br + x] = a.data[ar + x]! * (1 - t) + b.data[br + x]! * t;
        }
      }
    }
  }
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
  let channels = 0;
  let out: Float32Array | null = null;
  let above: DecodedTile[] = [];
  for (let i = 0; i < h; i += stride) {
    const row: DecodedTile[] = [];
    for (let j = 0, col = 0; j < w; j += stride, col++) {
      const latent = narrow(narrow(z, 2, i, Math.min(lt, h - i)), 3, j, Math.min(lt, w - j));
      const img = decodeTile(latent);
      channels = img.shape[1]!;
      const tile: DecodedTile = { data: img.toFloat32Array(), h: img.shape[2]!, w: img.shape[3]! };
      const planes = batch * channels;
      if (i > 0) blend(above[col]!, tile, planes, extent, true);
      if (j > 0) blend(row[col - 1]!, tile, planes, extent, false);
      row.push(tile);
      // place the kept top-left part of the tile
      out ??= new Float32Array(batch * channels * outH * outW);
      const y0 = i * factor;
      const x0 = j * factor;
      const rows = Math.min(keep, tile.h, outH - y0);
      const cols = Math.min(keep, tile.w, outW - x0);
      for (let p = 0; p < planes; p++) {
        for (let y = 0; y < rows; y++) {
          const src = p * tile.h * tile.w + y * tile.w;
          out.set(tile.data.subarray(src, src + cols), (p * outH + y0 + y) * outW + x0);
        }
      }
    }
    above = row;
  }
  return Tensor.fromStorage(out!, [batch, channels, outH, outW], "float32");
}
