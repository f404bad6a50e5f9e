// Single-precision GEMM core: packed panels + register-blocked micro-kernels (BLIS-style loop nest).
#pragma once
#include <cstdint>

#include "common.h"

namespace diffuse {

/**
 * Micro-kernel contract: C[0:mr, 0:nr] (row stride ldc) = alpha * Apanel @ Bpanel + (beta ? C : 0)
 * + bias_n[0:nr] (per column, may be null) + bias_m[0:mr] (per row, may be null).
 * Apanel is k x mr (mr values per step), Bpanel is k x nr; both 64-byte aligned.
 */
using MicroKernel = void (*)(i64 k, const float* a, const float* b, float* c, i64 ldc, float alpha, int beta,
                             const float* bias_n, const float* bias_m);

/**
 * Optional SIMD packing routines of a kernel (null members / a null table: the portable loops are used).
 * "rm": rows of the source run along the depth p (row-major A; transposed B); f16 sources are IEEE half bits.
 */
struct PackKernels {
  /** A full mr-row panel of a row-major A: dst[p*mr + r] = src[r*ld + p], p < kc. */
  void (*a_rm_f32)(const float* src, i64 ld, i64 kc, float* dst);
  void (*a_rm_f16)(const std::uint16_t* src, i64 ld, i64 kc, float* dst);
  /** An nr-column panel of a transposed B (B[p][t] = src[t*ld + p]), cols <= nr (zero-padded). */
  void (*b_tr_f32)(const float* src, i64 ld, int cols, i64 kc, float* dst);
  void (*b_tr_f16)(const std::uint16_t* src, i64 ld, int cols, i64 kc, float* dst);
  /** An nr-column panel of a row-major half B (B[p][t] = src[p*ld + t]), cols <= nr (zero-padded). */
  void (*b_rm_f16)(const std::uint16_t* src, i64 ld, int cols, i64 kc, float* dst);
};

struct KernelInfo {
  const char* name;
  int mr;
  int nr;
  i64 kc;  // depth of a packed block (A/B micro-panels stay in L1)
  i64 mc;  // rows of a packed A block (stays in L2)
  i64 nc;  // columns of a packed B block
  MicroKernel fn;
  const PackKernels* pack;
  /** Optional second kernel of the same nr with fewer rows (0 / null: none), for callers whose row count it pads
   * less than mr does (attention's head width: 40 rows as 4 x 10, not 3 x 14). */
  int mr_narrow = 0;
  MicroKernel fn_narrow = nullptr;
};

/** IEEE half bits -> float (exact; table lookup). */
float half_to_float(std::uint16_t h);

/** Writes columns [j0, j0+nc) of rows [k0, k0+kc) of some logical B (k x n) as ceil(nc/nr) zero-padded panels. */
class BPacker {
 public:
  virtual ~BPacker() = default;
  virtual void pack(float* dst, i64 k0, i64 kc, i64 j0, i64 nc, int nr) const = 0;
};

/** B[p][j] = data[p*rs + j*cs]. */
class StridedB final : public BPacker {
 public:
  StridedB(const float* data, i64 rs, i64 cs) : data_(data), rs_(rs), cs_(cs) {}
  void pack(float* dst, i64 k0, i64 kc, i64 j0, i64 nc, int nr) const override;

 private:
  const float* data_;
  i64 rs_, cs_;
};

/** B[p][j] = widen(data[p*rs + j*cs]) for IEEE half bits: a float16 weight widened while it is packed. */
class StridedHalfB final : public BPacker {
 public:
  StridedHalfB(const std::uint16_t* data, i64 rs, i64 cs) : data_(data), rs_(rs), cs_(cs) {}
  void pack(float* dst, i64 k0, i64 kc, i64 j0, i64 nc, int nr) const override;

 private:
  const std::uint16_t* data_;
  i64 rs_, cs_;
};

/**
 * B already in panel form (as StridedB::pack writes it for the whole matrix: depth x nr panels, zero-padded),
 * seen through a window: logical B[p][j] = full[row0 + p][col0 + j]. Lets a B that many GEMMs share be packed once.
 */
class PrepackedB final : public BPacker {
 public:
  PrepackedB(const float* panels, i64 depth, int nr, i64 row0, i64 col0)
      : panels_(panels), depth_(depth), nr_(nr), row0_(row0), col0_(col0) {}
  void pack(float* dst, i64 k0, i64 kc, i64 j0, i64 nc, int nr) const override;

 private:
  const float* panels_;
  i64 depth_;
  int nr_;
  i64 row0_, col0_;
};

/**
 * C (m x n, row stride ldc) = alpha * A @ B (+ C if accumulate) + bias_n[j] + bias_m[i] (+ residual[i][j]).
 * A[i][p] = a[i*ars + p*acs].
 */
struct GemmProblem {
  i64 m = 0, n = 0, k = 0;
  float alpha = 1.0f;
  const float* a = nullptr;
  /** Alternatively A as IEEE half bits (same strides), widened while packing; used when `a` is null. */
  const std::uint16_t* a16 = nullptr;
  i64 ars = 0, acs = 0;
  /** Alternatively A already packed by pack_a_panels (full depth k): many GEMMs with one A pack it once. */
  const float* a_panels = nullptr;
  const BPacker* b = nullptr;
  /**
   * Alternatively B already packed into the active kernel's column panels of full depth k (panel q, columns
   * [q*nr, q*nr + nr), at b_panels + q*k*nr, [k][nr]), read in place: a weight packed once for many row blocks.
   */
  const float* b_panels = nullptr;
  float* c = nullptr;
  i64 ldc = 0;
  bool accumulate = false;
  const float* bias_n = nullptr;
  const float* bias_m = nullptr;
  /**
   * Optional residual R (m x n, row stride ldr; not overlapping C) added after the product and the biases,
   * C = alpha A B + biases + R, tile by tile while each C tile is in cache: a residual connection without a pass
   * of its own.
   */
  const float* residual = nullptr;
  i64 ldr = 0;
};

/**
 * Packs A (m x k, A[i][p] = a[i*ars + p*acs]) into row panels of full depth k: the active kernel's mr, or `mr`
 * when given (e.g. its mr_narrow).
 */
void pack_a_panels(const float* a, i64 ars, i64 acs, i64 m, i64 k, float* dst, int mr = 0);

/** Floats of B (k x n) packed as {@link GemmProblem::b_panels} for the active kernel. */
i64 b_panels_size(i64 k, i64 n);

/** Packs all of B (k x n) into `dst` (b_panels_size floats) as GemmProblem::b_panels expects. */
void pack_b_panels(const BPacker& b, i64 k, i64 n, float* dst);

/**
 * C (rows x cols, row stride ldc) += R (row stride ldr): a residual added to a block a kernel has just written,
 * while it is in cache.
 */
void add_rows(float* c, i64 ldc, const float* r, i64 ldr, i64 rows, i64 cols);

/** Runs one GEMM; uses the thread pool when `parallel` and the product is large enough. */
void sgemm(const GemmProblem& p, bool parallel = true);

/** The micro-kernel in use ("avx512", "avx2" or "portable"). */
const KernelInfo& active_kernel();

/** Forces a kernel by name (for tests); returns false if the CPU cannot run it. Empty name = best available. */
bool select_kernel(const char* name);

// Kernels compiled in their own translation units with ISA flags.
extern const KernelInfo kPortableKernel;
#if defined(DIFFUSE_HAVE_X86_KERNELS)
extern const KernelInfo kAvx2Kernel;
extern const KernelInfo kAvx512Kernel;
extern const PackKernels kAvx512Pack;
#endif

}  // namespace diffuse
