// GEGLU (Shazeer 2020): out[r][j] = x[r][j] * gelu(x[r][half + j]) for x [rows][2 * half], the activation of
// every Stable Diffusion feed-forward. One pass instead of a GELU over the strided gate half and a multiply,
// which would write and re-read a [rows][half] temporary (42 MB per SD 1.5 block at 64x64).
#include <algorithm>

#include "elementwise.h"
#include "gemm.h"
#include "parallel.h"
#include "vmath.h"

namespace diffuse {

namespace {

// The packed weight of the row-block path (<= 4 MB where the half width is a multiple of the kernel's columns, as
// in every SD model) and the chunked path's packed input (5 MB for SD 1.5 at 512 x 512, batch 2) are kept for the
// next call up to 64 MB: mapping them afresh on each call cost a page fault per 4 KB.
constexpr i64 kKeepFloats = i64{1} << 24;

/**
 * out[r][j] = x[r][j] * gelu(x[r][gate + j]) for r < rows, j < cols, the rows of x and out `ldx` and `ldo` floats
 * apart: a [rows][2 * half] projection (gate = half), or a tile holding a chunk of values and their gates.
 */
void geglu_block(const float* x, i64 ldx, i64 gate, float* out, i64 ldo, i64 rows, i64 cols) {
  for (i64 r = 0; r < rows; r++) {
    const float* a = x + r * ldx;
    float* o = out + r * ldo;
    vmath(VFn::kGelu, a + gate, o, cols);
    for (i64 j = 0; j < cols; j++) o[j] *= a[j];
  }
}

/** The rows [r0, r1) of a [rows][2 * half] projection into out [rows][half]. */
void geglu_rows(const float* x, float* out, i64 r0, i64 r1, i64 half) {
  geglu_block(x + r0 * 2 * half, 2 * half, half, out + r0 * half, half, r1 - r0, half);
}

/**
 * The projection and GEGLU by column chunks, one task each: a task packs its value columns [j0, j0 + cc) and their
 * gate columns [half + j0, ...) of the weight (~1 MB, stays in L2), then sweeps all rows over them in blocks, two
 * GEMMs into one tile read by the GEGLU while in cache. Taken when the weight outgrows the caches: a row-block
 * loop would stream all of it from memory once per block, and packing all of it first would write and read back
 * as much again (52 MB for SD 1.5's 1280 -> 2 x 5120).
 */
void linear_geglu_chunked(const KernelInfo& K, const float* x, i64 rows, i64 in, const BPacker& w, const float* bias,
                          i64 half, float* out) {
  const int mr = K.mr, nr = K.nr;
  // A packed once for every chunk (it stays in L3); a block's tile (rb x 2 x cc) stays within ~256 KB
  float* a_panels = scratch(kGegluA, round_up(rows, mr) * in);
  pack_a_panels(x, in, 1, rows, in, a_panels);
  const i64 cc = balanced_step(half, std::max<i64>(nr, (131072 / in) / nr * nr), nr);
  const i64 rb = balanced_step(rows, std::max<i64>(mr, (32768 / cc) / mr * mr), mr);
  auto run = [&](i64 t) {
    const i64 j0 = t * cc, cols = std::min(cc, half - j0);
    float* panels = scratch(kGegluPanels, 2 * cc * in);
    for (int gate = 0; gate < 2; gate++) w.pack(panels + gate * cc * in, 0, in, gate * half + j0, cols, nr);
    float* tile = scratch(kGegluTile, rb * 2 * cc);
    for (i64 r0 = 0; r0 < rows; r0 += rb) {
      const i64 r1 = std::min(rows, r0 + rb);
      for (int gate = 0; gate < 2; gate++) {
        GemmProblem P;
        P.m = r1 - r0;
        P.n = cols;
        P.k = in;
        P.a_panels = a_panels + r0 * in;
        P.b_panels = panels + gate * cc * in;
        P.c = tile + gate * cc;
        P.ldc = 2 * cc;
        P.bias_n = bias ? bias + gate * half + j0 : nullptr;
        sgemm(P, false);
      }
      geglu_block(tile, 2 * cc, cc, out + r0 * half + j0, half, r1 - r0, cols);
    }
  };
  parallel_for(ceil_div(half, cc), run);
}

}  // namespace

void linear_geglu(const float* x, i64 rows, i64 in, const BPacker& w, const float* bias, i64 half, float* out) {
  const i64 n = 2 * half;
  if (rows <= 0 || half <= 0) return;
  const KernelInfo& K = active_kernel();
  if (half % K.nr == 0 && in * n > (i64{1} << 20)) {
    linear_geglu_chunked(K, x, rows, in, w, bias, half, out);
    scratch_trim(kGegluA, kKeepFloats);
    return;
  }
  // the weight packed once for every row block (it stays in L2/L3), read in place by each block's GEMM
  float* panels = scratch(kGegluPanels, b_panels_size(in, n));
  pack_b_panels(w, in, n, panels);
  // row blocks whose projection (block x 2 * half floats) stays within ~1 MB of L2
  const i64 block = std::max<i64>(K.mr, (std::max<i64>(262144 / n, 1) / K.mr) * K.mr);
  auto run = [&](i64 t) {
    const i64 r0 = t * block, r1 = std::min(rows, r0 + block);
    float* tile = scratch(kGegluTile, block * n);
    GemmProblem P;
    P.m = r1 - r0;
    P.n = n;
    P.k = in;
    P.a = x + r0 * in;
    P.ars = in;
    P.acs = 1;
    P.b_panels = panels;
    P.c = tile;
    P.ldc = n;
    P.bias_n = bias;
    sgemm(P, false);
    geglu_rows(tile, out + r0 * half, 0, r1 - r0, half);
  };
  parallel_for(ceil_div(rows, block), run);  // serial on one thread or inside another parallel region
  scratch_trim(kGegluPanels, kKeepFloats);
}

void geglu(const float* x, float* out, i64 rows, i64 half) {
  auto run = [&](i64 r0, i64 r1) { geglu_rows(x, out, r0, r1, half); };
  const i64 work = rows * half;
  if (num_threads() <= 1 || work < 65536 || in_parallel_region()) return run(0, rows);
  const i64 tasks = std::min<i64>(rows, num_threads() * 4);
  const i64 step = ceil_div(rows, tasks);
  parallel_for(ceil_div(rows, step), [&](i64 t) { run(t * step, std::min(rows, (t + 1) * step)); });
}

}  // namespace diffuse
