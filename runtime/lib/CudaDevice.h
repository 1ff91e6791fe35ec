//===- CudaDevice.h - Kernels on a CUDA GPU ---------------------*- C++ -*-===//
//
// One CUDA device of a context. A launch runs the kernel's host-side plan
// (bundle ABI 2, docs/gpu.md), allocates the plan's workspace and issues the
// plan's launches in order on one stream, in the device's primary context
// (the context the CUDA runtime and frameworks use, so their streams and
// pointers work here too). The bundle owns the loaded modules
// (CudaModules.h); the device owns one reference on the primary context.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_RUNTIME_CUDADEVICE_H
#define NORMC_RUNTIME_CUDADEVICE_H

#include "CudaDriver.h"
#include "CudaModules.h"
#include "Device.h"

#include <mutex>

namespace normc {

class CudaDevice final : public Device {
public:
  CudaDevice(const CudaDriver &driver, int32_t ordinal)
      : driver(driver), ordinal(ordinal) {}
  CudaDevice(const CudaDevice &) = delete;
  CudaDevice &operator=(const CudaDevice &) = delete;
  /// Releases the primary context; no launch may be in flight.
  ~CudaDevice() override;

  /// Enqueues the kernel on `options.stream` and, if `options.wait`, waits
  /// for that stream.
  normc_status launch(const normc_kernel &kernel, const LaunchArgs &args,
                      const LaunchOptions &options) override;

private:
  /// Queries the device and retains its primary context on the first
  /// launch; a failure is reported again (and retried) by the next launch.
  normc_status initialize();

  const CudaDriver &driver;
  int32_t ordinal;

  std::mutex mutex;
  /// Set once by initialize(), under the mutex; read-only afterwards.
  cuda::CUcontext context = nullptr;
  CudaDeviceInfo info;
  /// The driver has cuMemAllocAsync/cuMemFreeAsync and the device supports
  /// memory pools.
  bool streamOrderedAlloc = false;
};

} // namespace normc

#endif // NORMC_RUNTIME_CUDADEVICE_H
