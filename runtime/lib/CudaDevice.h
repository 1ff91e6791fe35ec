//===- CudaDevice.h - Kernels on a CUDA GPU ---------------------*- C++ -*-===//
//
// One CUDA device of a context. Bundle ABI version 1 carries only CPU entry
// points, so launching currently reports that the kernel has no GPU code.
// The PTX launcher will: retain the device's primary context, load the
// bundle's PTX once per (bundle, device) with cuModuleLoadData, look up the
// kernel with cuModuleGetFunction and launch it with cuLaunchKernel using
// the same packed argument and dims arrays the CPU entry takes.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_RUNTIME_CUDADEVICE_H
#define NORMC_RUNTIME_CUDADEVICE_H

#include "CudaDriver.h"
#include "Device.h"

namespace normc {

class CudaDevice final : public Device {
public:
  CudaDevice(const CudaDriver &driver, int32_t ordinal)
      : driver(driver), ordinal(ordinal) {}

  normc_status launch(const normc_kernel &kernel,
                      const LaunchArgs &args) override;

private:
  [[maybe_unused]] const CudaDriver &driver; // for the PTX launcher
  int32_t ordinal;
};

} // namespace normc

#endif // NORMC_RUNTIME_CUDADEVICE_H
