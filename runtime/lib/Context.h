//===- Context.h - Execution contexts ---------------------------*- C++ -*-===//
//
// Definition of the opaque C handle normc_context: the CPU thread pool plus
// lazily created CUDA devices.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_RUNTIME_CONTEXT_H
#define NORMC_RUNTIME_CONTEXT_H

#include "CpuDevice.h"
#include "CudaDevice.h"

#include <map>
#include <memory>
#include <mutex>

struct normc_context {
  normc::CpuDevice cpu;

  /// Returns the device for `device`, creating CUDA devices on first use
  /// (which loads the driver). Sets the last error on failure.
  normc_status getDevice(normc_device device, normc::Device **out);

private:
  std::mutex cudaMutex;
  std::map<int32_t, std::unique_ptr<normc::CudaDevice>> cudaDevices;
};

#endif // NORMC_RUNTIME_CONTEXT_H
