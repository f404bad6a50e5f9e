// The 1-D transforms of Winograd's F(4x4, 3x3) (winograd4.cc has the matrices) on SIMD vectors, one tile or filter
// per lane, for the AVX-512 and AVX2 row kernels alike: `Ops` supplies the vector type V and set / add / sub / mul /
// fma (a * b + c) for it. Header only: each kernel file instantiates it with its own instruction set.
#pragma once

namespace diffuse {

template <class Ops>
struct Winograd4Lanes {
  using V = typename Ops::V;

  /** G g for a 3-vector of lanes. */
  static inline void filter(V g0, V g1, V g2, V* u) {
    u[0] = Ops::mul(Ops::set(0.25f), g0);
    u[1] = Ops::mul(Ops::set(-1.0f / 6.0f), Ops::add(Ops::add(g0, g1), g2));
    u[2] = Ops::mul(Ops::set(-1.0f / 6.0f), Ops::add(Ops::sub(g0, g1), g2));
    u[3] = Ops::fma(Ops::set(1.0f / 24.0f), g0,
                    Ops::fma(Ops::set(1.0f / 12.0f), g1, Ops::mul(Ops::set(1.0f / 6.0f), g2)));
    u[4] = Ops::fma(Ops::set(1.0f / 24.0f), g0,
                    Ops::fma(Ops::set(-1.0f / 12.0f), g1, Ops::mul(Ops::set(1.0f / 6.0f), g2)));
    u[5] = g2;
  }

  /** B^T d for a 6-vector of lanes. */
  static inline void input(V d0, V d1, V d2, V d3, V d4, V d5, V* b) {
    const V d4m2 = Ops::sub(d4, d2);
    b[0] = Ops::fma(Ops::set(4.0f), d0, Ops::fma(Ops::set(-5.0f), d2, d4));
    b[1] = Ops::fma(Ops::set(-4.0f), Ops::add(d1, d2), Ops::add(d3, d4));
    b[2] = Ops::fma(Ops::set(4.0f), Ops::sub(d1, d2), Ops::sub(d4, d3));
    b[3] = Ops::fma(Ops::set(-2.0f), Ops::sub(d1, d3), d4m2);
    b[4] = Ops::fma(Ops::set(2.0f), Ops::sub(d1, d3), d4m2);
    b[5] = Ops::fma(Ops::set(4.0f), d1, Ops::fma(Ops::set(-5.0f), d3, d5));
  }

  /** A^T m for a 6-vector of lanes. */
  static inline void output(V m0, V m1, V m2, V m3, V m4, V m5, V* r) {
    const V s12 = Ops::add(m1, m2), d12 = Ops::sub(m1, m2), s34 = Ops::add(m3, m4), d34 = Ops::sub(m3, m4);
    r[0] = Ops::add(Ops::add(m0, s12), s34);
    r[1] = Ops::fma(Ops::set(2.0f), d34, d12);
    r[2] = Ops::fma(Ops::set(4.0f), s34, s12);
    r[3] = Ops::add(Ops::fma(Ops::set(8.0f), d34, d12), m5);
  }
};

}  // namespace diffuse
