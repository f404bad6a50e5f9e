// AVX2 row kernels of the Winograd convolutions F(2x2, 3x3) and F(4x4, 3x3) (winograd.cc and winograd4.cc have
// the math and the portable versions): 8 tiles of a row at a time, one tile per lane. A row's patch span of 8
// tiles (8m + 2 values) is copied once with the image borders zero-filled, then each patch column is a gather from
// that L1-resident copy; outputs go back through a small staging block. Filters are transformed 8 input channels
// at a time. Compiled with -mavx2 -mfma -mf16c (this file only).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "conv.h"
#include "gemm.h"
#include "winograd4_lanes.h"

namespace diffuse {

namespace {

struct Avx2Ops {
  using V = __m256;
  static V set(float v) { return _mm256_set1_ps(v); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
};
using Simd = Avx2Ops;  // (not `O`: the kernels' output-channel count has that name)
using V = Simd::V;
using Lanes4 = Winograd4Lanes<Simd>;

/** Lane mask of the first n lanes (n <= 8), for maskload / maskstore. */
inline __m256i first_lanes(i64 n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), idx);
}

/**
 * The 3x3 filters w[o][c .. c + n) (n <= 8; float, or half bits when w is null) as 9 vectors: g[i] lane u =
 * element i of filter c + u (0 for u >= n).
 */
inline void load_filters8(const float* w, const std::uint16_t* w16, i64 o, i64 c, i64 n, i64 C, V* g) {
  alignas(32) float tmp[72] = {};
  const i64 base = (o * C + c) * 9;
  if (w) {
    std::copy(w + base, w + base + 9 * n, tmp);
  } else if (n == 8) {
    for (int q = 0; q < 9; q++) {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w16 + base + 8 * q));
      _mm256_store_ps(tmp + 8 * q, _mm256_cvtph_ps(h));
    }
  } else {
    for (i64 e = 0; e < 9 * n; e++) tmp[e] = half_to_float(w16[base + e]);
  }
  const __m256i idx = _mm256_setr_epi32(0, 9, 18, 27, 36, 45, 54, 63);
  for (int i = 0; i < 9; i++) g[i] = _mm256_i32gather_ps(tmp + i, idx, 4);
}

/** Stores the first n lanes of v at p. */
inline void store_lanes(float* p, V v, i64 n) {
  if (n >= 8) {
    _mm256_storeu_ps(p, v);
  } else {
    _mm256_maskstore_ps(p, first_lanes(n), v);
  }
}

/**
 * Patch element (i, j) of 8 tiles of a row, tile k at columns x0 + m k ..: d[i * A + j] lane k, for an A x A patch
 * and tile step m; rows outside [0, H) and columns outside [0, W) are 0, as are lanes k >= n.
 */
template <int A, int M>
void load_patches(const float* plane, i64 H, i64 W, i64 y0, i64 x0, i64 n, V* d) {
  constexpr int kSpan = 8 * M + A - M;
  const __m256i step = _mm256_setr_epi32(0, M, 2 * M, 3 * M, 4 * M, 5 * M, 6 * M, 7 * M);
  const i64 span = M * (n - 1) + A;  // values the n tiles cover
  for (int i = 0; i < A; i++) {
    const i64 y = y0 + i;
    if (y < 0 || y >= H) {
      for (int j = 0; j < A; j++) d[i * A + j] = _mm256_setzero_ps();
      continue;
    }
    alignas(32) float row[kSpan + 8] = {};
    const float* src = plane + y * W;
    const i64 lo = std::clamp<i64>(-x0, 0, span), hi = std::clamp<i64>(W - x0, lo, span);
    std::copy(src + (x0 + lo), src + (x0 + hi), row + lo);
    for (int j = 0; j < A; j++) d[i * A + j] = _mm256_i32gather_ps(row + j, step, 4);
  }
}

/**
 * Writes output row pixels from y[j] (lane k = tile k, column j of its M-wide output): plane row `out` at columns
 * ox0 + M k + j, for tiles k < n and columns < limit, plus bias.
 */
template <int M>
void store_pixels(const V* y, float bias, float* out, i64 ox0, i64 n, i64 limit) {
  alignas(32) float tmp[M][8];
  for (int j = 0; j < M; j++) _mm256_store_ps(tmp[j], Simd::add(y[j], Simd::set(bias)));
  for (i64 k = 0; k < n; k++)
    for (int j = 0; j < M; j++) {
      const i64 x = ox0 + M * k + j;
      if (x < limit) out[x] = tmp[j][k];
    }
}

/**
 * U[xi][o][c0 + u], u < count: the filters w[o][c0 + u] transformed by `Filter` (9 vectors -> XIS), 8 input
 * channels at a time.
 */
template <int XIS, void (*Filter)(const V*, V*)>
void weights_avx2(const float* w, const std::uint16_t* w16, i64 o, i64 c0, i64 count, i64 O, i64 C, float* U) {
  for (i64 c = c0; c < c0 + count; c += 8) {
    const i64 n = std::min<i64>(8, c0 + count - c);
    V g[9], u[XIS];
    load_filters8(w, w16, o, c, n, C, g);
    Filter(g, u);
    for (int xi = 0; xi < XIS; xi++) store_lanes(U + (xi * O + o) * C + c, u[xi], n);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// F(2x2, 3x3)

/** G g G^T of F(2x2, 3x3) for 8 filters: g[9] (element i of each) -> u[16] (element xi of each). */
void filter2(const V* g, V* u) {
  const V half = Simd::set(0.5f);
  V t[4][3];  // G g
  for (int j = 0; j < 3; j++) {
    t[0][j] = g[j];
    t[1][j] = Simd::mul(half, Simd::add(Simd::add(g[j], g[3 + j]), g[6 + j]));
    t[2][j] = Simd::mul(half, Simd::add(Simd::sub(g[j], g[3 + j]), g[6 + j]));
    t[3][j] = g[6 + j];
  }
  for (int i = 0; i < 4; i++) {  // (G g) G^T
    u[i * 4 + 0] = t[i][0];
    u[i * 4 + 1] = Simd::mul(half, Simd::add(Simd::add(t[i][0], t[i][1]), t[i][2]));
    u[i * 4 + 2] = Simd::mul(half, Simd::add(Simd::sub(t[i][0], t[i][1]), t[i][2]));
    u[i * 4 + 3] = t[i][2];
  }
}

void input2_avx2(const float* plane, i64 H, i64 W, i64 y0, i64 x0, i64 count, float* v, i64 xs) {
  for (i64 t = 0; t < count; t += 8) {
    const i64 n = std::min<i64>(8, count - t);
    V d[16];
    load_patches<4, 2>(plane, H, W, y0, x0 + 2 * t, n, d);
    V b[4][4];  // B^T d
    for (int j = 0; j < 4; j++) {
      b[0][j] = Simd::sub(d[j], d[8 + j]);
      b[1][j] = Simd::add(d[4 + j], d[8 + j]);
      b[2][j] = Simd::sub(d[8 + j], d[4 + j]);
      b[3][j] = Simd::sub(d[4 + j], d[12 + j]);
    }
    float* o = v + t;
    for (int i = 0; i < 4; i++) {  // (B^T d) B
      store_lanes(o + (i * 4 + 0) * xs, Simd::sub(b[i][0], b[i][2]), n);
      store_lanes(o + (i * 4 + 1) * xs, Simd::add(b[i][1], b[i][2]), n);
      store_lanes(o + (i * 4 + 2) * xs, Simd::sub(b[i][2], b[i][1]), n);
      store_lanes(o + (i * 4 + 3) * xs, Simd::sub(b[i][1], b[i][3]), n);
    }
  }
}

void output2_avx2(const float* m, i64 xs, i64 count, float bias, float* plane, i64 OH, i64 OW, i64 oy, i64 ox0) {
  const i64 limit = std::min<i64>(OW, ox0 + 2 * count);
  for (i64 t = 0; t < count; t += 8) {
    const i64 n = std::min<i64>(8, count - t);
    const __m256i keep = first_lanes(n);
    V r[2][4];  // A^T m
    for (int j = 0; j < 4; j++) {
      const V m0 = _mm256_maskload_ps(m + j * xs + t, keep), m1 = _mm256_maskload_ps(m + (4 + j) * xs + t, keep);
      const V m2 = _mm256_maskload_ps(m + (8 + j) * xs + t, keep), m3 = _mm256_maskload_ps(m + (12 + j) * xs + t, keep);
      r[0][j] = Simd::add(Simd::add(m0, m1), m2);
      r[1][j] = Simd::sub(Simd::sub(m1, m2), m3);
    }
    for (int i = 0; i < 2 && oy + i < OH; i++) {  // (A^T m) A
      const V y[2] = {Simd::add(Simd::add(r[i][0], r[i][1]), r[i][2]), Simd::sub(Simd::sub(r[i][1], r[i][2]), r[i][3])};
      store_pixels<2>(y, bias, plane + (oy + i) * OW, ox0 + 2 * t, n, limit);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// F(4x4, 3x3)

/** G g G^T of F(4x4, 3x3) for 8 filters: g[9] -> u[36]. */
void filter4(const V* g, V* u) {
  V t[3][6];  // t[j] = G (column j of g)
  for (int j = 0; j < 3; j++) Lanes4::filter(g[j], g[3 + j], g[6 + j], t[j]);
  for (int i = 0; i < 6; i++) Lanes4::filter(t[0][i], t[1][i], t[2][i], u + i * 6);  // row i of (G g) G^T
}

void input4_avx2(const float* plane, i64 H, i64 W, i64 y0, i64 x0, i64 count, float* v, i64 xs) {
  for (i64 t = 0; t < count; t += 8) {
    const i64 n = std::min<i64>(8, count - t);
    V d[36];
    load_patches<6, 4>(plane, H, W, y0, x0 + 4 * t, n, d);
    V b[6][6];  // b[j] = B^T (column j of the patches)
    for (int j = 0; j < 6; j++) Lanes4::input(d[j], d[6 + j], d[12 + j], d[18 + j], d[24 + j], d[30 + j], b[j]);
    float* out = v + t;
    for (int i = 0; i < 6; i++) {  // row i of (B^T d) B
      V r[6];
      Lanes4::input(b[0][i], b[1][i], b[2][i], b[3][i], b[4][i], b[5][i], r);
      for (int j = 0; j < 6; j++) store_lanes(out + (i * 6 + j) * xs, r[j], n);
    }
  }
}

void output4_avx2(const float* m, i64 xs, i64 count, float bias, float* plane, i64 OH, i64 OW, i64 oy, i64 ox0) {
  const i64 limit = std::min<i64>(OW, ox0 + 4 * count);
  for (i64 t = 0; t < count; t += 8) {
    const i64 n = std::min<i64>(8, count - t);
    const __m256i keep = first_lanes(n);
    V mt[36];
    for (int xi = 0; xi < 36; xi++) mt[xi] = _mm256_maskload_ps(m + xi * xs + t, keep);
    V r[6][4];  // r[j] = A^T (column j of m)
    for (int j = 0; j < 6; j++) Lanes4::output(mt[j], mt[6 + j], mt[12 + j], mt[18 + j], mt[24 + j], mt[30 + j], r[j]);
    for (int i = 0; i < 4 && oy + i < OH; i++) {
      V y[4];
      Lanes4::output(r[0][i], r[1][i], r[2][i], r[3][i], r[4][i], r[5][i], y);
      store_pixels<4>(y, bias, plane + (oy + i) * OW, ox0 + 4 * t, n, limit);
    }
  }
}

}  // namespace

const WinogradKernels kAvx2Winograd = {weights_avx2<16, filter2>, input2_avx2, output2_avx2};
const WinogradKernels kAvx2Winograd4 = {weights_avx2<36, filter4>, input4_avx2, output4_avx2};

}  // namespace diffuse
