// AVX-512 online-softmax step of the transposed-score attention (see vmath.h: softmax_panel). Compiled with
// -mavx512f (this file only); chosen at run time.
// GCC 12's AVX-512 intrinsics trip -Wmaybe-uninitialized on their internal _mm512_undefined_ps (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "vmath.h"

namespace diffuse {

namespace {

inline __m512 set(float v) { return _mm512_set1_ps(v); }

/**
 * 2^(x - shift) as 2^n * 2^f, n = round(x - shift), |f| <= 1/2: 2^f by kExp2Fit (vmath.h; exact at 0, so a
 * running max that did not move gives a correction of exactly 1) and 2^n by vscalefps
 * (exact, including subnormal results and underflow to 0). kMayBeNegInf: x may be -inf (an additive mask), so
 * x - shift is clamped below at -151 first (else -inf - round(-inf) would be NaN); finite scores skip that.
 */
template <bool kMayBeNegInf>
inline __m512 vexp2_shifted(__m512 x, __m512 shift) {
  __m512 t = _mm512_sub_ps(x, shift);
  if (kMayBeNegInf) t = _mm512_max_ps(set(-151.0f), t);
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, n);
  __m512 p = set(kExp2Fit[4]);
#pragma GCC unroll 4
  for (int i = 3; i >= 0; i--) p = _mm512_fmadd_ps(p, f, set(kExp2Fit[i]));
  p = _mm512_fmadd_ps(p, f, set(1.0f));
  return _mm512_scalef_ps(p, n);
}

template <bool kMayBeNegInf>
void softmax_panel_impl(float* x, i64 rows, int nr, float* m, float* l, float* corr) {
  const __m512 ninf = set(-__builtin_inff()), zero = _mm512_setzero_ps();
  for (int g = 0; g < nr; g += 16) {
    float* col = x + g;
    __m512 m0 = ninf, m1 = ninf, m2 = ninf, m3 = ninf;
    i64 r = 0;
    for (; r + 4 <= rows; r += 4) {
      m0 = _mm512_max_ps(m0, _mm512_loadu_ps(col + r * nr));
      m1 = _mm512_max_ps(m1, _mm512_loadu_ps(col + (r + 1) * nr));
      m2 = _mm512_max_ps(m2, _mm512_loadu_ps(col + (r + 2) * nr));
      m3 = _mm512_max_ps(m3, _mm512_loadu_ps(col + (r + 3) * nr));
    }
    for (; r < rows; r++) m0 = _mm512_max_ps(m0, _mm512_loadu_ps(col + r * nr));
    const __m512 mold = _mm512_loadu_ps(m + g);
    const __m512 mnew = _mm512_max_ps(mold, _mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
    const __m512 shift = _mm512_mask_mov_ps(mnew, _mm512_cmp_ps_mask(mnew, ninf, _CMP_EQ_OQ), zero);
    const __m512 c = _mm512_mask_mov_ps(vexp2_shifted<true>(mold, mnew), _mm512_cmp_ps_mask(mold, ninf, _CMP_EQ_OQ), zero);
    __m512 s0 = zero, s1 = zero;
    r = 0;
    for (; r + 2 <= rows; r += 2) {
      const __m512 e0 = vexp2_shifted<kMayBeNegInf>(_mm512_loadu_ps(col + r * nr), shift);
      const __m512 e1 = vexp2_shifted<kMayBeNegInf>(_mm512_loadu_ps(col + (r + 1) * nr), shift);
      _mm512_storeu_ps(col + r * nr, e0);
      _mm512_storeu_ps(col + (r + 1) * nr, e1);
      s0 = _mm512_add_ps(s0, e0);
      s1 = _mm512_add_ps(s1, e1);
    }
    if (r < rows) {
      const __m512 e0 = vexp2_shifted<kMayBeNegInf>(_mm512_loadu_ps(col + r * nr), shift);
      _mm512_storeu_ps(col + r * nr, e0);
      s0 = _mm512_add_ps(s0, e0);
    }
    _mm512_storeu_ps(l + g, _mm512_fmadd_ps(_mm512_loadu_ps(l + g), c, _mm512_add_ps(s0, s1)));
    _mm512_storeu_ps(m + g, mnew);
    _mm512_storeu_ps(corr + g, c);
  }
}

}  // namespace

void softmax_panel_avx512(float* x, i64 rows, int nr, float* m, float* l, float* corr, bool may_be_neg_inf) {
  if (may_be_neg_inf) {
    softmax_panel_impl<true>(x, rows, nr, m, l, corr);
  } else {
    softmax_panel_impl<false>(x, rows, nr, m, l, corr);
  }
}

}  // namespace diffuse
