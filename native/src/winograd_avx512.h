// Pieces shared by the AVX-512 Winograd row kernels (winograd_avx512.cc, winograd4_avx512.cc; -mavx512f only).
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "common.h"

namespace diffuse {

/**
 * The 3x3 filters w[o][c .. c + 16) as 9 vectors, g[i] = element i of each filter (lane u = filter c + u), from
 * float weights or, when w is null, IEEE half bits. 16 consecutive filters are 144 consecutive values: they are
 * copied to the stack with plain loads (which the hardware prefetcher streams) and element i of each is a gather
 * with stride 9 from there; gathering straight from memory stalls on every cache miss.
 */
inline void load_filters16(const float* w, const std::uint16_t* w16, i64 o, i64 c, i64 C, __m512* g) {
  const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(9));
  alignas(64) float tmp[16 * 9];
  if (w) {
    const float* src = w + (o * C + c) * 9;
    for (int q = 0; q < 9; q++) _mm512_store_ps(tmp + 16 * q, _mm512_loadu_ps(src + 16 * q));
  } else {
    const std::uint16_t* h = w16 + (o * C + c) * 9;
    for (int q = 0; q < 9; q++)
      _mm512_store_ps(tmp + 16 * q, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + 16 * q))));
  }
  for (int i = 0; i < 9; i++) g[i] = _mm512_i32gather_ps(idx, tmp + i, 4);
}

}  // namespace diffuse
