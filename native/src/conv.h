// 2-D convolution (NCHW, OIHW) forward and backward, lowered to the packed GEMM.
#pragma once
#include "common.h"

namespace diffuse {

struct ConvShape {
  i64 batch, in_c, in_h, in_w, out_c, out_h, out_w;
  i64 kh, kw, sh, sw, ph, pw, dh, dw, groups;
};

void conv2d_forward(const float* x, const float* w, const float* bias, float* out, const ConvShape& s);
void conv2d_backward_input(const float* grad_out, const float* w, float* grad_in, const ConvShape& s);
void conv2d_backward_weight(const float* x, const float* grad_out, float* grad_w, const ConvShape& s);

}  // namespace diffuse
