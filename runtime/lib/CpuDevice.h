//===- CpuDevice.h - Kernels on the host thread pool ------------*- C++ -*-===//

#ifndef NORMC_RUNTIME_CPUDEVICE_H
#define NORMC_RUNTIME_CPUDEVICE_H

#include "Device.h"
#include "ThreadPool.h"

namespace normc {

class CpuDevice final : public Device {
public:
  /// Starts the pool; sets the last error on failure.
  normc_status start(uint32_t numThreads, bool pin) {
    return pool.start(numThreads, pin);
  }
  uint32_t numThreads() const { return pool.numThreads(); }

  /// Synchronous; `options` are ignored.
  normc_status launch(const normc_kernel &kernel, const LaunchArgs &args,
                      const LaunchOptions &options) override;

private:
  ThreadPool pool;
};

} // namespace normc

#endif // NORMC_RUNTIME_CPUDEVICE_H
