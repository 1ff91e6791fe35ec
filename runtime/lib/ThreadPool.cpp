//===- ThreadPool.cpp - CPU worker pool for kernel dispatch ---------------===//
//
// Jobs live on the submitting thread's stack. Workers touch a job only
// between claiming a chunk and recording its completion, both under the pool
// mutex, and the submitter waits (under the same mutex) until every chunk is
// recorded, so a job never outlives its use.
//
//===----------------------------------------------------------------------===//

#include "ThreadPool.h"

#include "Error.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <sched.h>

namespace normc {

namespace {

// CPUs this process may run on, in increasing order.
std::vector<int> allowedCpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0)
    return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &set))
      cpus.push_back(cpu);
  return cpus;
}

/// How long an idle thread polls for work (a worker) or for the other
/// chunks of its job (the submitter) before blocking: about the time of a
/// futex wake-up round trip on a loaded machine, so that back-to-back runs
/// of small kernels keep their threads awake; a blocked thread costs
/// nothing.
constexpr std::chrono::microseconds kSpinTime{50};

template <class Ready> bool spinUntil(Ready ready) {
  auto deadline = std::chrono::steady_clock::now() + kSpinTime;
  do {
    for (int i = 0; i < 64; ++i) {
      if (ready())
        return true;
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
  } while (std::chrono::steady_clock::now() < deadline);
  return ready();
}

} // namespace

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    stopping = true;
  }
  workAvailable.notify_all();
  for (pthread_t worker : workers)
    pthread_join(worker, nullptr);
}

normc_status ThreadPool::start(uint32_t numThreads, bool pin) {
  std::vector<int> cpus = pin ? allowedCpus() : std::vector<int>();
  for (uint32_t i = 1; i < numThreads; ++i) {
    pthread_t thread;
    // pthread_create rather than std::thread: it reports failure instead of
    // throwing, and this library is built without exceptions.
    int error = pthread_create(&thread, nullptr, &ThreadPool::workerMain, this);
    if (error != 0)
      return fail(NORMC_ERROR_RESOURCE_EXHAUSTED,
                  "cannot create worker thread %u of %u: %s", i, numThreads,
                  std::strerror(error));
    workers.push_back(thread);
    char name[16];
    std::snprintf(name, sizeof(name), "normc-w%u", i % 100000u);
    pthread_setname_np(thread, name);
    if (!cpus.empty()) {
      // Worker i gets the i-th allowed CPU; the first one is left to the
      // (unpinned) calling thread. Pinning is best effort: restricted
      // containers may refuse it and the pool still works unpinned.
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpus[i % cpus.size()], &set);
      (void)pthread_setaffinity_np(thread, sizeof(set), &set);
    }
  }
  return NORMC_OK;
}

void *ThreadPool::workerMain(void *pool) {
  static_cast<ThreadPool *>(pool)->workerLoop();
  return nullptr;
}

void ThreadPool::workerLoop() {
  std::unique_lock<std::mutex> lock(mutex);
  while (true) {
    if (queue.empty() && !stopping) {
      lock.unlock();
      spinUntil([this] { return queued.load(std::memory_order_acquire) > 0; });
      lock.lock();
    }
    workAvailable.wait(lock, [this] { return stopping || !queue.empty(); });
    if (queue.empty())
      return; // stopping with nothing left to do
    Job &job = *queue.front();
    int64_t chunk = claimChunk(job);
    runChunk(job, chunk, lock);
  }
}

int64_t ThreadPool::claimChunk(Job &job) {
  int64_t chunk = job.nextChunk++;
  if (job.nextChunk == job.numChunks) {
    queue.erase(std::find(queue.begin(), queue.end(), &job));
    queued.store(queue.size(), std::memory_order_release);
  }
  return chunk;
}

void ThreadPool::runChunk(Job &job, int64_t chunk,
                          std::unique_lock<std::mutex> &lock) {
  // Balanced contiguous split: the first `numItems % numChunks` chunks get
  // one extra item.
  int64_t base = job.numItems / job.numChunks;
  int64_t extra = job.numItems % job.numChunks;
  int64_t begin = chunk * base + std::min(chunk, extra);
  int64_t end = begin + base + (chunk < extra ? 1 : 0);

  lock.unlock();
  int32_t code = job.fn(job.context, begin, end);
  lock.lock();

  if (code != 0 && (job.failure.code == 0 || begin < job.failure.begin))
    job.failure = ChunkFailure{code, begin, end};
  if (++job.doneChunks == job.numChunks) {
    job.finished.store(true, std::memory_order_release);
    jobDone.notify_all();
  }
}

ChunkFailure ThreadPool::parallelFor(int64_t numItems, int64_t maxChunks,
                                     ChunkFn fn, void *context) {
  ChunkFailure failure;
  if (numItems <= 0)
    return failure;
  Job job;
  job.fn = fn;
  job.context = context;
  job.numItems = numItems;
  job.numChunks = std::max<int64_t>(1, std::min(numItems, maxChunks));

  std::unique_lock<std::mutex> lock(mutex);
  if (job.numChunks > 1 && !workers.empty()) {
    queue.push_back(&job);
    queued.store(queue.size(), std::memory_order_release);
    if (job.numChunks == 2)
      workAvailable.notify_one();
    else
      workAvailable.notify_all();
    // Help with our own job; workers take the chunks we do not get to.
    while (job.nextChunk < job.numChunks)
      runChunk(job, claimChunk(job), lock);
  } else {
    // Nothing to share: run every chunk here without publishing the job.
    while (job.nextChunk < job.numChunks)
      runChunk(job, job.nextChunk++, lock);
  }
  if (job.doneChunks != job.numChunks) {
    // The other chunks are running on workers: poll before sleeping.
    lock.unlock();
    spinUntil([&job] { return job.finished.load(std::memory_order_acquire); });
    lock.lock();
  }
  // Under the mutex: the last worker is done with the job once it has
  // released it after recording its chunk.
  jobDone.wait(lock, [&job] { return job.doneChunks == job.numChunks; });
  return job.failure;
}

} // namespace normc
