// AVX2 + FMA micro-kernel, 6 x 16. Compiled with -mavx2 -mfma (this file only); selected at run time.
// 12 accumulators + 2 B vectors + 1 broadcast = 15 of the 16 ymm registers. Named variables, not an array,
// so the compiler keeps every accumulator in a register.
#include <immintrin.h>

#include "gemm.h"

namespace diffuse {

namespace {

#define DIFFUSE_ROW_FMA(r)                      \
  {                                             \
    const __m256 av = _mm256_broadcast_ss(a + r); \
    c##r##0 = _mm256_fmadd_ps(av, b0, c##r##0); \
    c##r##1 = _mm256_fmadd_ps(av, b1, c##r##1); \
  }

#define DIFFUSE_ROW_STORE(r)                                              \
  {                                                                       \
    float* cr = c + (r) * ldc;                                            \
    __m256 x0 = _mm256_mul_ps(c##r##0, va);                               \
    __m256 x1 = _mm256_mul_ps(c##r##1, va);                               \
    if (bias_m) {                                                         \
      const __m256 bm = _mm256_set1_ps(bias_m[r]);                        \
      x0 = _mm256_add_ps(x0, bm);                                         \
      x1 = _mm256_add_ps(x1, bm);                                         \
    }                                                                     \
    if (bias_n) {                                                         \
      x0 = _mm256_add_ps(x0, bn0);                                        \
      x1 = _mm256_add_ps(x1, bn1);                                        \
    }                                                                     \
    if (beta) {                                                           \
      x0 = _mm256_add_ps(_mm256_loadu_ps(cr), x0);                        \
      x1 = _mm256_add_ps(_mm256_loadu_ps(cr + 8), x1);                    \
    }                                                                     \
    _mm256_storeu_ps(cr, x0);                                             \
    _mm256_storeu_ps(cr + 8, x1);                                         \
  }

void kernel_6x16(i64 k, const float* a, const float* b, float* c, i64 ldc, float alpha, int beta,
                 const float* bias_n, const float* bias_m) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int r = 0; r < 6; r++) _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
#pragma GCC unroll 4
  for (i64 p = 0; p < k; p++) {
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
    DIFFUSE_ROW_FMA(0)
    DIFFUSE_ROW_FMA(1)
    DIFFUSE_ROW_FMA(2)
    DIFFUSE_ROW_FMA(3)
    DIFFUSE_ROW_FMA(4)
    DIFFUSE_ROW_FMA(5)
    a += 6;
    b += 16;
  }
  const __m256 va = _mm256_set1_ps(alpha);
  __m256 bn0 = _mm256_setzero_ps(), bn1 = _mm256_setzero_ps();
  if (bias_n) {
    bn0 = _mm256_loadu_ps(bias_n);
    bn1 = _mm256_loadu_ps(bias_n + 8);
  }
  DIFFUSE_ROW_STORE(0)
  DIFFUSE_ROW_STORE(1)
  DIFFUSE_ROW_STORE(2)
  DIFFUSE_ROW_STORE(3)
  DIFFUSE_ROW_STORE(4)
  DIFFUSE_ROW_STORE(5)
}

#undef DIFFUSE_ROW_FMA
#undef DIFFUSE_ROW_STORE

}  // namespace

extern const PackKernels kAvx2Pack;  // pack_avx2.cc
extern const KernelInfo kAvx2Kernel;
const KernelInfo kAvx2Kernel = {"avx2", 6, 16, 384, 144, 4080, kernel_6x16, &kAvx2Pack};

}  // namespace diffuse
