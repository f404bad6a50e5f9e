// Vectorised float32 math over contiguous arrays (y may alias x), with a scalar float64 fallback. The AVX2
// versions (vmath_avx2.cc) and AVX-512 ones of the hot functions (vmath_avx512.cc) are chosen at run time; they
// are accurate to a few float32 ulps.
#pragma once
#include "common.h"

namespace diffuse {

/**
 * 2^f = 1 + f (c[0] + f (c[1] + f (c[2] + f (c[3] + f c[4])))) for |f| <= 1/2: a relative-error fit with the
 * constant term held at 1 (2^0 is exact; 1.7e-7 worst case evaluated in float32). The attention softmax's 2^t.
 */
inline constexpr float kExp2Fit[5] = {6.931470036506653e-1f, 2.4022242426872253e-1f, 5.550733581185341e-2f,
                                      9.671512991189957e-3f, 1.326472731307149e-3f};

enum class VFn : int { kExp, kSigmoid, kSilu, kSiluGrad, kTanh, kGelu, kGeluGrad, kGeluTanh, kGeluTanhGrad, kCount };

/** y[i] = f(x[i]) for i < n. */
void vmath(VFn f, const float* x, float* y, i64 n);

/** max of x[0..n) (-inf when n = 0); NaN if any element is NaN. */
float vmax(const float* x, i64 n);

/** x[i] = exp(x[i] - shift) in place; returns the sum of the new values. */
float vexp_shift_sum(float* x, i64 n, float shift);

/**
 * One online-softmax step in base 2 over a score block stored as a GEMM B panel: x is [rows][nr] (row stride
 * nr), one softmax column per lane (attention with transposed scores: rows are keys, lanes are queries), scores
 * already multiplied by log2(e) (folded into the query scale). Per lane t, with the running max m[t] and sum
 * l[t]:  m' = max(m, max_r x[r][t]),  x[r][t] = 2^(x[r][t] - m'),  corr[t] = 2^(m - m') (0 while m = -inf),
 * l = l * corr + sum_r x[r][t],  m = m'. A lane whose scores are all -inf so far keeps m = -inf and gets zeros.
 * may_be_neg_inf: scores can be -inf (a mask was added); when false they must be finite (or NaN), which spares
 * the fast path a clamp. nr is a multiple of 16.
 */
void softmax_panel(float* x, i64 rows, int nr, float* m, float* l, float* corr, bool may_be_neg_inf);

/** Mean and sum of squared deviations of x[0..n) in float64, two passes (the statistics of the normalisations). */
void vmoments(const float* x, i64 n, double* mean, double* sq_dev);

/** y[i] = (x[i] - shift) * scale + bias (float32; y may alias x). */
void vaffine(const float* x, float* y, i64 n, float shift, float scale, float bias);

/** y[j] = (x[j] - shift) * scale * w[j] + b[j] (float32; a null w is 1, a null b is 0; y may alias x). */
void vnormalize(const float* x, float* y, i64 n, float shift, float scale, const float* w, const float* b);

/**
 * Selects the implementation: "avx512", "avx2", "portable" or "" (best for this CPU). False if the CPU cannot run
 * it.
 */
bool select_vmath(const char* name);

using VMathFn = void (*)(VFn f, const float* x, float* y, i64 n);
#if defined(DIFFUSE_HAVE_X86_KERNELS)
void vmath_avx2(VFn f, const float* x, float* y, i64 n);
float vmax_avx2(const float* x, i64 n);
float vexp_shift_sum_avx2(float* x, i64 n, float shift);
void softmax_panel_avx2(float* x, i64 rows, int nr, float* m, float* l, float* corr, bool may_be_neg_inf);
void vmath_avx512(VFn f, const float* x, float* y, i64 n);
void vmoments_avx2(const float* x, i64 n, double* mean, double* sq_dev);
void vaffine_avx2(const float* x, float* y, i64 n, float shift, float scale, float bias);
void vnormalize_avx2(const float* x, float* y, i64 n, float shift, float scale, const float* w, const float* b);
void vmoments_avx512(const float* x, i64 n, double* mean, double* sq_dev);
void vaffine_avx512(const float* x, float* y, i64 n, float shift, float scale, float bias);
void vnormalize_avx512(const float* x, float* y, i64 n, float shift, float scale, const float* w, const float* b);
void softmax_panel_avx512(float* x, i64 rows, int nr, float* m, float* l, float* corr, bool may_be_neg_inf);
#endif

}  // namespace diffuse
