// Group norm and layer norm (biased variance, two-pass float64 statistics as the reference; the normalisation
// itself in float32).
// Backward, for one normalised slice of m values with xhat = (x - mean) * rstd and dyw = dy * weight:
//   dx = rstd * (dyw - mean(dyw) - xhat * mean(dyw * xhat)),  dweight = sum dy * xhat,  dbias = sum dy.
#include <algorithm>
#include <cmath>
#include <vector>

#include "parallel.h"
#include "reduce.h"
#include "vmath.h"

namespace diffuse {

namespace {

/** Mean and 1 / sqrt(variance + eps) (biased variance) of x[0..m). */
void moments(const float* x, i64 m, float eps, double* mu_out, double* rstd_out) {
  double sq_dev;
  vmoments(x, m, mu_out, &sq_dev);
  *rstd_out = 1.0 / std::sqrt((m > 0 ? sq_dev / m : 0.0) + eps);
}

template <typename F>
void parallel_tasks(i64 count, double work, F fn) {
  if (num_threads() <= 1 || count <= 1 || work < 65536.0 || in_parallel_region()) {
    for (i64 t = 0; t < count; t++) fn(t);
    return;
  }
  parallel_for(count, fn);
}

}  // namespace

void group_norm(const float* x, const float* weight, const float* bias, float* out, float* mean, float* rstd,
                i64 n, i64 c, i64 spatial, i64 groups, float eps, bool silu) {
  const i64 cpg = c / groups, m = cpg * spatial;
  parallel_tasks(n * groups, 4.0 * n * c * spatial, [&](i64 i) {
    const float* xs = x + i * m;
    double mu, r;
    moments(xs, m, eps, &mu, &r);
    mean[i] = static_cast<float>(mu);
    rstd[i] = static_cast<float>(r);
    const i64 g = i % groups;
    for (i64 cl = 0; cl < cpg; cl++) {
      const i64 ch = g * cpg + cl;
      // y = (x - mu) * (r * w) + b (x == mu gives exactly b, as the reference)
      const float a = static_cast<float>(r * (weight ? weight[ch] : 1.0f));
      const float b = bias ? bias[ch] : 0.0f, fm = static_cast<float>(mu);
      const float* xr = xs + cl * spatial;
      float* orow = out + i * m + cl * spatial;
      vaffine(xr, orow, spatial, fm, a, b);
      if (silu) vmath(VFn::kSilu, orow, orow, spatial);
    }
  });
}

void group_norm_backward(const float* grad_out, const float* x, const float* weight, const float* mean,
                         const float* rstd, float* grad_x, float* grad_weight, float* grad_bias, i64 n, i64 c,
                         i64 spatial, i64 groups) {
  const i64 cpg = c / groups, m = cpg * spatial;
  // per-(sample, channel) partial sums, reduced over samples at the end (no shared writes between tasks)
  std::vector<double> pa(static_cast<std::size_t>(n * c)), pb(static_cast<std::size_t>(n * c));
  parallel_tasks(n * groups, 6.0 * n * c * spatial, [&](i64 i) {
    const double mu = mean[i], r = rstd[i];
    const i64 g = i % groups, ni = i / groups;
    double sum_dyw = 0, sum_dyw_xhat = 0;
    for (i64 cl = 0; cl < cpg; cl++) {
      const i64 ch = g * cpg + cl;
      const i64 base = i * m + cl * spatial;
      double a = 0, b = 0;
      for (i64 s = 0; s < spatial; s++) {
        const double dy = grad_out[base + s];
        a += dy * (x[base + s] - mu);
        b += dy;
      }
      a *= r;
      pa[ni * c + ch] = a;
      pb[ni * c + ch] = b;
      const double wc = weight ? weight[ch] : 1.0;
      sum_dyw += wc * b;
      sum_dyw_xhat += wc * a;
    }
    const double mean_dyw = sum_dyw / m, mean_dyw_xhat = sum_dyw_xhat / m;
    for (i64 cl = 0; cl < cpg; cl++) {
      const i64 ch = g * cpg + cl;
      const double wc = weight ? weight[ch] : 1.0;
      const i64 base = i * m + cl * spatial;
      const float fw = static_cast<float>(wc), fr = static_cast<float>(r), fm = static_cast<float>(mu);
      const float fa = static_cast<float>(mean_dyw), fb = static_cast<float>(mean_dyw_xhat);
      for (i64 s = 0; s < spatial; s++) {
        const float xhat = (x[base + s] - fm) * fr;
        grad_x[base + s] = fr * (grad_out[base + s] * fw - fa - xhat * fb);
      }
    }
  });
  for (i64 ch = 0; ch < c; ch++) {
    double a = 0, b = 0;
    for (i64 ni = 0; ni < n; ni++) {
      a += pa[ni * c + ch];
      b += pb[ni * c + ch];
    }
    if (grad_weight) grad_weight[ch] = static_cast<float>(a);
    if (grad_bias) grad_bias[ch] = static_cast<float>(b);
  }
}

void layer_norm(const float* x, const float* weight, const float* bias, float* out, float* mean, float* rstd,
                i64 rows, i64 cols, float eps) {
  // rows in blocks of >= ~16K elements per task: one row of a transformer's tokens is too little work to hand out
  const i64 block = std::max<i64>(1, 16384 / std::max<i64>(cols, 1));
  parallel_tasks(ceil_div(rows, block), 4.0 * rows * cols, [&](i64 t) {
    for (i64 i = t * block; i < std::min(rows, (t + 1) * block); i++) {
      const float* xr = x + i * cols;
      float* orow = out + i * cols;
      double mu, r;
      moments(xr, cols, eps, &mu, &r);
      mean[i] = static_cast<float>(mu);
      rstd[i] = static_cast<float>(r);
      vnormalize(xr, orow, cols, static_cast<float>(mu), static_cast<float>(r), weight, bias);
    }
  });
}

void layer_norm_backward(const float* grad_out, const float* x, const float* weight, const float* mean,
                         const float* rstd, float* grad_x, float* grad_weight, float* grad_bias, i64 rows,
                         i64 cols) {
  // rows go in blocks; each block keeps its own dweight/dbias partials, summed at the end
  const i64 nblocks = std::min<i64>(rows, std::max(1, num_threads()) * 4);
  const i64 step = nblocks > 0 ? ceil_div(rows, nblocks) : 0;
  const i64 ntasks = step > 0 ? ceil_div(rows, step) : 0;
  const bool want_params = grad_weight || grad_bias;
  std::vector<double> part(want_params ? static_cast<std::size_t>(ntasks * 2 * cols) : 0);
  parallel_tasks(ntasks, 6.0 * rows * cols, [&](i64 t) {
    double* dw = want_params ? part.data() + t * 2 * cols : nullptr;
    double* db = want_params ? dw + cols : nullptr;
    for (i64 i = t * step; i < std::min(rows, (t + 1) * step); i++) {
      const float* g = grad_out + i * cols;
      const float* xr = x + i * cols;
      const double mu = mean[i], r = rstd[i];
      double sum_dyw = 0, sum_dyw_xhat = 0;
      for (i64 j = 0; j < cols; j++) {
        const double dy = g[j];
        const double xhat = (xr[j] - mu) * r;
        const double dyw = dy * (weight ? weight[j] : 1.0f);
        if (dw) {
          dw[j] += dy * xhat;
          db[j] += dy;
        }
        sum_dyw += dyw;
        sum_dyw_xhat += dyw * xhat;
      }
      const double mean_dyw = sum_dyw / cols, mean_dyw_xhat = sum_dyw_xhat / cols;
      const float fr = static_cast<float>(r), fm = static_cast<float>(mu);
      const float fa = static_cast<float>(mean_dyw), fb = static_cast<float>(mean_dyw_xhat);
      float* gx = grad_x + i * cols;
      for (i64 j = 0; j < cols; j++) {
        const float xhat = (xr[j] - fm) * fr;
        const float dyw = g[j] * (weight ? weight[j] : 1.0f);
        gx[j] = fr * (dyw - fa - xhat * fb);
      }
    }
  });
  for (i64 j = 0; j < cols && want_params; j++) {
    double a = 0, b = 0;
    for (i64 t = 0; t < ntasks; t++) {
      a += part[t * 2 * cols + j];
      b += part[t * 2 * cols + cols + j];
    }
    if (grad_weight) grad_weight[j] = static_cast<float>(a);
    if (grad_bias) grad_bias[j] = static_cast<float>(b);
  }
}

}  // namespace diffuse
