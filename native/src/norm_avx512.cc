// AVX-512 row loops of group norm and layer norm (see vmath.h: vmoments, vaffine, vnormalize): float64
// statistics from 8 floats at a time (widened as they are loaded, four independent sums), and the normalisation in
// float32 by the portable loops' formulas (the compiler may contract a multiply and add into an FMA, here or
// there: the levels agree to an ulp or so, which the property tests allow). Compiled with -mavx512f (this file
// only); chosen at run time with the rest of vmath.
// GCC 12's AVX-512 intrinsics trip -Wmaybe-uninitialized / -Wuninitialized on their internal _mm512_undefined_*
// (GCC bug 105593; here inside _mm512_reduce_add_pd).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include "vmath.h"

namespace diffuse {

namespace {

/** x[0..8) widened to float64. */
inline __m512d load8_pd(const float* x) { return _mm512_cvtps_pd(_mm256_loadu_ps(x)); }

/** x[0..n) widened to float64 (n < 8), the other lanes 0. */
inline __m512d load_tail_pd(const float* x, i64 n) {
  return _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1u), x)));
}

}  // namespace

void vmoments_avx512(const float* x, i64 n, double* mean, double* sq_dev) {
  __m512d s0 = _mm512_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
  i64 i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm512_add_pd(s0, load8_pd(x + i));
    s1 = _mm512_add_pd(s1, load8_pd(x + i + 8));
    s2 = _mm512_add_pd(s2, load8_pd(x + i + 16));
    s3 = _mm512_add_pd(s3, load8_pd(x + i + 24));
  }
  for (; i + 8 <= n; i += 8) s0 = _mm512_add_pd(s0, load8_pd(x + i));
  if (i < n) s1 = _mm512_add_pd(s1, load_tail_pd(x + i, n - i));
  const double mu =
      n > 0 ? _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(s0, s1), _mm512_add_pd(s2, s3))) / n : 0.0;
  const __m512d m = _mm512_set1_pd(mu);
  __m512d v0 = _mm512_setzero_pd(), v1 = v0, v2 = v0, v3 = v0;
  i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512d d0 = _mm512_sub_pd(load8_pd(x + i), m), d1 = _mm512_sub_pd(load8_pd(x + i + 8), m);
    const __m512d d2 = _mm512_sub_pd(load8_pd(x + i + 16), m), d3 = _mm512_sub_pd(load8_pd(x + i + 24), m);
    v0 = _mm512_fmadd_pd(d0, d0, v0);
    v1 = _mm512_fmadd_pd(d1, d1, v1);
    v2 = _mm512_fmadd_pd(d2, d2, v2);
    v3 = _mm512_fmadd_pd(d3, d3, v3);
  }
  for (; i + 8 <= n; i += 8) {
    const __m512d d = _mm512_sub_pd(load8_pd(x + i), m);
    v0 = _mm512_fmadd_pd(d, d, v0);
  }
  if (i < n) {
    // lanes past n would contribute mu^2: they are left out of the deviations
    const __mmask8 k = static_cast<__mmask8>((1u << (n - i)) - 1u);
    const __m512d d = _mm512_maskz_sub_pd(k, load_tail_pd(x + i, n - i), m);
    v1 = _mm512_fmadd_pd(d, d, v1);
  }
  *mean = mu;
  *sq_dev = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(v0, v1), _mm512_add_pd(v2, v3)));
}

void vaffine_avx512(const float* x, float* y, i64 n, float shift, float scale, float bias) {
  const __m512 sh = _mm512_set1_ps(shift), sc = _mm512_set1_ps(scale), b = _mm512_set1_ps(bias);
  i64 i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), sh), sc), b));
  if (i < n) {
    const __mmask16 k = static_cast<__mmask16>((1u << (n - i)) - 1u);
    const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
    _mm512_mask_storeu_ps(y + i, k, _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(v, sh), sc), b));
  }
}

void vnormalize_avx512(const float* x, float* y, i64 n, float shift, float scale, const float* w, const float* b) {
  const __m512 sh = _mm512_set1_ps(shift), sc = _mm512_set1_ps(scale), one = _mm512_set1_ps(1.0f);
  const __m512 zero = _mm512_setzero_ps();
  for (i64 i = 0; i < n; i += 16) {
    const __mmask16 k = static_cast<__mmask16>(n - i >= 16 ? 0xffffu : (1u << (n - i)) - 1u);
    const __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), sh), sc);
    const __m512 wv = w ? _mm512_maskz_loadu_ps(k, w + i) : one;
    const __m512 bv = b ? _mm512_maskz_loadu_ps(k, b + i) : zero;
    _mm512_mask_storeu_ps(y + i, k, _mm512_add_ps(_mm512_mul_ps(v, wv), bv));
  }
}

}  // namespace diffuse
