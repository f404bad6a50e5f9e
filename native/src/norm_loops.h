// The row loops of group norm and layer norm in plain C++ (see vmath.h: vmoments, vaffine, vnormalize), inline
// so that each translation unit that includes them vectorises them for its own ISA flags: vmath.cc (baseline)
// and vmath_avx2.cc (-mavx2 -mfma). The AVX-512 versions are written out in norm_avx512.cc.
#pragma once
#include <cmath>

#include "common.h"

namespace diffuse {
namespace norm_loops {

/** Mean and sum of squared deviations of x[0..n) in float64, two passes (as the reference backend). */
inline void moments(const float* x, i64 n, double* mean, double* sq_dev) {
  // float64 sums in 8 independent lanes: no add-latency chain, and the compiler vectorises them
  double s8[8] = {};
  i64 j = 0;
  for (; j + 8 <= n; j += 8)
    for (int u = 0; u < 8; u++) s8[u] += x[j + u];
  double s = ((s8[0] + s8[1]) + (s8[2] + s8[3])) + ((s8[4] + s8[5]) + (s8[6] + s8[7]));
  for (; j < n; j++) s += x[j];
  const double mu = n > 0 ? s / static_cast<double>(n) : 0.0;
  double v8[8] = {};
  j = 0;
  for (; j + 8 <= n; j += 8)
    for (int u = 0; u < 8; u++) {
      const double d = x[j + u] - mu;
      v8[u] += d * d;
    }
  double v = ((v8[0] + v8[1]) + (v8[2] + v8[3])) + ((v8[4] + v8[5]) + (v8[6] + v8[7]));
  for (; j < n; j++) {
    const double d = x[j] - mu;
    v += d * d;
  }
  *mean = mu;
  *sq_dev = v;
}

/** y[i] = (x[i] - shift) * scale + bias. */
inline void affine(const float* x, float* y, i64 n, float shift, float scale, float bias) {
  for (i64 i = 0; i < n; i++) y[i] = (x[i] - shift) * scale + bias;
}

/** y[j] = (x[j] - shift) * scale * w[j] + b[j]; a null w is 1, a null b is 0. */
inline void normalize(const float* x, float* y, i64 n, float shift, float scale, const float* w, const float* b) {
  if (w && b) {
    for (i64 j = 0; j < n; j++) y[j] = (x[j] - shift) * scale * w[j] + b[j];
    return;
  }
  for (i64 j = 0; j < n; j++) {
    const float v = (x[j] - shift) * scale;
    y[j] = (w ? v * w[j] : v) + (b ? b[j] : 0.0f);
  }
}

}  // namespace norm_loops
}  // namespace diffuse
