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

const KernelInfo kPortableKernel = {"portable", kPMr, kPNr, 256, 128, 4096, portable_kernel, nullptr};

// ---------------------------------------------------------------------------------------------------------------
// Packing. Sources are float or IEEE half bits (float16 weights, widened here so no float32 copy of them exists).

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  std::uint32_t bits;
  if (exp == 0) {
    const float v = static_cast<float>(man) * 5.9604644775390625e-8f;  // subnormal: man * 2^-24, exact
    return sign ? -v : v;
  }
  bits = exp == 31 ? sign | 0x7f800000u | (man << 13) : sign | ((exp + 112) << 23) | (man << 13);
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

namespace {

inline float widen(float x) { return x; }
inline float widen(std::uint16_t h) { return half_to_float(h); }

using PackARm32 = void (*)(const float*, i64, i64, float*);
using PackARm16 = void (*)(const std::uint16_t*, i64, i64, float*);
using PackBTr32 = void (*)(const float*, i64, int, i64, float*);
using PackBTr16 = void (*)(const std::uint16_t*, i64, int, i64, float*);

PackARm32 fast_a_rm(const KernelInfo& K, const float*) { return K.pack ? K.pack->a_rm_f32 : nullptr; }
PackARm16 fast_a_rm(const KernelInfo& K, const std::uint16_t*) { return K.pack ? K.pack->a_rm_f16 : nullptr; }
PackBTr32 fast_b_tr(const KernelInfo& K, const float*) { return K.pack ? K.pack->b_tr_f32 : nullptr; }
PackBTr16 fast_b_tr(const KernelInfo& K, const std::uint16_t*) { return K.pack ? K.pack->b_tr_f16 : nullptr; }

/** Packs rows [i0, i0+mc) x cols [p0, p0+kc) of A as ceil(mc/MR) panels of kc x MR (zero-padded rows). */
template <int MR, typename T>
void pack_a_t(const T* a, i64 ars, i64 acs, i64 i0, i64 mc, i64 p0, i64 kc, float* dst) {
  for (i64 ir = 0; ir < mc; ir += MR) {
    const int rows = static_cast<int>(std::min<i64>(MR, mc - ir));
    const T* src = a + (i0 + ir) * ars + p0 * acs;
    if (rows == MR && acs == 1) {
      const T* rp[MR];
      for (int r = 0; r < MR; r++) rp[r] = src + r * ars;
      for (i64 p = 0; p < kc; p++)
        for (int r = 0; r < MR; r++) dst[p * MR + r] = widen(rp[r][p]);
    } else if (rows == MR && ars == 1) {
      for (i64 p = 0; p < kc; p++) {
        const T* col = src + p * acs;
        for (int r = 0; r < MR; r++) dst[p * MR + r] = widen(col[r]);
      }
    } else {
      for (i64 p = 0; p < kc; p++) {
        int r = 0;
        for (; r < rows; r++) dst[p * MR + r] = widen(src[r * ars + p * acs]);
        for (; r < MR; r++) dst[p * MR + r] = 0.0f;
      }
    }
    dst += kc * MR;
  }
}

template <typename T>
void pack_a_generic(int mr, const T* a, i64 ars, i64 acs, i64 i0, i64 mc, i64 p0, i64 kc, float* dst) {
  switch (mr) {
    case 4:
      return pack_a_t<4>(a, ars, acs, i0, mc, p0, kc, dst);
    case 6:
      return pack_a_t<6>(a, ars, acs, i0, mc, p0, kc, dst);
    case 8:
      return pack_a_t<8>(a, ars, acs, i0, mc, p0, kc, dst);
    case 10:
      return pack_a_t<10>(a, ars, acs, i0, mc, p0, kc, dst);
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
        dst[p * mr + r] = r < rows ? widen(a[(i0 + ir + r) * ars + (p0 + p) * acs]) : 0.0f;
    dst += kc * mr;
  }
}

/** Packs A rows [i0, i0+mc) x depth [p0, p0+kc) for kernel K: full panels of a row-major A use its SIMD packer. */
template <typename T>
void pack_a_k(const KernelInfo& K, const T* a, i64 ars, i64 acs, i64 i0, i64 mc, i64 p0, i64 kc, float* dst) {
  const auto fast = fast_a_rm(K, a);
  i64 done = 0;
  if (fast && acs == 1) {
    for (; done + K.mr <= mc; done += K.mr) fast(a + (i0 + done) * ars + p0, ars, kc, dst + done * kc);
  }
  if (done < mc) pack_a_generic(K.mr, a, ars, acs, i0 + done, mc - done, p0, kc, dst + done * kc);
}

void pack_a(const KernelInfo& K, const GemmProblem& P, i64 i0, i64 mc, i64 p0, i64 kc, float* dst) {
  if (P.a) return pack_a_k(K, P.a, P.ars, P.acs, i0, mc, p0, kc, dst);
  pack_a_k(K, P.a16, P.ars, P.acs, i0, mc, p0, kc, dst);
}

template <int NR, typename T>
void pack_b_t(const T* data, i64 rs, i64 cs, i64 k0, i64 kc, i64 j0, i64 nc, float* dst) {
  if (cs == 1 && nc >= NR) {
    // row-major B: walk each source row once across all full panels (long sequential reads)
    const i64 full = nc / NR;
    for (i64 p = 0; p < kc; p++) {
      const T* row = data + (k0 + p) * rs + j0;
      for (i64 q = 0; q < full; q++) {
        float* d = dst + (q * kc + p) * NR;
        const T* src = row + q * NR;
        for (int t = 0; t < NR; t++) d[t] = widen(src[t]);
      }
    }
    dst += full * kc * NR;
    j0 += full * NR;
    nc -= full * NR;
  }
  for (i64 jr = 0; jr < nc; jr += NR) {
    const int cols = static_cast<int>(std::min<i64>(NR, nc - jr));
    const T* src = data + k0 * rs + (j0 + jr) * cs;
    if (cols == NR && cs == 1) {
      for (i64 p = 0; p < kc; p++)
        for (int t = 0; t < NR; t++) dst[p * NR + t] = widen(src[p * rs + t]);
    } else if (cols == NR && rs == 1) {
      // transposed B: walk NR columns side by side, each contiguous in p
      for (i64 p = 0; p < kc; p++)
        for (int t = 0; t < NR; t++) dst[p * NR + t] = widen(src[p + t * cs]);
    } else {
      for (i64 p = 0; p < kc; p++) {
        int t = 0;
        for (; t < cols; t++) dst[p * NR + t] = widen(src[p * rs + t * cs]);
        for (; t < NR; t++) dst[p * NR + t] = 0.0f;
      }
    }
    dst += kc * NR;
  }
}

template <typename T>
void pack_b_any(const T* data, i64 rs, i64 cs, float* dst, i64 k0, i64 kc, i64 j0, i64 nc, int nr) {
  const KernelInfo& K = active_kernel();
  if (K.nr == nr && K.pack) {
    // SIMD packers of the kernel's panel width: transposed B (rows of the source run along p), row-major half B
    const auto tr = fast_b_tr(K, data);
    const bool rm16 = sizeof(T) == 2 && cs == 1 && K.pack->b_rm_f16;
    if ((tr && rs == 1) || rm16) {
      for (i64 jr = 0; jr < nc; jr += nr) {
        const int cols = static_cast<int>(std::min<i64>(nr, nc - jr));
        const T* src = data + k0 * rs + (j0 + jr) * cs;
        if (rs == 1 && tr) {
          tr(src, cs, cols, kc, dst);
        } else {
          K.pack->b_rm_f16(reinterpret_cast<const std::uint16_t*>(src), rs, cols, kc, dst);
        }
        dst += kc * nr;
      }
      return;
    }
  }
  switch (nr) {
    case 16:
      return pack_b_t<16>(data, rs, cs, k0, kc, j0, nc, dst);
    case 32:
      return pack_b_t<32>(data, rs, cs, k0, kc, j0, nc, dst);
    default:
      break;
  }
  for (i64 jr = 0; jr < nc; jr += nr) {
    const i64 cols = std::min<i64>(nr, nc - jr);
    for (i64 p = 0; p < kc; p++)
      for (int t = 0; t < nr; t++)
        dst[p * nr + t] = t < cols ? widen(data[(k0 + p) * rs + (j0 + jr + t) * cs]) : 0.0f;
    dst += kc * nr;
  }
}

}  // namespace

void StridedB::pack(float* dst, i64 k0, i64 kc, i64 j0, i64 nc, int nr) const {
  pack_b_any(data_, rs_, cs_, dst, k0, kc, j0, nc, nr);
}

void StridedHalfB::pack(float* dst, i64 k0, i64 kc, i64 j0, i64 nc, int nr) const {
  pack_b_any(data_, rs_, cs_, dst, k0, kc, j0, nc, nr);
}

void pack_a_panels(const float* a, i64 ars, i64 acs, i64 m, i64 k, float* dst, int mr) {
  const KernelInfo& K = active_kernel();
  if (mr > 0 && mr != K.mr) return pack_a_generic(mr, a, ars, acs, 0, m, 0, k, dst);
  pack_a_k(K, a, ars, acs, 0, m, 0, k, dst);
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
  // F16C (half <-> float) came before AVX2 on every x86 CPU; the AVX2 packers use it for float16 weights
  if (std::strcmp(isa, "avx2") == 0)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
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
 * Micro-kernel sweep over C rows [ic, ic+mc) x cols [jc, jc+nc): `pa` holds the packed A panels of those rows
 * (`a_stride` floats apart), `pb` the packed B panels of those columns (`b_ld * nr` floats apart), both of depth
 * kc. `first` = first depth block (biases, beta); `last` = last depth block (the residual).
 */
void macro_kernel(const KernelInfo& K, const GemmProblem& P, const float* pa, i64 a_stride, const float* pb, i64 b_ld,
                  i64 kc, i64 ic, i64 mc, i64 jc, i64 nc, bool first, bool last) {
  const int mr = K.mr;
  const int nr = K.nr;
  const int beta = (!first || P.accumulate) ? 1 : 0;
  float* tile = scratch(kEdgeTile, static_cast<i64>(mr) * nr);
  for (i64 jr = 0; jr < nc; jr += nr) {
    const i64 cols = std::min<i64>(nr, nc - jr);
    const float* bpanel = pb + jr * b_ld;  // panels are b_ld * nr floats apart
    const float* bn = first && P.bias_n ? P.bias_n + jc + jr : nullptr;
    for (i64 ir = 0; ir < mc; ir += mr) {
      const i64 rows = std::min<i64>(mr, mc - ir);
      float* cp = P.c + (ic + ir) * P.ldc + jc + jr;
      const float* bm = first && P.bias_m ? P.bias_m + ic + ir : nullptr;
      if (rows == mr && cols == nr) {
        K.fn(kc, pa + (ir / mr) * a_stride, bpanel, cp, P.ldc, P.alpha, beta, bn, bm);
      } else {
        K.fn(kc, pa + (ir / mr) * a_stride, bpanel, tile, nr, P.alpha, 0, nullptr, nullptr);
        store_edge(tile, nr, cp, P.ldc, rows, cols, beta, bn, bm);
      }
      if (last && P.residual) add_rows(cp, P.ldc, P.residual + (ic + ir) * P.ldr + jc + jr, P.ldr, rows, cols);
    }
  }
}

/** fn(t) for t < ntasks: in order on one thread, else over the pool. */
template <typename F>
void for_tasks(int threads, i64 ntasks, F&& fn) {
  if (threads <= 1) {
    for (i64 t = 0; t < ntasks; t++) fn(t);
  } else {
    parallel_for(ntasks, fn);
  }
}

/** Packs `panels` panels (a range split over the pool on several threads). */
template <typename F>
void parallel_pack(i64 panels, int threads, F pack_range) {
  if (threads <= 1) return pack_range(0, panels);
  const i64 groups = std::min<i64>(panels, threads * 2);
  const i64 per = ceil_div(panels, groups);
  parallel_for(ceil_div(panels, per), [&](i64 g) { pack_range(g * per, std::min(panels, (g + 1) * per)); });
}

/**
 * The BLIS loop nest (Van Zee & van de Geijn 2015) for `threads` >= 1. The depth goes in balanced blocks of at
 * most kc. Tall problems (m > n) pack one B block (kc x nc, sized for L2) per (jc, pc) and hand out row blocks,
 * each packing its own A block; wide ones pack a super-block of A rows per pc and hand out column chunks of B,
 * each packed into a small L2-resident buffer and swept by every A panel. Tasks outnumber threads and are taken
 * dynamically, so a core slowed by other work takes fewer of them. On one thread the same nest runs in order.
 */
void gemm_blocked(const KernelInfo& K, const GemmProblem& P, int threads) {
  const int mr = K.mr;
  const int nr = K.nr;
  const i64 kc_max = balanced_step(P.k, K.kc, 8);
  if (P.m > P.n) {
    const i64 nc_max = std::min<i64>(K.nc, round_up(P.n, nr));
    const i64 mc_max = threads > 1 ? std::min<i64>(K.mc, round_up(ceil_div(P.m, threads * 3), mr)) : K.mc;
    const i64 mc_step = balanced_step(P.m, mc_max, mr);
    float* pb_buf = P.b_panels ? nullptr : scratch(kPackBShared, nc_max * kc_max);
    for (i64 jc = 0; jc < P.n; jc += nc_max) {
      const i64 nc = std::min<i64>(nc_max, P.n - jc);
      for (i64 pc = 0; pc < P.k; pc += kc_max) {
        const i64 kc = std::min<i64>(kc_max, P.k - pc);
        // B's panels of this block: packed now, or a window of the prepacked ones
        const float* pb = P.b_panels ? P.b_panels + jc * P.k + pc * nr : pb_buf;
        const i64 b_ld = P.b_panels ? P.k : kc;
        if (!P.b_panels) {
          parallel_pack(ceil_div(nc, nr), threads, [&](i64 p0, i64 p1) {
            P.b->pack(pb_buf + p0 * nr * kc, pc, kc, jc + p0 * nr, std::min(nc, p1 * nr) - p0 * nr, nr);
          });
        }
        for_tasks(threads, ceil_div(P.m, mc_step), [&](i64 t) {
          const i64 ic = t * mc_step, mc = std::min<i64>(mc_step, P.m - ic);
          if (P.a_panels) {
            macro_kernel(K, P, P.a_panels + (ic / mr) * mr * P.k + pc * mr, mr * P.k, pb, b_ld, kc, ic, mc, jc, nc,
                         pc == 0, pc + kc == P.k);
            return;
          }
          float* pa = scratch(kPackA, mc_step * kc);
          pack_a(K, P, ic, mc, pc, kc, pa);
          macro_kernel(K, P, pa, mr * kc, pb, b_ld, kc, ic, mc, jc, nc, pc == 0, pc + kc == P.k);
        });
      }
    }
  } else {
    // rows in super-blocks so the shared packed A stays well inside L2 next to a chunk of B
    const i64 ms_step = balanced_step(P.m, K.mc * 2, mr);
    const i64 mc_step = balanced_step(ms_step, K.mc, mr);
    const i64 chunk_max = std::min<i64>(K.nc / 4, round_up(ceil_div(P.n, threads * 4), nr));
    const i64 chunk = balanced_step(P.n, std::max<i64>(nr, chunk_max), nr);
    float* pa = P.a_panels ? nullptr : scratch(kPackAShared, ms_step * kc_max);
    for (i64 is = 0; is < P.m; is += ms_step) {
      const i64 ms = std::min<i64>(ms_step, P.m - is);
      for (i64 pc = 0; pc < P.k; pc += kc_max) {
        const i64 kc = std::min<i64>(kc_max, P.k - pc);
        // A's panels of this super-block and depth block: packed now, or a window of the prepacked ones
        const float* pas = P.a_panels ? P.a_panels + (is / mr) * mr * P.k + pc * mr : pa;
        const i64 a_stride = P.a_panels ? mr * P.k : mr * kc;
        if (!P.a_panels) {
          parallel_pack(ceil_div(ms, mr), threads, [&](i64 p0, i64 p1) {
            pack_a(K, P, is + p0 * mr, std::min(ms, p1 * mr) - p0 * mr, pc, kc, pa + p0 * mr * kc);
          });
        }
        for_tasks(threads, ceil_div(P.n, chunk), [&](i64 t) {
          const i64 jc = t * chunk, nc = std::min<i64>(chunk, P.n - jc);
          const float* pb = P.b_panels ? P.b_panels + jc * P.k + pc * nr : nullptr;
          if (!pb) {
            float* buf = scratch(kPackB, round_up(chunk, nr) * kc);
            P.b->pack(buf, pc, kc, jc, nc, nr);
            pb = buf;
          }
          const i64 b_ld = P.b_panels ? P.k : kc;
          for (i64 ic = 0; ic < ms; ic += mc_step)
            macro_kernel(K, P, pas + (ic / mr) * a_stride, a_stride, pb, b_ld, kc, is + ic, std::min(mc_step, ms - ic),
                         jc, nc, pc == 0, pc + kc == P.k);
        });
      }
    }
  }
}

i64 env_int(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::atoll(v) : 0;
}

/** k == 0: the product is empty; C = (accumulate ? C : 0) + biases + residual. */
void gemm_empty(const GemmProblem& P) {
  for (i64 i = 0; i < P.m; i++) {
    float* cr = P.c + i * P.ldc;
    const float bm = P.bias_m ? P.bias_m[i] : 0.0f;
    for (i64 j = 0; j < P.n; j++) {
      const float v = bm + (P.bias_n ? P.bias_n[j] : 0.0f);
      cr[j] = P.accumulate ? cr[j] + v : v;
      if (P.residual) cr[j] += P.residual[i * P.ldr + j];
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

void add_rows(float* c, i64 ldc, const float* r, i64 ldr, i64 rows, i64 cols) {
  for (i64 i = 0; i < rows; i++) {
    float* cr = c + i * ldc;
    const float* rr = r + i * ldr;
    for (i64 t = 0; t < cols; t++) cr[t] += rr[t];
  }
}

i64 b_panels_size(i64 k, i64 n) { return round_up(n, active_kernel().nr) * k; }

void pack_b_panels(const BPacker& b, i64 k, i64 n, float* dst) {
  const int nr = active_kernel().nr;
  const i64 panels = ceil_div(n, nr);
  const int threads = 2.0 * k * n >= 1e6 && !in_parallel_region() ? num_threads() : 1;
  parallel_pack(panels, threads, [&](i64 p0, i64 p1) {
    b.pack(dst + p0 * nr * k, 0, k, p0 * nr, std::min(n, p1 * nr) - p0 * nr, nr);
  });
}

void sgemm(const GemmProblem& P, bool parallel) {
  if (P.m <= 0 || P.n <= 0) return;
  if (P.k <= 0) return gemm_empty(P);
  const KernelInfo K = tuned(active_kernel());
  const double flops = 2.0 * static_cast<double>(P.m) * static_cast<double>(P.n) * static_cast<double>(P.k);
  const int threads = parallel && !in_parallel_region() && flops >= 4e6 ? num_threads() : 1;
  gemm_blocked(K, P, threads);
}

}  // namespace diffuse
