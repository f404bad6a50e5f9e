// Fused attention with an online softmax over key blocks (FlashAttention, Dao et al. 2022, Alg. 1), with the
// scores computed transposed: for a tile of queries and a block of keys,
//   S^T = K (scale Q)^T        (rows = keys, columns = queries; m = keys, n = queries, depth d),
// then per query column  m' = max(m, colmax(S^T)),  P^T = exp(S^T - m'),  l = l*exp(m - m') + colsum(P^T),
//   O^T = O^T * exp(m - m') + V^T P^T   (m = dv, n = queries, depth = keys),
// all in base 2 (scores times log2(e), which the query scale absorbs: exp(s) = 2^(s log2 e)),
// and finally out = (O^T)^T / l. Why transposed: S^T comes out of the micro-kernel already in the packed form
// the second GEMM reads as its B operand (no packing of P), the softmax runs down columns (whole vectors of
// queries at a time), and the small head width (dv = 40 in Stable Diffusion) is the GEMM's m, which the kernel's
// row panels tile with little or no padding (40 rows as 4 x 10) instead of its 32-wide n (64 columns). K and V^T
// of a head are packed once into micro-kernel panels and shared by all query tiles; only a [keys x queries] block
// of scores exists.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "gemm.h"
#include "parallel.h"
#include "reduce.h"
#include "vmath.h"

namespace diffuse {

namespace {

constexpr float kLog2e = 1.44269504088896341f;

/**
 * A mask value in the scores' base-2 units. A finite mask stays finite: float32's lowest value (what PyTorch
 * code masks with) times log2(e) would overflow to -inf, and a row masked that way everywhere must still give
 * uniform weights, not the zeros of a row masked with -inf.
 */
inline float mask_log2(float v) {
  if (std::isinf(v)) return v;
  return std::max(v * kLog2e, std::numeric_limits<float>::lowest());
}

/** Block sizes and packed-operand sizes of one attention call. */
struct Plan {
  int mr, nr;
  int pv_mr;          // rows of the V^T panels: mr, or the kernel's narrow mr where that pads dv less
  MicroKernel pv_fn;  // the micro-kernel of O^T += V^T P^T
  i64 br;      // queries per tile (a multiple of nr)
  i64 bc;      // keys per block (a multiple of mr)
  i64 kpack;   // floats of K in A panels (keys x d)
  i64 vpack;   // floats of V^T in A panels (dv x keys)
  i64 dv_pad;  // dv rounded up to pv_mr: rows of the O^T accumulator
};

Plan make_plan(const AttentionShape& s) {
  const KernelInfo& K = active_kernel();
  Plan p;
  p.mr = K.mr;
  p.nr = K.nr;
  p.br = std::min<i64>(round_up(64, p.nr), round_up(std::max<i64>(s.lq, 1), p.nr));
  p.bc = round_up(std::min<i64>(std::max<i64>(s.lk, 1), 256), p.mr);
  p.kpack = round_up(s.lk, p.mr) * s.d;
  const bool narrow = K.mr_narrow > 0 && round_up(s.dv, K.mr_narrow) < round_up(s.dv, K.mr);
  p.pv_mr = narrow ? K.mr_narrow : K.mr;
  p.pv_fn = narrow ? K.fn_narrow : K.fn;
  p.dv_pad = round_up(s.dv, p.pv_mr);
  p.vpack = p.dv_pad * s.lk;
  return p;
}

/** One tile of queries [i0, i0 + rows) of head b against all keys; kp / vp are the head's packed K and V^T. */
void attention_tile(const AttentionShape& s, const Plan& pl, const float* q, const float* mask, float* out, i64 b,
                    i64 i0, const float* kp, const float* vp) {
  const KernelInfo& K = active_kernel();
  const int mr = pl.mr, nr = pl.nr;
  const i64 rows = std::min<i64>(pl.br, s.lq - i0);
  const i64 qpanels = ceil_div(rows, nr);
  const i64 ldo = qpanels * nr;  // O^T row stride
  const float ninf = -std::numeric_limits<float>::infinity();

  // Q^T of the tile as B panels (depth d, nr queries each; missing queries are zero columns)
  float* qt = scratch(kAttnQ, qpanels * nr * s.d);
  StridedB(q + s.q.at(b, s.heads) + i0 * s.q.row_stride, 1, s.q.row_stride).pack(qt, 0, s.d, 0, rows, nr);
  // scale Q once, not every score; log2(e) too, so that the softmax exponentiates in base 2 (one multiply per
  // score fewer)
  const float qscale = s.scale * kLog2e;
  for (i64 i = 0; i < qpanels * nr * s.d; i++) qt[i] *= qscale;
  float* st = scratch(kAttnScores, qpanels * pl.bc * nr);  // S^T / P^T: qpanels panels of [bc][nr]
  float* ot = scratch(kAttnOut, pl.dv_pad * ldo);
  float* stats = scratch(kAttnStats, 3 * ldo);
  float* m = stats;
  float* l = stats + ldo;
  float* corr = stats + 2 * ldo;
  std::fill(m, m + ldo, ninf);
  std::fill(l, l + ldo, 0.0f);

  for (i64 j0 = 0; j0 < s.lk; j0 += pl.bc) {
    const i64 keys = std::min<i64>(pl.bc, s.lk - j0);
    // S^T = scale * K[j0:j0+keys] Q^T, written panel by panel (row stride nr); rows past `keys` are never read
    for (i64 ir = 0; ir < keys; ir += mr) {
      const float* a = kp + (j0 + ir) * s.d;
      for (i64 jp = 0; jp < qpanels; jp++)
        K.fn(s.d, a, qt + jp * s.d * nr, st + (jp * pl.bc + ir) * nr, nr, 1.0f, 0, nullptr, nullptr);
    }
    if (mask) {
      const float* mb = mask + b * s.mask_batch_stride + j0;
      for (i64 t = 0; t < rows; t++) {
        const float* mrow = mb + (i0 + t) * s.mask_row_stride;
        float* col = st + (t / nr) * pl.bc * nr + t % nr;
        for (i64 r = 0; r < keys; r++) col[r * nr] += mask_log2(mrow[r]);
      }
    }
    for (i64 jp = 0; jp < qpanels; jp++)
      softmax_panel(st + jp * pl.bc * nr, keys, nr, m + jp * nr, l + jp * nr, corr + jp * nr, mask != nullptr);
    // rescale the running output to the new maxima (the first block writes O^T fresh instead); once the maxima
    // settle every factor is exactly 1 and there is nothing to do
    if (j0 > 0 && !std::all_of(corr, corr + ldo, [](float c) { return c == 1.0f; })) {
      for (i64 i = 0; i < s.dv; i++) {
        float* orow = ot + i * ldo;
        for (i64 t = 0; t < ldo; t++) orow[t] *= corr[t];
      }
    }
    // O^T (+)= V^T[:, j0:j0+keys] P^T
    for (i64 ib = 0; ib < s.dv; ib += pl.pv_mr) {
      const float* a = vp + ib * s.lk + j0 * pl.pv_mr;
      for (i64 jp = 0; jp < qpanels; jp++)
        pl.pv_fn(keys, a, st + jp * pl.bc * nr, ot + ib * ldo + jp * nr, ldo, 1.0f, j0 > 0 ? 1 : 0, nullptr, nullptr);
    }
  }

  for (i64 t = 0; t < rows; t++) {
    float* orow = out + s.out.at(b, s.heads) + (i0 + t) * s.out.row_stride;
    if (m[t] == ninf || l[t] == 0.0f) {
      std::memset(orow, 0, sizeof(float) * s.dv);  // fully masked query: zeros, as PyTorch
      continue;
    }
    const float inv = 1.0f / l[t];
    for (i64 i = 0; i < s.dv; i++) orow[i] = ot[i * ldo + t] * inv;
  }
}

}  // namespace

void attention(const float* q, const float* k, const float* v, const float* mask, float* out,
               const AttentionShape& s) {
  if (s.batch <= 0 || s.lq <= 0 || s.dv <= 0) return;
  if (s.lk <= 0) {
    // no keys: every query fully masked
    for (i64 b = 0; b < s.batch; b++)
      for (i64 t = 0; t < s.lq; t++) std::memset(out + s.out.at(b, s.heads) + t * s.out.row_stride, 0, sizeof(float) * s.dv);
    return;
  }
  const Plan pl = make_plan(s);
  const i64 qtiles = ceil_div(s.lq, pl.br);

  // K (keys x d) and V^T (dv x keys) of one head as A panels of full depth, shared by all of its query tiles
  auto prepack = [&](i64 b, float* kp, float* vp) {
    pack_a_panels(k + s.k.at(b, s.heads), s.k.row_stride, 1, s.lk, s.d, kp);
    pack_a_panels(v + s.v.at(b, s.heads), 1, s.v.row_stride, s.dv, s.lk, vp, pl.pv_mr);
  };

  const double work = 2.0 * s.batch * s.lq * s.lk * (s.d + s.dv);
  const int threads = work >= 4e6 && !in_parallel_region() ? num_threads() : 1;
  // whole heads per task when there are enough of them (each thread packs its own K / V^T, which stay in its L2,
  // with no serial packing between parallel regions); else heads in turn, each head's query tiles spread over the
  // pool
  const bool by_head = s.batch >= 2 * threads || qtiles < threads;
  if (threads > 1 && !by_head) {
    // heads one after another, each head's query tiles spread over the pool
    float* kp = scratch(kAttnK, pl.kpack);
    float* vp = scratch(kAttnV, pl.vpack);
    for (i64 b = 0; b < s.batch; b++) {
      prepack(b, kp, vp);
      parallel_for(qtiles, [&](i64 qt) { attention_tile(s, pl, q, mask, out, b, qt * pl.br, kp, vp); });
    }
  } else {
    // few query tiles: whole heads per task
    auto head = [&](i64 b) {
      float* kp = scratch(kAttnK, pl.kpack);
      float* vp = scratch(kAttnV, pl.vpack);
      prepack(b, kp, vp);
      for (i64 qt = 0; qt < qtiles; qt++) attention_tile(s, pl, q, mask, out, b, qt * pl.br, kp, vp);
    };
    if (threads > 1 && s.batch > 1) {
      parallel_for(s.batch, head);
    } else {
      for (i64 b = 0; b < s.batch; b++) head(b);
    }
  }
}

}  // namespace diffuse
