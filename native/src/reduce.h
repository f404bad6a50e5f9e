// Reductions, softmax, group/layer norm and fused attention.
#pragma once
#include "common.h"

namespace diffuse {

enum class ReduceOp : int { kSum, kMax, kMin, kArgmax, kArgmin };

/** Reduces the middle axis of contiguous [outer, n, inner] into out [outer, inner]. */
void reduce(ReduceOp op, const float* x, i64 outer, i64 n, i64 inner, float* out);

/** Softmax or log-softmax over the last axis of contiguous [rows, cols]. */
void softmax(const float* x, float* out, i64 rows, i64 cols, bool log);

void group_norm(const float* x, const float* weight, const float* bias, float* out, float* mean, float* rstd,
                i64 n, i64 c, i64 spatial, i64 groups, float eps, bool silu);
void group_norm_backward(const float* grad_out, const float* x, const float* weight, const float* mean,
                         const float* rstd, float* grad_x, float* grad_weight, float* grad_bias, i64 n, i64 c,
                         i64 spatial, i64 groups);
void layer_norm(const float* x, const float* weight, const float* bias, float* out, float* mean, float* rstd,
                i64 rows, i64 cols, float eps);
void layer_norm_backward(const float* grad_out, const float* x, const float* weight, const float* mean,
                         const float* rstd, float* grad_x, float* grad_weight, float* grad_bias, i64 rows,
                         i64 cols);

/**
 * Where the rows of one head live: head b = o * heads + h starts at offset + o * outer_stride + h * head_stride,
 * its rows are row_stride apart and its elements contiguous. [B, heads, L, D] contiguous and the head-split view
 * of [B, L, heads * D] (head_stride D, row_stride heads * D) are both layouts of this form.
 */
struct HeadLayout {
  i64 offset = 0, outer_stride = 0, head_stride = 0, row_stride = 0;
  i64 at(i64 b, i64 heads) const { return offset + (b / heads) * outer_stride + (b % heads) * head_stride; }
};

struct AttentionShape {
  i64 batch, lq, lk, d, dv;
  float scale;
  i64 mask_batch_stride, mask_row_stride;
  i64 heads;  // batch = outer * heads
  HeadLayout q, k, v, out;
};

/** softmax(scale * q k^T + mask) v per head, in tiles with an online softmax (never the full score matrix). */
void attention(const float* q, const float* k, const float* v, const float* mask, float* out,
               const AttentionShape& s);

}  // namespace diffuse
