// N-API entry points. Each function unpacks typed arrays (no copies: kernels read and write the JS memory),
// checks that every access stays inside its array (a bad call throws a RangeError instead of corrupting memory),
// and calls the kernel.
#include <napi.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "conv.h"
#include "elementwise.h"
#include "gemm.h"
#include "parallel.h"
#include "reduce.h"
#include "vmath.h"

namespace diffuse {

void register_pool(Napi::Env env, Napi::Object exports);  // pool.cc: allocF32, poolStats, poolTrim
void register_mapfile(Napi::Env env, Napi::Object exports);  // mapfile.cc: mapFile

namespace {

struct F32 {
  float* data = nullptr;
  i64 length = 0;
};

/**
 * Output arrays of a few MB are usually fresh memory the kernel touches first: huge pages make that first touch
 * fault once per 2 MB instead of once per 4 KB, which on large activations costs as much as an elementwise pass.
 */
void advise_output(const void* p, i64 elements, int element_size = 4) {
  const std::size_t bytes = static_cast<std::size_t>(elements) * static_cast<std::size_t>(element_size);
  if (bytes >= (std::size_t{8} << 20)) advise_huge_pages(p, bytes);
}

[[noreturn]] void range_error(Napi::Env env, const std::string& msg) {
  throw Napi::RangeError::New(env, msg);
}

F32 f32(const Napi::CallbackInfo& info, std::size_t i, const char* name, bool optional = false) {
  Napi::Value v = info[i];
  if (optional && (v.IsNull() || v.IsUndefined())) return {};
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(info.Env(), std::string(name) + ": expected a Float32Array");
  auto a = v.As<Napi::Float32Array>();
  return {a.Data(), static_cast<i64>(a.ElementLength())};
}

/** A Float32Array, or a Uint16Array of IEEE half bits (float16 weights, widened inside the kernels). */
struct Operand {
  const float* f32 = nullptr;
  const std::uint16_t* f16 = nullptr;
  i64 length = 0;
};

Operand f32_or_f16(const Napi::CallbackInfo& info, std::size_t i, const char* name) {
  Napi::Value v = info[i];
  if (v.IsTypedArray()) {
    const napi_typedarray_type t = v.As<Napi::TypedArray>().TypedArrayType();
    if (t == napi_float32_array) {
      auto a = v.As<Napi::Float32Array>();
      return {a.Data(), nullptr, static_cast<i64>(a.ElementLength())};
    }
    if (t == napi_uint16_array) {
      auto a = v.As<Napi::Uint16Array>();
      return {nullptr, a.Data(), static_cast<i64>(a.ElementLength())};
    }
  }
  throw Napi::TypeError::New(info.Env(),
                            std::string(name) + ": expected a Float32Array or a Uint16Array (float16 bits)");
}

i64 num(const Napi::CallbackInfo& info, std::size_t i, const char* name) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + ": expected a number");
  return v.As<Napi::Number>().Int64Value();
}

double dbl(const Napi::CallbackInfo& info, std::size_t i, const char* name) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + ": expected a number");
  return v.As<Napi::Number>().DoubleValue();
}

std::vector<i64> int_list(const Napi::CallbackInfo& info, std::size_t i, const char* name) {
  Napi::Value v = info[i];
  if (!v.IsArray()) throw Napi::TypeError::New(info.Env(), std::string(name) + ": expected an array of numbers");
  auto arr = v.As<Napi::Array>();
  std::vector<i64> out(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value e = arr.Get(k);
    if (!e.IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + ": expected numbers");
    out[k] = e.As<Napi::Number>().Int64Value();
  }
  return out;
}

/** Throws unless every element of a strided view over `shape` lies in [0, length). */
void check_view(Napi::Env env, const char* name, i64 length, i64 offset, const std::vector<i64>& strides,
                const std::vector<i64>& shape) {
  if (strides.size() != shape.size())
    range_error(env, std::string(name) + ": " + std::to_string(strides.size()) + " strides for " +
                         std::to_string(shape.size()) + " dims");
  i64 lo = offset, hi = offset;
  for (std::size_t d = 0; d < shape.size(); d++) {
    if (shape[d] < 0) range_error(env, std::string(name) + ": negative dim");
    if (shape[d] == 0) return;  // empty view touches nothing
    const i64 span = (shape[d] - 1) * strides[d];
    (span < 0 ? lo : hi) += span;
  }
  if (lo < 0 || hi >= length)
    range_error(env, std::string(name) + ": view reaches elements [" + std::to_string(lo) + ", " +
                         std::to_string(hi) + "] of an array of length " + std::to_string(length));
}

void check_len(Napi::Env env, const char* name, const F32& a, i64 need) {
  if (a.length < need)
    range_error(env, std::string(name) + ": needs " + std::to_string(need) + " elements, has " +
                         std::to_string(a.length));
}

/** A kernel's extra input that it reads while writing `out` must be another array. */
void check_disjoint(Napi::Env env, const char* what, const F32& a, const F32& out) {
  if (a.data < out.data + out.length && out.data < a.data + a.length)
    range_error(env, std::string(what) + " and out share memory (it must be another array)");
}

i64 product(const std::vector<i64>& shape) {
  i64 n = 1;
  for (i64 d : shape) n *= d;
  return n;
}

// ----------------------------------------------------------------------------------------------------------------

// gemm(a, aOffset, aBatchStride, aRowStride, aColStride, b, bOffset, bBatchStride, bRowStride, bColStride,
//      out, outOffset, batch, m, n, k, alpha, accumulate, bias[, biasRows[, residual, residualOffset]])
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Operand a = f32_or_f16(info, 0, "a"), b = f32_or_f16(info, 5, "b");
  F32 out = f32(info, 10, "out"), bias = f32(info, 18, "bias", true), bias_rows = f32(info, 19, "biasRows", true);
  F32 residual = f32(info, 20, "residual", true);
  const i64 a_off = num(info, 1, "aOffset"), a_bs = num(info, 2, "aBatchStride"), a_rs = num(info, 3, "aRowStride"),
            a_cs = num(info, 4, "aColStride");
  const i64 b_off = num(info, 6, "bOffset"), b_bs = num(info, 7, "bBatchStride"), b_rs = num(info, 8, "bRowStride"),
            b_cs = num(info, 9, "bColStride");
  const i64 o_off = num(info, 11, "outOffset"), batch = num(info, 12, "batch"), m = num(info, 13, "m"),
            n = num(info, 14, "n"), k = num(info, 15, "k");
  const float alpha = static_cast<float>(dbl(info, 16, "alpha"));
  const bool accumulate = info[17].ToBoolean().Value();
  if (batch < 0 || m < 0 || n < 0 || k < 0) range_error(env, "gemm: negative size");
  check_view(env, "gemm A", a.length, a_off, {a_bs, a_rs, a_cs}, {batch, m, k});
  check_view(env, "gemm B", b.length, b_off, {b_bs, b_rs, b_cs}, {batch, k, n});
  check_view(env, "gemm out", out.length, o_off, {m * n, n, 1}, {batch, m, n});
  if (bias.data) check_len(env, "gemm bias", bias, n);
  if (bias_rows.data) check_len(env, "gemm biasRows", bias_rows, m);
  const i64 r_off = residual.data ? num(info, 21, "residualOffset") : 0;
  if (residual.data) {
    check_view(env, "gemm residual", residual.length, r_off, {m * n, n, 1}, {batch, m, n});
    check_disjoint(env, "gemm: residual", residual, out);
  }
  advise_output(out.data + o_off, batch * m * n);
  const int threads = num_threads();
  const bool batch_parallel = batch >= threads && threads > 1 && (batch % threads == 0 || batch >= 4 * threads) &&
                              2.0 * batch * m * n * k >= 4e6;
  auto one = [&](i64 bi) {
    StridedB bp(b.f32 ? b.f32 + b_off + bi * b_bs : nullptr, b_rs, b_cs);
    StridedHalfB bh(b.f16 ? b.f16 + b_off + bi * b_bs : nullptr, b_rs, b_cs);
    GemmProblem P;
    P.m = m;
    P.n = n;
    P.k = k;
    P.alpha = alpha;
    if (a.f32) {
      P.a = a.f32 + a_off + bi * a_bs;
    } else {
      P.a16 = a.f16 + a_off + bi * a_bs;
    }
    P.ars = a_rs;
    P.acs = a_cs;
    P.b = b.f32 ? static_cast<const BPacker*>(&bp) : &bh;
    P.c = out.data + o_off + bi * m * n;
    P.ldc = n;
    P.accumulate = accumulate;
    P.bias_n = bias.data;
    P.bias_m = bias_rows.data;
    if (residual.data) {
      P.residual = residual.data + r_off + bi * m * n;
      P.ldr = n;
    }
    sgemm(P, !batch_parallel);
  };
  if (batch_parallel) {
    parallel_for(batch, one);
  } else {
    for (i64 bi = 0; bi < batch; bi++) one(bi);
  }
  return env.Undefined();
}

ConvShape conv_shape(const Napi::CallbackInfo& info, std::size_t i) {
  Napi::Env env = info.Env();
  std::vector<i64> p = int_list(info, i, "conv params");
  if (p.size() != 16) range_error(env, "conv params: expected 16 numbers");
  ConvShape s{p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13], p[14], p[15]};
  for (i64 v : p)
    if (v < 0) range_error(env, "conv params: negative value");
  if (s.groups < 1 || s.in_c % s.groups || s.out_c % s.groups)
    range_error(env, "conv: groups must divide inChannels and outChannels");
  if (s.sh < 1 || s.sw < 1 || s.dh < 1 || s.dw < 1) range_error(env, "conv: stride and dilation must be >= 1");
  return s;
}

void check_conv(Napi::Env env, const ConvShape& s, const F32& x, const F32& w, const F32& out) {
  check_len(env, "conv x", x, s.batch * s.in_c * s.in_h * s.in_w);
  check_len(env, "conv weight", w, s.out_c * (s.in_c / s.groups) * s.kh * s.kw);
  check_len(env, "conv out", out, s.batch * s.out_c * s.out_h * s.out_w);
}

// conv2d(x, w, bias, out, params[16], residual?); w may be float16 bits (Uint16Array)
Napi::Value Conv2d(const Napi::CallbackInfo& info) {
  F32 x = f32(info, 0, "x"), bias = f32(info, 2, "bias", true), out = f32(info, 3, "out");
  const Operand w = f32_or_f16(info, 1, "w");
  ConvShape s = conv_shape(info, 4);
  check_conv(info.Env(), s, x, F32{nullptr, w.length}, out);
  if (bias.data) check_len(info.Env(), "conv bias", bias, s.out_c);
  F32 residual = f32(info, 5, "residual", true);
  if (residual.data) {
    check_len(info.Env(), "conv residual", residual, s.batch * s.out_c * s.out_h * s.out_w);
    check_disjoint(info.Env(), "conv2d: residual", residual, out);
  }
  advise_output(out.data, out.length);
  conv2d_forward(x.data, w.f32, w.f16, bias.data, out.data, s, residual.data);
  return info.Env().Undefined();
}

// conv2dBackwardInput(gradOut, w, gradIn, params)
Napi::Value Conv2dBackwardInput(const Napi::CallbackInfo& info) {
  F32 go = f32(info, 0, "gradOut"), w = f32(info, 1, "w"), gi = f32(info, 2, "gradIn");
  ConvShape s = conv_shape(info, 3);
  check_conv(info.Env(), s, gi, w, go);
  advise_output(gi.data, gi.length);
  conv2d_backward_input(go.data, w.data, gi.data, s);
  return info.Env().Undefined();
}

// conv2dBackwardWeight(x, gradOut, gradW, params)
Napi::Value Conv2dBackwardWeight(const Napi::CallbackInfo& info) {
  F32 x = f32(info, 0, "x"), go = f32(info, 1, "gradOut"), gw = f32(info, 2, "gradW");
  ConvShape s = conv_shape(info, 3);
  check_conv(info.Env(), s, x, gw, go);
  conv2d_backward_weight(x.data, go.data, gw.data, s);
  return info.Env().Undefined();
}

View f32_view(const Napi::CallbackInfo& info, std::size_t i, const char* name, const std::vector<i64>& shape) {
  F32 a = f32(info, i, name);
  View v{a.data, num(info, i + 1, name), int_list(info, i + 2, name)};
  check_view(info.Env(), name, a.length, v.offset, v.strides, shape);
  return v;
}

// unary(op, x, xOffset, xStrides, out, shape, p0, p1)
Napi::Value UnaryFn(const Napi::CallbackInfo& info) {
  const i64 op = num(info, 0, "op");
  if (op < 0 || op >= static_cast<i64>(Unary::kCount)) range_error(info.Env(), "unary: unknown op");
  std::vector<i64> shape = int_list(info, 5, "shape");
  View x = f32_view(info, 1, "x", shape);
  F32 out = f32(info, 4, "out");
  check_len(info.Env(), "unary out", out, product(shape));
  advise_output(out.data, out.length);
  unary(static_cast<Unary>(op), x, out.data, shape, static_cast<float>(dbl(info, 6, "p0")),
        static_cast<float>(dbl(info, 7, "p1")));
  return info.Env().Undefined();
}

// binary(op, a, aOffset, aStrides, b, bOffset, bStrides, out, shape)
Napi::Value BinaryFn(const Napi::CallbackInfo& info) {
  const i64 op = num(info, 0, "op");
  if (op < 0 || op >= static_cast<i64>(Binary::kCount)) range_error(info.Env(), "binary: unknown op");
  std::vector<i64> shape = int_list(info, 8, "shape");
  View a = f32_view(info, 1, "a", shape);
  View b = f32_view(info, 4, "b", shape);
  F32 out = f32(info, 7, "out");
  check_len(info.Env(), "binary out", out, product(shape));
  advise_output(out.data, out.length);
  binary(static_cast<Binary>(op), a, b, out.data, shape);
  return info.Env().Undefined();
}

// where(cond, cOffset, cStrides, a, aOffset, aStrides, b, bOffset, bStrides, out, shape)
Napi::Value WhereFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<i64> shape = int_list(info, 10, "shape");
  Napi::Value cv = info[0];
  if (!cv.IsTypedArray() || cv.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(env, "cond: expected a Uint8Array");
  auto c = cv.As<Napi::Uint8Array>();
  View cond{c.Data(), num(info, 1, "cOffset"), int_list(info, 2, "cStrides")};
  check_view(env, "cond", static_cast<i64>(c.ElementLength()), cond.offset, cond.strides, shape);
  View a = f32_view(info, 3, "a", shape);
  View b = f32_view(info, 6, "b", shape);
  F32 out = f32(info, 9, "out");
  check_len(env, "where out", out, product(shape));
  advise_output(out.data, out.length);
  where(cond, a, b, out.data, shape);
  return env.Undefined();
}

int element_size(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array:
    case napi_uint8_array:
    case napi_uint8_clamped_array:
      return 1;
    case napi_int16_array:
    case napi_uint16_array:
      return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array:
      return 4;
    default:
      return 8;
  }
}

// copy(src, srcOffset, srcStrides, dst, dstOffset, dstStrides, shape): any typed array, same type both sides
Napi::Value CopyFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || !info[3].IsTypedArray())
    throw Napi::TypeError::New(env, "copy: expected typed arrays");
  auto src = info[0].As<Napi::TypedArray>();
  auto dst = info[3].As<Napi::TypedArray>();
  if (src.TypedArrayType() != dst.TypedArrayType())
    throw Napi::TypeError::New(env, "copy: source and destination must have the same storage type");
  const int es = element_size(src.TypedArrayType());
  std::vector<i64> shape = int_list(info, 6, "shape");
  View s{static_cast<const char*>(src.ArrayBuffer().Data()) + src.ByteOffset(), num(info, 1, "srcOffset"),
         int_list(info, 2, "srcStrides")};
  const i64 d_off = num(info, 4, "dstOffset");
  std::vector<i64> d_strides = int_list(info, 5, "dstStrides");
  check_view(env, "copy src", static_cast<i64>(src.ElementLength()), s.offset, s.strides, shape);
  check_view(env, "copy dst", static_cast<i64>(dst.ElementLength()), d_off, d_strides, shape);
  char* d = static_cast<char*>(dst.ArrayBuffer().Data()) + dst.ByteOffset();
  advise_output(d, static_cast<i64>(dst.ElementLength()), es);
  copy_strided(es, s, d, d_off, d_strides, shape);
  return env.Undefined();
}

// reduce(op, x, outer, n, inner, out)
Napi::Value ReduceFn(const Napi::CallbackInfo& info) {
  const i64 op = num(info, 0, "op");
  if (op < 0 || op > 4) range_error(info.Env(), "reduce: unknown op");
  F32 x = f32(info, 1, "x"), out = f32(info, 5, "out");
  const i64 outer = num(info, 2, "outer"), n = num(info, 3, "n"), inner = num(info, 4, "inner");
  if (outer < 0 || n < 0 || inner < 0) range_error(info.Env(), "reduce: negative size");
  check_len(info.Env(), "reduce x", x, outer * n * inner);
  check_len(info.Env(), "reduce out", out, outer * inner);
  reduce(static_cast<ReduceOp>(op), x.data, outer, n, inner, out.data);
  return info.Env().Undefined();
}

// softmax(x, out, rows, cols, log)
Napi::Value SoftmaxFn(const Napi::CallbackInfo& info) {
  F32 x = f32(info, 0, "x"), out = f32(info, 1, "out");
  const i64 rows = num(info, 2, "rows"), cols = num(info, 3, "cols");
  if (rows < 0 || cols < 0) range_error(info.Env(), "softmax: negative size");
  check_len(info.Env(), "softmax x", x, rows * cols);
  check_len(info.Env(), "softmax out", out, rows * cols);
  advise_output(out.data, out.length);
  softmax(x.data, out.data, rows, cols, info[4].ToBoolean().Value());
  return info.Env().Undefined();
}

// groupNorm(x, weight, bias, out, mean, rstd, n, c, spatial, groups, eps, silu)
Napi::Value GroupNormFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  F32 x = f32(info, 0, "x"), w = f32(info, 1, "weight", true), b = f32(info, 2, "bias", true);
  F32 out = f32(info, 3, "out"), mean = f32(info, 4, "mean"), rstd = f32(info, 5, "rstd");
  const i64 n = num(info, 6, "n"), c = num(info, 7, "c"), sp = num(info, 8, "spatial"), g = num(info, 9, "groups");
  if (n < 0 || c < 0 || sp < 0 || g < 1 || c % g) range_error(env, "groupNorm: groups must divide channels");
  check_len(env, "groupNorm x", x, n * c * sp);
  check_len(env, "groupNorm out", out, n * c * sp);
  check_len(env, "groupNorm mean", mean, n * g);
  check_len(env, "groupNorm rstd", rstd, n * g);
  if (w.data) check_len(env, "groupNorm weight", w, c);
  if (b.data) check_len(env, "groupNorm bias", b, c);
  advise_output(out.data, out.length);
  group_norm(x.data, w.data, b.data, out.data, mean.data, rstd.data, n, c, sp, g,
             static_cast<float>(dbl(info, 10, "eps")), info[11].ToBoolean().Value());
  return env.Undefined();
}

// groupNormBackward(gradOut, x, weight, mean, rstd, gradX, gradWeight, gradBias, n, c, spatial, groups)
Napi::Value GroupNormBackwardFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  F32 go = f32(info, 0, "gradOut"), x = f32(info, 1, "x"), w = f32(info, 2, "weight", true);
  F32 mean = f32(info, 3, "mean"), rstd = f32(info, 4, "rstd"), gx = f32(info, 5, "gradX");
  F32 gw = f32(info, 6, "gradWeight", true), gb = f32(info, 7, "gradBias", true);
  const i64 n = num(info, 8, "n"), c = num(info, 9, "c"), sp = num(info, 10, "spatial"), g = num(info, 11, "groups");
  if (n < 0 || c < 0 || sp < 0 || g < 1 || c % g) range_error(env, "groupNormBackward: groups must divide channels");
  for (const F32* a : {&go, &x, &gx}) check_len(env, "groupNormBackward data", *a, n * c * sp);
  check_len(env, "groupNormBackward mean", mean, n * g);
  check_len(env, "groupNormBackward rstd", rstd, n * g);
  for (const F32* a : {&w, &gw, &gb})
    if (a->data) check_len(env, "groupNormBackward per-channel", *a, c);
  group_norm_backward(go.data, x.data, w.data, mean.data, rstd.data, gx.data, gw.data, gb.data, n, c, sp, g);
  return env.Undefined();
}

// layerNorm(x, weight, bias, out, mean, rstd, rows, cols, eps)
Napi::Value LayerNormFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  F32 x = f32(info, 0, "x"), w = f32(info, 1, "weight", true), b = f32(info, 2, "bias", true);
  F32 out = f32(info, 3, "out"), mean = f32(info, 4, "mean"), rstd = f32(info, 5, "rstd");
  const i64 rows = num(info, 6, "rows"), cols = num(info, 7, "cols");
  if (rows < 0 || cols < 0) range_error(env, "layerNorm: negative size");
  check_len(env, "layerNorm x", x, rows * cols);
  check_len(env, "layerNorm out", out, rows * cols);
  check_len(env, "layerNorm mean", mean, rows);
  check_len(env, "layerNorm rstd", rstd, rows);
  if (w.data) check_len(env, "layerNorm weight", w, cols);
  if (b.data) check_len(env, "layerNorm bias", b, cols);
  advise_output(out.data, out.length);
  layer_norm(x.data, w.data, b.data, out.data, mean.data, rstd.data, rows, cols, static_cast<float>(dbl(info, 8, "eps")));
  return env.Undefined();
}

// layerNormBackward(gradOut, x, weight, mean, rstd, gradX, gradWeight, gradBias, rows, cols)
Napi::Value LayerNormBackwardFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  F32 go = f32(info, 0, "gradOut"), x = f32(info, 1, "x"), w = f32(info, 2, "weight", true);
  F32 mean = f32(info, 3, "mean"), rstd = f32(info, 4, "rstd"), gx = f32(info, 5, "gradX");
  F32 gw = f32(info, 6, "gradWeight", true), gb = f32(info, 7, "gradBias", true);
  const i64 rows = num(info, 8, "rows"), cols = num(info, 9, "cols");
  if (rows < 0 || cols < 0) range_error(env, "layerNormBackward: negative size");
  for (const F32* a : {&go, &x, &gx}) check_len(env, "layerNormBackward data", *a, rows * cols);
  check_len(env, "layerNormBackward mean", mean, rows);
  check_len(env, "layerNormBackward rstd", rstd, rows);
  for (const F32* a : {&w, &gw, &gb})
    if (a->data) check_len(env, "layerNormBackward per-column", *a, cols);
  layer_norm_backward(go.data, x.data, w.data, mean.data, rstd.data, gx.data, gw.data, gb.data, rows, cols);
  return env.Undefined();
}

// attention(q, k, v, out, mask, batch, lq, lk, d, dv, scale, maskBatchStride, maskRowStride, heads, layouts)
// layouts: 16 numbers, [offset, outerStride, headStride, rowStride] of q, k, v and out (see HeadLayout)
Napi::Value AttentionFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  F32 q = f32(info, 0, "q"), k = f32(info, 1, "k"), v = f32(info, 2, "v"), out = f32(info, 3, "out");
  F32 mask = f32(info, 4, "mask", true);
  AttentionShape s{};
  s.batch = num(info, 5, "batch");
  s.lq = num(info, 6, "lq");
  s.lk = num(info, 7, "lk");
  s.d = num(info, 8, "d");
  s.dv = num(info, 9, "dv");
  s.scale = static_cast<float>(dbl(info, 10, "scale"));
  s.mask_batch_stride = num(info, 11, "maskBatchStride");
  s.mask_row_stride = num(info, 12, "maskRowStride");
  if (s.batch < 0 || s.lq < 0 || s.lk < 0 || s.d < 0 || s.dv < 0) range_error(env, "attention: negative size");
  s.heads = num(info, 13, "heads");
  if (s.heads < 1 || s.batch % s.heads != 0) range_error(env, "attention: heads must divide batch");
  if (!info[14].IsArray()) throw Napi::TypeError::New(env, "attention: layouts must be an array of 16 numbers");
  Napi::Array arr = info[14].As<Napi::Array>();
  if (arr.Length() != 16) range_error(env, "attention: layouts must have 16 numbers");
  HeadLayout* layouts[4] = {&s.q, &s.k, &s.v, &s.out};
  for (int i = 0; i < 4; i++) {
    auto at = [&](int j) { return arr.Get(static_cast<uint32_t>(4 * i + j)).As<Napi::Number>().Int64Value(); };
    *layouts[i] = HeadLayout{at(0), at(1), at(2), at(3)};
  }
  const i64 outer = s.batch / s.heads;
  auto check = [&](const char* name, const F32& a, const HeadLayout& l, i64 rows, i64 cols) {
    check_view(env, name, a.length, l.offset, {l.outer_stride, l.head_stride, l.row_stride, 1},
               {outer, s.heads, rows, cols});
  };
  check("attention q", q, s.q, s.lq, s.d);
  check("attention k", k, s.k, s.lk, s.d);
  check("attention v", v, s.v, s.lk, s.dv);
  check("attention out", out, s.out, s.lq, s.dv);
  if (mask.data)
    check_view(env, "attention mask", mask.length, 0, {s.mask_batch_stride, s.mask_row_stride, 1},
               {s.batch, s.lq, s.lk});
  advise_output(out.data, out.length);
  attention(q.data, k.data, v.data, mask.data, out.data, s);
  return env.Undefined();
}

// geglu(x, out, rows, half)
// linearGeglu(x, rows, in, w, wOffset, bias, half, out): x [rows][in], w [2 * half][in] from wOffset (float32 or
// float16 bits), bias [2 * half] or null, out [rows][half]
Napi::Value LinearGegluFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  F32 x = f32(info, 0, "x"), bias = f32(info, 5, "bias", true), out = f32(info, 7, "out");
  const Operand w = f32_or_f16(info, 3, "w");
  const i64 rows = num(info, 1, "rows"), in = num(info, 2, "in"), w_off = num(info, 4, "wOffset"),
            half = num(info, 6, "half");
  if (rows < 0 || half < 0 || w_off < 0) range_error(env, "linearGeglu: negative size or offset");
  if (in < 1) range_error(env, "linearGeglu: needs at least one input feature");
  check_len(env, "linearGeglu x", x, rows * in);
  if (w.length < w_off + 2 * half * in)
    range_error(env, "linearGeglu w: needs " + std::to_string(w_off + 2 * half * in) + " elements, has " +
                         std::to_string(w.length));
  if (bias.data) check_len(env, "linearGeglu bias", bias, 2 * half);
  check_len(env, "linearGeglu out", out, rows * half);
  advise_output(out.data, out.length);
  // W^T as the GEMM's B: B[p][j] = W[j][p]
  const StridedB bf(w.f32 ? w.f32 + w_off : nullptr, 1, in);
  const StridedHalfB bh(w.f16 ? w.f16 + w_off : nullptr, 1, in);
  linear_geglu(x.data, rows, in, w.f32 ? static_cast<const BPacker&>(bf) : bh, bias.data, half, out.data);
  return env.Undefined();
}

Napi::Value GegluFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  F32 x = f32(info, 0, "x"), out = f32(info, 1, "out");
  const i64 rows = num(info, 2, "rows"), half = num(info, 3, "half");
  if (rows < 0 || half < 0) range_error(env, "geglu: negative size");
  check_len(env, "geglu x", x, rows * 2 * half);
  check_len(env, "geglu out", out, rows * half);
  advise_output(out.data, out.length);
  geglu(x.data, out.data, rows, half);
  return env.Undefined();
}

// upsampleNearest(x, out, planes, h, w, oh, ow)
Napi::Value UpsampleNearestFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  F32 x = f32(info, 0, "x"), out = f32(info, 1, "out");
  const i64 planes = num(info, 2, "planes"), h = num(info, 3, "h"), w = num(info, 4, "w"), oh = num(info, 5, "oh"),
            ow = num(info, 6, "ow");
  if (planes < 0 || h < 1 || w < 1 || oh < 0 || ow < 0)
    range_error(env, "upsampleNearest: expected planes >= 0, h and w >= 1, oh and ow >= 0; got planes " +
                         std::to_string(planes) + ", " + std::to_string(h) + "x" + std::to_string(w) + " -> " +
                         std::to_string(oh) + "x" + std::to_string(ow));
  check_len(env, "upsampleNearest x", x, planes * h * w);
  check_len(env, "upsampleNearest out", out, planes * oh * ow);
  check_disjoint(env, "upsampleNearest: x", x, out);
  advise_output(out.data, out.length);
  upsample_nearest(x.data, out.data, planes, h, w, oh, ow);
  return env.Undefined();
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("kernel", active_kernel().name);
  o.Set("threads", num_threads());
  return o;
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  set_num_threads(static_cast<int>(num(info, 0, "threads")));
  return Napi::Number::New(info.Env(), num_threads());
}

Napi::Value SetKernel(const Napi::CallbackInfo& info) {
  std::string name = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  // the GEMM micro-kernel and the vectorised math follow the same ISA choice
  const bool ok = select_kernel(name.c_str()) && select_vmath(name.c_str());
  if (!ok) {
    select_kernel("");
    select_vmath("");
  }
  return Napi::Boolean::New(info.Env(), ok);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // pick the kernels now, before any thread can race on the lazy choice
  select_kernel("");
  select_vmath("");
  exports.Set("gemm", Napi::Function::New(env, Gemm));
  exports.Set("conv2d", Napi::Function::New(env, Conv2d));
  exports.Set("conv2dBackwardInput", Napi::Function::New(env, Conv2dBackwardInput));
  exports.Set("conv2dBackwardWeight", Napi::Function::New(env, Conv2dBackwardWeight));
  exports.Set("unary", Napi::Function::New(env, UnaryFn));
  exports.Set("binary", Napi::Function::New(env, BinaryFn));
  exports.Set("where", Napi::Function::New(env, WhereFn));
  exports.Set("geglu", Napi::Function::New(env, GegluFn));
  exports.Set("upsampleNearest", Napi::Function::New(env, UpsampleNearestFn));
  exports.Set("linearGeglu", Napi::Function::New(env, LinearGegluFn));
  exports.Set("copy", Napi::Function::New(env, CopyFn));
  exports.Set("reduce", Napi::Function::New(env, ReduceFn));
  exports.Set("softmax", Napi::Function::New(env, SoftmaxFn));
  exports.Set("groupNorm", Napi::Function::New(env, GroupNormFn));
  exports.Set("groupNormBackward", Napi::Function::New(env, GroupNormBackwardFn));
  exports.Set("layerNorm", Napi::Function::New(env, LayerNormFn));
  exports.Set("layerNormBackward", Napi::Function::New(env, LayerNormBackwardFn));
  exports.Set("attention", Napi::Function::New(env, AttentionFn));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("setKernel", Napi::Function::New(env, SetKernel));
  register_pool(env, exports);
  register_mapfile(env, exports);
  return exports;
}

}  // namespace

}  // namespace diffuse

Napi::Object InitAll(Napi::Env env, Napi::Object exports) { return diffuse::Init(env, exports); }

NODE_API_MODULE(diffuse_native, InitAll)
