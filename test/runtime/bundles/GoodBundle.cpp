//===- GoodBundle.cpp - A valid bundle with several kernels ---------------===//
//
// Kernels (all plain C++):
//   ln     LayerNorm forward over rows of kHidden floats, y may alias x.
//   rms    RMSNorm forward with two dynamic dims (rows, cols).
//   probe  acc[i] += x[i] + 1, records which threads ran it (thread tests).
//   fail   y = 2 * x in f64, returns 7 for the chunk containing item 3.
//   half   copies 6 raw 16-bit values f16 -> bf16; no dynamic dims, 1 item.
// The manifest also carries unknown fields, which the runtime must ignore.
//
//===----------------------------------------------------------------------===//

#include "BundleAbi.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>

namespace {
constexpr int64_t kHidden = 256;
} // namespace

NORMC_TEST_EXPORT const uint32_t normc_abi_version = 3;

NORMC_TEST_EXPORT const char normc_manifest[] = R"JSON({
 "abi_version": 3, "generator": "normc-test-bundle 0.0.0",
 "future_top_level_field": {"nested": [1, 2.5, null, true]},
 "kernels": [
  {"name": "ln", "kind": "forward", "op": "layer_norm",
   "attrs": {"eps": 1e-05, "eps_outside": false, "center": true, "reduction_dims": [1], "affine_dims": [1]},
   "entry": "__normc_ln_packed", "work": "__normc_ln_work",
   "dims": ["d0"],
   "args": [
     {"name": "x",     "io": "in",  "dtype": "f32", "shape": ["d0", 256]},
     {"name": "gamma", "io": "in",  "dtype": "f32", "shape": [256]},
     {"name": "beta",  "io": "in",  "dtype": "f32", "shape": [256]},
     {"name": "y",     "io": "out", "dtype": "f32", "shape": ["d0", 256], "inplace": "x"},
     {"name": "mean",  "io": "out", "dtype": "f32", "shape": ["d0"]},
     {"name": "rstd",  "io": "out", "dtype": "f32", "shape": ["d0"]}]},
  {"name": "rms", "kind": "forward", "op": "rms_norm", "attrs": {"eps": 1e-06},
   "entry": "__normc_rms_packed", "work": "__normc_rms_work",
   "dims": ["rows", "cols"], "unknown_kernel_field": {"a": "b"},
   "args": [
     {"name": "x",     "io": "in",  "dtype": "f32", "shape": ["rows", "cols"]},
     {"name": "gamma", "io": "in",  "dtype": "f32", "shape": ["cols"], "unknown_arg_field": 1},
     {"name": "y",     "io": "out", "dtype": "f32", "shape": ["rows", "cols"], "inplace": "x"},
     {"name": "rstd",  "io": "out", "dtype": "f32", "shape": ["rows"]}]},
  {"name": "probe", "kind": "forward", "op": "normalize",
   "entry": "__normc_probe_packed", "work": "__normc_probe_work",
   "dims": ["n"],
   "args": [
     {"name": "x",   "io": "in",    "dtype": "f32", "shape": ["n"]},
     {"name": "acc", "io": "inout", "dtype": "f32", "shape": ["n"]}]},
  {"name": "fail", "kind": "backward", "op": "batch_norm", "attrs": {},
   "entry": "__normc_fail_packed", "work": "__normc_fail_work",
   "dims": ["n"],
   "args": [
     {"name": "x", "io": "in",  "dtype": "f64", "shape": ["n"]},
     {"name": "y", "io": "out", "dtype": "f64", "shape": ["n"]}]},
  {"name": "half", "kind": "forward", "op": "group_norm", "attrs": {"groups": 2},
   "entry": "__normc_half_packed", "work": "__normc_half_work",
   "dims": [],
   "args": [
     {"name": "a", "io": "in",  "dtype": "f16",  "shape": [2, 3]},
     {"name": "b", "io": "out", "dtype": "bf16", "shape": [2, 3]}]}
 ]})JSON";

//===--- ln ---------------------------------------------------------------===//

NORMC_TEST_EXPORT int64_t __normc_ln_work(const int64_t *dims) {
  return dims[0];
}

NORMC_TEST_EXPORT int32_t __normc_ln_packed(void *const *args,
                                            const int64_t *dims, int64_t begin,
                                            int64_t end) {
  (void)dims;
  const float *x = static_cast<const float *>(args[0]);
  const float *gamma = static_cast<const float *>(args[1]);
  const float *beta = static_cast<const float *>(args[2]);
  float *y = static_cast<float *>(args[3]);
  float *mean = static_cast<float *>(args[4]);
  float *rstd = static_cast<float *>(args[5]);
  for (int64_t row = begin; row < end; ++row) {
    const float *xr = x + row * kHidden;
    float *yr = y + row * kHidden;
    double sum = 0;
    for (int64_t i = 0; i < kHidden; ++i)
      sum += xr[i];
    float m = static_cast<float>(sum / kHidden);
    double var = 0;
    for (int64_t i = 0; i < kHidden; ++i)
      var += (double(xr[i]) - m) * (double(xr[i]) - m);
    float r = static_cast<float>(1.0 / std::sqrt(var / kHidden + 1e-5));
    // Reads xr[i] before writing yr[i], so y may alias x.
    for (int64_t i = 0; i < kHidden; ++i)
      yr[i] = (xr[i] - m) * r * gamma[i] + beta[i];
    mean[row] = m;
    rstd[row] = r;
  }
  return 0;
}

//===--- rms --------------------------------------------------------------===//

NORMC_TEST_EXPORT int64_t __normc_rms_work(const int64_t *dims) {
  return dims[0];
}

NORMC_TEST_EXPORT int32_t __normc_rms_packed(void *const *args,
                                             const int64_t *dims, int64_t begin,
                                             int64_t end) {
  int64_t cols = dims[1];
  const float *x = static_cast<const float *>(args[0]);
  const float *gamma = static_cast<const float *>(args[1]);
  float *y = static_cast<float *>(args[2]);
  float *rstd = static_cast<float *>(args[3]);
  for (int64_t row = begin; row < end; ++row) {
    double sumSq = 0;
    for (int64_t i = 0; i < cols; ++i)
      sumSq += double(x[row * cols + i]) * x[row * cols + i];
    float r =
        static_cast<float>(1.0 / std::sqrt(sumSq / (cols ? cols : 1) + 1e-6));
    for (int64_t i = 0; i < cols; ++i)
      y[row * cols + i] = x[row * cols + i] * r * gamma[i];
    rstd[row] = r;
  }
  return 0;
}

//===--- probe ------------------------------------------------------------===//

namespace {
std::mutex probeMutex;
std::set<std::thread::id> probeThreads;
} // namespace

/// Test hooks (not part of the ABI): the tests dlopen this bundle again to
/// reach them; dlopen returns the same instance the runtime loaded.
NORMC_TEST_EXPORT void normc_test_probe_reset() {
  std::lock_guard<std::mutex> lock(probeMutex);
  probeThreads.clear();
}

NORMC_TEST_EXPORT int64_t normc_test_probe_distinct_threads() {
  std::lock_guard<std::mutex> lock(probeMutex);
  return static_cast<int64_t>(probeThreads.size());
}

NORMC_TEST_EXPORT int64_t __normc_probe_work(const int64_t *dims) {
  return dims[0];
}

NORMC_TEST_EXPORT int32_t __normc_probe_packed(void *const *args,
                                               const int64_t *dims,
                                               int64_t begin, int64_t end) {
  (void)dims;
  const float *x = static_cast<const float *>(args[0]);
  float *acc = static_cast<float *>(args[1]);
  {
    std::lock_guard<std::mutex> lock(probeMutex);
    probeThreads.insert(std::this_thread::get_id());
  }
  for (int64_t i = begin; i < end; ++i) {
    // "+=" makes a work item that runs twice (or never) visible.
    acc[i] += x[i] + 1.0f;
    // Slow enough that workers get a share even on a loaded machine.
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return 0;
}

//===--- fail -------------------------------------------------------------===//

NORMC_TEST_EXPORT int64_t __normc_fail_work(const int64_t *dims) {
  return dims[0];
}

NORMC_TEST_EXPORT int32_t __normc_fail_packed(void *const *args,
                                              const int64_t *dims,
                                              int64_t begin, int64_t end) {
  (void)dims;
  const double *x = static_cast<const double *>(args[0]);
  double *y = static_cast<double *>(args[1]);
  for (int64_t i = begin; i < end; ++i) {
    if (i == 3)
      return 7;
    y[i] = 2 * x[i];
  }
  return 0;
}

//===--- half -------------------------------------------------------------===//

NORMC_TEST_EXPORT int64_t __normc_half_work(const int64_t *dims) {
  (void)dims;
  return 1;
}

NORMC_TEST_EXPORT int32_t __normc_half_packed(void *const *args,
                                              const int64_t *dims,
                                              int64_t begin, int64_t end) {
  (void)dims;
  if (begin != 0 || end != 1)
    return 1;
  std::memcpy(args[1], args[0], 6 * sizeof(uint16_t));
  return 0;
}
