//===- FakeCudaDriver.cpp - Stand-in for libcuda.so.1 ---------------------===//
//
// Loaded through $NORMC_CUDA_DRIVER so the GPU detection paths can be tested
// on machines without a GPU. cuInit returns FAKE_CUDA_INIT_RESULT (a compile
// definition); cuDeviceGetCount reports $FAKE_CUDA_DEVICE_COUNT devices.
//
//===----------------------------------------------------------------------===//

#include "BundleAbi.h"

#include <cstdlib>

#ifndef FAKE_CUDA_INIT_RESULT
#define FAKE_CUDA_INIT_RESULT 0
#endif

NORMC_TEST_EXPORT int cuInit(unsigned) { return FAKE_CUDA_INIT_RESULT; }

NORMC_TEST_EXPORT int cuDeviceGetCount(int *count) {
  const char *value = std::getenv("FAKE_CUDA_DEVICE_COUNT");
  *count = value ? std::atoi(value) : 0;
  return 0;
}

NORMC_TEST_EXPORT int cuGetErrorName(int result, const char **name) {
  *name = result == 100  ? "CUDA_ERROR_NO_DEVICE"
          : result == 34 ? "CUDA_ERROR_STUB_LIBRARY"
                         : "CUDA_ERROR_UNKNOWN";
  return 0;
}

NORMC_TEST_EXPORT int cuGetErrorString(int result, const char **text) {
  *text = result == 100 ? "no CUDA-capable device is detected"
                        : "fake driver error";
  return 0;
}
