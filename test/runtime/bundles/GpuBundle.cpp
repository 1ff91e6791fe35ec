//===- GpuBundle.cpp - A bundle with GPU code (bundle ABI 2) --------------===//
//
// Stands in for `normc --gpu-arch=sm_80,sm_90` output; see GpuBundle.h for
// the kernels and the variants built from this file. The PTX is not real
// device code (nothing runs it: the tests use the fake driver), but it has
// the shape of normc's: one module per arch with every kernel's .entry
// functions, each taking the documented parameter list.
//
//===----------------------------------------------------------------------===//

#include "GpuBundle.h"

#include <mutex>

using namespace normc_test_gpu;

NORMC_TEST_EXPORT const uint32_t normc_abi_version = 3;

NORMC_TEST_EXPORT const char normc_manifest[] = R"JSON({
 "abi_version": 3, "generator": "normc-test-gpu 0.0.0",
 "gpu_archs": ["sm_80", "sm_90"],
 "kernels": [
  {"name": "scale", "kind": "forward", "op": "rms_norm", "attrs": {},
   "entry": "__normc_scale_packed", "work": "__normc_scale_work",
   "gpu": {"plan": "__normc_scale_gpu_plan",
           "functions": ["scale_gpu_rows", "scale_gpu_partials", "scale_gpu_apply"]},
   "dims": ["rows", "cols"],
   "args": [
     {"name": "x",     "io": "in",  "dtype": "f32", "shape": ["rows", "cols"]},
     {"name": "gamma", "io": "in",  "dtype": "f32", "shape": ["cols"]},
     {"name": "y",     "io": "out", "dtype": "f32", "shape": ["rows", "cols"]}]},
  {"name": "tiny", "kind": "forward", "op": "normalize",
   "entry": "__normc_tiny_packed", "work": "__normc_tiny_work",
   "workspace": "__normc_tiny_workspace",
   "prepass": {"entry": "__normc_tiny_prepass", "work": "__normc_tiny_prepass_work"},
   "gpu": {"plan": "__normc_tiny_gpu_plan", "functions": ["tiny_gpu"]},
   "dims": [],
   "args": [
     {"name": "a", "io": "in",  "dtype": "f32", "shape": [4]},
     {"name": "b", "io": "out", "dtype": "f32", "shape": [4]}]},
  {"name": "badplan", "kind": "forward", "op": "normalize",
   "entry": "__normc_badplan_packed", "work": "__normc_badplan_work",
   "gpu": {"plan": "__normc_badplan_gpu_plan", "functions": ["badplan_gpu"]},
   "dims": ["n"],
   "args": [{"name": "x", "io": "in", "dtype": "f32", "shape": ["n"]}]},
  {"name": "ghost", "kind": "forward", "op": "normalize",
   "entry": "__normc_ghost_packed", "work": "__normc_ghost_work",
   "gpu": {"plan": "__normc_ghost_gpu_plan", "functions": ["ghost_gpu_gone"]},
   "dims": ["n"],
   "args": [{"name": "x", "io": "in", "dtype": "f32", "shape": ["n"]}]},
  {"name": "cpuonly", "kind": "forward", "op": "normalize",
   "entry": "__normc_cpuonly_packed", "work": "__normc_cpuonly_work",
   "dims": ["n"],
   "args": [
     {"name": "x", "io": "in",  "dtype": "f32", "shape": ["n"]},
     {"name": "y", "io": "out", "dtype": "f32", "shape": ["n"]}]}
 ]})JSON";

//===--- PTX --------------------------------------------------------------===//

// clang-format off
// The five fields of a rank-1 memref descriptor (no trailing comma).
#define MEMREF_PARAMS(name)                                                    \
  "\t.param .u64 " name "_allocated,\n"                                        \
  "\t.param .u64 " name "_aligned,\n"                                          \
  "\t.param .u64 " name "_offset,\n"                                           \
  "\t.param .u64 " name "_size,\n"                                             \
  "\t.param .u64 " name "_stride"
#define ENTRY(name, params)                                                    \
  ".visible .entry " name "(\n" params "\n)\n{\n\tret;\n}\n\n"

// 5 (n + 1) + k = 5 * 4 + 2 parameters.
#define SCALE_PARAMS                                                           \
  MEMREF_PARAMS("x") ",\n" MEMREF_PARAMS("gamma") ",\n"                        \
  MEMREF_PARAMS("y") ",\n" MEMREF_PARAMS("ws") ",\n"                           \
  "\t.param .u64 rows,\n\t.param .u64 cols"

#define PTX_MODULE(arch)                                                       \
  "//\n// normc test bundle, " arch "\n//\n\n"                                 \
  ".version 7.8\n.target " arch "\n.address_size 64\n\n"                       \
  ENTRY("scale_gpu_rows", SCALE_PARAMS)                                        \
  ENTRY("scale_gpu_partials", SCALE_PARAMS)                                    \
  ENTRY("scale_gpu_apply", SCALE_PARAMS)                                       \
  ENTRY("tiny_gpu", MEMREF_PARAMS("a") ",\n" MEMREF_PARAMS("b") ",\n"          \
                    MEMREF_PARAMS("ws"))                                       \
  ENTRY("badplan_gpu", MEMREF_PARAMS("x") ",\n" MEMREF_PARAMS("ws")            \
                       ",\n\t.param .u64 n")
// clang-format on

NORMC_TEST_EXPORT const char normc_gpu_ptx_sm_80[] = PTX_MODULE("sm_80");
#if defined(NORMC_TEST_GPU_UNTERMINATED_PTX)
NORMC_TEST_EXPORT const char normc_gpu_ptx_sm_90[4] = {'.', 'v', 'e', 'r'};
#elif !defined(NORMC_TEST_GPU_NO_PTX)
NORMC_TEST_EXPORT const char normc_gpu_ptx_sm_90[] = PTX_MODULE("sm_90");
#endif

//===--- Test hooks (not part of the ABI) ---------------------------------===//

namespace {
std::mutex mutex;
PlanCalls planCalls;

void recordPlan(const int64_t *dims, int numDims) {
  std::lock_guard<std::mutex> lock(mutex);
  ++planCalls.calls;
  for (int i = 0; i < 2; ++i)
    planCalls.dims[i] = i < numDims ? dims[i] : -1;
}
} // namespace

NORMC_TEST_EXPORT void normc_test_gpu_reset() {
  std::lock_guard<std::mutex> lock(mutex);
  planCalls = PlanCalls();
}

NORMC_TEST_EXPORT void normc_test_gpu_plan_calls(PlanCalls *out) {
  std::lock_guard<std::mutex> lock(mutex);
  *out = planCalls;
}

//===--- scale ------------------------------------------------------------===//

NORMC_TEST_EXPORT int64_t __normc_scale_work(const int64_t *dims) {
  return dims[0];
}

NORMC_TEST_EXPORT int32_t __normc_scale_packed(void *const *args,
                                               const int64_t *dims,
                                               int64_t begin, int64_t end) {
  int64_t cols = dims[1];
  const float *x = static_cast<const float *>(args[0]);
  const float *gamma = static_cast<const float *>(args[1]);
  float *y = static_cast<float *>(args[2]);
  for (int64_t row = begin; row < end; ++row)
    for (int64_t i = 0; i < cols; ++i)
      y[row * cols + i] = x[row * cols + i] * gamma[i];
  return 0;
}

#if !defined(NORMC_TEST_GPU_NO_PLAN)
NORMC_TEST_EXPORT int32_t __normc_scale_gpu_plan(const int64_t *dims,
                                                 NormcTestGpuPlan *plan) {
  recordPlan(dims, 2);
  int64_t rows = dims[0], cols = dims[1];
  if (cols == 0)
    return 2; // an empty reduction
  if (rows == 0) {
    plan->numLaunches = 0;
    plan->workspaceBytes = 0;
    return 0;
  }
  *plan = scalePlan(rows, cols);
  return 0;
}
#endif

//===--- tiny -------------------------------------------------------------===//

// On the CPU, the prepass copies a into the workspace and the work item
// copies the workspace into b.
NORMC_TEST_EXPORT int64_t __normc_tiny_work(const int64_t *) { return 1; }
NORMC_TEST_EXPORT int64_t __normc_tiny_prepass_work(const int64_t *) {
  return 1;
}
NORMC_TEST_EXPORT int64_t __normc_tiny_workspace(const int64_t *) {
  return 4 * sizeof(float);
}

NORMC_TEST_EXPORT int32_t __normc_tiny_prepass(void *const *args,
                                               const int64_t *, int64_t,
                                               int64_t) {
  {
    std::lock_guard<std::mutex> lock(mutex);
    ++planCalls.tinyPrepassCalls;
  }
  const float *a = static_cast<const float *>(args[0]);
  float *ws = static_cast<float *>(args[2]);
  for (int i = 0; i < 4; ++i)
    ws[i] = a[i];
  return 0;
}

NORMC_TEST_EXPORT int32_t __normc_tiny_packed(void *const *args,
                                              const int64_t *, int64_t,
                                              int64_t) {
  const float *ws = static_cast<const float *>(args[2]);
  float *b = static_cast<float *>(args[1]);
  for (int i = 0; i < 4; ++i)
    b[i] = ws[i];
  return 0;
}

NORMC_TEST_EXPORT int32_t __normc_tiny_gpu_plan(const int64_t *dims,
                                                NormcTestGpuPlan *plan) {
  recordPlan(dims, 0);
  plan->numLaunches = 1;
  plan->workspaceBytes = 0;
  plan->launches[0] = {0, {1, 1, 1}, {4, 1, 1}, 0};
  return 0;
}

//===--- badplan, ghost, cpuonly ------------------------------------------===//

NORMC_TEST_EXPORT int64_t __normc_badplan_work(const int64_t *dims) {
  return dims[0];
}
NORMC_TEST_EXPORT int32_t __normc_badplan_packed(void *const *, const int64_t *,
                                                 int64_t, int64_t) {
  return 0;
}

NORMC_TEST_EXPORT int32_t __normc_badplan_gpu_plan(const int64_t *dims,
                                                   NormcTestGpuPlan *plan) {
  recordPlan(dims, 1);
  plan->numLaunches = 1;
  plan->workspaceBytes = 0;
  plan->launches[0] = {0, {2, 1, 1}, {32, 1, 1}, 0};
  switch (dims[0]) {
  case kFunctionTooLarge:
    plan->launches[0].function = 1;
    break;
  case kFunctionNegative:
    plan->launches[0].function = -1;
    break;
  case kEmptyGrid:
    plan->launches[0].grid[1] = 0;
    break;
  case kEmptyBlock:
    plan->launches[0].block[2] = 0;
    break;
  case kTooManyLaunches:
    plan->numLaunches = 5;
    break;
  case kNegativeLaunches:
    plan->numLaunches = -1;
    break;
  case kNegativeWorkspace:
    plan->workspaceBytes = -8;
    break;
  case kBadShape:
    return 2;
  case kUnknownCode:
    return 7;
  default:
    break;
  }
  return 0;
}

NORMC_TEST_EXPORT int64_t __normc_ghost_work(const int64_t *dims) {
  return dims[0];
}
NORMC_TEST_EXPORT int32_t __normc_ghost_packed(void *const *, const int64_t *,
                                               int64_t, int64_t) {
  return 0;
}
NORMC_TEST_EXPORT int32_t __normc_ghost_gpu_plan(const int64_t *dims,
                                                 NormcTestGpuPlan *plan) {
  recordPlan(dims, 1);
  plan->numLaunches = 1;
  plan->workspaceBytes = 0;
  plan->launches[0] = {0, {1, 1, 1}, {32, 1, 1}, 0};
  return 0;
}

NORMC_TEST_EXPORT int64_t __normc_cpuonly_work(const int64_t *dims) {
  return dims[0];
}
NORMC_TEST_EXPORT int32_t __normc_cpuonly_packed(void *const *args,
                                                 const int64_t *, int64_t begin,
                                                 int64_t end) {
  const float *x = static_cast<const float *>(args[0]);
  float *y = static_cast<float *>(args[1]);
  for (int64_t i = begin; i < end; ++i)
    y[i] = -x[i];
  return 0;
}
