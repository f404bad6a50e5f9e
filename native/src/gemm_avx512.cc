// AVX-512F micro-kernels MR x 32 from one template: 14 x 32 for GEMMs and a narrow 10 x 32. Compiled with
// -mavx512f -mfma (this file only); selected at run time. 14 x 32: 28 accumulators + 2 B vectors + 1 broadcast =
// 31 of the 32 zmm registers (named variables, no array). 10 x 32 is for products with few rows that 14-row
// panels would pad: attention's O^T = V^T P^T, whose rows are the head width (40 -> 42, 80 -> 84). Measured there:
// ~4% fewer cycles than the 14-row kernel on 42 rows; an 8 x 32 kernel (16 accumulators) lost what it saved in
// padding.
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

#define DIFFUSE_DECL(r) [[maybe_unused]] __m512 c##r##0 = _mm512_setzero_ps(), c##r##1 = _mm512_setzero_ps();
#define DIFFUSE_ROW_FMA_IF(r) \
  if constexpr ((r) < MR) DIFFUSE_ROW_FMA(r)
#define DIFFUSE_ROW_STORE_IF(r) \
  if constexpr ((r) < MR) DIFFUSE_ROW_STORE(r)

/** MR x 32, MR <= 14: the rows past MR compile away, and every accumulator stays a named variable. */
template <int MR>
void kernel_x32(i64 k, const float* a, const float* b, float* c, i64 ldc, float alpha, int beta,
                const float* bias_n, const float* bias_m) {
  static_assert(MR >= 1 && MR <= 14, "14 rows x 2 vectors + 2 B vectors + 1 broadcast fill the 32 zmm registers");
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
  DIFFUSE_DECL(10)
  DIFFUSE_DECL(11)
  DIFFUSE_DECL(12)
  DIFFUSE_DECL(13)
  for (int r = 0; r < MR; r++) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 16), _MM_HINT_T0);
  }
#pragma GCC unroll 2
  for (i64 p = 0; p < k; p++) {
    const __m512 b0 = _mm512_load_ps(b);
    const __m512 b1 = _mm512_load_ps(b + 16);
    DIFFUSE_ROW_FMA_IF(0)
    DIFFUSE_ROW_FMA_IF(1)
    DIFFUSE_ROW_FMA_IF(2)
    DIFFUSE_ROW_FMA_IF(3)
    DIFFUSE_ROW_FMA_IF(4)
    DIFFUSE_ROW_FMA_IF(5)
    DIFFUSE_ROW_FMA_IF(6)
    DIFFUSE_ROW_FMA_IF(7)
    DIFFUSE_ROW_FMA_IF(8)
    DIFFUSE_ROW_FMA_IF(9)
    DIFFUSE_ROW_FMA_IF(10)
    DIFFUSE_ROW_FMA_IF(11)
    DIFFUSE_ROW_FMA_IF(12)
    DIFFUSE_ROW_FMA_IF(13)
    a += MR;
    b += 32;
  }
  const __m512 va = _mm512_set1_ps(alpha);
  const bool scale = alpha != 1.0f;
  __m512 bn0 = _mm512_setzero_ps(), bn1 = _mm512_setzero_ps();
  if (bias_n) {
    bn0 = _mm512_loadu_ps(bias_n);
    bn1 = _mm512_loadu_ps(bias_n + 16);
  }
  DIFFUSE_ROW_STORE_IF(0)
  DIFFUSE_ROW_STORE_IF(1)
  DIFFUSE_ROW_STORE_IF(2)
  DIFFUSE_ROW_STORE_IF(3)
  DIFFUSE_ROW_STORE_IF(4)
  DIFFUSE_ROW_STORE_IF(5)
  DIFFUSE_ROW_STORE_IF(6)
  DIFFUSE_ROW_STORE_IF(7)
  DIFFUSE_ROW_STORE_IF(8)
  DIFFUSE_ROW_STORE_IF(9)
  DIFFUSE_ROW_STORE_IF(10)
  DIFFUSE_ROW_STORE_IF(11)
  DIFFUSE_ROW_STORE_IF(12)
  DIFFUSE_ROW_STORE_IF(13)
}

#undef DIFFUSE_ROW_FMA_IF
#undef DIFFUSE_ROW_STORE_IF
#undef DIFFUSE_ROW_FMA
#undef DIFFUSE_ROW_STORE
#undef DIFFUSE_DECL

}  // namespace

extern const KernelInfo kAvx512Kernel;
const KernelInfo kAvx512Kernel = {"avx512", 14, 32, 512, 224, 1024, kernel_x32<14>, &kAvx512Pack, 10, kernel_x32<10>};

}  // namespace diffuse
