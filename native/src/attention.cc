// Fused attention with an online softmax over key tiles (FlashAttention, Dao et al. 2022, Alg. 1): for each tile
// of query rows keep the running row max m, the running sum l and the unnormalised output O; per key tile,
//   m' = max(m, rowmax(S)),  P = exp(S - m'),  l = l*exp(m - m') + rowsum(P),  O = O*exp(m - m') + P V,
// and finally out = O / l. Only a [BR x BC] score tile exists at any time.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "gemm.h"
#include "parallel.h"
#include "reduce.h"
#include "vmath.h"

namespace diffuse {

void attention(const float* q, const float* k, const float* v, const float* mask, float* out,
               const AttentionShape& s) {
  constexpr i64 kBr = 128;
  constexpr i64 kBc = 256;
  const i64 br = std::min<i64>(kBr, std::max<i64>(s.lq, 1));
  const i64 bc = std::min<i64>(kBc, std::max<i64>(s.lk, 1));
  const i64 qtiles = ceil_div(s.lq, br);
  const int nr = active_kernel().nr;
  const i64 kpack = round_up(s.lk, nr) * s.d, vpack = round_up(s.dv, nr) * s.lk;
  const float ninf = -std::numeric_limits<float>::infinity();

  // K^T and V of one head in GEMM panel form, packed once and shared by all of its query tiles
  auto prepack = [&](i64 b, float* kp, float* vp) {
    StridedB(k + b * s.lk * s.d, 1, s.d).pack(kp, 0, s.d, 0, s.lk, nr);
    StridedB(v + b * s.lk * s.dv, s.dv, 1).pack(vp, 0, s.lk, 0, s.dv, nr);
  };

  auto tile = [&](i64 b, i64 qt, const float* kp, const float* vp) {
    const i64 i0 = qt * br;
    const i64 rows = std::min<i64>(br, s.lq - i0);
    float* sc = scratch(kAttnScores, br * bc);
    float* o = out + (b * s.lq + i0) * s.dv;  // O accumulates in place in the output rows
    float* stats = scratch(kAttnStats, 2 * br);
    float* m = stats;
    float* l = stats + br;
    std::fill(m, m + rows, ninf);
    std::fill(l, l + rows, 0.0f);
    std::memset(o, 0, sizeof(float) * rows * s.dv);
    // the query tile is packed once for all key tiles
    const float* qa = q + (b * s.lq + i0) * s.d;
    float* qp = scratch(kAttnQ, round_up(rows, active_kernel().mr) * s.d);
    pack_a_panels(qa, s.d, 1, rows, s.d, qp);
    for (i64 j0 = 0; j0 < s.lk; j0 += bc) {
      const i64 cols = std::min<i64>(bc, s.lk - j0);
      // S = scale * Q K^T
      PrepackedB kt(kp, s.d, nr, 0, j0);
      GemmProblem P;
      P.m = rows;
      P.n = cols;
      P.k = s.d;
      P.alpha = s.scale;
      P.a = qa;
      P.ars = s.d;
      P.acs = 1;
      P.a_packed = qp;
      P.b = &kt;
      P.c = sc;
      P.ldc = cols;
      sgemm(P, false);
      for (i64 r = 0; r < rows; r++) {
        float* sr = sc + r * cols;
        if (mask) {
          const float* mr = mask + b * s.mask_batch_stride + (i0 + r) * s.mask_row_stride + j0;
          for (i64 j = 0; j < cols; j++) sr[j] += mr[j];
        }
        const float tmax = vmax(sr, cols);
        const float mx = std::isnan(m[r]) || std::isnan(tmax) ? tmax + m[r] : std::max(m[r], tmax);
        float* orow = o + r * s.dv;
        if (mx == ninf) {  // everything so far masked out: contributes nothing
          std::memset(sr, 0, sizeof(float) * cols);
          continue;
        }
        const float corr = m[r] == ninf ? 0.0f : std::exp(m[r] - mx);
        l[r] = l[r] * corr + vexp_shift_sum(sr, cols, mx);
        m[r] = mx;
        if (corr != 1.0f)
          for (i64 t2 = 0; t2 < s.dv; t2++) orow[t2] *= corr;
      }
      // O += P V
      PrepackedB vt(vp, s.lk, nr, j0, 0);
      GemmProblem PV;
      PV.m = rows;
      PV.n = s.dv;
      PV.k = cols;
      PV.a = sc;
      PV.ars = cols;
      PV.acs = 1;
      PV.b = &vt;
      PV.c = o;
      PV.ldc = s.dv;
      PV.accumulate = true;
      sgemm(PV, false);
    }
    for (i64 r = 0; r < rows; r++) {
      float* orow = o + r * s.dv;
      if (m[r] == ninf || l[r] == 0.0f) {
        std::memset(orow, 0, sizeof(float) * s.dv);  // fully masked row gives zeros
        continue;
      }
      const float inv = 1.0f / l[r];
      for (i64 t2 = 0; t2 < s.dv; t2++) orow[t2] *= inv;
    }
  };

  const double work = 2.0 * s.batch * s.lq * s.lk * (s.d + s.dv);
  const int threads = work >= 4e6 && !in_parallel_region() ? num_threads() : 1;
  if (threads > 1 && qtiles >= threads) {
    // heads one after another, each head's query tiles spread over the pool
    float* kp = scratch(kAttnK, kpack);
    float* vp = scratch(kAttnV, vpack);
    for (i64 b = 0; b < s.batch; b++) {
      prepack(b, kp, vp);
      parallel_for(qtiles, [&](i64 qt) { tile(b, qt, kp, vp); });
    }
  } else {
    // few query tiles: whole heads per task
    auto head = [&](i64 b) {
      float* kp = scratch(kAttnK, kpack);
      float* vp = scratch(kAttnV, vpack);
      prepack(b, kp, vp);
      for (i64 qt = 0; qt < qtiles; qt++) tile(b, qt, kp, vp);
    };
    if (threads > 1 && s.batch > 1) {
      parallel_for(s.batch, head);
    } else {
      for (i64 b = 0; b < s.batch; b++) head(b);
    }
  }
}

}  // namespace diffuse
