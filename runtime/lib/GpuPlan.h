//===- GpuPlan.h - The host-side GPU plan of bundle ABI 2 -------*- C++ -*-===//
//
// Layout of what a bundle's `__normc_K_gpu_plan(dims, plan)` writes (see
// docs/gpu.md). The compiler emits these structs as LLVM types, so their
// layout is part of the bundle ABI; the static_asserts pin it down.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_RUNTIME_GPUPLAN_H
#define NORMC_RUNTIME_GPUPLAN_H

#include <cstddef>
#include <cstdint>

namespace normc {

/// Launches a plan may hold; more would need a new bundle ABI.
constexpr int32_t kMaxGpuLaunches = 4;

struct GpuLaunch {
  int32_t function; ///< Index into the kernel's "gpu.functions".
  uint32_t grid[3];
  uint32_t block[3];
  uint32_t sharedBytes; ///< Dynamic shared memory.
};

struct GpuPlan {
  int32_t numLaunches; ///< 0 .. kMaxGpuLaunches.
  int32_t reserved;    ///< 0.
  int64_t workspaceBytes;
  GpuLaunch launches[kMaxGpuLaunches];
};

static_assert(sizeof(GpuLaunch) == 32, "normc_gpu_launch is 32 bytes");
static_assert(offsetof(GpuLaunch, function) == 0, "normc_gpu_launch layout");
static_assert(offsetof(GpuLaunch, grid) == 4, "normc_gpu_launch layout");
static_assert(offsetof(GpuLaunch, block) == 16, "normc_gpu_launch layout");
static_assert(offsetof(GpuLaunch, sharedBytes) == 28,
              "normc_gpu_launch layout");
static_assert(sizeof(GpuPlan) == 144, "normc_gpu_plan is 144 bytes");
static_assert(offsetof(GpuPlan, numLaunches) == 0, "normc_gpu_plan layout");
static_assert(offsetof(GpuPlan, reserved) == 4, "normc_gpu_plan layout");
static_assert(offsetof(GpuPlan, workspaceBytes) == 8, "normc_gpu_plan layout");
static_assert(offsetof(GpuPlan, launches) == 16, "normc_gpu_plan layout");
static_assert(alignof(GpuPlan) == 8, "normc_gpu_plan alignment");

/// `int32_t __normc_K_gpu_plan(const int64_t *dims, normc_gpu_plan *plan)`;
/// returns the kernel status codes (0 ok, 2 bad shape).
using GpuPlanFn = int32_t (*)(const int64_t *, GpuPlan *);

} // namespace normc

#endif // NORMC_RUNTIME_GPUPLAN_H
