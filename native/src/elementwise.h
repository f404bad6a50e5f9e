// Elementwise kernels over strided views (0 strides broadcast); outputs are contiguous.
#pragma once
#include <vector>

#include "common.h"

namespace diffuse {

/** A strided view: element (i0, i1, ...) at base[offset + sum i_d * strides[d]] (element units). */
struct View {
  const void* base;
  i64 offset;
  std::vector<i64> strides;
};

enum class Unary : int {
  kNeg, kExp, kLog, kSqrt, kRsqrt, kAbs, kSign, kTanh, kSigmoid, kSilu, kGelu, kGeluTanh, kRelu, kSin, kCos,
  kSquare, kReciprocal, kFloor, kCeil, kRound, kPowScalar, kClamp, kAffine, kGeluGrad, kGeluTanhGrad, kSiluGrad,
  kErf, kCount
};

enum class Binary : int { kAdd, kSub, kMul, kDiv, kPow, kMaximum, kMinimum, kEq, kNe, kLt, kLe, kGt, kGe, kCount };

/** Copies elements of `elem_size` bytes from a strided src view to a strided dst view. */
void copy_strided(int elem_size, const View& src, void* dst_base, i64 dst_offset, const std::vector<i64>& dst_strides,
                  const std::vector<i64>& shape);

void unary(Unary op, const View& x, float* out, const std::vector<i64>& shape, float p0, float p1);
void binary(Binary op, const View& a, const View& b, float* out, const std::vector<i64>& shape);
/** out[r][j] = x[r][j] * gelu(x[r][half + j]) for contiguous x [rows][2 * half] (geglu.cc). */
void geglu(const float* x, float* out, i64 rows, i64 half);

class BPacker;

/**
 * The projection and the GEGLU in one pass: out[r][j] = h[r][j] * gelu(h[r][half + j]) with h = x W^T + bias for
 * contiguous x [rows][in] and W [2 * half][in] given as its B packer (float32 or float16). The [rows][2 * half]
 * projection only ever exists a row block at a time, in cache (geglu.cc).
 */
void linear_geglu(const float* x, i64 rows, i64 in, const BPacker& w, const float* bias, i64 half, float* out);

void where(const View& cond, const View& a, const View& b, float* out, const std::vector<i64>& shape);

/** Nearest-neighbour resize of contiguous [planes][h][w] to [planes][oh][ow], PyTorch's "nearest" (upsample.cc). */
void upsample_nearest(const float* x, float* out, i64 planes, i64 h, i64 w, i64 oh, i64 ow);

}  // namespace diffuse
