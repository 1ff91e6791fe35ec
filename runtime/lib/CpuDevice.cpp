//===- CpuDevice.cpp - Kernels on the host thread pool --------------------===//

#include "CpuDevice.h"

#include "Error.h"

#include <algorithm>
#include <memory>
#include <new>
#include <vector>

namespace normc {
namespace {

/// Several chunks per thread so that uneven progress (other processes,
/// concurrent runs sharing the pool) still balances.
constexpr int64_t kChunksPerThread = 4;

struct PackedCall {
  PackedEntryFn entry;
  void *const *pointers;
  const int64_t *dims;
};

int32_t runPacked(void *context, int64_t begin, int64_t end) {
  const PackedCall &call = *static_cast<const PackedCall *>(context);
  return call.entry(call.pointers, call.dims, begin, end);
}

/// Runs items [0, numItems) of `call` (numItems > 0) on the pool and returns
/// when all have finished.
ChunkFailure runItems(ThreadPool &pool, PackedCall call, int64_t numItems) {
  if (numItems == 1 || pool.numThreads() == 1) {
    // Not worth waking workers; run on the calling thread.
    int32_t code = runPacked(&call, 0, numItems);
    return ChunkFailure{code, 0, numItems};
  }
  return pool.parallelFor(numItems, kChunksPerThread * pool.numThreads(),
                          &runPacked, &call);
}

} // namespace

// The generated header's NORMC_ERR_* values.
const char *kernelCodeName(int32_t code) {
  switch (code) {
  case 1:
    return "NORMC_ERR_NULL_POINTER: a null pointer for a non-empty tensor";
  case 2:
    return "NORMC_ERR_BAD_SHAPE: a negative size, an empty reduction or "
           "channels not divisible by the groups";
  case 3:
    return "NORMC_ERR_OUT_OF_MEMORY";
  default:
    return "unknown code";
  }
}

normc_status CpuDevice::launch(const normc_kernel &kernel,
                               const LaunchArgs &args, const LaunchOptions &) {
  const char *name = kernel.spec->name.c_str();
  // Kernels without dynamic dims still get a valid (unused) pointer.
  static const int64_t noDims[1] = {0};
  const int64_t *dims = args.dims.empty() ? noDims : args.dims.data();
  int64_t work = kernel.work(dims);
  if (work < 0)
    return fail(NORMC_ERROR_KERNEL_FAILED,
                "kernel '%s': work function returned a negative item count "
                "(%lld)",
                name, static_cast<long long>(work));
  // Kernels with a prepass (forward kernels on long rows): a first step
  // whose items all finish before any work item starts.
  int64_t prepassWork = 0;
  if (kernel.prepass) {
    prepassWork = kernel.prepassWork(dims);
    if (prepassWork < 0)
      return fail(NORMC_ERROR_KERNEL_FAILED,
                  "kernel '%s': prepass work function returned a negative "
                  "item count (%lld)",
                  name, static_cast<long long>(prepassWork));
  }
  // Backward kernels and kernels with a prepass: a scratch buffer appended
  // to the arguments. Backward kernels also have a finalize step once every
  // work item has run (even when there are none: it writes the gradients of
  // the parameters).
  std::vector<void *> pointers(args.pointers);
  std::unique_ptr<double[]> scratch;
  if (kernel.workspace) {
    int64_t bytes = kernel.workspace(dims);
    if (bytes < 0)
      return fail(NORMC_ERROR_KERNEL_FAILED,
                  "kernel '%s': workspace function returned a negative size "
                  "(%lld)",
                  name, static_cast<long long>(bytes));
    size_t elements =
        (static_cast<size_t>(bytes) + sizeof(double) - 1) / sizeof(double);
    scratch.reset(new (std::nothrow) double[std::max<size_t>(elements, 1)]);
    if (!scratch)
      return fail(NORMC_ERROR_RESOURCE_EXHAUSTED,
                  "kernel '%s': cannot allocate a %lld-byte workspace", name,
                  static_cast<long long>(bytes));
    pointers.push_back(scratch.get());
  }
  auto finish = [&]() -> normc_status {
    if (!kernel.finalize)
      return NORMC_OK;
    int32_t code = kernel.finalize(pointers.data(), dims);
    if (code != 0)
      return fail(NORMC_ERROR_KERNEL_FAILED,
                  "kernel '%s': finalize step failed with code %d (%s)", name,
                  code, kernelCodeName(code));
    return NORMC_OK;
  };

  static void *const noArgs[1] = {nullptr};
  void *const *packedArgs = pointers.empty() ? noArgs : pointers.data();
  if (prepassWork > 0) {
    // parallelFor returns once every chunk has finished: the barrier
    // between the two steps.
    ChunkFailure failure = runItems(
        pool, PackedCall{kernel.prepass, packedArgs, dims}, prepassWork);
    if (failure.code != 0)
      return fail(NORMC_ERROR_KERNEL_FAILED,
                  "kernel '%s': prepass failed with code %d (%s) on prepass "
                  "items [%lld, %lld) of %lld",
                  name, failure.code, kernelCodeName(failure.code),
                  static_cast<long long>(failure.begin),
                  static_cast<long long>(failure.end),
                  static_cast<long long>(prepassWork));
  }
  if (work == 0)
    return finish();

  ChunkFailure failure =
      runItems(pool, PackedCall{kernel.entry, packedArgs, dims}, work);
  if (failure.code != 0)
    return fail(NORMC_ERROR_KERNEL_FAILED,
                "kernel '%s' failed with code %d (%s) on work items [%lld, "
                "%lld) of %lld",
                name, failure.code, kernelCodeName(failure.code),
                static_cast<long long>(failure.begin),
                static_cast<long long>(failure.end),
                static_cast<long long>(work));
  return finish();
}

} // namespace normc
