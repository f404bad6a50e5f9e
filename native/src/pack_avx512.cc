// AVX-512 packing of GEMM operands whose rows run along the depth (row-major A, transposed B): 16 x 16 blocks
// are transposed in registers (unpack / shuffle / shuffle_f32x4, 64 shuffles per block) instead of element by
// element. float16 sources (weights kept in half precision) are widened with vcvtph2ps while packing, so a half
// weight never exists as a whole float32 copy. Compiled with -mavx512f (this file only); chosen at run time.
// GCC 12's AVX-512 intrinsics trip -Wmaybe-uninitialized on their internal _mm512_undefined_ps (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "gemm.h"

namespace diffuse {

namespace {

/** In-place transpose of 16 vectors: afterwards v[j] lane r = old v[r] lane j. */
inline void transpose16(__m512* v) {
  __m512 t[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]);
  }
  for (int i = 0; i < 4; i++) {
    v[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    v[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    v[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    v[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++) {
      t[8 * i + j] = _mm512_shuffle_f32x4(v[8 * i + j], v[8 * i + 4 + j], 0x88);
      t[8 * i + 4 + j] = _mm512_shuffle_f32x4(v[8 * i + j], v[8 * i + 4 + j], 0xDD);
    }
  for (int j = 0; j < 8; j++) {
    v[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
    v[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xDD);
  }
}

/** 16 consecutive elements as floats; `count` < 16 reads only that many (the rest are 0). */
inline __m512 load16(const float* p, int count) {
  return count == 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << count) - 1), p);
}

inline __m512 load16(const std::uint16_t* p, int count) {
  if (count == 16) return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  alignas(32) std::uint16_t tmp[16] = {};
  std::memcpy(tmp, p, sizeof(std::uint16_t) * count);
  return _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(tmp)));
}

/**
 * dst[p * W + r] = src[r * ld + p] for r < rows (rows <= W, other lanes up to W get 0), p < kc: `rows` source
 * lines each contiguous in p, written as kc groups of W. W is 14 (A panel) or 32 (B panel).
 */
template <int W, typename T>
void pack_lines(const T* src, i64 ld, int rows, i64 kc, float* dst) {
  constexpr int kHalves = (W + 15) / 16;
  for (i64 p = 0; p < kc; p += 16) {
    const int cnt = static_cast<int>(kc - p < 16 ? kc - p : 16);
    for (int h = 0; h < kHalves; h++) {
      const int r0 = h * 16;
      const int lanes = W - r0 < 16 ? W - r0 : 16;  // lanes of this half in a group of W
      __m512 v[16];
      for (int r = 0; r < 16; r++)
        v[r] = r0 + r < rows ? load16(src + (r0 + r) * ld + p, cnt) : _mm512_setzero_ps();
      transpose16(v);
      const __mmask16 keep = static_cast<__mmask16>((1u << lanes) - 1);
      for (int j = 0; j < cnt; j++) _mm512_mask_storeu_ps(dst + (p + j) * W + r0, keep, v[j]);
    }
  }
}

void pack_a14_rm_f32(const float* src, i64 ld, i64 kc, float* dst) { pack_lines<14>(src, ld, 14, kc, dst); }
void pack_a14_rm_f16(const std::uint16_t* src, i64 ld, i64 kc, float* dst) {
  pack_lines<14>(src, ld, 14, kc, dst);
}
void pack_b32_tr_f32(const float* src, i64 ld, int cols, i64 kc, float* dst) {
  pack_lines<32>(src, ld, cols, kc, dst);
}
void pack_b32_tr_f16(const std::uint16_t* src, i64 ld, int cols, i64 kc, float* dst) {
  pack_lines<32>(src, ld, cols, kc, dst);
}

/** Row-major half B: dst[p * 32 + t] = widen(src[p * ld + t]) for t < cols (zero-padded to 32). */
void pack_b32_rm_f16(const std::uint16_t* src, i64 ld, int cols, i64 kc, float* dst) {
  for (i64 p = 0; p < kc; p++) {
    const std::uint16_t* row = src + p * ld;
    float* out = dst + p * 32;
    if (cols == 32) {
      _mm512_storeu_ps(out, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row))));
      _mm512_storeu_ps(out + 16, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 16))));
    } else {
      _mm512_storeu_ps(out, load16(row, cols < 16 ? cols : 16));
      _mm512_storeu_ps(out + 16, cols > 16 ? load16(row + 16, cols - 16) : _mm512_setzero_ps());
    }
  }
}

}  // namespace

extern const PackKernels kAvx512Pack;
const PackKernels kAvx512Pack = {pack_a14_rm_f32, pack_a14_rm_f16, pack_b32_tr_f32, pack_b32_tr_f16,
                                 pack_b32_rm_f16};

}  // namespace diffuse
