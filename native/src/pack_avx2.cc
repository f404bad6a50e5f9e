// AVX2 packing of GEMM operands whose rows run along the depth (row-major A, transposed B) for the 6 x 16 AVX2
// kernel: 8 x 8 blocks are transposed in registers instead of element by element, and float16 sources (weights
// kept in half precision) are widened eight at a time with F16C's vcvtph2ps. Without these, a float16 weight is
// widened one scalar at a time on every call, which costs more than the multiplication itself when there are few
// columns (a small latent). Compiled with -mavx2 -mf16c (this file only); chosen at run time.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "gemm.h"

namespace diffuse {

namespace {

/** In-place transpose of 8 vectors: afterwards v[j] lane r = old v[r] lane j. */
inline void transpose8(__m256* v) {
  const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
  const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
  const __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
  const __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  v[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  v[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  v[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  v[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  v[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  v[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  v[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  v[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/** 8 consecutive elements as floats; `count` < 8 reads only that many (the rest are 0). */
inline __m256 load8(const float* p, int count) {
  if (count == 8) return _mm256_loadu_ps(p);
  alignas(32) float tmp[8] = {};
  std::memcpy(tmp, p, sizeof(float) * static_cast<std::size_t>(count));
  return _mm256_load_ps(tmp);
}

inline __m256 load8(const std::uint16_t* p, int count) {
  if (count == 8) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  alignas(16) std::uint16_t tmp[8] = {};
  std::memcpy(tmp, p, sizeof(std::uint16_t) * static_cast<std::size_t>(count));
  return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(tmp)));
}

/**
 * dst[p * W + r] = src[r * ld + p] for r < rows (rows <= W; the other lanes up to W get 0), p < kc: `rows`
 * source lines each contiguous in p, written as kc groups of W. W is 6 (A panel) or 16 (B panel).
 */
template <int W, typename T>
void pack_lines(const T* src, i64 ld, int rows, i64 kc, float* dst) {
  constexpr int kBlocks = (W + 7) / 8;
  for (i64 p = 0; p < kc; p += 8) {
    const int cnt = static_cast<int>(kc - p < 8 ? kc - p : 8);
    for (int b = 0; b < kBlocks; b++) {
      const int r0 = b * 8;
      const int lanes = W - r0 < 8 ? W - r0 : 8;  // lanes of this block in a group of W
      __m256 v[8];
      for (int r = 0; r < 8; r++) v[r] = r0 + r < rows ? load8(src + (r0 + r) * ld + p, cnt) : _mm256_setzero_ps();
      transpose8(v);
      if (lanes == 8) {
        for (int j = 0; j < cnt; j++) _mm256_storeu_ps(dst + (p + j) * W + r0, v[j]);
      } else {
        alignas(32) float tmp[8];
        for (int j = 0; j < cnt; j++) {
          _mm256_store_ps(tmp, v[j]);
          std::memcpy(dst + (p + j) * W + r0, tmp, sizeof(float) * static_cast<std::size_t>(lanes));
        }
      }
    }
  }
}

void pack_a6_rm_f32(const float* src, i64 ld, i64 kc, float* dst) { pack_lines<6>(src, ld, 6, kc, dst); }
void pack_a6_rm_f16(const std::uint16_t* src, i64 ld, i64 kc, float* dst) { pack_lines<6>(src, ld, 6, kc, dst); }
void pack_b16_tr_f32(const float* src, i64 ld, int cols, i64 kc, float* dst) {
  pack_lines<16>(src, ld, cols, kc, dst);
}
void pack_b16_tr_f16(const std::uint16_t* src, i64 ld, int cols, i64 kc, float* dst) {
  pack_lines<16>(src, ld, cols, kc, dst);
}

/** Row-major half B: dst[p * 16 + t] = widen(src[p * ld + t]) for t < cols (zero-padded to 16). */
void pack_b16_rm_f16(const std::uint16_t* src, i64 ld, int cols, i64 kc, float* dst) {
  for (i64 p = 0; p < kc; p++) {
    const std::uint16_t* row = src + p * ld;
    float* out = dst + p * 16;
    _mm256_storeu_ps(out, load8(row, cols < 8 ? cols : 8));
    _mm256_storeu_ps(out + 8, cols > 8 ? load8(row + 8, cols - 8) : _mm256_setzero_ps());
  }
}

}  // namespace

extern const PackKernels kAvx2Pack;
const PackKernels kAvx2Pack = {pack_a6_rm_f32, pack_a6_rm_f16, pack_b16_tr_f32, pack_b16_tr_f16, pack_b16_rm_f16};

}  // namespace diffuse
