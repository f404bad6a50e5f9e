#include "vmath.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "norm_loops.h"

namespace diffuse {

namespace {

constexpr double kSqrt1_2 = 0.70710678118654752440;
constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

/** Scalar reference formulas, evaluated in float64 and rounded once. */
float scalar(VFn f, double x) {
  switch (f) {
    case VFn::kExp:
      return static_cast<float>(std::exp(x));
    case VFn::kSigmoid:
      return static_cast<float>(1.0 / (1.0 + std::exp(-x)));
    case VFn::kSilu:
      return static_cast<float>(x / (1.0 + std::exp(-x)));
    case VFn::kSiluGrad: {
      const double s = 1.0 / (1.0 + std::exp(-x));
      return static_cast<float>(s * (1.0 + x * (1.0 - s)));
    }
    case VFn::kTanh:
      return static_cast<float>(std::tanh(x));
    case VFn::kGelu:
      return static_cast<float>(0.5 * x * (1.0 + std::erf(x * kSqrt1_2)));
    case VFn::kGeluGrad:
      return static_cast<float>(0.5 * (1.0 + std::erf(x * kSqrt1_2)) + x * kInvSqrt2Pi * std::exp(-0.5 * x * x));
    case VFn::kGeluTanh:
      return static_cast<float>(0.5 * x * (1.0 + std::tanh(kSqrt2OverPi * (x + 0.044715 * x * x * x))));
    case VFn::kGeluTanhGrad: {
      const double t = std::tanh(kSqrt2OverPi * (x + 0.044715 * x * x * x));
      const double du = kSqrt2OverPi * (1.0 + 3.0 * 0.044715 * x * x);
      return static_cast<float>(0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du);
    }
    case VFn::kCount:
      break;
  }
  return 0.0f;
}

void vmath_portable(VFn f, const float* x, float* y, i64 n) {
  for (i64 i = 0; i < n; i++) y[i] = scalar(f, x[i]);
}

float vmax_portable(const float* x, i64 n) {
  float mx = -std::numeric_limits<float>::infinity();
  for (i64 i = 0; i < n; i++) {
    if (std::isnan(x[i])) return x[i];
    mx = x[i] > mx ? x[i] : mx;
  }
  return mx;
}

float vexp_shift_sum_portable(float* x, i64 n, float shift) {
  float sum = 0;
  for (i64 i = 0; i < n; i++) sum += x[i] = std::exp(x[i] - shift);
  return sum;
}

void softmax_panel_portable(float* x, i64 rows, int nr, float* m, float* l, float* corr, bool) {
  const float ninf = -std::numeric_limits<float>::infinity();
  for (int t = 0; t < nr; t++) {
    float mx = ninf;
    for (i64 r = 0; r < rows; r++) mx = x[r * nr + t] > mx ? x[r * nr + t] : mx;  // NaN reaches l via exp
    const float mnew = m[t] > mx ? m[t] : mx;
    const float shift = mnew == ninf ? 0.0f : mnew;
    const float c = m[t] == ninf ? 0.0f : std::exp2(m[t] - mnew);
    float sum = 0;
    for (i64 r = 0; r < rows; r++) sum += x[r * nr + t] = std::exp2(x[r * nr + t] - shift);
    l[t] = l[t] * c + sum;
    m[t] = mnew;
    corr[t] = c;
  }
}

struct Impl {
  VMathFn map;
  float (*max)(const float*, i64);
  float (*exp_sum)(float*, i64, float);
  void (*panel)(float*, i64, int, float*, float*, float*, bool);
  void (*moments)(const float*, i64, double*, double*);
  void (*affine)(const float*, float*, i64, float, float, float);
  void (*normalize)(const float*, float*, i64, float, float, const float*, const float*);
};

const Impl kPortable = {vmath_portable,         vmax_portable,     vexp_shift_sum_portable,
                        softmax_panel_portable, norm_loops::moments, norm_loops::affine,
                        norm_loops::normalize};
#if defined(DIFFUSE_HAVE_X86_KERNELS)
const Impl kAvx2 = {vmath_avx2,    vmax_avx2,    vexp_shift_sum_avx2, softmax_panel_avx2,
                   vmoments_avx2, vaffine_avx2, vnormalize_avx2};
const Impl kAvx512 = {vmath_avx512,    vmax_avx2,      vexp_shift_sum_avx2, softmax_panel_avx512,
                     vmoments_avx512, vaffine_avx512, vnormalize_avx512};

bool has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
bool has_avx512() { return has_avx2() && __builtin_cpu_supports("avx512f"); }
#endif

const Impl* best() {
#if defined(DIFFUSE_HAVE_X86_KERNELS)
  if (has_avx512()) return &kAvx512;
  if (has_avx2()) return &kAvx2;
#endif
  return &kPortable;
}

const Impl* g_impl = nullptr;

const Impl& impl() {
  if (!g_impl) g_impl = best();
  return *g_impl;
}

}  // namespace

void vmath(VFn f, const float* x, float* y, i64 n) { impl().map(f, x, y, n); }

float vmax(const float* x, i64 n) { return impl().max(x, n); }

float vexp_shift_sum(float* x, i64 n, float shift) { return impl().exp_sum(x, n, shift); }

void softmax_panel(float* x, i64 rows, int nr, float* m, float* l, float* corr, bool may_be_neg_inf) {
  impl().panel(x, rows, nr, m, l, corr, may_be_neg_inf);
}

void vmoments(const float* x, i64 n, double* mean, double* sq_dev) { impl().moments(x, n, mean, sq_dev); }

void vaffine(const float* x, float* y, i64 n, float shift, float scale, float bias) {
  impl().affine(x, y, n, shift, scale, bias);
}

void vnormalize(const float* x, float* y, i64 n, float shift, float scale, const float* w, const float* b) {
  impl().normalize(x, y, n, shift, scale, w, b);
}

bool select_vmath(const char* name) {
  if (!name || !*name) {
    g_impl = best();
    return true;
  }
  if (std::strcmp(name, "portable") == 0) {
    g_impl = &kPortable;
    return true;
  }
#if defined(DIFFUSE_HAVE_X86_KERNELS)
  if (std::strcmp(name, "avx2") == 0) {
    if (!has_avx2()) return false;
    g_impl = &kAvx2;
    return true;
  }
  if (std::strcmp(name, "avx512") == 0) {
    if (!has_avx512()) return false;
    g_impl = &kAvx512;
    return true;
  }
#endif
  return false;
}

}  // namespace diffuse
