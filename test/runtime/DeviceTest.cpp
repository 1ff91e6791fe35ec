//===- DeviceTest.cpp - GPU device selection without a GPU ----------------===//
//
// The build machines have no GPU (and no libcuda.so.1), so CUDA tensors must
// fail cleanly. A fake driver loaded via $NORMC_CUDA_DRIVER exercises the
// detection paths that need a driver.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include <cstdlib>
#include <dlfcn.h>

using namespace normc_test;

namespace {

class Device : public ::testing::Test {
protected:
  void SetUp() override {
    unsetenv("NORMC_CUDA_DRIVER");
    unsetenv("FAKE_CUDA_DEVICE_COUNT");
    bundle = openBundle("good_bundle");
    ASSERT_TRUE(bundle);
    ln = findKernel(bundle.get(), "ln");
  }
  void TearDown() override {
    unsetenv("NORMC_CUDA_DRIVER");
    unsetenv("FAKE_CUDA_DEVICE_COUNT");
  }

  /// Runs "ln" with every tensor on cuda:`ordinal`; returns the message.
  std::string runOnCuda(int32_t ordinal, normc_status expected) {
    LayerNormData data(4);
    Args args = data.args();
    for (size_t i = 0; i < args.size(); ++i)
      args[i].device = {NORMC_DEVICE_CUDA, ordinal};
    ContextPtr context = makeContext(2);
    EXPECT_EQ(normc_run(context.get(), ln, args.data(), args.size()), expected)
        << normc_last_error();
    return normc_last_error();
  }

  static bool realDriverPresent() {
    void *handle = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (handle)
      dlclose(handle);
    return handle != nullptr;
  }

  BundlePtr bundle;
  const normc_kernel *ln = nullptr;
};

TEST_F(Device, CpuAlwaysHasOneDevice) {
  int32_t count = -1;
  ASSERT_EQ(normc_device_count(NORMC_DEVICE_CPU, &count), NORMC_OK);
  EXPECT_EQ(count, 1);
  EXPECT_EQ(normc_device_count(static_cast<normc_device_type>(9), &count),
            NORMC_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(normc_device_count(NORMC_DEVICE_CPU, nullptr),
            NORMC_ERROR_INVALID_ARGUMENT);
}

TEST_F(Device, CudaOnThisMachineGivesClearError) {
  int32_t count = -1;
  normc_status status = normc_device_count(NORMC_DEVICE_CUDA, &count);
  if (realDriverPresent()) {
    // A GPU machine: either devices exist or the driver says why not; in
    // both cases running must not crash.
    if (status == NORMC_OK) {
      EXPECT_GT(count, 0);
      EXPECT_THAT(runOnCuda(0, NORMC_ERROR_UNSUPPORTED),
                  HasSubstr("kernel 'ln' has no GPU code"));
    } else {
      EXPECT_EQ(status, NORMC_ERROR_DEVICE_UNAVAILABLE);
      runOnCuda(0, NORMC_ERROR_DEVICE_UNAVAILABLE);
    }
    return;
  }
  EXPECT_EQ(status, NORMC_ERROR_DEVICE_UNAVAILABLE);
  EXPECT_EQ(count, 0);
  EXPECT_THAT(normc_last_error(),
              HasSubstr("no CUDA driver (libcuda.so.1 not found)"));
  EXPECT_THAT(runOnCuda(0, NORMC_ERROR_DEVICE_UNAVAILABLE),
              HasSubstr("no CUDA driver (libcuda.so.1 not found)"));
}

TEST_F(Device, ValidationComesBeforeDeviceSelection) {
  LayerNormData data(4);
  Args args = data.args();
  for (size_t i = 0; i < args.size(); ++i)
    args[i].device = {NORMC_DEVICE_CUDA, 0};
  args[0].dtype = NORMC_DTYPE_BF16;
  ContextPtr context = makeContext(1);
  EXPECT_EQ(normc_run(context.get(), ln, args.data(), args.size()),
            NORMC_ERROR_SIGNATURE_MISMATCH);
  EXPECT_THAT(normc_last_error(), HasSubstr("arg 'x' has dtype bf16"));
}

TEST_F(Device, DriverOverridePathMissing) {
  setenv("NORMC_CUDA_DRIVER", "/nonexistent/libcuda.so", 1);
  int32_t count = -1;
  EXPECT_EQ(normc_device_count(NORMC_DEVICE_CUDA, &count),
            NORMC_ERROR_DEVICE_UNAVAILABLE);
  EXPECT_THAT(normc_last_error(),
              HasSubstr("no CUDA driver (/nonexistent/libcuda.so not found)"));
}

TEST_F(Device, DriverOverrideNotALibrary) {
  // A normc bundle is a shared library but lacks the driver entry points.
  setenv("NORMC_CUDA_DRIVER", bundlePath("bad_no_manifest").c_str(), 1);
  int32_t count = -1;
  EXPECT_EQ(normc_device_count(NORMC_DEVICE_CUDA, &count),
            NORMC_ERROR_DEVICE_UNAVAILABLE);
  EXPECT_THAT(normc_last_error(), HasSubstr("lacks cuInit/cuDeviceGetCount"));
}

TEST_F(Device, FakeDriverWithoutDevices) {
  setenv("NORMC_CUDA_DRIVER", bundlePath("fake_cuda").c_str(), 1);
  setenv("FAKE_CUDA_DEVICE_COUNT", "0", 1);
  int32_t count = -1;
  EXPECT_EQ(normc_device_count(NORMC_DEVICE_CUDA, &count),
            NORMC_ERROR_DEVICE_UNAVAILABLE);
  EXPECT_THAT(normc_last_error(), HasSubstr("no CUDA device (the driver "));
  EXPECT_THAT(runOnCuda(0, NORMC_ERROR_DEVICE_UNAVAILABLE),
              HasSubstr("no CUDA device"));
}

TEST_F(Device, FakeDriverInitReportsNoDevice) {
  setenv("NORMC_CUDA_DRIVER", bundlePath("fake_cuda_no_device").c_str(), 1);
  EXPECT_THAT(runOnCuda(0, NORMC_ERROR_DEVICE_UNAVAILABLE),
              HasSubstr("no CUDA device (cuInit: CUDA_ERROR_NO_DEVICE (no "
                        "CUDA-capable device is detected))"));
}

TEST_F(Device, FakeStubDriver) {
  setenv("NORMC_CUDA_DRIVER", bundlePath("fake_cuda_stub").c_str(), 1);
  EXPECT_THAT(runOnCuda(0, NORMC_ERROR_DEVICE_UNAVAILABLE),
              HasSubstr("is the CUDA toolkit stub library"));
}

TEST_F(Device, FakeDriverWithDevices) {
  setenv("NORMC_CUDA_DRIVER", bundlePath("fake_cuda").c_str(), 1);
  setenv("FAKE_CUDA_DEVICE_COUNT", "2", 1);
  int32_t count = -1;
  ASSERT_EQ(normc_device_count(NORMC_DEVICE_CUDA, &count), NORMC_OK)
      << normc_last_error();
  EXPECT_EQ(count, 2);
  // The good bundle has no GPU code: a clear "unsupported", never a crash.
  EXPECT_THAT(runOnCuda(1, NORMC_ERROR_UNSUPPORTED),
              HasSubstr("kernel 'ln' has no GPU code (compile with normc "
                        "--gpu-arch=... to run it on cuda:1)"));
  EXPECT_THAT(runOnCuda(5, NORMC_ERROR_DEVICE_UNAVAILABLE),
              HasSubstr("CUDA device 5 does not exist (2 devices available)"));
}

} // namespace
