// 2-D convolution (NCHW, OIHW) forward and backward, lowered to the packed GEMM.
#pragma once
#include <cstdint>

#include "common.h"

namespace diffuse {

struct ConvShape {
  i64 batch, in_c, in_h, in_w, out_c, out_h, out_w;
  i64 kh, kw, sh, sw, ph, pw, dh, dw, groups;
};

/**
 * Forward convolution; the weights are `w` (float) or, when it is null, `w16` (IEEE half bits, widened while
 * packed). `residual` (optional, out's shape, not overlapping it) is added after the bias, block by block while
 * the output is in cache: a ResNet block's skip connection without a pass of its own.
 */
void conv2d_forward(const float* x, const float* w, const std::uint16_t* w16, const float* bias, float* out,
                    const ConvShape& s, const float* residual = nullptr);
/**
 * Row kernels of a Winograd F(m x m, 3x3) convolution, m = 2 (winograd.cc) or 4 (winograd4.cc), with a = m + 2
 * (the patch side) and a^2 transformed matrices; SIMD versions are chosen at run time.
 */
struct WinogradKernels {
  /** U[xi][o][c0 + u], u < count: filters w[o][c0 + u] (3x3, float or half bits) transformed; U is a^2 x O x C. */
  void (*weights)(const float* w, const std::uint16_t* w16, i64 o, i64 c0, i64 count, i64 O, i64 C, float* U);
  /** `count` tiles of one row: a x a patches at rows y0.., columns x0 + m t.. (zero outside H x W) -> v[xi*xs + t]. */
  void (*input_row)(const float* plane, i64 H, i64 W, i64 y0, i64 x0, i64 count, float* v, i64 xs);
  /** `count` tiles from m[xi*xs + t] -> output rows oy.. oy+m-1 (< OH), columns ox0 + m t.. (< OW), plus bias. */
  void (*output_row)(const float* m, i64 xs, i64 count, float bias, float* plane, i64 OH, i64 OW, i64 oy, i64 ox0);
};
extern const WinogradKernels kPortableWinograd4;

/** plane[y][x] of an H x W plane, 0 outside it (the zero padding of a Winograd input patch). */
inline float patch_at(const float* plane, i64 H, i64 W, i64 y, i64 x) {
  return y >= 0 && y < H && x >= 0 && x < W ? plane[y * W + x] : 0.0f;
}
#if defined(DIFFUSE_HAVE_X86_KERNELS)
extern const WinogradKernels kAvx2Winograd;
extern const WinogradKernels kAvx2Winograd4;
extern const WinogradKernels kAvx512Winograd;
extern const WinogradKernels kAvx512Winograd4;
#endif

/** Whether conv2d_forward takes a Winograd path (3x3, stride 1, no dilation, one group). */
bool winograd_applicable(const ConvShape& s);
void conv2d_winograd(const float* x, const float* w, const std::uint16_t* w16, const float* bias, float* out,
                     const ConvShape& s, const float* residual = nullptr);

void conv2d_backward_input(const float* grad_out, const float* w, float* grad_in, const ConvShape& s);
void conv2d_backward_weight(const float* x, const float* grad_out, float* grad_w, const ConvShape& s);

}  // namespace diffuse
