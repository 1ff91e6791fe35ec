//===- Device.h - Execution device abstraction ------------------*- C++ -*-===//
//
// A Device runs one validated kernel launch to completion. The CPU device
// calls the bundle's packed entry on a thread pool; the CUDA device will load
// PTX carried by a bundle (cuModuleLoadData) and launch it (cuLaunchKernel).
// Validation is device independent and happens before a device is chosen.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_RUNTIME_DEVICE_H
#define NORMC_RUNTIME_DEVICE_H

#include "Validate.h"

namespace normc {

class Device {
public:
  virtual ~Device() = default;

  /// Runs every work item of `kernel`; synchronous. Must be safe to call
  /// from several threads at once. Sets the last error on failure.
  virtual normc_status launch(const normc_kernel &kernel,
                              const LaunchArgs &args) = 0;
};

} // namespace normc

#endif // NORMC_RUNTIME_DEVICE_H
