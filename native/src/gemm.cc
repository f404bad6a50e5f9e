#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "parallel.h"

namespace diffuse {

// ---------------------------------------------------------------------------------------------------------------
// Portable micro-kernel (any architecture; the compiler vectorises the fixed-size inner loops).

namespace {

constexpr int kPMr = 4;
constexpr int kPNr = 16;

void portable_kernel(i64 k, const float* __restrict a, const float* __restrict b, float* __restrict c, i64 ldc,
                     float alpha, int beta, const float* bias_n, const float* bias_m) {
  float acc[kPMr][kPNr] = {};
  for (i64 p = 0; p < k; p++) {
    const float* bp = b + p * kPNr;
    const float* ap = a + p * kPMr;
#pragma GCC unroll 8
    for (int r = 0; r < kPMr; r++) {
      const float av = ap[r];
#pragma GCC unroll 16
      for (int t = 0; t < kPNr; t++) acc[r][t] += av * bp[t];
    }
  }
  for (int r = 0; r < kPMr; r++) {
    float* cr = c + r * ldc;
    const float bm = bias_m ? bias_m[r] : 0.0f;
    for (int t = 0; t < kPNr; t++) {
      float v = alpha * acc[r][t] + bm;
      if (bias_n) v += bias_n[t];
      cr[t] = beta ? cr[t] + v : v;
    }
  }
}

}  // namespace

const KernelInfo kPortableKernel = {"portable", kPMr, kPNr, 256, 128, 4096, portable_kernel};

// ---------------------------------------------------------------------------------------------------------------
// Packing.

namespace {

/** Packs rows [i0, i0+mc) x cols [p0, p0+kc) of A as ceil(mc/MR) panels of kc x MR (zero-padded rows). */
template <int MR>
void pack_a_t(const float* a, i64 ars, i64 acs, i64 i0, i64 mc, i64 p0, i64 kc, float* dst) {
  for (i64 ir = 0; ir < mc; ir += MR) {
    const int rows = static_cast<int>(std::min<i64>(MR, mc - ir));
    const float* src = a + (i0 + ir) * ars + p0 * acs;
    if (rows == MR && acs == 1) {
      const float* rp[MR];
      for (int r = 0; r < MR; r++) rp[r] = src + r * ars;
      for (i64 p = 0; p < kc; p++)
        for (int r = 0; r < MR; r++) dst[p * MR + r] = rp[r][p];
    } else if (rows == MR && ars == 1) {
      for (i64 p = 0; p < kc; p++) {
        const float* col = src + p * acs;
        for (int r = 0; r < MR; r++) dst[p * MR + r] = col[r];
      }
    } else {
      for (i64 p = 0; p < kc; p++) {
        int r = 0;
        for (; r < rows; r++) dst[p * MR + r] = src[r * ars + p * acs];
        for (; r < MR; r++) dst[p * MR + r] = 0.0f;
      }
    }
    dst += kc * MR;
  }
}

void pack_a(int mr, const float* a, i64 ars, i64 acs, i64 i0, i64 mc, i64 p0, i64 kc, float* dst) {
  switch (mr) {
    case 4:
      return pack_a_t<4>(a, ars, acs, i0, mc, p0, kc, dst);
    case 6:
      return pack_a_t<6>(a, ars, acs, i0, mc, p0, kc, dst);
    case 8:
      return pack_a_t<8>(a, ars, acs, i0, mc, p0, kc, dst);
    case 12:
      return pack_a_t<12>(a, ars, acs, i0, mc, p0, kc, dst);
    case 14:
      return pack_a_t<14>(a, ars, acs, i0, mc, p0, kc, dst);
    default:
      break;
  }
  for (i64 ir = 0; ir < mc; ir += mr) {
    const i64 rows = std::min<i64>(mr, mc - ir);
    for (i64 p = 0; p < kc; p++)
      for (int r = 0; r < mr; r++)
        dst[p * mr + r] = r < rows ? a[(i0 + ir + r) * ars + (p0 + p) * acs] : 0.0f;
    dst += kc * mr;
  }
}

template <int NR>
void pack_b_t(const float* data, i64 rs, i64 cs, i64 k0, i64 kc, i64 j0, i64 nc, float* dst) {
  for (i64 jr = 0; jr < nc; jr += NR) {
    const int cols = static_cast<int>(std::min<i64>(NR, nc - jr));
    const float* src = data + k0 * rs + (j0 + jr) * cs;
    if (cols == NR && cs == 1) {
      for (i64 p = 0; p < kc; p++) std::memcpy(dst + p * NR, src + p * rs, sizeof(float) * NR);
    } else if (cols == NR && rs == 1) {
      // transposed B: walk NR columns side by side, each contiguous in p
      for (i64 p = 0; p < kc; p++)
        for (int t = 0; t < NR; t++) dst[p * NR + t] = src[p + t * cs];
    } else {
      for (i64 p = 0; p < kc; p++) {
        int t = 0;
        for (; t < cols; t++) dst[p * NR + t] = src[p * rs + t * cs];
        for (; t < NR; t++) dst[p * NR + t] = 0.0f;
      }
    }
    dst += kc * NR;
  }
}

}  // namespace

void StridedB::pack(float* dst, i64 k0, i64 kc, i64 j0, i64 nc, int nr) const {
  switch (nr) {
    case 16:
      return pack_b_t<16>(data_, rs_, cs_, k0, kc, j0, nc, dst);
    case 32:
      return pack_b_t<32>(data_, rs_, cs_, k0, kc, j0, nc, dst);
    default:
      break;
  }
  for (i64 jr = 0; jr < nc; jr += nr) {
    const i64 cols = std::min<i64>(nr, nc - jr);
    for (i64 p = 0; p < kc; p++)
      for (int t = 0; t < nr; t++)
        dst[p * nr + t] = t < cols ? data_[(k0 + p) * rs_ + (j0 + jr + t) * cs_] : 0.0f;
    dst += kc * nr;
  }
}

void pack_a_panels(const float* a, i64 ars, i64 acs, i64 m, i64 k, float* dst) {
  pack_a(active_kernel().mr, a, ars, acs, 0, m, 0, k, dst);
}

void PrepackedB::pack(float* dst, i64 k0, i64 kc, i64 j0, i64 nc, int nr) const {
  const i64 j = col0_ + j0, p = row0_ + k0;
  if (nr == nr_ && j % nr == 0) {
    // whole panels: each is a contiguous run of kc * nr floats
    for (i64 q = 0; q * nr < nc; q++)
      std::memcpy(dst + q * kc * nr, panels_ + ((j / nr + q) * depth_ + p) * nr, sizeof(float) * kc * nr);
    return;
  }
  for (i64 jr = 0; jr < nc; jr += nr) {
    for (i64 pp = 0; pp < kc; pp++)
      for (int t = 0; t < nr; t++) {
        const i64 col = j + jr + t;
        dst[pp * nr + t] =
            jr + t < nc ? panels_[((col / nr_) * depth_ + p + pp) * nr_ + col % nr_] : 0.0f;
      }
    dst += kc * nr;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Kernel selection.

namespace {

bool cpu_has(const char* isa) {
#if defined(DIFFUSE_HAVE_X86_KERNELS)
  __builtin_cpu_init();
  if (std::strcmp(isa, "avx2") == 0) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (std::strcmp(isa, "avx512") == 0) return __builtin_cpu_supports("avx512f");
#endif
  return std::strcmp(isa, "portable") == 0;
}

const KernelInfo* best_kernel() {
#if defined(DIFFUSE_HAVE_X86_KERNELS)
  if (cpu_has("avx512")) return &kAvx512Kernel;
  if (cpu_has("avx2")) return &kAvx2Kernel;
#endif
  return &kPortableKernel;
}

const KernelInfo* g_kernel = nullptr;

}  // namespace

const KernelInfo& active_kernel() {
  if (!g_kernel) g_kernel = best_kernel();
  return *g_kernel;
}

bool select_kernel(const char* name) {
  if (!name || !*name) {
    g_kernel = best_kernel();
    return true;
  }
  if (!cpu_has(name)) return false;
#if defined(DIFFUSE_HAVE_X86_KERNELS)
  if (std::strcmp(name, "avx512") == 0) g_kernel = &kAvx512Kernel;
  if (std::strcmp(name, "avx2") == 0) g_kernel = &kAvx2Kernel;
#endif
  if (std::strcmp(name, "portable") == 0) g_kernel = &kPortableKernel;
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// Driver.

namespace {

/** C tile (rows x cols) += / = alpha-scaled tile from a full-size scratch result (edge tiles). */
void store_edge(const float* tile, int nr, float* c, i64 ldc, i64 rows, i64 cols, int beta, const float* bias_n,
                const float* bias_m) {
  for (i64 r = 0; r < rows; r++) {
    float* cr = c + r * ldc;
    const float bm = bias_m ? bias_m[r] : 0.0f;
    for (i64 t = 0; t < cols; t++) {
      float v = tile[r * nr + t] + bm;
      if (bias_n) v += bias_n[t];
      cr[t] = beta ? cr[t] + v : v;
    }
  }
}

/**
 * Micro-kernel sweep over C rows [ic, ic+mc) x cols [jc, jc+nc): `pa` holds the packed A panels of those rows,
 * `pb` the packed B panels of those columns, both of depth kc. `first` = first depth block (biases, beta).
 */
void macro_kernel(const KernelInfo& K, const GemmProblem& P, const float* pa, const float* pb, i64 kc, i64 ic,
                  i64 mc, i64 jc, i64 nc, bool first) {
  const int mr = K.mr;
  const int nr = K.nr;
  const int beta = (!first || P.accumulate) ? 1 : 0;
  float* tile = scratch(kEdgeTile, static_cast<i64>(mr) * nr);
  for (i64 jr = 0; jr < nc; jr += nr) {
    const i64 cols = std::min<i64>(nr, nc - jr);
    const float* bpanel = pb + jr * kc;
    const float* bn = first && P.bias_n ? P.bias_n + jc + jr : nullptr;
    for (i64 ir = 0; ir < mc; ir += mr) {
      const i64 rows = std::min<i64>(mr, mc - ir);
      float* cp = P.c + (ic + ir) * P.ldc + jc + jr;
      const float* bm = first && P.bias_m ? P.bias_m + ic + ir : nullptr;
      if (rows == mr && cols == nr) {
        K.fn(kc, pa + ir * kc, bpanel, cp, P.ldc, P.alpha, beta, bn, bm);
      } else {
        K.fn(kc, pa + ir * kc, bpanel, tile, nr, P.alpha, 0, nullptr, nullptr);
        store_edge(tile, nr, cp, P.ldc, rows, cols, beta, bn, bm);
      }
    }
  }
}

/** Equal-sized blocks (multiples of `unit`, at most `max_block`) covering `len`, so no block is a sliver. */
i64 balanced_step(i64 len, i64 max_block, i64 unit) {
  const i64 blocks = ceil_div(len, std::max<i64>(unit, max_block));
  return round_up(ceil_div(len, blocks), unit);
}

/** The serial BLIS loop nest (jc, pc, ic; micro-kernels inside). */
void gemm_serial(const KernelInfo& K, const GemmProblem& P) {
  const int mr = K.mr;
  const int nr = K.nr;
  const i64 kc_max = std::min<i64>(K.kc, P.k);
  const i64 nc_max = std::min<i64>(K.nc, round_up(P.n, nr));
  const i64 mc_step = balanced_step(P.m, K.mc, mr);
  float* pb = scratch(kPackB, nc_max * kc_max);
  float* pa = scratch(kPackA, mc_step * kc_max);
  for (i64 jc = 0; jc < P.n; jc += K.nc) {
    const i64 nc = std::min<i64>(K.nc, P.n - jc);
    for (i64 pc = 0; pc < P.k; pc += K.kc) {
      const i64 kc = std::min<i64>(K.kc, P.k - pc);
      P.b->pack(pb, pc, kc, jc, nc, nr);
      for (i64 ic = 0; ic < P.m; ic += mc_step) {
        const i64 mc = std::min<i64>(mc_step, P.m - ic);
        if (P.a_packed && kc == P.k) {
          macro_kernel(K, P, P.a_packed + ic * kc, pb, kc, ic, mc, jc, nc, true);
          continue;
        }
        pack_a(mr, P.a, P.ars, P.acs, ic, mc, pc, kc, pa);
        macro_kernel(K, P, pa, pb, kc, ic, mc, jc, nc, pc == 0);
      }
    }
  }
}

/** Packs `panels` panels of width `unit` (a range split over the pool). */
template <typename F>
void parallel_pack(i64 panels, int threads, F pack_range) {
  const i64 groups = std::min<i64>(panels, threads * 2);
  const i64 per = ceil_div(panels, groups);
  parallel_for(ceil_div(panels, per), [&](i64 g) { pack_range(g * per, std::min(panels, (g + 1) * per)); });
}

/**
 * Multi-threaded GEMM. Tall problems (m > n) share one packed B block per (jc, pc) and hand out row blocks;
 * wide ones share one packed A block per (ic, pc) and hand out column chunks. Tasks outnumber threads and are
 * taken dynamically, so a core slowed by other work takes fewer of them.
 */
void gemm_parallel(const KernelInfo& K, const GemmProblem& P, int threads) {
  const int mr = K.mr;
  const int nr = K.nr;
  const i64 kc_max = std::min<i64>(K.kc, P.k);
  if (P.m > P.n) {
    const i64 nc_max = std::min<i64>(K.nc, round_up(P.n, nr));
    const i64 mc_step = balanced_step(P.m, std::min<i64>(K.mc, round_up(ceil_div(P.m, threads * 3), mr)), mr);
    float* pb = scratch(kPackBShared, nc_max * kc_max);
    for (i64 jc = 0; jc < P.n; jc += K.nc) {
      const i64 nc = std::min<i64>(K.nc, P.n - jc);
      for (i64 pc = 0; pc < P.k; pc += K.kc) {
        const i64 kc = std::min<i64>(K.kc, P.k - pc);
        parallel_pack(ceil_div(nc, nr), threads, [&](i64 p0, i64 p1) {
          P.b->pack(pb + p0 * nr * kc, pc, kc, jc + p0 * nr, std::min(nc, p1 * nr) - p0 * nr, nr);
        });
        parallel_for(ceil_div(P.m, mc_step), [&](i64 t) {
          const i64 ic = t * mc_step, mc = std::min<i64>(mc_step, P.m - ic);
          float* pa = scratch(kPackA, mc_step * kc);
          pack_a(mr, P.a, P.ars, P.acs, ic, mc, pc, kc, pa);
          macro_kernel(K, P, pa, pb, kc, ic, mc, jc, nc, pc == 0);
        });
      }
    }
  } else {
    // rows in super-blocks so the shared packed A stays a few hundred KB
    const i64 ms_step = balanced_step(P.m, K.mc * 4, mr);
    const i64 mc_step = balanced_step(ms_step, K.mc, mr);
    const i64 chunk = balanced_step(P.n, std::min<i64>(K.nc, round_up(ceil_div(P.n, threads * 4), nr)), nr);
    float* pa = scratch(kPackAShared, ms_step * kc_max);
    for (i64 is = 0; is < P.m; is += ms_step) {
      const i64 ms = std::min<i64>(ms_step, P.m - is);
      for (i64 pc = 0; pc < P.k; pc += K.kc) {
        const i64 kc = std::min<i64>(K.kc, P.k - pc);
        parallel_pack(ceil_div(ms, mr), threads, [&](i64 p0, i64 p1) {
          pack_a(mr, P.a, P.ars, P.acs, is + p0 * mr, std::min(ms, p1 * mr) - p0 * mr, pc, kc, pa + p0 * mr * kc);
        });
        parallel_for(ceil_div(P.n, chunk), [&](i64 t) {
          const i64 jc = t * chunk, nc = std::min<i64>(chunk, P.n - jc);
          float* pb = scratch(kPackB, round_up(chunk, nr) * kc);
          P.b->pack(pb, pc, kc, jc, nc, nr);
          for (i64 ic = 0; ic < ms; ic += mc_step)
            macro_kernel(K, P, pa + ic * kc, pb, kc, is + ic, std::min(mc_step, ms - ic), jc, nc, pc == 0);
        });
      }
    }
  }
}

i64 env_int(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::atoll(v) : 0;
}

/** k == 0: the product is empty; C = (accumulate ? C : 0) + biases. */
void gemm_empty(const GemmProblem& P) {
  for (i64 i = 0; i < P.m; i++) {
    float* cr = P.c + i * P.ldc;
    const float bm = P.bias_m ? P.bias_m[i] : 0.0f;
    for (i64 j = 0; j < P.n; j++) {
      const float v = bm + (P.bias_n ? P.bias_n[j] : 0.0f);
      cr[j] = P.accumulate ? cr[j] + v : v;
    }
  }
}

/** Blocking of the active kernel; DIFFUSE_GEMM_KC/MC/NC override it (tuning aid). */
KernelInfo tuned(const KernelInfo& base) {
  static const i64 kc = env_int("DIFFUSE_GEMM_KC"), mc = env_int("DIFFUSE_GEMM_MC"), nc = env_int("DIFFUSE_GEMM_NC");
  KernelInfo K = base;
  if (kc > 0) K.kc = kc;
  if (mc > 0) K.mc = round_up(mc, K.mr);
  if (nc > 0) K.nc = round_up(nc, K.nr);
  return K;
}

}  // namespace

void sgemm(const GemmProblem& P, bool parallel) {
  if (P.m <= 0 || P.n <= 0) return;
  if (P.k <= 0) return gemm_empty(P);
  const KernelInfo K = tuned(active_kernel());
  const double flops = 2.0 * static_cast<double>(P.m) * static_cast<double>(P.n) * static_cast<double>(P.k);
  const int threads = parallel && !in_parallel_region() && flops >= 4e6 ? num_threads() : 1;
  if (threads <= 1) return gemm_serial(K, P);
  gemm_parallel(K, P, threads);
}

}  // namespace diffuse
