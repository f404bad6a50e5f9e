// WGSL math shared by the kernels: NaN tests on the bits, a run-time NaN, erf, sin/cos, tanh and pow with
// JavaScript's rules (WGSL's builtins are only as precise as the spec promises, and compilers may assume no NaNs).

/**
 * WGSL math the op bodies use: erf (accurate to float32 rounding), tanh without overflow, pow with JS rules.
 * NaN tests look at the bits: compilers may fold `x != x` away.
 */
export const MATH = /* wgsl */ `
fn isNan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
// a NaN made at run time (WGSL rejects a constant one); slot 63 of the parameters is never written
fn nan() -> f32 { return bitcast<f32>(0x7fc00000u | pu(63u)); }
fn erf(x: f32) -> f32 {
  // erf(x) = 1 - erfc(x), erfc from the Chebyshev-fitted form of Numerical Recipes (6.2), |error| < 1.2e-7
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
    t * (-0.82215223 + t * 0.17087277)))))))));
  let e = 1.0 - r;
  // the series near 0 keeps relative precision for tiny x
  let small = x * (1.1283791670955126 - 0.37612638903183754 * x * x);
  return select(select(e, -e, x < 0.0), small, z < 1e-3);
}
// sin and cos to float32 precision (WGSL only promises 2^-11 absolute): Cody-Waite reduction by pi/2 in three
// parts (Cephes' constants), then Taylor polynomials on [-pi/4, pi/4]
fn sinCos(x: f32) -> vec2<f32> {
  let q = round(x * 0.6366197723675814);
  var r = x - q * 1.5703125;
  r = r - q * 4.837512969970703125e-4;
  r = r - q * 7.54978995489188216e-8;
  let r2 = r * r;
  let s = r + r * r2 * (-0.16666666666666666 + r2 * (0.008333333333333333 + r2 * (-1.984126984126984e-4 + r2 * 2.7557319223985893e-6)));
  let c = 1.0 + r2 * (-0.5 + r2 * (0.041666666666666664 + r2 * (-0.001388888888888889 + r2 * (2.48015873015873e-5 - r2 * 2.755731922398589e-7))));
  let k = i32(q) & 3;
  if (k == 0) { return vec2<f32>(s, c); }
  if (k == 1) { return vec2<f32>(c, -s); }
  if (k == 2) { return vec2<f32>(-s, -c); }
  return vec2<f32>(-c, s);
}
fn safeTanh(x: f32) -> f32 {
  let c = clamp(x, -15.0, 15.0);
  let e = exp(2.0 * c);
  return (e - 1.0) / (e + 1.0);
}
fn siluGrad(x: f32) -> f32 {
  let s = 1.0 / (1.0 + exp(-x));
  return s * (1.0 + x * (1.0 - s));
}
fn geluTanhGrad(x: f32) -> f32 {
  let u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  let t = safeTanh(u);
  let du = 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * x * x);
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
}
fn powf(a: f32, b: f32) -> f32 {
  if (b == 0.0) { return 1.0; }
  if (isNan(a) || isNan(b)) { return nan(); }
  if (b == 1.0) { return a; }
  if (b == 2.0) { return a * a; }
  if (b == 0.5) { return sqrt(a); }
  let m = pow(abs(a), b);
  if (a >= 0.0) { return m; }
  // a NaN made at run time (WGSL rejects a constant NaN)
  if (floor(b) != b) { return nan(); }
  let odd = (abs(b) % 2.0) == 1.0;
  return select(m, -m, odd);
}
`;
