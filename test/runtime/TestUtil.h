//===- TestUtil.h - Shared helpers for the runtime tests --------*- C++ -*-===//

#ifndef NORMC_TEST_RUNTIME_TESTUTIL_H
#define NORMC_TEST_RUNTIME_TESTUTIL_H

#include "normc/runtime.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <deque>
#include <dlfcn.h>
#include <memory>
#include <string>
#include <vector>

namespace normc_test {

using ::testing::HasSubstr;
using ::testing::Not;

/// Path of a bundle built by test/runtime/CMakeLists.txt.
inline std::string bundlePath(const std::string &name) {
  return std::string(NORMC_TEST_BUNDLE_DIR) + "/" + name + ".so";
}

struct BundleCloser {
  void operator()(normc_bundle *bundle) const { normc_bundle_close(bundle); }
};
using BundlePtr = std::unique_ptr<normc_bundle, BundleCloser>;

struct ContextDestroyer {
  void operator()(normc_context *context) const {
    normc_context_destroy(context);
  }
};
using ContextPtr = std::unique_ptr<normc_context, ContextDestroyer>;

/// Opens a bundle that is expected to be valid (null on failure, which the
/// caller should ASSERT on).
inline BundlePtr openBundle(const std::string &name) {
  normc_bundle *bundle = nullptr;
  normc_status status = normc_bundle_open(bundlePath(name).c_str(), &bundle);
  EXPECT_EQ(status, NORMC_OK) << normc_last_error();
  return BundlePtr(bundle);
}

inline const normc_kernel *findKernel(const normc_bundle *bundle,
                                      const char *name) {
  const normc_kernel *kernel = nullptr;
  EXPECT_EQ(normc_bundle_find_kernel(bundle, name, &kernel), NORMC_OK)
      << normc_last_error();
  return kernel;
}

/// A test bundle opened through the runtime, plus its test hooks
/// `<prefix>_reset()` and `<prefix>_stats(Stats *)`: the runtime loads
/// bundles RTLD_LOCAL, and dlopen of the same path returns that instance.
template <typename Stats> class HookedBundleTest : public ::testing::Test {
protected:
  HookedBundleTest(std::string bundleName, std::string hookPrefix)
      : bundleName(std::move(bundleName)), hookPrefix(std::move(hookPrefix)) {}

  void SetUp() override {
    bundle = openBundle(bundleName);
    ASSERT_TRUE(bundle);
    handle = dlopen(bundlePath(bundleName).c_str(), RTLD_NOW);
    ASSERT_NE(handle, nullptr) << dlerror();
    reset = reinterpret_cast<void (*)()>(
        dlsym(handle, (hookPrefix + "_reset").c_str()));
    statsFn = reinterpret_cast<void (*)(Stats *)>(
        dlsym(handle, (hookPrefix + "_stats").c_str()));
    ASSERT_TRUE(reset && statsFn);
    reset();
  }
  void TearDown() override {
    if (handle)
      dlclose(handle);
  }

  const normc_kernel *kernel(const char *name) {
    return findKernel(bundle.get(), name);
  }
  Stats stats() {
    Stats s;
    statsFn(&s);
    return s;
  }

  std::string bundleName, hookPrefix;
  BundlePtr bundle;
  void *handle = nullptr;
  void (*reset)() = nullptr;
  void (*statsFn)(Stats *) = nullptr;
};

inline ContextPtr makeContext(uint32_t numThreads) {
  normc_context_options options;
  normc_context_options_init(&options);
  options.num_threads = numThreads;
  normc_context *context = nullptr;
  EXPECT_EQ(normc_context_create(&options, &context), NORMC_OK)
      << normc_last_error();
  return ContextPtr(context);
}

/// Tensor descriptors plus the shape storage they point into.
class Args {
public:
  Args() = default;
  // Moving a deque keeps element addresses; copying would not.
  Args(Args &&) = default;
  Args(const Args &) = delete;
  Args &operator=(const Args &) = delete;

  normc_tensor &add(void *data, normc_dtype dtype, std::vector<int64_t> shape,
                    normc_device device = {NORMC_DEVICE_CPU, 0}) {
    shapes.push_back(std::move(shape));
    normc_tensor tensor = {};
    tensor.data = data;
    tensor.dtype = dtype;
    tensor.rank = shapes.back().size();
    tensor.shape = shapes.back().data();
    tensor.strides = nullptr;
    tensor.device = device;
    tensors.push_back(tensor);
    return tensors.back();
  }
  /// Replaces the shape of arg `index`.
  void setShape(size_t index, std::vector<int64_t> shape) {
    shapes.push_back(std::move(shape));
    tensors[index].rank = shapes.back().size();
    tensors[index].shape = shapes.back().data();
  }
  void setStrides(size_t index, std::vector<int64_t> strides) {
    shapes.push_back(std::move(strides));
    tensors[index].strides = shapes.back().data();
  }

  normc_tensor &operator[](size_t index) { return tensors[index]; }
  const normc_tensor *data() const { return tensors.data(); }
  size_t size() const { return tensors.size(); }

private:
  // A deque never moves its elements, so shape pointers stay valid.
  std::deque<std::vector<int64_t>> shapes;
  std::vector<normc_tensor> tensors;
};

/// Deterministic pseudo-random floats in [-2, 2).
inline std::vector<float> randomFloats(size_t count, uint32_t seed) {
  std::vector<float> values(count);
  uint32_t state = seed * 2654435761u + 1;
  for (float &value : values) {
    state = state * 1664525u + 1013904223u;
    value =
        static_cast<float>(state >> 8) / static_cast<float>(1 << 24) * 4 - 2;
  }
  return values;
}

/// Inputs and outputs of the good bundle's "ln" kernel (hidden size 256).
struct LayerNormData {
  static constexpr int64_t kHidden = 256;
  int64_t rows;
  std::vector<float> x, gamma, beta, y, mean, rstd;

  explicit LayerNormData(int64_t rows, uint32_t seed = 1)
      : rows(rows), x(randomFloats(rows * kHidden, seed)),
        gamma(randomFloats(kHidden, seed + 100)),
        beta(randomFloats(kHidden, seed + 200)), y(rows * kHidden, -7.0f),
        mean(rows, -7.0f), rstd(rows, -7.0f) {}

  Args args() {
    Args args;
    args.add(x.data(), NORMC_DTYPE_F32, {rows, kHidden});
    args.add(gamma.data(), NORMC_DTYPE_F32, {kHidden});
    args.add(beta.data(), NORMC_DTYPE_F32, {kHidden});
    args.add(y.data(), NORMC_DTYPE_F32, {rows, kHidden});
    args.add(mean.data(), NORMC_DTYPE_F32, {rows});
    args.add(rstd.data(), NORMC_DTYPE_F32, {rows});
    return args;
  }

  /// Compares the outputs with an independent double-precision LayerNorm.
  void expectMatchesReference(const std::vector<float> &input) const {
    for (int64_t row = 0; row < rows; ++row) {
      double sum = 0, sumSq = 0;
      for (int64_t i = 0; i < kHidden; ++i)
        sum += input[row * kHidden + i];
      double m = sum / kHidden;
      for (int64_t i = 0; i < kHidden; ++i)
        sumSq +=
            (input[row * kHidden + i] - m) * (input[row * kHidden + i] - m);
      double r = 1.0 / std::sqrt(sumSq / kHidden + 1e-5);
      ASSERT_NEAR(mean[row], m, 1e-5) << "row " << row;
      ASSERT_NEAR(rstd[row], r, 1e-4 * r) << "row " << row;
      for (int64_t i = 0; i < kHidden; ++i) {
        double expected =
            (input[row * kHidden + i] - m) * r * gamma[i] + beta[i];
        ASSERT_NEAR(y[row * kHidden + i], expected, 1e-4)
            << "row " << row << " col " << i;
      }
    }
  }
};

} // namespace normc_test

#endif // NORMC_TEST_RUNTIME_TESTUTIL_H
