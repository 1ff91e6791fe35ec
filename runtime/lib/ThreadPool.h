//===- ThreadPool.h - CPU worker pool for kernel dispatch -------*- C++ -*-===//
//
// A fixed set of (optionally pinned) worker threads shared by all runs of a
// context. Each run is a job split into contiguous chunks; the submitting
// thread works on its own job too, so a job always makes progress even when
// every worker is busy with other concurrent jobs, and no run has to wait
// for another run to finish.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_RUNTIME_THREADPOOL_H
#define NORMC_RUNTIME_THREADPOOL_H

#include "normc/runtime.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <pthread.h>
#include <vector>

namespace normc {

/// Runs items [begin, end) of a job; nonzero return values are failures.
using ChunkFn = int32_t (*)(void *context, int64_t begin, int64_t end);

/// Outcome of ThreadPool::parallelFor.
struct ChunkFailure {
  int32_t code = 0; ///< 0 if every chunk succeeded.
  int64_t begin = 0;
  int64_t end = 0;
};

class ThreadPool {
public:
  ThreadPool() = default;
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;
  ~ThreadPool();

  /// Starts `numThreads - 1` workers (the caller of parallelFor is the
  /// remaining thread). Sets the last error on failure.
  normc_status start(uint32_t numThreads, bool pin);

  /// Threads a job may use, including the calling thread.
  uint32_t numThreads() const {
    return static_cast<uint32_t>(workers.size()) + 1;
  }

  /// Runs fn over [0, numItems) split into at most `maxChunks` contiguous
  /// chunks and returns when all chunks have finished. Reports the failing
  /// chunk with the lowest begin, so failures are deterministic.
  ChunkFailure parallelFor(int64_t numItems, int64_t maxChunks, ChunkFn fn,
                           void *context);

private:
  struct Job {
    ChunkFn fn;
    void *context;
    int64_t numItems;
    int64_t numChunks;
    int64_t nextChunk = 0;  ///< Guarded by the pool mutex.
    int64_t doneChunks = 0; ///< Guarded by the pool mutex.
    /// doneChunks == numChunks, readable without the mutex (spinning).
    std::atomic<bool> finished{false};
    ChunkFailure failure; ///< Guarded by the pool mutex.
  };

  static void *workerMain(void *pool);
  void workerLoop();
  /// Claims the next chunk of `job` (lock held); removes an exhausted job
  /// from the queue so workers stop looking at it.
  int64_t claimChunk(Job &job);
  /// Runs chunk `chunk` without the lock and records its completion.
  void runChunk(Job &job, int64_t chunk, std::unique_lock<std::mutex> &lock);

  std::mutex mutex;
  std::condition_variable workAvailable;
  std::condition_variable jobDone;
  std::deque<Job *> queue;
  /// queue.size(), readable without the mutex: idle workers spin on it for
  /// a while before sleeping, so that the short kernels of small shapes do
  /// not pay a futex wake-up per run.
  std::atomic<size_t> queued{0};
  bool stopping = false;
  std::vector<pthread_t> workers;
};

} // namespace normc

#endif // NORMC_RUNTIME_THREADPOOL_H
