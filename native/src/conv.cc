#include "conv.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "gemm.h"
#include "parallel.h"

namespace diffuse {

namespace {

/**
 * The im2col matrix of one image's channel group, packed on the fly: B[kk][j] with kk = (c, ky, kx) and
 * j = (oy, ox), value x[c][oy*sh - ph + ky*dh][ox*sw - pw + kx*dw] (0 in the padding). Never materialised whole.
 * Columns past one image's continue into the next image's (`image_stride` floats further): j = (n, oy, ox), the
 * im2col matrices of a batch side by side.
 */
class Im2colB final : public BPacker {
 public:
  Im2colB(const float* x, const ConvShape& s, i64 image_stride = 0) : x_(x), s_(s), image_stride_(image_stride) {}

  void pack(float* dst, i64 k0, i64 kc, i64 j0, i64 nc, int nr) const override {
    const ConvShape& s = s_;
    const i64 kk_per_c = s.kh * s.kw;
    i64 c = k0 / kk_per_c, ky = (k0 % kk_per_c) / s.kw, kx = k0 % s.kw;
    // tap by tap (row p of B), across all panels: the image is read along its rows
    for (i64 p = 0; p < kc; p++) {
      for (i64 jr = 0; jr < nc; jr += nr) {
        const i64 cols = std::min<i64>(nr, nc - jr);
        float* d = dst + (jr / nr) * kc * nr + p * nr;
        row(d, c, ky, kx, j0 + jr, cols);
        for (i64 t = cols; t < nr; t++) d[t] = 0.0f;
      }
      if (++kx == s.kw) {
        kx = 0;
        if (++ky == s.kh) {
          ky = 0;
          ++c;
        }
      }
    }
  }

  /** Writes `cols` consecutive output positions starting at flat index j for tap (c, ky, kx). */
  void row(float* out, i64 c, i64 ky, i64 kx, i64 j, i64 cols) const {
    const ConvShape& s = s_;
    const i64 ohw = s.out_h * s.out_w;
    const float* plane = x_ + (j / ohw) * image_stride_ + c * s.in_h * s.in_w;
    j %= ohw;
    i64 oy = j / s.out_w, ox = j % s.out_w;
    i64 t = 0;
    while (t < cols) {
      if (oy == s.out_h) {  // the next image
        plane += image_stride_;
        oy = 0;
      }
      const i64 len = std::min<i64>(cols - t, s.out_w - ox);  // segment within one output row
      const i64 iy = oy * s.sh - s.ph + ky * s.dh;
      float* o = out + t;
      if (iy < 0 || iy >= s.in_h) {
        std::memset(o, 0, sizeof(float) * len);
      } else {
        const float* rowp = plane + iy * s.in_w;
        const i64 ix0 = ox * s.sw - s.pw + kx * s.dw;
        if (s.sw == 1) {
          // valid u: 0 <= ix0 + u < in_w
          const i64 lo = std::clamp<i64>(-ix0, 0, len);
          const i64 hi = std::clamp<i64>(s.in_w - ix0, lo, len);
          if (lo > 0) std::memset(o, 0, sizeof(float) * lo);
          if (hi > lo) std::memcpy(o + lo, rowp + ix0 + lo, sizeof(float) * (hi - lo));
          if (len > hi) std::memset(o + hi, 0, sizeof(float) * (len - hi));
        } else {
          for (i64 u = 0; u < len; u++) {
            const i64 ix = ix0 + u * s.sw;
            o[u] = (ix >= 0 && ix < s.in_w) ? rowp[ix] : 0.0f;
          }
        }
      }
      t += len;
      ox = 0;
      ++oy;
    }
  }

 private:
  const float* x_;
  ConvShape s_;
  i64 image_stride_;
};

bool is_pointwise(const ConvShape& s) {
  return s.kh == 1 && s.kw == 1 && s.sh == 1 && s.sw == 1 && s.ph == 0 && s.pw == 0 && s.out_h == s.in_h &&
         s.out_w == s.in_w;
}

/** Whether for_each_image_group runs the images and groups in parallel (enough of them for the threads). */
bool images_in_parallel(const ConvShape& s) {
  const i64 tasks = s.batch * s.groups;
  const int threads = num_threads();
  return threads > 1 && tasks >= threads && (tasks % threads == 0 || tasks >= 4 * threads);
}

/** Runs fn(n, g) over all images and groups: in parallel across them when there are enough, else serially
 * (each GEMM then uses the pool itself). */
template <typename F>
void for_each_image_group(const ConvShape& s, double flops_per_task, F fn) {
  const i64 tasks = s.batch * s.groups;
  if (images_in_parallel(s) && flops_per_task * tasks >= 4e6) {
    parallel_for(tasks, [&](i64 t) { fn(t / s.groups, t % s.groups); });
  } else {
    for (i64 t = 0; t < tasks; t++) fn(t / s.groups, t % s.groups);
  }
}

/** Small maps: one GEMM over the whole batch packs the weights once, not once per image (see conv2d_joint); taken
 * where the images would not run in parallel (one thread: SD 1.5's 8 x 8 convolutions 11-13% faster; on two
 * threads with one image each, the joint GEMM measured equal to 10% slower). */
constexpr i64 kJointMaxPixels = 256;

/**
 * A convolution of small maps as one GEMM for all images (groups == 1): C[o][(n, pixel)] = W x the images'
 * im2col matrices side by side, into a scratch [O][batch x pixels] copied out to [n][o][pixel] (adding the
 * residual). Per image, an 8 x 8 map's GEMM packed all of W for 64 columns; here it does so for batch x 64.
 */
void conv2d_joint(const float* x, const float* w, const std::uint16_t* w16, const float* bias, float* out,
                  const ConvShape& s, const float* residual) {
  const i64 ohw = s.out_h * s.out_w, cols = s.batch * ohw, O = s.out_c;
  float* joint = scratch(kConvOut, O * cols);
  Im2colB b(x, s, s.in_c * s.in_h * s.in_w);
  GemmProblem P;
  P.m = O;
  P.n = cols;
  P.k = s.in_c * s.kh * s.kw;
  if (w) {
    P.a = w;
  } else {
    P.a16 = w16;
  }
  P.ars = P.k;
  P.acs = 1;
  P.b = &b;
  P.c = joint;
  P.ldc = cols;
  P.bias_m = bias;
  sgemm(P);
  for (i64 n = 0; n < s.batch; n++) {
    for (i64 o = 0; o < O; o++) {
      const i64 at = (n * O + o) * ohw;
      const float* src = joint + o * cols + n * ohw;
      if (residual) {
        for (i64 i = 0; i < ohw; i++) out[at + i] = src[i] + residual[at + i];
      } else {
        std::memcpy(out + at, src, sizeof(float) * ohw);
      }
    }
  }
}

}  // namespace

void conv2d_forward(const float* x, const float* w, const std::uint16_t* w16, const float* bias, float* out,
                    const ConvShape& s, const float* residual) {
  static const bool winograd = [] {
    const char* v = std::getenv("DIFFUSE_CONV_WINOGRAD");
    return !(v && v[0] == '0');
  }();
  if (winograd && winograd_applicable(s)) return conv2d_winograd(x, w, w16, bias, out, s, residual);
  const i64 cg = s.in_c / s.groups, og = s.out_c / s.groups;
  const i64 kdim = cg * s.kh * s.kw, ohw = s.out_h * s.out_w, hw = s.in_h * s.in_w;
  if (s.groups == 1 && s.batch > 1 && ohw <= kJointMaxPixels && !images_in_parallel(s))
    return conv2d_joint(x, w, w16, bias, out, s, residual);
  const double flops = 2.0 * og * kdim * ohw;
  for_each_image_group(s, flops, [&](i64 n, i64 g) {
    const float* xg = x + (n * s.in_c + g * cg) * hw;
    GemmProblem P;
    P.m = og;
    P.n = ohw;
    P.k = kdim;
    if (w) {
      P.a = w + g * og * kdim;
    } else {
      P.a16 = w16 + g * og * kdim;
    }
    P.ars = kdim;
    P.acs = 1;
    P.c = out + (n * s.out_c + g * og) * ohw;
    P.ldc = ohw;
    P.bias_m = bias ? bias + g * og : nullptr;
    if (residual) {
      P.residual = residual + (n * s.out_c + g * og) * ohw;
      P.ldr = ohw;
    }
    if (is_pointwise(s)) {
      StridedB b(xg, hw, 1);
      P.b = &b;
      sgemm(P);
    } else {
      Im2colB b(xg, s);
      P.b = &b;
      sgemm(P);
    }
  });
}

void conv2d_backward_input(const float* grad_out, const float* w, float* grad_in, const ConvShape& s) {
  const i64 cg = s.in_c / s.groups, og = s.out_c / s.groups;
  const i64 kk_per_c = s.kh * s.kw;
  const i64 kdim = cg * kk_per_c, ohw = s.out_h * s.out_w, hw = s.in_h * s.in_w;
  const double flops = 2.0 * og * kdim * ohw;
  // col[kk][j] = sum_o W[o][kk] * gradOut[o][j], then scatter-add (col2im) into gradIn. Columns go in chunks
  // so the col buffer stays a few MB however large the image.
  const i64 chunk = std::max<i64>(256, std::min<i64>(ohw, (i64{1} << 21) / std::max<i64>(kdim, 1)));
  for_each_image_group(s, flops, [&](i64 n, i64 g) {
    const float* go = grad_out + (n * s.out_c + g * og) * ohw;
    float* gi = grad_in + (n * s.in_c + g * cg) * hw;
    GemmProblem P;
    P.k = og;
    P.a = w + g * og * kdim;  // A[kk][o] = w[o*kdim + kk]
    P.ars = 1;
    P.acs = kdim;
    if (is_pointwise(s)) {
      StridedB b(go, ohw, 1);
      P.m = cg;
      P.n = ohw;
      P.b = &b;
      P.c = gi;
      P.ldc = hw;
      sgemm(P);
      return;
    }
    std::memset(gi, 0, sizeof(float) * cg * hw);
    for (i64 j0 = 0; j0 < ohw; j0 += chunk) {
      const i64 nc = std::min<i64>(chunk, ohw - j0);
      float* col = scratch(kConvCol, kdim * nc);
      StridedB b(go + j0, ohw, 1);
      P.m = kdim;
      P.n = nc;
      P.b = &b;
      P.c = col;
      P.ldc = nc;
      sgemm(P);
      // col2im: each input channel owns its plane, so channels can be scattered in parallel
      auto scatter = [&](i64 c) {
        float* plane = gi + c * hw;
        for (i64 ky = 0; ky < s.kh; ky++)
          for (i64 kx = 0; kx < s.kw; kx++) {
            const float* src = col + ((c * s.kh + ky) * s.kw + kx) * nc;
            i64 oy = j0 / s.out_w, ox = j0 % s.out_w;
            for (i64 t = 0; t < nc;) {
              const i64 len = std::min<i64>(nc - t, s.out_w - ox);
              const i64 iy = oy * s.sh - s.ph + ky * s.dh;
              if (iy >= 0 && iy < s.in_h) {
                float* rowp = plane + iy * s.in_w;
                const i64 ix0 = ox * s.sw - s.pw + kx * s.dw;
                for (i64 u = 0; u < len; u++) {
                  const i64 ix = ix0 + u * s.sw;
                  if (ix >= 0 && ix < s.in_w) rowp[ix] += src[t + u];
                }
              }
              t += len;
              ox = 0;
              ++oy;
            }
          }
      };
      if (in_parallel_region() || cg * kk_per_c * nc < (1 << 16)) {
        for (i64 c = 0; c < cg; c++) scatter(c);
      } else {
        parallel_for(cg, scatter);
      }
    }
  });
}

void conv2d_backward_weight(const float* x, const float* grad_out, float* grad_w, const ConvShape& s) {
  const i64 cg = s.in_c / s.groups, og = s.out_c / s.groups;
  const i64 kdim = cg * s.kh * s.kw, ohw = s.out_h * s.out_w, hw = s.in_h * s.in_w;
  // gradW[g] (og x kdim) = sum_n gradOut[n,g] (og x ohw) @ col[n,g]^T (ohw x kdim); the sum over n and over
  // column chunks accumulates. Groups are independent and run in parallel when there are enough of them.
  const i64 chunk = std::max<i64>(64, std::min<i64>(ohw, (i64{1} << 21) / std::max<i64>(kdim, 1)));
  auto group = [&](i64 g) {
    float* gw = grad_w + g * og * kdim;
    bool first = true;
    for (i64 n = 0; n < s.batch; n++) {
      const float* xg = x + (n * s.in_c + g * cg) * hw;
      const float* go = grad_out + (n * s.out_c + g * og) * ohw;
      for (i64 j0 = 0; j0 < ohw; j0 += chunk) {
        const i64 nc = std::min<i64>(chunk, ohw - j0);
        GemmProblem P;
        P.m = og;
        P.n = kdim;
        P.k = nc;
        P.a = go + j0;
        P.ars = ohw;
        P.acs = 1;
        P.c = gw;
        P.ldc = kdim;
        P.accumulate = !first;
        first = false;
        if (is_pointwise(s)) {
          StridedB b(xg + j0, 1, hw);  // B[j][c] = x[c][j]
          P.b = &b;
          sgemm(P);
        } else {
          float* col = scratch(kConvCol, kdim * nc);
          Im2colB im(xg, s);
          im.pack(col, 0, kdim, j0, nc, static_cast<int>(nc));  // one panel = col[kk][0:nc]
          StridedB b(col, 1, nc);
          P.b = &b;
          sgemm(P);
        }
      }
    }
    if (first) std::memset(gw, 0, sizeof(float) * og * kdim);  // empty batch or image
  };
  const int threads = num_threads();
  if (threads > 1 && s.groups >= threads && 2.0 * s.batch * og * kdim * ohw * s.groups >= 4e6) {
    parallel_for(s.groups, group);
  } else {
    for (i64 g = 0; g < s.groups; g++) group(g);
  }
}

}  // namespace diffuse
