//===- CpuDevice.cpp - Kernels on the host thread pool --------------------===//

#include "CpuDevice.h"

#include "Error.h"

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

} // namespace

normc_status CpuDevice::launch(const normc_kernel &kernel,
                               const LaunchArgs &args) {
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
  if (work == 0)
    return NORMC_OK;

  static void *const noArgs[1] = {nullptr};
  PackedCall call{kernel.entry,
                  args.pointers.empty() ? noArgs : args.pointers.data(), dims};
  ChunkFailure failure;
  if (work == 1 || pool.numThreads() == 1) {
    // Not worth waking workers; run on the calling thread.
    int32_t code = runPacked(&call, 0, work);
    failure = ChunkFailure{code, 0, work};
  } else {
    failure = pool.parallelFor(work, kChunksPerThread * pool.numThreads(),
                               &runPacked, &call);
  }
  if (failure.code != 0)
    return fail(NORMC_ERROR_KERNEL_FAILED,
                "kernel '%s' failed with code %d on work items [%lld, %lld) "
                "of %lld",
                name, failure.code, static_cast<long long>(failure.begin),
                static_cast<long long>(failure.end),
                static_cast<long long>(work));
  return NORMC_OK;
}

} // namespace normc
