// Shared helpers for the native kernels: index types, aligned scratch memory.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>

namespace diffuse {

using i64 = std::int64_t;

inline i64 ceil_div(i64 a, i64 b) { return (a + b - 1) / b; }
inline i64 round_up(i64 a, i64 b) { return ceil_div(a, b) * b; }

/** Equal-sized blocks (multiples of `unit`, at most `max_block`) covering `len`, so no block is a sliver. */
inline i64 balanced_step(i64 len, i64 max_block, i64 unit) {
  const i64 blocks = ceil_div(len, max_block > unit ? max_block : unit);
  return round_up(ceil_div(len, blocks), unit);
}

/** Named scratch slots: a kernel may hold several at once, each slot is one growable buffer per thread. */
enum ScratchSlot : int {
  kPackA = 0,
  kPackB,
  kPackAShared,
  kPackBShared,
  kEdgeTile,
  kConvCol,
  kConvOut,
  kAttnScores,
  kAttnOut,
  kAttnStats,
  kAttnQ,
  kAttnK,
  kAttnV,
  kMisc,
  kWinogradU,
  kWinogradV,
  kWinogradM,
  kWinogradUPacked,
  kGegluPanels,
  kGegluTile,
  kGegluA,
  kNumScratchSlots
};

/**
 * Thread-local growable arena: returns a 64-byte aligned buffer of at least `count` floats for `slot`. The buffer
 * is reused across calls (grown, never shrunk) so hot kernels do not malloc; one of 2 MB or more is 2 MB-aligned and
 * asks for transparent huge pages (one page fault per 2 MB when first written). Contents are unspecified.
 */
float* scratch(ScratchSlot slot, i64 count);

/**
 * Asks for transparent huge pages (Linux, THP in "madvise" mode) on the whole 2 MB pages inside [p, p + bytes): the
 * first touch of fresh memory then faults once per 2 MB instead of once per 4 KB. Advisory only; DIFFUSE_HUGEPAGES=0
 * turns it off.
 */
void advise_huge_pages(const void* p, std::size_t bytes);

/** Frees the calling thread's buffer of `slot` when it holds more than `keep` floats (bounds what stays resident). */
void scratch_trim(ScratchSlot slot, i64 keep);

}  // namespace diffuse
