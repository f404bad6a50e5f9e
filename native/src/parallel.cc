#include "parallel.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace diffuse {

namespace {

thread_local bool tls_in_task = false;

int default_threads() {
  if (const char* env = std::getenv("DIFFUSE_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1) return n > 256 ? 256 : n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

/** A brief wait between polls (the pause hint on x86). */
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Polls before sleeping: a GEMM runs many short parallel regions back to back, and a worker that is still
// spinning when the next one starts joins it without a futex wake-up (~100 us of polling at most).
constexpr int kSpin = 2000;

class Pool {
 public:
  explicit Pool(int threads) { start(threads); }
  ~Pool() { stop(); }

  int size() const { return size_; }

  void resize(int threads) {
    std::lock_guard<std::mutex> run(run_mutex_);
    stop();
    start(threads);
  }

  void run(i64 ntasks, const std::function<void(i64)>& fn) {
    std::unique_lock<std::mutex> run(run_mutex_, std::try_to_lock);
    if (!run.owns_lock() || size_ <= 1) {
      serial(ntasks, fn);
      return;
    }
    const int helpers = static_cast<int>(std::min<i64>(ntasks - 1, size_ - 1));
    {
      std::lock_guard<std::mutex> lk(m_);
      job_ = &fn;
      ntasks_ = ntasks;
      next_.store(0, std::memory_order_relaxed);
      participants_ = helpers;
      pending_.store(helpers, std::memory_order_relaxed);
      error_ = nullptr;
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_work_.notify_all();
    work(fn);
    for (int i = 0; i < kSpin && pending_.load(std::memory_order_acquire) != 0; i++) cpu_relax();
    std::unique_lock<std::mutex> lk(m_);
    cv_done_.wait(lk, [&] { return pending_.load(std::memory_order_acquire) == 0; });
    job_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  static void serial(i64 ntasks, const std::function<void(i64)>& fn) {
    bool was = tls_in_task;
    tls_in_task = true;
    try {
      for (i64 t = 0; t < ntasks; t++) fn(t);
    } catch (...) {
      tls_in_task = was;
      throw;
    }
    tls_in_task = was;
  }

  void work(const std::function<void(i64)>& fn) {
    tls_in_task = true;
    try {
      for (i64 t; (t = next_.fetch_add(1, std::memory_order_relaxed)) < ntasks_;) fn(t);
    } catch (...) {
      std::lock_guard<std::mutex> lk(m_);
      if (!error_) error_ = std::current_exception();
      next_.store(ntasks_, std::memory_order_relaxed);
    }
    tls_in_task = false;
  }

  /** `seen`: the generation current when the worker was created (it waits for the next one). */
  void worker_loop(int index, std::uint64_t seen) {
    for (;;) {
      for (int i = 0; i < kSpin && generation_.load(std::memory_order_acquire) == seen &&
                      !stopping_.load(std::memory_order_relaxed);
           i++)
        cpu_relax();
      std::unique_lock<std::mutex> lk(m_);
      cv_work_.wait(lk, [&] { return stopping_.load() || generation_.load() != seen; });
      if (stopping_.load()) return;
      seen = generation_.load();
      if (index >= participants_ || !job_) continue;
      const std::function<void(i64)>* fn = job_;
      lk.unlock();
      work(*fn);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> done(m_);  // the caller may be about to sleep: wake it under the lock
        cv_done_.notify_one();
      }
    }
  }

  void start(int threads) {
    size_ = threads < 1 ? 1 : threads;
    std::uint64_t gen;
    {
      std::lock_guard<std::mutex> lk(m_);
      stopping_.store(false);
      gen = generation_.load();
    }
    // A worker starts from the current generation: one created by a resize must not take the previous run (its
    // job is gone) for a new one, or it would race the next run's setup.
    for (int i = 0; i < size_ - 1; i++) workers_.emplace_back([this, i, gen] { worker_loop(i, gen); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stopping_.store(true);
    }
    cv_work_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  int size_ = 1;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;
  std::mutex m_;
  std::condition_variable cv_work_;
  std::condition_variable cv_done_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<bool> stopping_{false};
  const std::function<void(i64)>* job_ = nullptr;
  i64 ntasks_ = 0;
  std::atomic<i64> next_{0};
  int participants_ = 0;
  std::atomic<int> pending_{0};
  std::exception_ptr error_;
};

Pool& pool() {
  // Leaked on purpose: joining threads from a static destructor at process exit can deadlock.
  static Pool* p = new Pool(default_threads());
  return *p;
}

}  // namespace

int num_threads() { return pool().size(); }

void set_num_threads(int n) { pool().resize(n < 1 ? 1 : (n > 256 ? 256 : n)); }

bool in_parallel_region() { return tls_in_task; }

void parallel_for(i64 ntasks, const std::function<void(i64)>& fn) {
  if (ntasks <= 0) return;
  if (ntasks == 1) {
    fn(0);  // one task: run inline and leave nested parallelism available to it
    return;
  }
  if (tls_in_task) {
    bool was = tls_in_task;
    tls_in_task = true;
    try {
      for (i64 t = 0; t < ntasks; t++) fn(t);
    } catch (...) {
      tls_in_task = was;
      throw;
    }
    tls_in_task = was;
    return;
  }
  pool().run(ntasks, fn);
}

}  // namespace diffuse
