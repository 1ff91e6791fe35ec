//===- BundleAbi.h - Helpers for hand-written test bundles ------*- C++ -*-===//
//
// The test bundles stand in for compiler output: they export exactly the
// symbols of bundle ABI version 3 (see docs/runtime.md and docs/gpu.md).
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_TEST_BUNDLES_BUNDLEABI_H
#define NORMC_TEST_BUNDLES_BUNDLEABI_H

#include <cstdint>

// Explicit default visibility: the project may compile with
// -fvisibility=hidden, and a bundle's ABI symbols must always be exported.
#define NORMC_TEST_EXPORT extern "C" __attribute__((visibility("default")))

/// The GPU plan written by a bundle's `__normc_K_gpu_plan`, spelled out here
/// as the compiler's output would be (not taken from the runtime), so that a
/// layout mismatch between the two shows up in the tests.
struct NormcTestGpuLaunch {
  int32_t function;
  uint32_t grid[3];
  uint32_t block[3];
  uint32_t sharedBytes;
};
struct NormcTestGpuPlan {
  int32_t numLaunches;
  int32_t reserved;
  int64_t workspaceBytes;
  NormcTestGpuLaunch launches[4];
};
static_assert(sizeof(NormcTestGpuLaunch) == 32, "docs/gpu.md: 32 bytes");
static_assert(sizeof(NormcTestGpuPlan) == 144, "docs/gpu.md: 144 bytes");

#endif // NORMC_TEST_BUNDLES_BUNDLEABI_H
