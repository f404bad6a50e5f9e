// Nearest-neighbour resize of [planes][h][w] to [planes][oh][ow] in PyTorch's legacy "nearest" mode: source index
// min(floor(float32(dst * scale)), in - 1) with scale = float32(in / out), as the reference backend computes it
// (src/backend/reference/indexing.ts), so both give the same pixels. The UNet's and VAE's upsamplers double their
// maps: a memory-bound copy (~12x faster than the reference loop here).
#include <algorithm>
#include <cmath>
#include <vector>

#include "elementwise.h"
#include "parallel.h"

namespace diffuse {

namespace {

std::vector<i64> nearest_index(i64 in, i64 out) {
  const float scale = static_cast<float>(static_cast<double>(in) / static_cast<double>(out));
  std::vector<i64> idx(static_cast<std::size_t>(out));
  for (i64 i = 0; i < out; i++) {
    const float pos = static_cast<float>(static_cast<double>(i) * static_cast<double>(scale));
    idx[static_cast<std::size_t>(i)] = std::min<i64>(static_cast<i64>(std::floor(pos)), in - 1);
  }
  return idx;
}

}  // namespace

void upsample_nearest(const float* x, float* out, i64 planes, i64 h, i64 w, i64 oh, i64 ow) {
  const std::vector<i64> rows = nearest_index(h, oh), cols = nearest_index(w, ow);
  bool doubled = ow == 2 * w;  // each source column twice (a 2x upsample): no index lookups
  for (i64 j = 0; doubled && j < ow; j++) doubled = cols[static_cast<std::size_t>(j)] == j / 2;
  auto plane = [&](i64 p) {
    const float* xp = x + p * h * w;
    float* op = out + p * oh * ow;
    for (i64 i = 0; i < oh; i++) {
      const float* src = xp + rows[static_cast<std::size_t>(i)] * w;
      float* dst = op + i * ow;
      if (i > 0 && rows[static_cast<std::size_t>(i)] == rows[static_cast<std::size_t>(i - 1)]) {
        std::copy(dst - ow, dst, dst);  // the same source row as the row above
      } else if (doubled) {
        for (i64 j = 0; j < w; j++) dst[2 * j] = dst[2 * j + 1] = src[j];
      } else {
        for (i64 j = 0; j < ow; j++) dst[j] = src[cols[static_cast<std::size_t>(j)]];
      }
    }
  };
  // a copy at memory speed: a second thread only pays off on large outputs (32 MB and more, the VAE's)
  if (num_threads() <= 1 || planes < 2 || planes * oh * ow < (i64{1} << 23) || in_parallel_region()) {
    for (i64 p = 0; p < planes; p++) plane(p);
  } else {
    parallel_for(planes, plane);
  }
}

}  // namespace diffuse
