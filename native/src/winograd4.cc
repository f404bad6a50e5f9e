// Portable row kernels of Winograd's F(4x4, 3x3) (Lavin & Gray 2016, section 5; interpolation points 0, +-1,
// +-2 and infinity): each 4x4 output tile is A^T [(G g G^T) . (B^T d B)] A for its 6x6 input patch d, with
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1],
//   G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1],
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
// 36 GEMMs over the channels replace the direct convolution's 9 per output pixel pair: 4x fewer multiplications
// (F(2x2) saves 2.25x), for larger transforms. The driver is winograd.cc.
#include "conv.h"
#include "gemm.h"

namespace diffuse {

namespace {

/** The filter transform of one 3-vector: G g. */
inline void filter_1d(const float g0, const float g1, const float g2, float* u) {
  u[0] = 0.25f * g0;
  u[1] = (-1.0f / 6.0f) * (g0 + g1 + g2);
  u[2] = (-1.0f / 6.0f) * (g0 - g1 + g2);
  u[3] = (1.0f / 24.0f) * g0 + (1.0f / 12.0f) * g1 + (1.0f / 6.0f) * g2;
  u[4] = (1.0f / 24.0f) * g0 - (1.0f / 12.0f) * g1 + (1.0f / 6.0f) * g2;
  u[5] = g2;
}

/** The input transform of one 6-vector: B^T d (d[k * stride]). */
inline void input_1d(const float* d, int stride, float* b) {
  const float d0 = d[0], d1 = d[stride], d2 = d[2 * stride], d3 = d[3 * stride], d4 = d[4 * stride],
              d5 = d[5 * stride];
  b[0] = 4.0f * d0 - 5.0f * d2 + d4;
  b[1] = -4.0f * (d1 + d2) + d3 + d4;
  b[2] = 4.0f * (d1 - d2) - d3 + d4;
  b[3] = -2.0f * (d1 - d3) - d2 + d4;
  b[4] = 2.0f * (d1 - d3) - d2 + d4;
  b[5] = 4.0f * d1 - 5.0f * d3 + d5;
}

/** The output transform of one 6-vector: A^T m (m[k * stride]). */
inline void output_1d(const float* m, int stride, float* r) {
  const float m0 = m[0], m1 = m[stride], m2 = m[2 * stride], m3 = m[3 * stride], m4 = m[4 * stride],
              m5 = m[5 * stride];
  const float s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
  r[0] = m0 + s12 + s34;
  r[1] = d12 + 2.0f * d34;
  r[2] = s12 + 4.0f * s34;
  r[3] = d12 + 8.0f * d34 + m5;
}

void weights4_portable(const float* w, const std::uint16_t* w16, i64 o, i64 c0, i64 count, i64 O, i64 C,
                       float* U) {
  for (i64 c = c0; c < c0 + count; c++) {
    const i64 base = (o * C + c) * 9;
    float g[9];
    for (int i = 0; i < 9; i++) g[i] = w ? w[base + i] : half_to_float(w16[base + i]);
    float t[6][3];  // G g: column j of g transformed
    for (int j = 0; j < 3; j++) {
      float u[6];
      filter_1d(g[j], g[3 + j], g[6 + j], u);
      for (int i = 0; i < 6; i++) t[i][j] = u[i];
    }
    for (int i = 0; i < 6; i++) {  // (G g) G^T
      float u[6];
      filter_1d(t[i][0], t[i][1], t[i][2], u);
      for (int j = 0; j < 6; j++) U[((i * 6 + j) * O + o) * C + c] = u[j];
    }
  }
}

void input4_portable(const float* plane, i64 H, i64 W, i64 y0, i64 x0, i64 count, float* v, i64 xs) {
  for (i64 t = 0; t < count; t++) {
    const i64 xt = x0 + 4 * t;
    float d[6][6];
    for (int i = 0; i < 6; i++)
      for (int j = 0; j < 6; j++) d[i][j] = patch_at(plane, H, W, y0 + i, xt + j);
    float b[6][6];  // B^T d, column by column
    for (int j = 0; j < 6; j++) {
      float col[6];
      input_1d(&d[0][j], 6, col);
      for (int i = 0; i < 6; i++) b[i][j] = col[i];
    }
    for (int i = 0; i < 6; i++) {  // (B^T d) B, row by row
      float row[6];
      input_1d(b[i], 1, row);
      for (int j = 0; j < 6; j++) v[(i * 6 + j) * xs + t] = row[j];
    }
  }
}

void output4_portable(const float* m, i64 xs, i64 count, float bias, float* plane, i64 OH, i64 OW, i64 oy,
                      i64 ox0) {
  for (i64 t = 0; t < count; t++) {
    float mt[36];
    for (int xi = 0; xi < 36; xi++) mt[xi] = m[xi * xs + t];
    float r[4][6];  // A^T m, column by column
    for (int j = 0; j < 6; j++) {
      float col[4];
      output_1d(mt + j, 6, col);
      for (int i = 0; i < 4; i++) r[i][j] = col[i];
    }
    const i64 ox = ox0 + 4 * t;
    for (int i = 0; i < 4 && oy + i < OH; i++) {  // (A^T m) A
      float y[4];
      output_1d(r[i], 1, y);
      for (int j = 0; j < 4 && ox + j < OW; j++) plane[(oy + i) * OW + ox + j] = y[j] + bias;
    }
  }
}

}  // namespace

const WinogradKernels kPortableWinograd4 = {weights4_portable, input4_portable, output4_portable};

}  // namespace diffuse
