// A size-bucketed pool for the output arrays of kernels. A UNet forward allocates hundreds of MB of activations;
// as fresh JS ArrayBuffers every one of them is zero-filled and, being large, mmap'd and page-faulted in again
// on every step (and unmapped when the GC frees it). Here a large Float32Array is an external ArrayBuffer over a
// pooled block: when the GC collects the array, its finalizer puts the block back on its size class's free list,
// already mapped, for the next op that needs the same size. Contents of a pooled array are unspecified: only ops
// whose kernels write every output element ask for one (src/ops: allocOutput).
#include <napi.h>
#include <v8.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common.h"

namespace diffuse {

namespace {

// Below this, V8's own allocation is cheap (no mmap, small zero-fill) and a finalizer per array would cost more.
constexpr std::size_t kMinPooledBytes = std::size_t{256} << 10;
constexpr std::size_t kAlign = std::size_t{2} << 20;  // 2 MB: whole huge pages for the large blocks

/** Size classes 1/8 of a power of two apart (at most 12.5% waste), whole 4 KB pages. */
std::size_t size_class(std::size_t bytes) {
  std::size_t top = 1;
  while ((top << 1) <= bytes) top <<= 1;
  const std::size_t step = std::max<std::size_t>(top / 8, 4096);
  return (bytes + step - 1) / step * step;
}

std::size_t cache_limit_from_env() {
  const char* v = std::getenv("DIFFUSE_POOL_MB");
  if (!v || !*v) return std::size_t{512} << 20;  // 512 MB of idle blocks at most
  return static_cast<std::size_t>(std::strtoull(v, nullptr, 10)) << 20;
}

struct Pool {
  std::mutex mu;
  std::unordered_map<std::size_t, std::vector<void*>> free_blocks;  // size class -> idle blocks
  std::size_t idle_bytes = 0;
  std::size_t live_bytes = 0;
  std::size_t cache_limit = cache_limit_from_env();
  std::uint64_t hits = 0, misses = 0;
  bool poison = [] {
    const char* v = std::getenv("DIFFUSE_POOL_POISON");
    return v && v[0] == '1';
  }();

  void* take(std::size_t cls) {
    std::vector<void*> evicted;
    {
      std::lock_guard<std::mutex> lock(mu);
      live_bytes += cls;
      auto it = free_blocks.find(cls);
      if (it != free_blocks.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        idle_bytes -= cls;
        hits++;
        return p;
      }
      misses++;
      // A miss maps new memory: free idle blocks of other sizes worth as much first, so the pool never holds
      // memory beside new memory (the resident set stays what it would be without the pool; only blocks of
      // sizes that keep coming back stay idle).
      std::size_t freed = 0;
      for (auto& [size, blocks] : free_blocks) {
        while (!blocks.empty() && freed < cls) {
          evicted.push_back(blocks.back());
          blocks.pop_back();
          idle_bytes -= size;
          freed += size;
        }
        if (freed >= cls) break;
      }
    }
    for (void* e : evicted) std::free(e);
    void* p = std::aligned_alloc(cls >= kAlign ? kAlign : 4096, round_up(static_cast<i64>(cls), 4096));
    if (!p) {
      std::lock_guard<std::mutex> lock(mu);
      live_bytes -= cls;
      return nullptr;
    }
    if (cls >= 2 * kAlign) advise_huge_pages(p, cls);
    return p;
  }

  void give_back(void* p, std::size_t cls) {
    {
      std::lock_guard<std::mutex> lock(mu);
      live_bytes -= cls;
      if (idle_bytes + cls <= cache_limit) {
        free_blocks[cls].push_back(p);
        idle_bytes += cls;
        return;
      }
    }
    std::free(p);
  }

  void trim() {
    std::unordered_map<std::size_t, std::vector<void*>> drop;
    {
      std::lock_guard<std::mutex> lock(mu);
      drop.swap(free_blocks);
      idle_bytes = 0;
    }
    for (auto& [cls, blocks] : drop)
      for (void* p : blocks) std::free(p);
  }
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: finalizers may run during shutdown
  return *p;
}

i64 count_arg(const Napi::CallbackInfo& info) {
  if (!info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "allocF32: expected an element count");
  const double n = info[0].As<Napi::Number>().DoubleValue();
  if (!(n >= 0) || n != static_cast<double>(static_cast<i64>(n)) || n > 4e9)
    throw Napi::RangeError::New(info.Env(), "allocF32: element count must be an integer in [0, 4e9], got " +
                                                std::to_string(n));
  return static_cast<i64>(n);
}

// allocF32(n): a Float32Array of n elements with unspecified contents (pooled when large).
Napi::Value AllocF32(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const i64 n = count_arg(info);
  const std::size_t bytes = static_cast<std::size_t>(n) * 4;
  Pool& pl = pool();
  // DIFFUSE_POOL_MB=0 turns the pool off; the poison test mode pools every size to expose unwritten outputs
  if (n == 0 || pl.cache_limit == 0 || (bytes < kMinPooledBytes && !pl.poison))
    return Napi::Float32Array::New(env, static_cast<std::size_t>(n));
  const std::size_t cls = size_class(bytes);
  void* p = pl.take(cls);
  if (!p) throw Napi::Error::New(env, "allocF32: out of memory allocating " + std::to_string(bytes) + " bytes");
  if (pl.poison) std::memset(p, 0xff, bytes);  // NaN everywhere: a test mode that exposes unwritten outputs
  // V8's own backing store, not napi_create_external_arraybuffer: Node defers N-API finalizers to the event loop,
  // so during a long synchronous forward pass no block would come back. V8 calls this deleter as soon as the GC
  // frees the buffer (possibly on a GC thread; the pool is locked). The GC counts these bytes as external memory.
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  std::unique_ptr<v8::BackingStore> store = v8::ArrayBuffer::NewBackingStore(
      p, bytes, [](void* data, std::size_t length, void*) { pool().give_back(data, size_class(length)); }, nullptr);
  v8::Local<v8::ArrayBuffer> buffer = v8::ArrayBuffer::New(isolate, std::move(store));
  v8::Local<v8::Float32Array> array = v8::Float32Array::New(buffer, 0, static_cast<std::size_t>(n));
  // a napi_value is a V8 local handle (what Node's v8impl::JsValueFromV8LocalValue does)
  return Napi::Value(env, reinterpret_cast<napi_value>(*array));
}

// poolStats(): { idleBytes, liveBytes, hits, misses }
Napi::Value PoolStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  Napi::Object o = Napi::Object::New(env);
  o.Set("idleBytes", static_cast<double>(p.idle_bytes));
  o.Set("liveBytes", static_cast<double>(p.live_bytes));
  o.Set("hits", static_cast<double>(p.hits));
  o.Set("misses", static_cast<double>(p.misses));
  return o;
}

// poolTrim(): frees every idle block.
Napi::Value PoolTrim(const Napi::CallbackInfo& info) {
  pool().trim();
  return info.Env().Undefined();
}

}  // namespace

void register_pool(Napi::Env env, Napi::Object exports) {
  exports.Set("allocF32", Napi::Function::New(env, AllocF32));
  exports.Set("poolStats", Napi::Function::New(env, PoolStats));
  exports.Set("poolTrim", Napi::Function::New(env, PoolTrim));
}

}  // namespace diffuse
