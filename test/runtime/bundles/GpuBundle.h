//===- GpuBundle.h - The GPU test bundle's kernels and hooks ----*- C++ -*-===//
//
// Shared by GpuBundle.cpp and the tests. The bundle carries PTX for sm_80
// and sm_90 and these kernels (CPU entry points for all of them):
//
//   scale    x in f32 [rows, cols], gamma in f32 [cols], y out f32
//            [rows, cols]; y = x * gamma on the CPU. GPU functions
//            scale_gpu_rows, scale_gpu_partials, scale_gpu_apply. Its plan
//            fails with code 2 for cols == 0, has no launches for rows == 0,
//            and otherwise asks for rows * 8 + 4 workspace bytes and
//            launches partials, rows, apply (see scalePlan below).
//   tiny     a in f32 [4], b out f32 [4]; no dims; its plan has one launch
//            and no workspace. On the CPU it has a prepass (bundle ABI 3)
//            and a 16-byte workspace: the prepass copies a into the
//            workspace, the work item copies the workspace into b.
//   badplan  x in f32 [n]; its plan misbehaves in a way chosen by n
//            (BadPlan below); any other n gives one valid launch.
//   ghost    x in f32 [n]; its GPU function is not in the PTX.
//   cpuonly  x in f32 [n], y out f32 [n]; no GPU code.
//
// Variants built from the same source: gpu_no_plan (scale's plan is not
// exported), gpu_no_ptx (normc_gpu_ptx_sm_90 is not exported),
// gpu_unterminated_ptx (normc_gpu_ptx_sm_90 has no NUL).
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_TEST_BUNDLES_GPUBUNDLE_H
#define NORMC_TEST_BUNDLES_GPUBUNDLE_H

#include "BundleAbi.h"

#include <cstdint>

namespace normc_test_gpu {

/// The values of n that make badplan's plan misbehave.
enum BadPlan : int64_t {
  kFunctionTooLarge = 1,  ///< launch 0 uses function 1 (there is only 0)
  kFunctionNegative = 2,  ///< launch 0 uses function -1
  kEmptyGrid = 3,         ///< launch 0 has grid 2x0x1
  kEmptyBlock = 4,        ///< launch 0 has block 32x1x0
  kTooManyLaunches = 5,   ///< 5 launches
  kNegativeLaunches = 6,  ///< -1 launches
  kNegativeWorkspace = 7, ///< workspace -8 bytes
  kBadShape = 8,          ///< returns 2 (NORMC_ERR_BAD_SHAPE)
  kUnknownCode = 9,       ///< returns 7
};

/// scale's plan for rows > 0, cols > 0 (the tests compare against it).
inline NormcTestGpuPlan scalePlan(int64_t rows, int64_t cols) {
  NormcTestGpuPlan plan = {};
  plan.numLaunches = 3;
  // Not a multiple of 8: the workspace descriptor's size rounds down.
  plan.workspaceBytes = rows * 8 + 4;
  uint32_t r = static_cast<uint32_t>(rows);
  uint32_t applyBlocks = static_cast<uint32_t>((rows * cols + 255) / 256);
  // Deliberately not in "functions" order, and with every field distinct.
  plan.launches[0] = {1, {r, 2, 1}, {128, 1, 1}, 1024};
  plan.launches[1] = {0, {(r + 3) / 4, 1, 1}, {32, 4, 1}, 0};
  plan.launches[2] = {2, {applyBlocks, 1, 1}, {256, 1, 1}, 16};
  return plan;
}

/// What the plans saw (reset with normc_test_gpu_reset).
struct PlanCalls {
  int64_t calls = 0;
  /// The dims of the last call (up to two).
  int64_t dims[2] = {-1, -1};
  /// Calls of tiny's CPU prepass.
  int64_t tinyPrepassCalls = 0;
};

using ResetFn = void (*)();
using PlanCallsFn = void (*)(PlanCalls *);

} // namespace normc_test_gpu

#endif // NORMC_TEST_BUNDLES_GPUBUNDLE_H
