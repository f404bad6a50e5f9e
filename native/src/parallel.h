// A persistent thread pool. Idle workers poll briefly (~100 us) for the next job, then block on a condition
// variable.
#pragma once
#include <functional>

#include "common.h"

namespace diffuse {

/** Threads a parallel kernel may use (caller included). Defaults to the core count or DIFFUSE_NUM_THREADS. */
int num_threads();

/** Resizes the pool (n >= 1); joins the old workers. */
void set_num_threads(int n);

/**
 * Runs fn(t) for every t in [0, ntasks), spreading tasks over the pool (the calling thread works too) and
 * returns when all are done. Runs serially when there is one task or one thread, when called from inside a pool
 * task (no nested parallelism), or when another thread is already using the pool.
 */
void parallel_for(i64 ntasks, const std::function<void(i64)>& fn);

/** True while the current thread is executing a parallel_for task. */
bool in_parallel_region();

}  // namespace diffuse
