// AVX-512 row kernels of the Winograd F(4x4, 3x3) convolution (winograd4.cc has the math and the portable
// versions): 16 tiles of a row at a time, one tile per lane. A tile's 6 patch columns start 4 apart, so they are
// gathered (masked at the image borders, zero-filled); the 4 output columns of 16 tiles are interleaved back
// into 64 consecutive pixels by two rounds of permutes. Filters are transformed 16 input channels at a time.
// Compiled with -mavx512f (this file only).
// GCC 12's AVX-512 intrinsics trip -Wmaybe-uninitialized on their internal _mm512_undefined_ps (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "conv.h"
#include "gemm.h"
#include "winograd4_lanes.h"
#include "winograd_avx512.h"

namespace diffuse {

namespace {

struct Avx512Ops {
  using V = __m512;
  static V set(float v) { return _mm512_set1_ps(v); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
};
using V = __m512;
using Lanes4 = Winograd4Lanes<Avx512Ops>;

void weights4_avx512(const float* w, const std::uint16_t* w16, i64 o, i64 c0, i64 count, i64 O, i64 C, float* U) {
  i64 c = c0;
  for (; c + 16 <= c0 + count; c += 16) {
    V g[9];
    load_filters16(w, w16, o, c, C, g);
    V t[3][6];  // t[j] = G (column j of g)
    for (int j = 0; j < 3; j++) Lanes4::filter(g[j], g[3 + j], g[6 + j], t[j]);
    for (int i = 0; i < 6; i++) {  // row i of (G g) G^T
      V u[6];
      Lanes4::filter(t[0][i], t[1][i], t[2][i], u);
      for (int j = 0; j < 6; j++) _mm512_storeu_ps(U + ((i * 6 + j) * O + o) * C + c, u[j]);
    }
  }
  if (c < c0 + count) kPortableWinograd4.weights(w, w16, o, c, c0 + count - c, O, C, U);
}

void input4_avx512(const float* plane, i64 H, i64 W, i64 y0, i64 x0, i64 count, float* v, i64 xs) {
  const __m512i lane4 = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(4));
  for (i64 t = 0; t < count; t += 16) {
    const i64 n = std::min<i64>(16, count - t);
    const __mmask16 keep = n >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << n) - 1);
    const i64 xs0 = x0 + 4 * t;  // first patch column of the 16 tiles
    // column j of tile k is xs0 + 4k + j: lanes whose column is inside [0, W)
    __mmask16 colmask[6];
    for (int j = 0; j < 6; j++) {
      __mmask16 m = 0;
      for (int k = 0; k < 16; k++) {
        const i64 x = xs0 + 4 * k + j;
        if (x >= 0 && x < W) m |= static_cast<__mmask16>(1u << k);
      }
      colmask[j] = m & keep;
    }
    V b[6][6];  // b[j] = B^T (column j of the 16 patches)
    V d[6][6];  // d[i][j]: patch element (i, j) of each tile
    for (int i = 0; i < 6; i++) {
      const i64 y = y0 + i;
      if (y < 0 || y >= H) {
        for (int j = 0; j < 6; j++) d[i][j] = _mm512_setzero_ps();
        continue;
      }
      const float* row = plane + y * W + xs0;  // may point outside the row; masked lanes are never read
      for (int j = 0; j < 6; j++)
        d[i][j] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), colmask[j], lane4, row + j, 4);
    }
    for (int j = 0; j < 6; j++) Lanes4::input(d[0][j], d[1][j], d[2][j], d[3][j], d[4][j], d[5][j], b[j]);
    float* out = v + t;
    for (int i = 0; i < 6; i++) {  // row i of (B^T d) B
      V r[6];
      Lanes4::input(b[0][i], b[1][i], b[2][i], b[3][i], b[4][i], b[5][i], r);
      for (int j = 0; j < 6; j++) _mm512_mask_storeu_ps(out + (i * 6 + j) * xs, keep, r[j]);
    }
  }
}

void output4_avx512(const float* m, i64 xs, i64 count, float bias, float* plane, i64 OH, i64 OW, i64 oy, i64 ox0) {
  // interleaving 4 vectors of 16 tiles (columns 0..3) into 64 pixels: first pairs (0,1) and (2,3) into 2-float
  // groups, then the pairs into 4-float groups
  const __m512i p_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i p_hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512i q_lo = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
  const __m512i q_hi = _mm512_setr_epi32(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
  const V vb = Avx512Ops::set(bias);
  for (i64 t = 0; t < count; t += 16) {
    const i64 n = std::min<i64>(16, count - t);
    const __mmask16 keep = n >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << n) - 1);
    V mt[36];
    for (int xi = 0; xi < 36; xi++) mt[xi] = _mm512_maskz_loadu_ps(keep, m + xi * xs + t);
    V r[6][4];  // r[j] = A^T (column j of m)
    for (int j = 0; j < 6; j++) Lanes4::output(mt[j], mt[6 + j], mt[12 + j], mt[18 + j], mt[24 + j], mt[30 + j], r[j]);
    const i64 ox = ox0 + 4 * t;
    const i64 limit = std::min<i64>(OW, ox0 + 4 * count);
    for (int i = 0; i < 4 && oy + i < OH; i++) {
      V y[4];
      Lanes4::output(r[0][i], r[1][i], r[2][i], r[3][i], r[4][i], r[5][i], y);
      for (int j = 0; j < 4; j++) y[j] = Avx512Ops::add(y[j], vb);
      const V a_lo = _mm512_permutex2var_ps(y[0], p_lo, y[1]), a_hi = _mm512_permutex2var_ps(y[0], p_hi, y[1]);
      const V b_lo = _mm512_permutex2var_ps(y[2], p_lo, y[3]), b_hi = _mm512_permutex2var_ps(y[2], p_hi, y[3]);
      const V px[4] = {_mm512_permutex2var_ps(a_lo, q_lo, b_lo), _mm512_permutex2var_ps(a_lo, q_hi, b_lo),
                       _mm512_permutex2var_ps(a_hi, q_lo, b_hi), _mm512_permutex2var_ps(a_hi, q_hi, b_hi)};
      float* row = plane + (oy + i) * OW;
      for (int q = 0; q < 4; q++) {
        const i64 start = ox + 16 * q;
        const i64 lo = std::clamp<i64>(-start, 0, 16), hi = std::clamp<i64>(limit - start, 0, 16);
        if (hi <= lo) continue;
        const __mmask16 mk = static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
        _mm512_mask_storeu_ps(row + start, mk, px[q]);
      }
    }
  }
}

}  // namespace

const WinogradKernels kAvx512Winograd4 = {weights4_avx512, input4_avx512, output4_avx512};

}  // namespace diffuse
