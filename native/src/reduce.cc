#include "reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "parallel.h"
#include "vmath.h"

namespace diffuse {

namespace {

/** Splits [0, count) into ranges for the pool when `work` (≈ element touches) is large enough. */
template <typename F>
void parallel_ranges(i64 count, double work, F fn) {
  const int threads = num_threads();
  if (threads <= 1 || count <= 1 || work < 65536.0 || in_parallel_region()) return fn(0, count);
  const i64 tasks = std::min<i64>(count, threads * 4);
  const i64 step = ceil_div(count, tasks);
  parallel_for(ceil_div(count, step), [&](i64 t) { fn(t * step, std::min(count, (t + 1) * step)); });
}

}  // namespace

void reduce(ReduceOp op, const float* x, i64 outer, i64 n, i64 inner, float* out) {
  const double work = static_cast<double>(outer) * n * inner;
  if (op == ReduceOp::kSum) {
    if (inner == 1) {
      parallel_ranges(outer, work, [&](i64 o0, i64 o1) {
        for (i64 o = o0; o < o1; o++) {
          const float* p = x + o * n;
          double s0 = 0, s1 = 0, s2 = 0, s3 = 0;  // float64 accumulation, as the reference
          i64 j = 0;
          for (; j + 4 <= n; j += 4) {
            s0 += p[j];
            s1 += p[j + 1];
            s2 += p[j + 2];
            s3 += p[j + 3];
          }
          for (; j < n; j++) s0 += p[j];
          out[o] = static_cast<float>((s0 + s1) + (s2 + s3));
        }
      });
      return;
    }
    // rows of `inner` accumulators; split over (outer, inner-chunk) pairs
    const i64 ichunk = std::min<i64>(inner, 1024);
    const i64 nchunks = ceil_div(inner, ichunk);
    parallel_ranges(outer * nchunks, work, [&](i64 t0, i64 t1) {
      double* acc = reinterpret_cast<double*>(scratch(kMisc, 2 * ichunk));
      for (i64 t = t0; t < t1; t++) {
        const i64 o = t / nchunks, i0 = (t % nchunks) * ichunk;
        const i64 len = std::min<i64>(ichunk, inner - i0);
        std::fill(acc, acc + len, 0.0);
        const float* p = x + o * n * inner + i0;
        for (i64 j = 0; j < n; j++, p += inner)
          for (i64 i = 0; i < len; i++) acc[i] += p[i];
        for (i64 i = 0; i < len; i++) out[o * inner + i0 + i] = static_cast<float>(acc[i]);
      }
    });
    return;
  }
  const bool want_max = op == ReduceOp::kMax || op == ReduceOp::kArgmax;
  const bool want_idx = op == ReduceOp::kArgmax || op == ReduceOp::kArgmin;
  parallel_ranges(outer * inner, work, [&](i64 t0, i64 t1) {
    for (i64 t = t0; t < t1; t++) {
      const i64 o = t / inner, i = t % inner;
      const float* p = x + o * n * inner + i;
      float best = n > 0 ? p[0]
                         : (op == ReduceOp::kMax ? -std::numeric_limits<float>::infinity()
                                                 : std::numeric_limits<float>::infinity());
      i64 best_idx = 0;
      for (i64 j = 1; j < n; j++) {
        const float v = p[j * inner];
        if (std::isnan(best)) break;  // NaN wins every comparison, as in PyTorch
        if (std::isnan(v) || (want_max ? v > best : v < best)) {
          best = v;
          best_idx = j;
        }
      }
      out[t] = want_idx ? static_cast<float>(best_idx) : best;
    }
  });
}

void softmax(const float* x, float* out, i64 rows, i64 cols, bool log) {
  parallel_ranges(rows, 8.0 * rows * cols, [&](i64 r0, i64 r1) {
    for (i64 r = r0; r < r1; r++) {
      const float* xr = x + r * cols;
      float* orow = out + r * cols;
      float mx = vmax(xr, cols);
      if (mx == -std::numeric_limits<float>::infinity()) mx = 0.0f;  // fully masked row
      double sum = 0;
      if (log) {
        for (i64 j = 0; j < cols; j++) sum += std::exp(static_cast<double>(xr[j]) - mx);
        const double lse = mx + std::log(sum);
        for (i64 j = 0; j < cols; j++) orow[j] = static_cast<float>(xr[j] - lse);
      } else {
        std::copy(xr, xr + cols, orow);
        sum = vexp_shift_sum(orow, cols, mx);
        const float inv = static_cast<float>(1.0 / sum);
        for (i64 j = 0; j < cols; j++) orow[j] *= inv;
      }
    }
  });
}

}  // namespace diffuse
