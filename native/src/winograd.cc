// 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray 2016, "Fast Algorithms for
// Convolutional Neural Networks", section 4): each 2x2 output tile is A^T [(G g G^T) . (B^T d B)] A for its 4x4
// input patch d and the 3x3 filter g, with
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1].
// Summed over input channels, the 16 elementwise products become 16 GEMMs M[xi] = U[xi] V[xi] (O x C times
// C x tiles), 2.25x fewer multiplications than the direct convolution; the transforms are additions. Tiles go in
// blocks (a block's V and M stay a few MB) and blocks run in parallel.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <numeric>

#include "conv.h"
#include "gemm.h"
#include "parallel.h"

namespace diffuse {

namespace {

constexpr i64 kMaxTileBlock = 256;       // tiles per block (the GEMMs' n), at most
constexpr i64 kBlockFloats = i64{1} << 21;  // a block's V (16 x C x tiles) and M (16 x O x tiles) stay <= 8 MB
// The transform buffers stay within the budgets below and are kept between calls: freeing them made the next
// convolution map and fault in up to ~200 MB again, 4 KB at a time (~16% of an SD 1.5 UNet step). Only a buffer
// larger than this (budgets raised through the environment) is freed after the call.
constexpr i64 kKeepFloats = i64{1} << 25;
// Input channels transformed at a time while preparing one panel of filters (the part of its buffer in use:
// xis x mr x this floats, <= 512 KB)
constexpr i64 kFilterDepth = 256;

/** Floats of the packed transformed filters of one output-channel chunk (64 MB: SD 1.5's 960 -> 320 at 64 x 64 in
 * one chunk, whose inputs would otherwise be transformed once per chunk) and of the transformed inputs of all tiles
 * kept at once (64 MB); DIFFUSE_WINOGRAD_UBUDGET / _VBUDGET override them (tests). */
i64 budget(const char* name, i64 fallback) {
  const char* v = std::getenv(name);
  const i64 n = v ? std::atoll(v) : 0;
  return n > 0 ? n : fallback;
}

/** Tiles per block for C inputs, O outputs and xis transformed matrices: as many as keep V and M within
 * kBlockFloats, a multiple of 32. */
i64 tile_block(i64 C, i64 O, i64 xis) {
  return std::clamp<i64>(kBlockFloats / (xis * std::max(C, O)) / 32 * 32, 32, kMaxTileBlock);
}

/** U[xi][o][c0 + u] for u < count: the 3x3 filters w[o][c0 + u] transformed (G g G^T). */
void weights_portable(const float* w, const std::uint16_t* w16, i64 o, i64 c0, i64 count, i64 O, i64 C, float* U) {
  for (i64 c = c0; c < c0 + count; c++) {
    const i64 base = (o * C + c) * 9;
    float g[9];
    for (int i = 0; i < 9; i++) g[i] = w ? w[base + i] : half_to_float(w16[base + i]);
    float t[4][3];  // G g
    for (int j = 0; j < 3; j++) {
      t[0][j] = g[j];
      t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
      t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
      t[3][j] = g[6 + j];
    }
    for (int i = 0; i < 4; i++) {  // (G g) G^T
      const float u[4] = {t[i][0], 0.5f * (t[i][0] + t[i][1] + t[i][2]), 0.5f * (t[i][0] - t[i][1] + t[i][2]),
                          t[i][2]};
      for (int j = 0; j < 4; j++) U[((i * 4 + j) * O + o) * C + c] = u[j];
    }
  }
}

/** One row of `count` tiles: patches at rows y0..y0+3, columns x0 + 2t..; v[xi * xs + t] = (B^T d B)[xi]. */
void input_portable(const float* plane, i64 H, i64 W, i64 y0, i64 x0, i64 count, float* v, i64 xs) {
  for (i64 t = 0; t < count; t++) {
    const i64 xt = x0 + 2 * t;
    float d[4][4];
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 4; j++) d[i][j] = patch_at(plane, H, W, y0 + i, xt + j);
    float b[4][4];  // B^T d
    for (int j = 0; j < 4; j++) {
      b[0][j] = d[0][j] - d[2][j];
      b[1][j] = d[1][j] + d[2][j];
      b[2][j] = d[2][j] - d[1][j];
      b[3][j] = d[1][j] - d[3][j];
    }
    for (int i = 0; i < 4; i++) {  // (B^T d) B
      v[(i * 4 + 0) * xs + t] = b[i][0] - b[i][2];
      v[(i * 4 + 1) * xs + t] = b[i][1] + b[i][2];
      v[(i * 4 + 2) * xs + t] = b[i][2] - b[i][1];
      v[(i * 4 + 3) * xs + t] = b[i][1] - b[i][3];
    }
  }
}

/** One row of `count` tiles from m[xi * xs + t]: output rows oy, oy+1 (those < OH), columns ox0 + 2t (+1). */
void output_portable(const float* m, i64 xs, i64 count, float bias, float* plane, i64 OH, i64 OW, i64 oy,
                     i64 ox0) {
  for (i64 t = 0; t < count; t++) {
    float r[2][4];  // A^T m
    for (int j = 0; j < 4; j++) {
      const float m0 = m[j * xs + t], m1 = m[(4 + j) * xs + t], m2 = m[(8 + j) * xs + t], m3 = m[(12 + j) * xs + t];
      r[0][j] = m0 + m1 + m2;
      r[1][j] = m1 - m2 - m3;
    }
    const i64 ox = ox0 + 2 * t;
    for (int i = 0; i < 2 && oy + i < OH; i++) {
      plane[(oy + i) * OW + ox] = r[i][0] + r[i][1] + r[i][2] + bias;  // (A^T m) A
      if (ox + 1 < OW) plane[(oy + i) * OW + ox + 1] = r[i][1] - r[i][2] - r[i][3] + bias;
    }
  }
}

const WinogradKernels kPortableWinograd = {weights_portable, input_portable, output_portable};

/**
 * The tile size for a convolution with P = batch x output pixels. Per output channel and input channel, F(m x m)
 * saves (9 - a^2 / m^2) P multiply-adds of the direct convolution (a = m + 2) but transforms, packs and streams
 * a^2 filter values, which costs about as much as ~120 multiply-adds each: F(2x2) pays off from P ~ 400 and
 * F(4x4) overtakes it from P ~ 1400 (a 32 x 32 map at batch 2, a 38 x 38 one at batch 1).
 * DIFFUSE_WINOGRAD_TILE=2 or 4 forces one.
 */
int tile_size(const ConvShape& s) {
  static const int forced = [] {
    const char* v = std::getenv("DIFFUSE_WINOGRAD_TILE");
    return v ? std::atoi(v) : 0;
  }();
  if (forced == 2 || forced == 4) return forced;
  return s.batch * s.out_h * s.out_w >= 1400 ? 4 : 2;
}

const WinogradKernels& kernels(int m) {
#if defined(DIFFUSE_HAVE_X86_KERNELS)
  if (std::strcmp(active_kernel().name, "avx512") == 0) return m == 4 ? kAvx512Winograd4 : kAvx512Winograd;
  if (std::strcmp(active_kernel().name, "avx2") == 0) return m == 4 ? kAvx2Winograd4 : kAvx2Winograd;
#endif
  return m == 4 ? kPortableWinograd4 : kPortableWinograd;
}

struct Geometry {
  i64 tiles_h, tiles_w, per_image;
};

/**
 * Calls fn(n, ty, tx0, count, t) for each run of tiles within one tile row, covering tiles [t0, t0 + nt) in order
 * (t = the run's first index relative to t0).
 */
template <typename F>
void for_tile_rows(const Geometry& g, i64 t0, i64 nt, F fn) {
  for (i64 t = 0; t < nt;) {
    const i64 tile = t0 + t;
    const i64 n = tile / g.per_image, r = tile % g.per_image;
    const i64 ty = r / g.tiles_w, tx = r % g.tiles_w;
    const i64 count = std::min<i64>(g.tiles_w - tx, nt - t);
    fn(n, ty, tx, count, t);
    t += count;
  }
}

}  // namespace

bool winograd_applicable(const ConvShape& s) {
  // worth it once the output has enough pixels to amortise the filter transform (see tile_size)
  static const i64 min_pixels = [] {
    const char* v = std::getenv("DIFFUSE_WINOGRAD_MIN_PIXELS");
    return v ? std::atoll(v) : i64{400};
  }();
  return s.kh == 3 && s.kw == 3 && s.sh == 1 && s.sw == 1 && s.dh == 1 && s.dw == 1 && s.groups == 1 &&
         s.in_c >= 32 && s.out_c >= 32 && s.batch * s.out_h * s.out_w >= min_pixels;
}

void conv2d_winograd(const float* x, const float* w, const std::uint16_t* w16, const float* bias, float* out,
                     const ConvShape& s, const float* residual) {
  const int tm = tile_size(s);
  const i64 xis = (tm + 2) * (tm + 2);
  const WinogradKernels& K = kernels(tm);
  const int mr = active_kernel().mr, nr = active_kernel().nr;
  const i64 C = s.in_c, O = s.out_c;
  Geometry g;
  g.tiles_h = ceil_div(s.out_h, tm);
  g.tiles_w = ceil_div(s.out_w, tm);
  g.per_image = g.tiles_h * g.tiles_w;
  const i64 total = s.batch * g.per_image;
  const int threads = in_parallel_region() ? 1 : num_threads();

  // Output channels go in chunks whose transformed filters (xis matrices of oc x C, the GEMMs' A, packed once
  // into micro-kernel panels) stay within the budget.
  static const i64 u_budget = budget("DIFFUSE_WINOGRAD_UBUDGET", i64{1} << 24);
  static const i64 v_budget = budget("DIFFUSE_WINOGRAD_VBUDGET", i64{1} << 24);
  i64 chunks = ceil_div(xis * O * C, u_budget);
  i64 oc = std::min<i64>(O, round_up(ceil_div(O, chunks), mr));
  chunks = ceil_div(O, oc);
  const i64 ocp = round_up(oc, mr);
  float* Upk = scratch(kWinogradUPacked, xis * ocp * C);
  auto prepare_chunk = [&](i64 o0, i64 on) {
    // Transforms filters o0.. and packs them into the xis GEMMs' A panels (mr output channels each) in one pass:
    // one panel's filters at a time, kFilterDepth input channels at a time, through a per-thread buffer that stays
    // in L2, so the filters are read once and the panels written once (through a whole transformed copy in memory,
    // that copy's write and read back cost as much as the products at 16 x 16 maps).
    const i64 cb = std::min<i64>(C, kFilterDepth);
    auto panel = [&](i64 q) {
      const i64 rows = std::min<i64>(mr, on - q * mr);
      const float* wq = w ? w + (o0 + q * mr) * C * 9 : nullptr;
      const std::uint16_t* wq16 = w ? nullptr : w16 + (o0 + q * mr) * C * 9;
      // U[xi][r][c] for the panel's rows, depth stride C (the transform kernels index the filters and U alike)
      float* U = scratch(kWinogradU, xis * mr * C);
      for (i64 c0 = 0; c0 < C; c0 += cb) {
        const i64 count = std::min<i64>(cb, C - c0);
        for (i64 r = 0; r < rows; r++) K.weights(wq, wq16, r, c0, count, mr, C, U);
        for (i64 xi = 0; xi < xis; xi++)
          pack_a_panels(U + xi * mr * C + c0, C, 1, rows, count, Upk + xi * ocp * C + q * mr * C + c0 * mr);
      }
    };
    const i64 panels = ceil_div(on, mr);
    if (threads > 1 && on * C >= 4096) {
      parallel_for(panels, panel);
    } else {
      for (i64 q = 0; q < panels; q++) panel(q);
    }
  };

  // Tiles go in blocks whose transformed inputs V (xis x C x tiles) and products M (xis x oc x tiles) stay a few
  // MB. With several filter chunks, all tiles are one block when V fits its budget, so each chunk is prepared
  // once; else the chunks go outermost and every block's inputs are transformed once per chunk.
  i64 blocks = ceil_div(total, tile_block(C, oc, xis));
  if (chunks > 1 && xis * C * total <= v_budget) blocks = 1;
  if (threads > 1 && chunks == 1) blocks = round_up(blocks, threads);  // equal blocks, no idle thread at the end
  const i64 tb = round_up(ceil_div(total, blocks), std::lcm<i64>(32, nr));  // whole B panels
  blocks = ceil_div(total, tb);
  // blocks in parallel when there are enough of them and one filter chunk; else the work inside each is split
  const bool outer = threads > 1 && chunks == 1 && blocks >= threads;
  const bool inner = threads > 1 && !outer;
  if (chunks == 1) prepare_chunk(0, O);

  // tiles of block bi against output channels [o_begin, o_end), preparing each chunk first when `prepare`
  auto run_block = [&](i64 bi, i64 o_begin, i64 o_end, bool prepare) {
    const i64 t0 = bi * tb, nt = std::min<i64>(tb, total - t0);
    float* V = scratch(kWinogradV, xis * C * tb);
    float* M = scratch(kWinogradM, xis * ocp * tb);
    const i64 vxs = C * tb, mxs = ocp * tb;
    // V[xi] is written straight in the GEMMs' packed-B layout (panels of nr tiles: [t / nr][c][t % nr]), so the
    // products read it in place; runs of tiles are split where a panel ends
    auto input_channel = [&](i64 c) {
      for_tile_rows(g, t0, nt, [&](i64 n, i64 ty, i64 tx, i64 count, i64 t) {
        for (i64 u = 0; u < count;) {
          const i64 tu = t + u, piece = std::min<i64>(count - u, nr - tu % nr);
          K.input_row(x + (n * C + c) * s.in_h * s.in_w, s.in_h, s.in_w, tm * ty - s.ph, tm * (tx + u) - s.pw,
                      piece, V + (tu / nr) * C * nr + c * nr + tu % nr, vxs);
          u += piece;
        }
      });
    };
    if (inner) {
      parallel_for(C, input_channel);
    } else {
      for (i64 c = 0; c < C; c++) input_channel(c);
    }
    if (nt % nr != 0) {
      // the last panel's columns past the tiles: zeros rather than stale values (never stored, but kept finite)
      const i64 q = nt / nr, used = nt % nr;
      for (i64 xi = 0; xi < xis; xi++)
        for (i64 c = 0; c < C; c++) std::fill_n(V + xi * vxs + q * C * nr + c * nr + used, nr - used, 0.0f);
    }
    for (i64 o0 = o_begin; o0 < o_end; o0 += oc) {
      const i64 on = std::min<i64>(oc, o_end - o0);
      if (prepare) prepare_chunk(o0, on);
      auto product = [&](i64 xi, bool parallel) {
        GemmProblem P;
        P.m = on;
        P.n = nt;
        P.k = C;
        P.a_panels = Upk + xi * ocp * C;
        P.b_panels = V + xi * vxs;
        P.c = M + xi * mxs;
        P.ldc = tb;
        sgemm(P, parallel);
      };
      // The xis products are independent and of equal size: with enough of them per thread, each thread takes
      // whole products (no barrier inside one; small ones, such as 16x16 maps' 32 tiles, split poorly); else each
      // product is split over the threads.
      if (inner && xis >= 4 * threads) {
        parallel_for(xis, [&](i64 xi) { product(xi, false); });
      } else {
        for (i64 xi = 0; xi < xis; xi++) product(xi, inner);
      }
      auto output_channel = [&](i64 o) {
        for_tile_rows(g, t0, nt, [&](i64 n, i64 ty, i64 tx, i64 count, i64 t) {
          const i64 plane = (n * O + o) * s.out_h * s.out_w;
          K.output_row(M + (o - o0) * tb + t, mxs, count, bias ? bias[o] : 0.0f, out + plane, s.out_h, s.out_w,
                       tm * ty, tm * tx);
          if (residual) {
            // the rows just written are still in L1
            const i64 at = plane + tm * ty * s.out_w + tm * tx;
            add_rows(out + at, s.out_w, residual + at, s.out_w, std::min<i64>(tm, s.out_h - tm * ty),
                     std::min<i64>(s.out_w, tm * (tx + count)) - tm * tx);
          }
        });
      };
      if (inner) {
        parallel_for(on, [&](i64 i) { output_channel(o0 + i); });
      } else {
        for (i64 o = o0; o < o0 + on; o++) output_channel(o);
      }
    }
  };
  if (chunks == 1 && outer) {
    parallel_for(blocks, [&](i64 bi) { run_block(bi, 0, O, false); });
  } else if (chunks == 1 || blocks == 1) {
    for (i64 bi = 0; bi < blocks; bi++) run_block(bi, 0, O, chunks > 1);
  } else {
    for (i64 o0 = 0; o0 < O; o0 += oc) {
      prepare_chunk(o0, std::min<i64>(oc, O - o0));
      for (i64 bi = 0; bi < blocks; bi++) run_block(bi, o0, std::min<i64>(O, o0 + oc), false);
    }
  }
  scratch_trim(kWinogradU, kKeepFloats);
  scratch_trim(kWinogradUPacked, kKeepFloats);
  scratch_trim(kWinogradV, kKeepFloats);
  scratch_trim(kWinogradM, kKeepFloats);
}

}  // namespace diffuse
