// GEGLU (Shazeer 2020): out[r][j] = x[r][j] * gelu(x[r][half + j]) for x [rows][2 * half], the activation of
// every Stable Diffusion feed-forward. One pass instead of a GELU over the strided gate half and a multiply,
// which would write and re-read a [rows][half] temporary (42 MB per SD 1.5 block at 64x64).
#include <algorithm>

#include "parallel.h"
#include "vmath.h"

namespace diffuse {

void geglu(const float* x, float* out, i64 rows, i64 half) {
  auto run = [&](i64 r0, i64 r1) {
    for (i64 r = r0; r < r1; r++) {
      const float* a = x + r * 2 * half;
      float* o = out + r * half;
      vmath(VFn::kGelu, a + half, o, half);
      for (i64 j = 0; j < half; j++) o[j] *= a[j];
    }
  };
  const i64 work = rows * half;
  if (num_threads() <= 1 || work < 65536 || in_parallel_region()) return run(0, rows);
  const i64 tasks = std::min<i64>(rows, num_threads() * 4);
  const i64 step = ceil_div(rows, tasks);
  parallel_for(ceil_div(rows, step), [&](i64 t) { run(t * step, std::min(rows, (t + 1) * step)); });
}

}  // namespace diffuse
