//===- FakeCuda.h - What the fake CUDA driver records -----------*- C++ -*-===//
//
// Shared by FakeCudaDriver.cpp and the tests, which reach the fake's state
// through the fake_cuda_* functions it exports (dlopen of the same path the
// runtime loaded returns the same instance).
//
// Configuration, read from the environment on every call:
//   FAKE_CUDA_DEVICE_COUNT        devices cuDeviceGetCount reports (0)
//   FAKE_CUDA_COMPUTE_CAPABILITY  "major.minor" of every device ("9.0")
//   FAKE_CUDA_MEMORY_POOLS        "0": devices lack memory pools ("1")
//   FAKE_CUDA_FAIL                "entry=result[@n],...": entry point
//                                 `entry` returns CUresult `result` (on its
//                                 n-th call since the last reset only)
//   FAKE_CUDA_JIT_LOG             written to the JIT error log when module
//                                 loading fails
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_TEST_BUNDLES_FAKECUDA_H
#define NORMC_TEST_BUNDLES_FAKECUDA_H

#include <cstdint>
#include <string>
#include <vector>

namespace fake_cuda {

enum class Call {
  Retain,      // cuDevicePrimaryCtxRetain
  Release,     // cuDevicePrimaryCtxRelease
  Load,        // cuModuleLoadData(Ex)
  Unload,      // cuModuleUnload
  GetFunction, // cuModuleGetFunction
  Alloc,       // cuMemAlloc_v2
  AllocAsync,  // cuMemAllocAsync
  Free,        // cuMemFree_v2
  FreeAsync,   // cuMemFreeAsync
  Launch,      // cuLaunchKernel
  Sync,        // cuStreamSynchronize
};

/// One driver call (only the calls above are recorded).
struct Event {
  Call call = Call::Sync;
  /// The CUresult the call returned.
  int result = 0;
  /// The context current on the calling thread.
  const void *context = nullptr;
  /// Retain/Release: the device.
  int device = -1;
  /// AllocAsync/FreeAsync/Launch/Sync.
  const void *stream = nullptr;
  /// Alloc*/Free*: the device pointer; Load/Unload/GetFunction: the module.
  uint64_t pointer = 0;
  /// Alloc*: the requested size.
  uint64_t bytes = 0;
  /// Load: the image; GetFunction/Launch: the function name.
  std::string text;
  /// Launch only.
  unsigned grid[3] = {0, 0, 0};
  unsigned block[3] = {0, 0, 0};
  unsigned sharedBytes = 0;
  /// Launch: every parameter, read as 8 bytes (the count comes from the
  /// function's .param list in the PTX, as the real driver does).
  std::vector<int64_t> params;
};

/// Leaks and misuse.
struct Health {
  int64_t liveAllocations = 0;
  int64_t liveModules = 0;
  /// Primary context references held, over all devices.
  int64_t contextRefs = 0;
  /// Contexts pushed but not popped on the calling thread.
  int64_t contextDepth = 0;
  /// Protocol violations: calls without a current context, unknown
  /// handles, a context destroyed while modules or allocations live, ...
  std::vector<std::string> violations;
};

using ResetFn = void (*)();
using EventsFn = void (*)(std::vector<Event> *);
using HealthFn = void (*)(Health *);

} // namespace fake_cuda

#endif // NORMC_TEST_BUNDLES_FAKECUDA_H
