#include <cstdint>
#include <cstdlib>
#include <new>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "common.h"

namespace diffuse {

namespace {
constexpr std::size_t kHugeBytes = std::size_t{2} << 20;

struct Arena {
  float* ptr[kNumScratchSlots] = {};
  i64 cap[kNumScratchSlots] = {};
  ~Arena() {
    for (float* p : ptr) std::free(p);
  }
};
thread_local Arena arena;
}  // namespace

float* scratch(ScratchSlot slot, i64 count) {
  if (count < 16) count = 16;
  if (arena.cap[slot] < count) {
    std::free(arena.ptr[slot]);
    // grow by 1.5x to amortise odd sizes; round to a whole number of cache lines
    i64 want = count + count / 2;
    std::size_t bytes = static_cast<std::size_t>(round_up(want * 4, 64));
    // large buffers on whole 2 MB pages: one page fault per 2 MB instead of per 4 KB when a buffer is first written
    const bool huge = bytes >= kHugeBytes;
    if (huge) bytes = static_cast<std::size_t>(round_up(static_cast<i64>(bytes), kHugeBytes));
    void* p = std::aligned_alloc(huge ? kHugeBytes : 64, bytes);
    if (!p) throw std::bad_alloc();
    if (huge) advise_huge_pages(p, bytes);
    arena.ptr[slot] = static_cast<float*>(p);
    arena.cap[slot] = static_cast<i64>(bytes / 4);
  }
  return arena.ptr[slot];
}

void advise_huge_pages(const void* p, std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  static const bool enabled = [] {
    const char* v = std::getenv("DIFFUSE_HUGEPAGES");
    return !(v && v[0] == '0');
  }();
  const std::uintptr_t a = (reinterpret_cast<std::uintptr_t>(p) + kHugeBytes - 1) & ~(kHugeBytes - 1);
  const std::uintptr_t b = (reinterpret_cast<std::uintptr_t>(p) + bytes) & ~(kHugeBytes - 1);
  if (enabled && b > a) madvise(reinterpret_cast<void*>(a), b - a, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

void scratch_trim(ScratchSlot slot, i64 keep) {
  if (arena.cap[slot] <= keep) return;
  std::free(arena.ptr[slot]);
  arena.ptr[slot] = nullptr;
  arena.cap[slot] = 0;
}

}  // namespace diffuse
