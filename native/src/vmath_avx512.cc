// AVX-512 versions of the hot vmath functions (exp, sigmoid, SiLU, GELU erf and tanh forms); the others use the
// AVX2 ones. Same formulas as vmath_avx2.cc (see there), 16 lanes, with 2^n applied by vscalefps (exact, subnormal
// results included) and the divisions replaced by vrcp14ps plus one Newton step (relative error ~2^-28).
// Compiled with -mavx512f (this file only); chosen at run time.
// GCC 12's AVX-512 intrinsics trip -Wmaybe-uninitialized on their internal _mm512_undefined_ps (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "vmath.h"

namespace diffuse {

namespace {

inline __m512 set(float v) { return _mm512_set1_ps(v); }

/** e^x: n = round(x log2 e), r = x - n ln2 (two-part ln2), Cephes polynomial for e^r, times 2^n. NaN stays. */
inline __m512 vexp(__m512 x) {
  const __m512 xc = _mm512_min_ps(set(89.0f), _mm512_max_ps(set(-104.0f), x));  // NaN is the second operand
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, set(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, set(0.693359375f), xc);
  r = _mm512_fnmadd_ps(n, set(-2.12194440e-4f), r);
  __m512 p = set(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, set(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, set(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, set(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, set(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, set(5.0000001201e-1f));
  const __m512 y = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, set(1.0f)));
  return _mm512_scalef_ps(y, n);
}

/** 1 / d for d >= 1 (or +inf, giving 0) by vrcp14ps and one Newton step: r (2 - d r). */
inline __m512 vrcp(__m512 d) {
  const __m512 r = _mm512_rcp14_ps(d);
  const __m512 y = _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, set(2.0f)));
  return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(d, set(__builtin_inff()), _CMP_EQ_OQ), _mm512_setzero_ps());
}

/** 1 / (1 + e^-x) (e^-x may overflow to +inf: the result is then 0). */
inline __m512 vsigmoid(__m512 x) {
  return vrcp(_mm512_add_ps(set(1.0f), vexp(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

/** erfc(z), Numerical Recipes erfcc as in vmath_avx2.cc. */
inline __m512 verfc(__m512 z) {
  const __m512 az = _mm512_abs_ps(z);
  const __m512 t = vrcp(_mm512_fmadd_ps(set(0.5f), az, set(1.0f)));
  __m512 p = set(0.17087277f);
  p = _mm512_fmadd_ps(p, t, set(-0.82215223f));
  p = _mm512_fmadd_ps(p, t, set(1.48851587f));
  p = _mm512_fmadd_ps(p, t, set(-1.13520398f));
  p = _mm512_fmadd_ps(p, t, set(0.27886807f));
  p = _mm512_fmadd_ps(p, t, set(-0.18628806f));
  p = _mm512_fmadd_ps(p, t, set(0.09678418f));
  p = _mm512_fmadd_ps(p, t, set(0.37409196f));
  p = _mm512_fmadd_ps(p, t, set(1.00002368f));
  p = _mm512_fmadd_ps(p, t, set(-1.26551223f));
  const __m512 ans = _mm512_mul_ps(t, vexp(_mm512_fnmadd_ps(az, az, p)));
  return _mm512_mask_sub_ps(ans, _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ), set(2.0f), ans);
}

constexpr float kSqrt1_2 = 0.70710678118654752440f;
constexpr float kSqrt2OverPi = 0.79788456080286535588f;

template <VFn F>
inline __m512 apply(__m512 x) {
  if constexpr (F == VFn::kExp) {
    return vexp(x);
  } else if constexpr (F == VFn::kSigmoid) {
    return vsigmoid(x);
  } else if constexpr (F == VFn::kSilu) {
    return _mm512_mul_ps(x, vsigmoid(x));
  } else if constexpr (F == VFn::kGelu) {
    return _mm512_mul_ps(_mm512_mul_ps(set(0.5f), x), verfc(_mm512_mul_ps(x, set(-kSqrt1_2))));
  } else {  // kGeluTanh: x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3)
    const __m512 x2 = _mm512_mul_ps(x, x);
    const __m512 u = _mm512_mul_ps(set(kSqrt2OverPi), _mm512_fmadd_ps(_mm512_mul_ps(set(0.044715f), x2), x, x));
    return _mm512_mul_ps(x, vsigmoid(_mm512_add_ps(u, u)));
  }
}

template <VFn F>
void run(const float* x, float* y, i64 n) {
  i64 i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, apply<F>(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(y + i, m, apply<F>(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

}  // namespace

void vmath_avx512(VFn f, const float* x, float* y, i64 n) {
  switch (f) {
    case VFn::kExp:
      return run<VFn::kExp>(x, y, n);
    case VFn::kSigmoid:
      return run<VFn::kSigmoid>(x, y, n);
    case VFn::kSilu:
      return run<VFn::kSilu>(x, y, n);
    case VFn::kGelu:
      return run<VFn::kGelu>(x, y, n);
    case VFn::kGeluTanh:
      return run<VFn::kGeluTanh>(x, y, n);
    default:
      return vmath_avx2(f, x, y, n);
  }
}

}  // namespace diffuse
