// AVX-512F micro-kernels, 14 x 32 and a narrow 10 x 32. Compiled with -mavx512f -mfma (this file only); selected
// at run time. 14 x 32: 28 accumulators + 2 B vectors + 1 broadcast = 31 of the 32 zmm registers (named
// variables, no array). 10 x 32 is for products with few rows that 14-row panels would pad: attention's
// O^T = V^T P^T, whose rows are the head width (40 -> 42, 80 -> 84). Measured there: ~4% fewer cycles than the
// 14-row kernel on 42 rows; an 8 x 32 kernel (16 accumulators) lost what it saved in padding.
#include <immintrin.h>

#include "gemm.h"

namespace diffuse {

namespace {

#define DIFFUSE_ROW_FMA(r)                       \
  {                                              \
    const __m512 av = _mm512_set1_ps(a[r]);      \
    c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0); \
    c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1); \
  }

#define DIFFUSE_ROW_STORE(r)                                   \
  {                                                            \
    float* cr = c + (r) * ldc;                                 \
    __m512 x0 = scale ? _mm512_mul_ps(c##r##0, va) : c##r##0;  \
    __m512 x1 = scale ? _mm512_mul_ps(c##r##1, va) : c##r##1;  \
    if (bias_m) {                                              \
      const __m512 bm = _mm512_set1_ps(bias_m[r]);             \
      x0 = _mm512_add_ps(x0, bm);                              \
      x1 = _mm512_add_ps(x1, bm);                              \
    }                                                          \
    if (bias_n) {                                              \
      x0 = _mm512_add_ps(x0, bn0);                             \
      x1 = _mm512_add_ps(x1, bn1);                             \
    }                                                          \
    if (beta) {                                                \
      x0 = _mm512_add_ps(_mm512_loadu_ps(cr), x0);             \
      x1 = _mm512_add_ps(_mm512_loadu_ps(cr + 16), x1);        \
    }                                                          \
    _mm512_storeu_ps(cr, x0);                                  \
    _mm512_storeu_ps(cr + 16, x1);                             \
  }

#define DIFFUSE_DECL(r) __m512 c##r##0 = _mm512_setzero_ps(), c##r##1 = _mm512_setzero_ps();

void kernel_14x32(i64 k, const float* a, const float* b, float* c, i64 ldc, float alpha, int beta,
                  const float* bias_n, const float* bias_m) {
  DIFFUSE_DECL(0)
  DIFFUSE_DECL(1)
  DIFFUSE_DECL(2)
  DIFFUSE_DECL(3)
  DIFFUSE_DECL(4)
  DIFFUSE_DECL(5)
  DIFFUSE_DECL(6)
  DIFFUSE_DECL(7)
  DIFFUSE_DECL(8)
  DIFFUSE_DECL(9)
  __m512 c100 = _mm512_setzero_ps(), c101 = _mm512_setzero_ps();
  __m512 c110 = _mm512_setzero_ps(), c111 = _mm512_setzero_ps();
  __m512 c120 = _mm512_setzero_ps(), c121 = _mm512_setzero_ps();
  __m512 c130 = _mm512_setzero_ps(), c131 = _mm512_setzero_ps();
  for (int r = 0; r < 14; r++) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 16), _MM_HINT_T0);
  }
#pragma GCC unroll 2
  for (i64 p = 0; p < k; p++) {
    const __m512 b0 = _mm512_load_ps(b);
    const __m512 b1 = _mm512_load_ps(b + 16);
    DIFFUSE_ROW_FMA(0)
    DIFFUSE_ROW_FMA(1)
    DIFFUSE_ROW_FMA(2)
    DIFFUSE_ROW_FMA(3)
    DIFFUSE_ROW_FMA(4)
    DIFFUSE_ROW_FMA(5)
    DIFFUSE_ROW_FMA(6)
    DIFFUSE_ROW_FMA(7)
    DIFFUSE_ROW_FMA(8)
    DIFFUSE_ROW_FMA(9)
    DIFFUSE_ROW_FMA(10)
    DIFFUSE_ROW_FMA(11)
    DIFFUSE_ROW_FMA(12)
    DIFFUSE_ROW_FMA(13)
    a += 14;
    b += 32;
  }
  const __m512 va = _mm512_set1_ps(alpha);
  const bool scale = alpha != 1.0f;
  __m512 bn0 = _mm512_setzero_ps(), bn1 = _mm512_setzero_ps();
  if (bias_n) {
    bn0 = _mm512_loadu_ps(bias_n);
    bn1 = _mm512_loadu_ps(bias_n + 16);
  }
  DIFFUSE_ROW_STORE(0)
  DIFFUSE_ROW_STORE(1)
  DIFFUSE_ROW_STORE(2)
  DIFFUSE_ROW_STORE(3)
  DIFFUSE_ROW_STORE(4)
  DIFFUSE_ROW_STORE(5)
  DIFFUSE_ROW_STORE(6)
  DIFFUSE_ROW_STORE(7)
  DIFFUSE_ROW_STORE(8)
  DIFFUSE_ROW_STORE(9)
  DIFFUSE_ROW_STORE(10)
  DIFFUSE_ROW_STORE(11)
  DIFFUSE_ROW_STORE(12)
  DIFFUSE_ROW_STORE(13)
}

void kernel_10x32(i64 k, const float* a, const float* b, float* c, i64 ldc, float alpha, int beta,
                  const float* bias_n, const float* bias_m) {
  DIFFUSE_DECL(0)
  DIFFUSE_DECL(1)
  DIFFUSE_DECL(2)
  DIFFUSE_DECL(3)
  DIFFUSE_DECL(4)
  DIFFUSE_DECL(5)
  DIFFUSE_DECL(6)
  DIFFUSE_DECL(7)
  DIFFUSE_DECL(8)
  DIFFUSE_DECL(9)
  for (int r = 0; r < 10; r++) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 16), _MM_HINT_T0);
  }
#pragma GCC unroll 2
  for (i64 p = 0; p < k; p++) {
    const __m512 b0 = _mm512_load_ps(b);
    const __m512 b1 = _mm512_load_ps(b + 16);
    DIFFUSE_ROW_FMA(0)
    DIFFUSE_ROW_FMA(1)
    DIFFUSE_ROW_FMA(2)
    DIFFUSE_ROW_FMA(3)
    DIFFUSE_ROW_FMA(4)
    DIFFUSE_ROW_FMA(5)
    DIFFUSE_ROW_FMA(6)
    DIFFUSE_ROW_FMA(7)
    DIFFUSE_ROW_FMA(8)
    DIFFUSE_ROW_FMA(9)
    a += 10;
    b += 32;
  }
  const __m512 va = _mm512_set1_ps(alpha);
  const bool scale = alpha != 1.0f;
  __m512 bn0 = _mm512_setzero_ps(), bn1 = _mm512_setzero_ps();
  if (bias_n) {
    bn0 = _mm512_loadu_ps(bias_n);
    bn1 = _mm512_loadu_ps(bias_n + 16);
  }
  DIFFUSE_ROW_STORE(0)
  DIFFUSE_ROW_STORE(1)
  DIFFUSE_ROW_STORE(2)
  DIFFUSE_ROW_STORE(3)
  DIFFUSE_ROW_STORE(4)
  DIFFUSE_ROW_STORE(5)
  DIFFUSE_ROW_STORE(6)
  DIFFUSE_ROW_STORE(7)
  DIFFUSE_ROW_STORE(8)
  DIFFUSE_ROW_STORE(9)
}

#undef DIFFUSE_ROW_FMA
#undef DIFFUSE_ROW_STORE
#undef DIFFUSE_DECL

}  // namespace

extern const KernelInfo kAvx512Kernel;
const KernelInfo kAvx512Kernel = {"avx512", 14, 32, 512, 224, 1024, kernel_14x32, &kAvx512Pack, 10, kernel_10x32};

}  // namespace diffuse
