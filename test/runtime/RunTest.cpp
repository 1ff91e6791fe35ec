//===- RunTest.cpp - Running kernels on the CPU thread pool ---------------===//

#include "TestUtil.h"

#include <cstring>
#include <dlfcn.h>
#include <unistd.h>

using namespace normc_test;

namespace {

class Run : public ::testing::Test {
protected:
  void SetUp() override {
    bundle = openBundle("good_bundle");
    ASSERT_TRUE(bundle);
  }
  const normc_kernel *kernel(const char *name) {
    return findKernel(bundle.get(), name);
  }
  BundlePtr bundle;
};

/// Runs "ln" on `data` with a context of `numThreads` threads.
void runLayerNorm(const normc_kernel *ln, LayerNormData &data,
                  uint32_t numThreads) {
  ContextPtr context = makeContext(numThreads);
  ASSERT_TRUE(context);
  Args args = data.args();
  ASSERT_EQ(normc_run(context.get(), ln, args.data(), args.size()), NORMC_OK)
      << normc_last_error();
}

class RunThreads : public Run,
                   public ::testing::WithParamInterface<uint32_t> {};

TEST_P(RunThreads, LayerNormMatchesReferenceAndIsExact) {
  uint32_t numThreads = GetParam();
  const normc_kernel *ln = kernel("ln");
  // 37 rows: not a multiple of any chunk count.
  LayerNormData data(37, 3);
  runLayerNorm(ln, data, numThreads);
  data.expectMatchesReference(data.x);

  // Work items are independent, so any split gives bit-identical results.
  LayerNormData serial(37, 3);
  runLayerNorm(ln, serial, 1);
  EXPECT_EQ(std::memcmp(data.y.data(), serial.y.data(),
                        data.y.size() * sizeof(float)),
            0);
  EXPECT_EQ(data.mean, serial.mean);
  EXPECT_EQ(data.rstd, serial.rstd);
}

/// Each work item runs exactly once, and parallel runs really use workers.
TEST_P(RunThreads, EveryWorkItemRunsOnceAcrossThreads) {
  uint32_t numThreads = GetParam();
  const normc_kernel *probe = kernel("probe");
  ContextPtr context = makeContext(numThreads);
  ASSERT_TRUE(context);
  EXPECT_EQ(normc_context_num_threads(context.get()), numThreads);

  // The runtime loaded this bundle RTLD_LOCAL; dlopen returns the same
  // instance, which gives access to its test hooks.
  void *handle = dlopen(bundlePath("good_bundle").c_str(), RTLD_NOW);
  ASSERT_NE(handle, nullptr) << dlerror();
  auto reset =
      reinterpret_cast<void (*)()>(dlsym(handle, "normc_test_probe_reset"));
  auto distinct = reinterpret_cast<int64_t (*)()>(
      dlsym(handle, "normc_test_probe_distinct_threads"));
  ASSERT_TRUE(reset && distinct);

  const int64_t n = 256;
  std::vector<float> x(n), acc(n, 0.5f);
  for (int64_t i = 0; i < n; ++i)
    x[i] = static_cast<float>(i);
  Args args;
  args.add(x.data(), NORMC_DTYPE_F32, {n});
  args.add(acc.data(), NORMC_DTYPE_F32, {n});
  reset();
  ASSERT_EQ(normc_run(context.get(), probe, args.data(), args.size()), NORMC_OK)
      << normc_last_error();
  for (int64_t i = 0; i < n; ++i)
    ASSERT_EQ(acc[i], x[i] + 1.5f) << "work item " << i;
  int64_t threads = distinct();
  EXPECT_GE(threads, 1);
  EXPECT_LE(threads, static_cast<int64_t>(numThreads));
  if (numThreads > 1) {
    EXPECT_GE(threads, 2) << "no worker thread took part";
  }
  dlclose(handle);
}

INSTANTIATE_TEST_SUITE_P(ThreadCounts, RunThreads,
                         ::testing::Values(1u, 2u, 4u));

TEST_F(Run, InPlaceMatchesOutOfPlace) {
  const normc_kernel *ln = kernel("ln");
  LayerNormData outOfPlace(16, 5);
  runLayerNorm(ln, outOfPlace, 4);

  LayerNormData inPlace(16, 5);
  ContextPtr context = makeContext(4);
  Args args = inPlace.args();
  args[3].data = inPlace.x.data();
  ASSERT_EQ(normc_run(context.get(), ln, args.data(), args.size()), NORMC_OK)
      << normc_last_error();
  EXPECT_EQ(inPlace.x, outOfPlace.y);
  EXPECT_EQ(inPlace.mean, outOfPlace.mean);
  EXPECT_EQ(inPlace.rstd, outOfPlace.rstd);
}

TEST_F(Run, RmsNormWithTwoDynamicDims) {
  const normc_kernel *rms = kernel("rms");
  const int64_t rows = 5, cols = 7;
  std::vector<float> x = randomFloats(rows * cols, 9),
                     gamma = randomFloats(cols, 10);
  std::vector<float> y(rows * cols), rstd(rows);
  Args args;
  args.add(x.data(), NORMC_DTYPE_F32, {rows, cols});
  args.add(gamma.data(), NORMC_DTYPE_F32, {cols});
  args.add(y.data(), NORMC_DTYPE_F32, {rows, cols});
  args.add(rstd.data(), NORMC_DTYPE_F32, {rows});
  ContextPtr context = makeContext(2);
  ASSERT_EQ(normc_run(context.get(), rms, args.data(), args.size()), NORMC_OK)
      << normc_last_error();
  for (int64_t r = 0; r < rows; ++r) {
    double sumSq = 0;
    for (int64_t c = 0; c < cols; ++c)
      sumSq += double(x[r * cols + c]) * x[r * cols + c];
    double inv = 1.0 / std::sqrt(sumSq / cols + 1e-6);
    EXPECT_NEAR(rstd[r], inv, 1e-4 * inv);
    for (int64_t c = 0; c < cols; ++c)
      EXPECT_NEAR(y[r * cols + c], x[r * cols + c] * inv * gamma[c], 1e-4);
  }
}

TEST_F(Run, ZeroSizeBatchWithNullPointers) {
  const normc_kernel *ln = kernel("ln");
  LayerNormData data(0);
  Args args = data.args();
  for (size_t i : {0, 3, 4, 5})
    args[i].data = nullptr;
  ContextPtr context = makeContext(4);
  EXPECT_EQ(normc_run(context.get(), ln, args.data(), args.size()), NORMC_OK)
      << normc_last_error();
}

TEST_F(Run, SingleWorkItemRunsOnCallingThread) {
  const normc_kernel *probe = kernel("probe");
  void *handle = dlopen(bundlePath("good_bundle").c_str(), RTLD_NOW);
  ASSERT_NE(handle, nullptr);
  auto reset =
      reinterpret_cast<void (*)()>(dlsym(handle, "normc_test_probe_reset"));
  auto distinct = reinterpret_cast<int64_t (*)()>(
      dlsym(handle, "normc_test_probe_distinct_threads"));
  float x = 1, acc = 0;
  Args args;
  args.add(&x, NORMC_DTYPE_F32, {1});
  args.add(&acc, NORMC_DTYPE_F32, {1});
  ContextPtr context = makeContext(4);
  reset();
  ASSERT_EQ(normc_run(context.get(), probe, args.data(), args.size()),
            NORMC_OK);
  EXPECT_EQ(acc, 2.0f);
  EXPECT_EQ(distinct(), 1);
  dlclose(handle);
}

TEST_F(Run, KernelWithoutDynamicDims) {
  const normc_kernel *half = kernel("half");
  uint16_t a[6] = {1, 2, 3, 0x3c00, 0x7bff, 0xffff};
  uint16_t b[6] = {};
  Args args;
  args.add(a, NORMC_DTYPE_F16, {2, 3});
  args.add(b, NORMC_DTYPE_BF16, {2, 3});
  ContextPtr context = makeContext(2);
  ASSERT_EQ(normc_run(context.get(), half, args.data(), args.size()), NORMC_OK)
      << normc_last_error();
  EXPECT_EQ(std::memcmp(a, b, sizeof(a)), 0);
}

TEST_F(Run, KernelFailureIsReported) {
  const normc_kernel *fail = kernel("fail");
  const int64_t n = 10;
  std::vector<double> x(n, 1.5), y(n, 0);
  Args args;
  args.add(x.data(), NORMC_DTYPE_F64, {n});
  args.add(y.data(), NORMC_DTYPE_F64, {n});

  ContextPtr serial = makeContext(1);
  EXPECT_EQ(normc_run(serial.get(), fail, args.data(), args.size()),
            NORMC_ERROR_KERNEL_FAILED);
  EXPECT_THAT(
      normc_last_error(),
      HasSubstr("kernel 'fail' failed with code 7 (unknown code) on work items "
                "[0, 10) of 10"));
  for (int64_t i = 0; i < 3; ++i)
    EXPECT_EQ(y[i], 3.0);

  // With 4 threads the 10 items are split into 10 one-item chunks; only the
  // chunk holding item 3 fails.
  ContextPtr parallel = makeContext(4);
  EXPECT_EQ(normc_run(parallel.get(), fail, args.data(), args.size()),
            NORMC_ERROR_KERNEL_FAILED);
  EXPECT_THAT(
      normc_last_error(),
      HasSubstr("kernel 'fail' failed with code 7 (unknown code) on work items "
                "[3, 4) of 10"));
  for (int64_t i = 4; i < n; ++i)
    EXPECT_EQ(y[i], 3.0);
}

TEST_F(Run, NullContextOrKernel) {
  LayerNormData data(2);
  Args args = data.args();
  EXPECT_EQ(normc_run(nullptr, kernel("ln"), args.data(), args.size()),
            NORMC_ERROR_INVALID_ARGUMENT);
  EXPECT_THAT(normc_last_error(),
              HasSubstr("normc_run: context and kernel must not be NULL"));
  ContextPtr context = makeContext(1);
  EXPECT_EQ(normc_run(context.get(), nullptr, args.data(), args.size()),
            NORMC_ERROR_INVALID_ARGUMENT);
}

TEST(Context, DefaultThreadCountIsOnlineCores) {
  normc_context *context = nullptr;
  ASSERT_EQ(normc_context_create(nullptr, &context), NORMC_OK);
  EXPECT_EQ(normc_context_num_threads(context),
            static_cast<uint32_t>(sysconf(_SC_NPROCESSORS_ONLN)));
  normc_context_destroy(context);
}

TEST(Context, OptionsAndErrors) {
  normc_context_options options;
  normc_context_options_init(&options);
  EXPECT_EQ(options.num_threads, 0u);
  EXPECT_EQ(options.pin_threads, 1);

  options.num_threads = 3;
  options.pin_threads = 0;
  normc_context *context = nullptr;
  ASSERT_EQ(normc_context_create(&options, &context), NORMC_OK);
  EXPECT_EQ(normc_context_num_threads(context), 3u);
  normc_context_destroy(context);

  // More threads than cores is allowed (and pinning wraps around).
  options.num_threads =
      2 * static_cast<uint32_t>(sysconf(_SC_NPROCESSORS_ONLN)) + 1;
  options.pin_threads = 1;
  ASSERT_EQ(normc_context_create(&options, &context), NORMC_OK)
      << normc_last_error();
  normc_context_destroy(context);

  options.num_threads = 100000;
  context = reinterpret_cast<normc_context *>(0x1);
  EXPECT_EQ(normc_context_create(&options, &context),
            NORMC_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(context, nullptr);
  EXPECT_THAT(normc_last_error(),
              HasSubstr("num_threads 100000 exceeds the maximum of 4096"));
  EXPECT_EQ(normc_context_create(&options, nullptr),
            NORMC_ERROR_INVALID_ARGUMENT);
  normc_context_destroy(nullptr);
  EXPECT_EQ(normc_context_num_threads(nullptr), 0u);
}

} // namespace
