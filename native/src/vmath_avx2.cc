// AVX2 + FMA versions of the vmath functions (compiled with -mavx2 -mfma; chosen at run time).
//   exp: Cody-Waite range reduction x = n ln2 + r, |r| <= ln2/2, a degree-6 polynomial for e^r (Cephes expf
//        coefficients), and 2^n applied in two halves so results that underflow to subnormals stay right.
//   sigmoid(x) = 1 / (1 + e^-x); silu(x) = x * sigmoid(x); tanh: odd polynomial for |x| < 0.625 (Cephes tanhf),
//        else 1 - 2 / (e^{2|x|} + 1).
//   gelu_tanh(x) = 0.5 x (1 + tanh u) = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3) (no cancellation).
//   gelu(x) = 0.5 x erfc(-x / sqrt2), erfc from the Chebyshev fit of Numerical Recipes (erfcc, fractional
//        error < 1.2e-7 everywhere), so both tails keep their relative accuracy.
#include <immintrin.h>

#include "norm_loops.h"
#include "vmath.h"

namespace diffuse {

namespace {

inline __m256 set(float v) { return _mm256_set1_ps(v); }

inline __m256 vexp(__m256 x) {
  const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, set(-104.0f)), set(89.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, set(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, set(0.693359375f), xc);
  r = _mm256_fnmadd_ps(n, set(-2.12194440e-4f), r);
  __m256 p = set(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, set(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, set(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, set(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, set(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, set(5.0000001201e-1f));
  __m256 y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, set(1.0f)));
  // 2^n = 2^n1 * 2^n2 with n1 = n >> 1, both halves normal numbers for n in [-150, 129]
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  y = _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23)));
  y = _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23)));
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));  // NaN in, NaN out
}

inline __m256 vsigmoid(__m256 x) {
  return _mm256_div_ps(set(1.0f), _mm256_add_ps(set(1.0f), vexp(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

inline __m256 vtanh(__m256 x) {
  const __m256 sign = _mm256_and_ps(x, set(-0.0f));
  const __m256 ax = _mm256_andnot_ps(set(-0.0f), x);
  const __m256 z = _mm256_mul_ps(x, x);
  __m256 p = set(-5.70498872745e-3f);
  p = _mm256_fmadd_ps(p, z, set(2.06390887954e-2f));
  p = _mm256_fmadd_ps(p, z, set(-5.37397155531e-2f));
  p = _mm256_fmadd_ps(p, z, set(1.33314422036e-1f));
  p = _mm256_fmadd_ps(p, z, set(-3.33332819422e-1f));
  const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
  const __m256 e = vexp(_mm256_add_ps(ax, ax));
  const __m256 big = _mm256_sub_ps(set(1.0f), _mm256_div_ps(set(2.0f), _mm256_add_ps(e, set(1.0f))));
  const __m256 r = _mm256_blendv_ps(_mm256_or_ps(big, sign), small, _mm256_cmp_ps(ax, set(0.625f), _CMP_LT_OQ));
  return _mm256_blendv_ps(r, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

/** erfc(z) (Numerical Recipes erfcc: t = 1/(1 + |z|/2), erfc = t exp(-z^2 + P(t)) for z >= 0; 2 - that for z < 0). */
inline __m256 verfc(__m256 z) {
  const __m256 az = _mm256_andnot_ps(set(-0.0f), z);
  const __m256 t = _mm256_div_ps(set(1.0f), _mm256_fmadd_ps(set(0.5f), az, set(1.0f)));
  __m256 p = set(0.17087277f);
  p = _mm256_fmadd_ps(p, t, set(-0.82215223f));
  p = _mm256_fmadd_ps(p, t, set(1.48851587f));
  p = _mm256_fmadd_ps(p, t, set(-1.13520398f));
  p = _mm256_fmadd_ps(p, t, set(0.27886807f));
  p = _mm256_fmadd_ps(p, t, set(-0.18628806f));
  p = _mm256_fmadd_ps(p, t, set(0.09678418f));
  p = _mm256_fmadd_ps(p, t, set(0.37409196f));
  p = _mm256_fmadd_ps(p, t, set(1.00002368f));
  p = _mm256_fmadd_ps(p, t, set(-1.26551223f));
  const __m256 ans = _mm256_mul_ps(t, vexp(_mm256_fnmadd_ps(az, az, p)));
  return _mm256_blendv_ps(ans, _mm256_sub_ps(set(2.0f), ans), _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ));
}

constexpr float kSqrt1_2 = 0.70710678118654752440f;
constexpr float kSqrt2OverPi = 0.79788456080286535588f;
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;

template <VFn F>
inline __m256 apply(__m256 x) {
  const __m256 one = set(1.0f);
  if constexpr (F == VFn::kExp) {
    return vexp(x);
  } else if constexpr (F == VFn::kSigmoid) {
    return vsigmoid(x);
  } else if constexpr (F == VFn::kSilu) {
    return _mm256_div_ps(x, _mm256_add_ps(one, vexp(_mm256_sub_ps(_mm256_setzero_ps(), x))));
  } else if constexpr (F == VFn::kSiluGrad) {
    const __m256 s = vsigmoid(x);
    return _mm256_mul_ps(s, _mm256_fmadd_ps(x, _mm256_sub_ps(one, s), one));
  } else if constexpr (F == VFn::kTanh) {
    return vtanh(x);
  } else if constexpr (F == VFn::kGelu) {
    const __m256 e = verfc(_mm256_mul_ps(x, set(-kSqrt1_2)));
    return _mm256_mul_ps(_mm256_mul_ps(set(0.5f), x), e);
  } else if constexpr (F == VFn::kGeluGrad) {
    const __m256 cdf = _mm256_mul_ps(set(0.5f), verfc(_mm256_mul_ps(x, set(-kSqrt1_2))));
    const __m256 pdf = _mm256_mul_ps(set(kInvSqrt2Pi), vexp(_mm256_mul_ps(set(-0.5f), _mm256_mul_ps(x, x))));
    return _mm256_fmadd_ps(x, pdf, cdf);
  } else if constexpr (F == VFn::kGeluTanh || F == VFn::kGeluTanhGrad) {
    const __m256 x2 = _mm256_mul_ps(x, x);
    const __m256 u = _mm256_mul_ps(set(kSqrt2OverPi), _mm256_fmadd_ps(_mm256_mul_ps(set(0.044715f), x2), x, x));
    const __m256 s = vsigmoid(_mm256_add_ps(u, u));  // 0.5 (1 + tanh u)
    if constexpr (F == VFn::kGeluTanh) {
      return _mm256_mul_ps(x, s);
    } else {
      // d/dx = s + 2 x s (1 - s) du/dx
      const __m256 du = _mm256_mul_ps(set(kSqrt2OverPi), _mm256_fmadd_ps(set(3.0f * 0.044715f), x2, one));
      const __m256 ds = _mm256_mul_ps(_mm256_mul_ps(s, _mm256_sub_ps(one, s)), du);
      return _mm256_fmadd_ps(_mm256_add_ps(x, x), ds, s);
    }
  } else {
    return x;
  }
}

template <VFn F>
void run(const float* x, float* y, i64 n) {
  i64 i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, apply<F>(_mm256_loadu_ps(x + i)));
  if (i < n) {
    // the tail goes through the same vector code with masked loads and stores
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n - i)), lane);
    _mm256_maskstore_ps(y + i, mask, apply<F>(_mm256_maskload_ps(x + i, mask)));
  }
}

inline __m256i tail_mask(i64 left) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(left)), lane);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace

float vmax_avx2(const float* x, i64 n) {
  const __m256 ninf = set(-__builtin_inff());
  __m256 mx = ninf, nan = _mm256_setzero_ps();
  i64 i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    mx = _mm256_max_ps(mx, v);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  if (i < n) {
    const __m256i mask = tail_mask(n - i);
    const __m256 v = _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + i, mask), _mm256_castsi256_ps(mask));
    mx = _mm256_max_ps(mx, v);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  if (_mm256_movemask_ps(nan)) return __builtin_nanf("");
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

float vexp_shift_sum_avx2(float* x, i64 n, float shift) {
  const __m256 sh = set(shift);
  __m256 acc = _mm256_setzero_ps();
  i64 i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = vexp(_mm256_sub_ps(_mm256_loadu_ps(x + i), sh));
    _mm256_storeu_ps(x + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  if (i < n) {
    const __m256i mask = tail_mask(n - i);
    __m256 e = vexp(_mm256_sub_ps(_mm256_maskload_ps(x + i, mask), sh));
    e = _mm256_and_ps(e, _mm256_castsi256_ps(mask));
    _mm256_maskstore_ps(x + i, mask, e);
    acc = _mm256_add_ps(acc, e);
  }
  return hsum(acc);
}

/**
 * 2^(x - shift) for the base-2 softmax (x <= shift): t = max(x - shift, -127), n = round(t), 2^f by kExp2Fit
 * (vmath.h, as the AVX-512 path), 2^n from the exponent bits, where n = -127 gives 0: a
 * weight under 2^-126 of the largest one is dropped, which no float32 sum of them can see. -inf gives 0, NaN stays.
 */
inline __m256 vexp2_shifted(__m256 x, __m256 shift) {
  const __m256 t = _mm256_max_ps(set(-127.0f), _mm256_sub_ps(x, shift));
  const __m256 n = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(t, n);
  __m256 p = set(kExp2Fit[4]);
#pragma GCC unroll 4
  for (int i = 3; i >= 0; i--) p = _mm256_fmadd_ps(p, f, set(kExp2Fit[i]));
  p = _mm256_fmadd_ps(p, f, set(1.0f));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

void softmax_panel_avx2(float* x, i64 rows, int nr, float* m, float* l, float* corr, bool) {
  const __m256 ninf = set(-__builtin_inff()), zero = _mm256_setzero_ps();
  for (int g = 0; g < nr; g += 8) {
    float* col = x + g;
    __m256 m0 = ninf, m1 = ninf;
    i64 r = 0;
    for (; r + 2 <= rows; r += 2) {
      m0 = _mm256_max_ps(m0, _mm256_loadu_ps(col + r * nr));
      m1 = _mm256_max_ps(m1, _mm256_loadu_ps(col + (r + 1) * nr));
    }
    if (r < rows) m0 = _mm256_max_ps(m0, _mm256_loadu_ps(col + r * nr));
    const __m256 mold = _mm256_loadu_ps(m + g);
    const __m256 mnew = _mm256_max_ps(mold, _mm256_max_ps(m0, m1));
    const __m256 shift = _mm256_blendv_ps(mnew, zero, _mm256_cmp_ps(mnew, ninf, _CMP_EQ_OQ));
    const __m256 c = _mm256_blendv_ps(vexp2_shifted(mold, mnew), zero, _mm256_cmp_ps(mold, ninf, _CMP_EQ_OQ));
    __m256 s0 = zero, s1 = zero;
    r = 0;
    for (; r + 2 <= rows; r += 2) {
      const __m256 e0 = vexp2_shifted(_mm256_loadu_ps(col + r * nr), shift);
      const __m256 e1 = vexp2_shifted(_mm256_loadu_ps(col + (r + 1) * nr), shift);
      _mm256_storeu_ps(col + r * nr, e0);
      _mm256_storeu_ps(col + (r + 1) * nr, e1);
      s0 = _mm256_add_ps(s0, e0);
      s1 = _mm256_add_ps(s1, e1);
    }
    if (r < rows) {
      const __m256 e0 = vexp2_shifted(_mm256_loadu_ps(col + r * nr), shift);
      _mm256_storeu_ps(col + r * nr, e0);
      s0 = _mm256_add_ps(s0, e0);
    }
    _mm256_storeu_ps(l + g, _mm256_fmadd_ps(_mm256_loadu_ps(l + g), c, _mm256_add_ps(s0, s1)));
    _mm256_storeu_ps(m + g, mnew);
    _mm256_storeu_ps(corr + g, c);
  }
}

void vmath_avx2(VFn f, const float* x, float* y, i64 n) {
  switch (f) {
    case VFn::kExp:
      return run<VFn::kExp>(x, y, n);
    case VFn::kSigmoid:
      return run<VFn::kSigmoid>(x, y, n);
    case VFn::kSilu:
      return run<VFn::kSilu>(x, y, n);
    case VFn::kSiluGrad:
      return run<VFn::kSiluGrad>(x, y, n);
    case VFn::kTanh:
      return run<VFn::kTanh>(x, y, n);
    case VFn::kGelu:
      return run<VFn::kGelu>(x, y, n);
    case VFn::kGeluGrad:
      return run<VFn::kGeluGrad>(x, y, n);
    case VFn::kGeluTanh:
      return run<VFn::kGeluTanh>(x, y, n);
    case VFn::kGeluTanhGrad:
      return run<VFn::kGeluTanhGrad>(x, y, n);
    case VFn::kCount:
      break;
  }
}

// the normalisation loops, vectorised by the compiler for AVX2
void vmoments_avx2(const float* x, i64 n, double* mean, double* sq_dev) { norm_loops::moments(x, n, mean, sq_dev); }

void vaffine_avx2(const float* x, float* y, i64 n, float shift, float scale, float bias) {
  norm_loops::affine(x, y, n, shift, scale, bias);
}

void vnormalize_avx2(const float* x, float* y, i64 n, float shift, float scale, const float* w, const float* b) {
  norm_loops::normalize(x, y, n, shift, scale, w, b);
}

}  // namespace diffuse
