#include "elementwise.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "parallel.h"
#include "vmath.h"

namespace diffuse {

namespace {

/**
 * The iteration space of K operands after dropping size-1 dims and merging dims that are contiguous for every
 * operand. The innermost dim is run as a tight loop by the caller's body.
 */
template <int K>
struct Loop {
  std::vector<i64> shape;
  std::vector<std::array<i64, K>> strides;
  std::array<i64, K> offsets{};
  i64 total = 1;

  Loop(const std::vector<i64>& shp, const std::array<const std::vector<i64>*, K>& strd,
       const std::array<i64, K>& offs)
      : offsets(offs) {
    for (i64 d : shp) total *= d;
    for (std::size_t d = 0; d < shp.size(); d++) {
      if (shp[d] == 1) continue;
      std::array<i64, K> s;
      for (int k = 0; k < K; k++) s[k] = (*strd[k])[d];
      if (!shape.empty()) {
        bool merge = true;
        for (int k = 0; k < K; k++) merge = merge && strides.back()[k] == s[k] * shp[d];
        if (merge) {
          shape.back() *= shp[d];
          strides.back() = s;
          continue;
        }
      }
      shape.push_back(shp[d]);
      strides.push_back(s);
    }
    if (shape.empty()) {
      shape.push_back(1);
      strides.push_back(std::array<i64, K>{});
    }
  }

  /** Calls body(offsets, inner_strides, len, out_flat) for row segments covering flat indices [o0, o1). */
  template <typename Body>
  void run(i64 o0, i64 o1, Body&& body) const {
    if (o0 >= o1) return;
    const int nd = static_cast<int>(shape.size());
    const i64 inner = shape[nd - 1];
    std::vector<i64> idx(nd, 0);
    std::array<i64, K> off = offsets;
    i64 rem = o0;
    for (int d = nd - 1; d >= 0; d--) {
      idx[d] = rem % shape[d];
      rem /= shape[d];
      for (int k = 0; k < K; k++) off[k] += idx[d] * strides[d][k];
    }
    i64 o = o0;
    while (o < o1) {
      const i64 len = std::min<i64>(inner - idx[nd - 1], o1 - o);
      body(off, strides[nd - 1], len, o);
      o += len;
      if (o >= o1) break;
      // advance to the start of the next row
      for (int k = 0; k < K; k++) off[k] -= idx[nd - 1] * strides[nd - 1][k];
      idx[nd - 1] = 0;
      for (int d = nd - 2; d >= 0; d--) {
        for (int k = 0; k < K; k++) off[k] += strides[d][k];
        if (++idx[d] < shape[d]) break;
        for (int k = 0; k < K; k++) off[k] -= shape[d] * strides[d][k];
        idx[d] = 0;
      }
    }
  }

  /** Runs the loop, split over the pool when it is large. `cost` ~ relative work per element. */
  template <typename Body>
  void run_parallel(Body&& body, double cost = 1.0) const {
    const int threads = num_threads();
    const double work = static_cast<double>(total) * cost;
    if (threads <= 1 || work < 65536.0 || in_parallel_region()) return run(0, total, body);
    const i64 tasks = std::min<i64>(threads * 4, ceil_div(total, 4096));
    const i64 step = round_up(ceil_div(total, tasks), 16);
    parallel_for(ceil_div(total, step), [&](i64 t) { run(t * step, std::min(total, (t + 1) * step), body); });
  }
};

std::vector<i64> contiguous_strides(const std::vector<i64>& shape) {
  std::vector<i64> s(shape.size());
  i64 acc = 1;
  for (int d = static_cast<int>(shape.size()) - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/**
 * A copy whose destination runs along a source dim of stride != 1 while another dim is contiguous in the source
 * (a transpose, e.g. [B, C, HW] -> [B, HW, C]): done in 16 x 16 tiles so the 16 source lines a tile reads stay in
 * L1, instead of one cache line per element. Returns false when the copy is not of that form.
 */
template <typename T>
bool copy_transposed(const Loop<2>& L, const T* s, T* d) {
  const int nd = static_cast<int>(L.shape.size());
  const int a = nd - 1;
  if (nd < 2 || L.strides[a][1] != 1 || L.strides[a][0] == 1) return false;
  int b = -1;
  for (int k = 0; k < a; k++)
    if (L.strides[k][0] == 1) b = k;
  if (b < 0 || L.shape[a] < 8 || L.shape[b] < 8) return false;
  std::vector<int> outer;
  i64 nouter = 1;
  for (int k = 0; k < nd; k++)
    if (k != a && k != b) {
      outer.push_back(k);
      nouter *= L.shape[k];
    }
  constexpr i64 kT = 16;
  const i64 na = L.shape[a], nb = L.shape[b], sa = L.strides[a][0], db = L.strides[b][1];
  const i64 bblocks = ceil_div(nb, kT);
  auto task = [&](i64 t) {
    i64 o = t / bblocks, so = L.offsets[0], dof = L.offsets[1];
    for (int q = static_cast<int>(outer.size()) - 1; q >= 0; q--) {
      const int k = outer[q];
      const i64 i = o % L.shape[k];
      o /= L.shape[k];
      so += i * L.strides[k][0];
      dof += i * L.strides[k][1];
    }
    const i64 b0 = (t % bblocks) * kT, b1 = std::min(nb, b0 + kT);
    for (i64 a0 = 0; a0 < na; a0 += kT) {
      const i64 a1 = std::min(na, a0 + kT);
      for (i64 ib = b0; ib < b1; ib++) {
        T* dr = d + dof + ib * db;
        const T* sr = s + so + ib;
        for (i64 ia = a0; ia < a1; ia++) dr[ia] = sr[ia * sa];
      }
    }
  };
  const i64 tasks = nouter * bblocks;
  if (num_threads() > 1 && L.total >= (1 << 16) && !in_parallel_region()) {
    parallel_for(tasks, task);
  } else {
    for (i64 t = 0; t < tasks; t++) task(t);
  }
  return true;
}

template <typename T>
void copy_typed(const View& src, void* dst_base, i64 dst_offset, const std::vector<i64>& dst_strides,
                const std::vector<i64>& shape) {
  const T* s = static_cast<const T*>(src.base);
  T* d = static_cast<T*>(dst_base);
  Loop<2> loop(shape, {&src.strides, &dst_strides}, {src.offset, dst_offset});
  if (copy_transposed(loop, s, d)) return;
  loop.run_parallel([&](const std::array<i64, 2>& off, const std::array<i64, 2>& st, i64 len, i64) {
    const T* sp = s + off[0];
    T* dp = d + off[1];
    if (st[0] == 1 && st[1] == 1) {
      std::memcpy(dp, sp, sizeof(T) * len);
    } else {
      for (i64 i = 0; i < len; i++) dp[i * st[1]] = sp[i * st[0]];
    }
  });
}

// erf(x/sqrt2) style constants
constexpr double kSqrt1_2 = 0.70710678118654752440;
constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

/** Applies f to a row segment; contiguous segments get a loop the compiler can vectorise. */
template <typename F>
void unary_apply(F f, const float* x, i64 xs, float* out, i64 len) {
  if (xs == 1) {
    for (i64 i = 0; i < len; i++) out[i] = f(x[i]);
  } else {
    for (i64 i = 0; i < len; i++) out[i] = f(x[i * xs]);
  }
}

template <typename F>
void unary_run(F f, const View& x, float* out, const std::vector<i64>& shape, double cost) {
  const std::vector<i64> os = contiguous_strides(shape);
  const float* xd = static_cast<const float*>(x.base);
  Loop<2> loop(shape, {&x.strides, &os}, {x.offset, 0});
  loop.run_parallel(
      [&](const std::array<i64, 2>& off, const std::array<i64, 2>& st, i64 len, i64) {
        unary_apply(f, xd + off[0], st[0], out + off[1], len);
      },
      cost);
}

// Other transcendental functions are evaluated in double and rounded once, like the reference.
#define D(expr) static_cast<float>(expr)

/** The vectorised math function computing `op`, if there is one. */
bool vectorised(Unary op, VFn* f) {
  switch (op) {
    case Unary::kExp:
      *f = VFn::kExp;
      return true;
    case Unary::kSigmoid:
      *f = VFn::kSigmoid;
      return true;
    case Unary::kSilu:
      *f = VFn::kSilu;
      return true;
    case Unary::kSiluGrad:
      *f = VFn::kSiluGrad;
      return true;
    case Unary::kTanh:
      *f = VFn::kTanh;
      return true;
    case Unary::kGelu:
      *f = VFn::kGelu;
      return true;
    case Unary::kGeluGrad:
      *f = VFn::kGeluGrad;
      return true;
    case Unary::kGeluTanh:
      *f = VFn::kGeluTanh;
      return true;
    case Unary::kGeluTanhGrad:
      *f = VFn::kGeluTanhGrad;
      return true;
    default:
      return false;
  }
}

/** Runs a vmath function over a strided view: strided rows are gathered into the (contiguous) output first, so
 * every layout gives bit-identical results. */
void vmath_run(VFn f, const View& x, float* out, const std::vector<i64>& shape) {
  const std::vector<i64> os = contiguous_strides(shape);
  const float* xd = static_cast<const float*>(x.base);
  Loop<2> loop(shape, {&x.strides, &os}, {x.offset, 0});
  loop.run_parallel(
      [&](const std::array<i64, 2>& off, const std::array<i64, 2>& st, i64 len, i64) {
        const float* xp = xd + off[0];
        float* op = out + off[1];
        if (st[0] != 1) {
          for (i64 i = 0; i < len; i++) op[i] = xp[i * st[0]];
          xp = op;
        }
        vmath(f, xp, op, len);
      },
      4);
}

}  // namespace

void copy_strided(int elem_size, const View& src, void* dst_base, i64 dst_offset, const std::vector<i64>& dst_strides,
                  const std::vector<i64>& shape) {
  switch (elem_size) {
    case 1:
      return copy_typed<std::uint8_t>(src, dst_base, dst_offset, dst_strides, shape);
    case 2:
      return copy_typed<std::uint16_t>(src, dst_base, dst_offset, dst_strides, shape);
    case 4:
      return copy_typed<std::uint32_t>(src, dst_base, dst_offset, dst_strides, shape);
    default:
      return copy_typed<std::uint64_t>(src, dst_base, dst_offset, dst_strides, shape);
  }
}

void unary(Unary op, const View& x, float* out, const std::vector<i64>& shape, float p0, float p1) {
  const double dp0 = p0, dp1 = p1;
  VFn vf;
  if (vectorised(op, &vf)) return vmath_run(vf, x, out, shape);
  switch (op) {
    case Unary::kNeg:
      return unary_run([](float v) { return -v; }, x, out, shape, 1);
    case Unary::kExp:
      return unary_run([](float v) { return D(std::exp(double(v))); }, x, out, shape, 8);
    case Unary::kLog:
      return unary_run([](float v) { return D(std::log(double(v))); }, x, out, shape, 8);
    case Unary::kSqrt:
      return unary_run([](float v) { return std::sqrt(v); }, x, out, shape, 2);
    case Unary::kRsqrt:
      return unary_run([](float v) { return D(1.0 / std::sqrt(double(v))); }, x, out, shape, 2);
    case Unary::kAbs:
      return unary_run([](float v) { return std::fabs(v); }, x, out, shape, 1);
    case Unary::kSign:
      return unary_run([](float v) { return v > 0 ? 1.0f : (v < 0 ? -1.0f : v); }, x, out, shape, 1);
    case Unary::kTanh:
      return unary_run([](float v) { return D(std::tanh(double(v))); }, x, out, shape, 8);
    case Unary::kSigmoid:
      return unary_run([](float v) { return D(1.0 / (1.0 + std::exp(-double(v)))); }, x, out, shape, 8);
    case Unary::kSilu:
      return unary_run([](float v) { return D(double(v) / (1.0 + std::exp(-double(v)))); }, x, out, shape, 8);
    case Unary::kSiluGrad:
      return unary_run(
          [](float v) {
            const double s = 1.0 / (1.0 + std::exp(-double(v)));
            return D(s * (1.0 + double(v) * (1.0 - s)));
          },
          x, out, shape, 8);
    case Unary::kGelu:
      return unary_run([](float v) { return D(0.5 * v * (1.0 + std::erf(v * kSqrt1_2))); }, x, out, shape, 8);
    case Unary::kGeluGrad:
      return unary_run(
          [](float v) {
            const double d = v;
            return D(0.5 * (1.0 + std::erf(d * kSqrt1_2)) + d * kInvSqrt2Pi * std::exp(-0.5 * d * d));
          },
          x, out, shape, 8);
    case Unary::kGeluTanh:
      return unary_run(
          [](float v) {
            const double d = v;
            return D(0.5 * d * (1.0 + std::tanh(kSqrt2OverPi * (d + 0.044715 * d * d * d))));
          },
          x, out, shape, 8);
    case Unary::kGeluTanhGrad:
      return unary_run(
          [](float v) {
            const double d = v;
            const double t = std::tanh(kSqrt2OverPi * (d + 0.044715 * d * d * d));
            const double du = kSqrt2OverPi * (1.0 + 3.0 * 0.044715 * d * d);
            return D(0.5 * (1.0 + t) + 0.5 * d * (1.0 - t * t) * du);
          },
          x, out, shape, 8);
    case Unary::kErf:
      return unary_run([](float v) { return D(std::erf(double(v))); }, x, out, shape, 8);
    case Unary::kRelu:
      // NaN propagates as in Math.max
      return unary_run([](float v) { return std::isnan(v) ? v : (v > 0.0f ? v : 0.0f); }, x, out, shape, 1);
    case Unary::kSin:
      return unary_run([](float v) { return D(std::sin(double(v))); }, x, out, shape, 8);
    case Unary::kCos:
      return unary_run([](float v) { return D(std::cos(double(v))); }, x, out, shape, 8);
    case Unary::kSquare:
      return unary_run([](float v) { return v * v; }, x, out, shape, 1);
    case Unary::kReciprocal:
      return unary_run([](float v) { return 1.0f / v; }, x, out, shape, 1);
    case Unary::kFloor:
      return unary_run([](float v) { return std::floor(v); }, x, out, shape, 1);
    case Unary::kCeil:
      return unary_run([](float v) { return std::ceil(v); }, x, out, shape, 1);
    case Unary::kRound:
      // round half to even (the default floating-point rounding mode)
      return unary_run([](float v) { return std::nearbyint(v); }, x, out, shape, 1);
    case Unary::kPowScalar:
      return unary_run([dp0](float v) { return D(std::pow(double(v), dp0)); }, x, out, shape, 8);
    case Unary::kClamp:
      return unary_run([p0, p1](float v) { return v < p0 ? p0 : (p1 < v ? p1 : v); }, x, out, shape, 1);
    case Unary::kAffine:
      return unary_run([dp0, dp1](float v) { return D(dp0 * v + dp1); }, x, out, shape, 1);
    case Unary::kCount:
      break;
  }
}

namespace {

template <typename F>
void binary_run(F f, const View& a, const View& b, float* out, const std::vector<i64>& shape, double cost) {
  const std::vector<i64> os = contiguous_strides(shape);
  const float* ad = static_cast<const float*>(a.base);
  const float* bd = static_cast<const float*>(b.base);
  Loop<3> loop(shape, {&a.strides, &b.strides, &os}, {a.offset, b.offset, 0});
  loop.run_parallel(
      [&](const std::array<i64, 3>& off, const std::array<i64, 3>& st, i64 len, i64) {
        const float* ap = ad + off[0];
        const float* bp = bd + off[1];
        float* op = out + off[2];
        if (st[0] == 1 && st[1] == 1) {
          for (i64 i = 0; i < len; i++) op[i] = f(ap[i], bp[i]);
        } else if (st[0] == 1 && st[1] == 0) {
          const float bv = *bp;
          for (i64 i = 0; i < len; i++) op[i] = f(ap[i], bv);
        } else if (st[0] == 0 && st[1] == 1) {
          const float av = *ap;
          for (i64 i = 0; i < len; i++) op[i] = f(av, bp[i]);
        } else {
          for (i64 i = 0; i < len; i++) op[i] = f(ap[i * st[0]], bp[i * st[1]]);
        }
      },
      cost);
}

}  // namespace

void binary(Binary op, const View& a, const View& b, float* out, const std::vector<i64>& shape) {
  switch (op) {
    case Binary::kAdd:
      return binary_run([](float x, float y) { return x + y; }, a, b, out, shape, 1);
    case Binary::kSub:
      return binary_run([](float x, float y) { return x - y; }, a, b, out, shape, 1);
    case Binary::kMul:
      return binary_run([](float x, float y) { return x * y; }, a, b, out, shape, 1);
    case Binary::kDiv:
      return binary_run([](float x, float y) { return x / y; }, a, b, out, shape, 1);
    case Binary::kPow:
      return binary_run([](float x, float y) { return D(std::pow(double(x), double(y))); }, a, b, out, shape, 8);
    case Binary::kMaximum:
      return binary_run([](float x, float y) { return (x > y || std::isnan(x)) ? x : y; }, a, b, out, shape, 1);
    case Binary::kMinimum:
      return binary_run([](float x, float y) { return (x < y || std::isnan(x)) ? x : y; }, a, b, out, shape, 1);
    case Binary::kEq:
      return binary_run([](float x, float y) { return x == y ? 1.0f : 0.0f; }, a, b, out, shape, 1);
    case Binary::kNe:
      return binary_run([](float x, float y) { return x != y ? 1.0f : 0.0f; }, a, b, out, shape, 1);
    case Binary::kLt:
      return binary_run([](float x, float y) { return x < y ? 1.0f : 0.0f; }, a, b, out, shape, 1);
    case Binary::kLe:
      return binary_run([](float x, float y) { return x <= y ? 1.0f : 0.0f; }, a, b, out, shape, 1);
    case Binary::kGt:
      return binary_run([](float x, float y) { return x > y ? 1.0f : 0.0f; }, a, b, out, shape, 1);
    case Binary::kGe:
      return binary_run([](float x, float y) { return x >= y ? 1.0f : 0.0f; }, a, b, out, shape, 1);
    case Binary::kCount:
      break;
  }
}

void where(const View& cond, const View& a, const View& b, float* out, const std::vector<i64>& shape) {
  const std::vector<i64> os = contiguous_strides(shape);
  const std::uint8_t* cd = static_cast<const std::uint8_t*>(cond.base);
  const float* ad = static_cast<const float*>(a.base);
  const float* bd = static_cast<const float*>(b.base);
  Loop<4> loop(shape, {&cond.strides, &a.strides, &b.strides, &os}, {cond.offset, a.offset, b.offset, 0});
  loop.run_parallel([&](const std::array<i64, 4>& off, const std::array<i64, 4>& st, i64 len, i64) {
    const std::uint8_t* cp = cd + off[0];
    const float* ap = ad + off[1];
    const float* bp = bd + off[2];
    float* op = out + off[3];
    for (i64 i = 0; i < len; i++) op[i] = cp[i * st[0]] ? ap[i * st[1]] : bp[i * st[2]];
  });
}

#undef D

}  // namespace diffuse
