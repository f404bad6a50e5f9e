// AVX-512 row kernels of the Winograd F(2x2, 3x3) convolution (winograd.cc has the math and the portable
// versions): 16 tiles of a row at a time, one tile per lane. A tile's 4 patch columns are the even / odd elements of
// the row at offsets 0 and 2 (vpermt2ps), image borders are masked loads with zero fill, and the two output columns
// of 16 tiles are interleaved back into 32 consecutive pixels. Compiled with -mavx512f (this file only).
// GCC 12's AVX-512 intrinsics trip -Wmaybe-uninitialized on their internal _mm512_undefined_ps (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "conv.h"
#include "gemm.h"
#include "winograd_avx512.h"

namespace diffuse {

namespace {

/** Lanes k of a 16-wide vector starting at column `start` with 0 <= start + k < limit. */
inline __mmask16 lanes_in(i64 start, i64 limit) {
  const i64 lo = std::clamp<i64>(-start, 0, 16), hi = std::clamp<i64>(limit - start, 0, 16);
  if (hi <= lo) return 0;
  return static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
}

inline __m512 load_masked(const float* row, i64 start, i64 limit) {
  const __mmask16 m = lanes_in(start, limit);
  if (m == 0xFFFF) return _mm512_loadu_ps(row + start);
  return _mm512_maskz_loadu_ps(m, row + start);
}

void weights_avx512(const float* w, const std::uint16_t* w16, i64 o, i64 c0, i64 count, i64 O, i64 C, float* U) {
  const __m512 half = _mm512_set1_ps(0.5f);
  i64 c = c0;
  for (; c + 16 <= c0 + count; c += 16) {
    __m512 g[9];
    load_filters16(w, w16, o, c, C, g);
    __m512 t[4][3];  // G g
    for (int j = 0; j < 3; j++) {
      t[0][j] = g[j];
      t[1][j] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_add_ps(g[j], g[3 + j]), g[6 + j]));
      t[2][j] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_sub_ps(g[j], g[3 + j]), g[6 + j]));
      t[3][j] = g[6 + j];
    }
    for (int i = 0; i < 4; i++) {  // (G g) G^T
      const __m512 u[4] = {t[i][0], _mm512_mul_ps(half, _mm512_add_ps(_mm512_add_ps(t[i][0], t[i][1]), t[i][2])),
                           _mm512_mul_ps(half, _mm512_add_ps(_mm512_sub_ps(t[i][0], t[i][1]), t[i][2])), t[i][2]};
      for (int j = 0; j < 4; j++) _mm512_storeu_ps(U + ((i * 4 + j) * O + o) * C + c, u[j]);
    }
  }
  for (; c < c0 + count; c++) {
    float g[9];
    for (int i = 0; i < 9; i++) g[i] = w ? w[(o * C + c) * 9 + i] : half_to_float(w16[(o * C + c) * 9 + i]);
    float t[4][3];
    for (int j = 0; j < 3; j++) {
      t[0][j] = g[j];
      t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
      t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
      t[3][j] = g[6 + j];
    }
    for (int i = 0; i < 4; i++) {
      const float u[4] = {t[i][0], 0.5f * (t[i][0] + t[i][1] + t[i][2]), 0.5f * (t[i][0] - t[i][1] + t[i][2]),
                          t[i][2]};
      for (int j = 0; j < 4; j++) U[((i * 4 + j) * O + o) * C + c] = u[j];
    }
  }
}

void input_avx512(const float* plane, i64 H, i64 W, i64 y0, i64 x0, i64 count, float* v, i64 xs) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (i64 t = 0; t < count; t += 16) {
    const i64 xs0 = x0 + 2 * t;  // first patch column of the 16 tiles
    __m512 d[4][4];              // d[i][j]: patch element (i, j) of each tile
    for (int i = 0; i < 4; i++) {
      const i64 y = y0 + i;
      if (y < 0 || y >= H) {
        for (int j = 0; j < 4; j++) d[i][j] = _mm512_setzero_ps();
        continue;
      }
      const float* row = plane + y * W;
      const __m512 a0 = load_masked(row, xs0, W), a1 = load_masked(row, xs0 + 16, W);
      const __m512 b0 = load_masked(row, xs0 + 2, W), b1 = load_masked(row, xs0 + 18, W);
      d[i][0] = _mm512_permutex2var_ps(a0, even, a1);
      d[i][1] = _mm512_permutex2var_ps(a0, odd, a1);
      d[i][2] = _mm512_permutex2var_ps(b0, even, b1);
      d[i][3] = _mm512_permutex2var_ps(b0, odd, b1);
    }
    __m512 b[4][4];  // B^T d
    for (int j = 0; j < 4; j++) {
      b[0][j] = _mm512_sub_ps(d[0][j], d[2][j]);
      b[1][j] = _mm512_add_ps(d[1][j], d[2][j]);
      b[2][j] = _mm512_sub_ps(d[2][j], d[1][j]);
      b[3][j] = _mm512_sub_ps(d[1][j], d[3][j]);
    }
    const __mmask16 keep = count - t >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (count - t)) - 1);
    float* o = v + t;
    for (int i = 0; i < 4; i++) {  // (B^T d) B
      _mm512_mask_storeu_ps(o + (i * 4 + 0) * xs, keep, _mm512_sub_ps(b[i][0], b[i][2]));
      _mm512_mask_storeu_ps(o + (i * 4 + 1) * xs, keep, _mm512_add_ps(b[i][1], b[i][2]));
      _mm512_mask_storeu_ps(o + (i * 4 + 2) * xs, keep, _mm512_sub_ps(b[i][2], b[i][1]));
      _mm512_mask_storeu_ps(o + (i * 4 + 3) * xs, keep, _mm512_sub_ps(b[i][1], b[i][3]));
    }
  }
}

void output_avx512(const float* m, i64 xs, i64 count, float bias, float* plane, i64 OH, i64 OW, i64 oy, i64 ox0) {
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512 vb = _mm512_set1_ps(bias);
  for (i64 t = 0; t < count; t += 16) {
    const __mmask16 keep = count - t >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (count - t)) - 1);
    __m512 r[2][4];  // A^T m
    for (int j = 0; j < 4; j++) {
      const __m512 m0 = _mm512_maskz_loadu_ps(keep, m + j * xs + t);
      const __m512 m1 = _mm512_maskz_loadu_ps(keep, m + (4 + j) * xs + t);
      const __m512 m2 = _mm512_maskz_loadu_ps(keep, m + (8 + j) * xs + t);
      const __m512 m3 = _mm512_maskz_loadu_ps(keep, m + (12 + j) * xs + t);
      r[0][j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
      r[1][j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
    }
    const i64 ox = ox0 + 2 * t;
    for (int i = 0; i < 2 && oy + i < OH; i++) {  // (A^T m) A, columns 2t and 2t + 1 interleaved
      const __m512 y0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(r[i][0], r[i][1]), r[i][2]), vb);
      const __m512 y1 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(r[i][1], r[i][2]), r[i][3]), vb);
      float* row = plane + (oy + i) * OW;
      const i64 limit = std::min<i64>(OW, ox0 + 2 * count);
      _mm512_mask_storeu_ps(row + ox, lanes_in(ox, limit), _mm512_permutex2var_ps(y0, lo, y1));
      _mm512_mask_storeu_ps(row + ox + 16, lanes_in(ox + 16, limit), _mm512_permutex2var_ps(y0, hi, y1));
    }
  }
}

}  // namespace

const WinogradKernels kAvx512Winograd = {weights_avx512, input_avx512, output_avx512};

}  // namespace diffuse
