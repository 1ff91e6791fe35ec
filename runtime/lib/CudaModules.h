//===- CudaModules.h - The CUDA modules loaded from a bundle ----*- C++ -*-===//
//
// A bundle's PTX is JIT-compiled into a CUDA module once per device, and the
// module stays loaded until the bundle is closed. The bundle, not the
// context, owns its modules because a module is only valid while the code it
// was loaded from is: closing a bundle must unload them, while contexts may
// come and go. Each module holds its own reference on the device's primary
// context, so it stays valid after the normc_context that first launched it
// is destroyed.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_RUNTIME_CUDAMODULES_H
#define NORMC_RUNTIME_CUDAMODULES_H

#include "CudaDriver.h"

#include <memory>
#include <mutex>
#include <string>
#include <vector>

struct normc_kernel;

namespace normc {

/// A CUDA device as the module cache needs to know it.
struct CudaDeviceInfo {
  const CudaDriver *driver = nullptr;
  int32_t ordinal = 0;
  cuda::CUdevice device = 0;
  /// 10 * major + minor of the compute capability (86 for 8.6), comparable
  /// with smArchNumber().
  int computeCapability = 0;
};

/// One `normc_gpu_ptx_<arch>` symbol of a bundle.
struct GpuPtx {
  std::string arch;
  /// smArchNumber(arch).
  int number = 0;
  /// NUL-terminated PTX text, owned by the loaded bundle library.
  const char *text = nullptr;
};

class CudaModuleCache {
public:
  CudaModuleCache() = default;
  CudaModuleCache(const CudaModuleCache &) = delete;
  CudaModuleCache &operator=(const CudaModuleCache &) = delete;
  ~CudaModuleCache() { unloadAll(); }

  /// Returns the functions named by `kernel`'s "gpu.functions", in order,
  /// from the bundle's module on `device`; on first use per device, picks
  /// the PTX of the highest arch the device supports and loads it. The
  /// device's primary context must be current on the calling thread.
  /// Thread-safe. Sets the last error on failure.
  normc_status getFunctions(const CudaDeviceInfo &device,
                            const normc_kernel &kernel,
                            std::vector<cuda::CUfunction> &out);

  /// Unloads every module; no kernel of the bundle may be running.
  void unloadAll();

private:
  struct Module {
    const CudaDriver *driver = nullptr;
    int32_t ordinal = 0;
    cuda::CUdevice device = 0;
    cuda::CUcontext context = nullptr;
    cuda::CUmodule module = nullptr;
    const GpuPtx *ptx = nullptr;
    /// Per kernel of the bundle (manifest order): its resolved functions,
    /// empty until the kernel first runs on this device.
    std::vector<std::vector<cuda::CUfunction>> functions;
  };

  normc_status load(const CudaDeviceInfo &device, const normc_kernel &kernel,
                    std::unique_ptr<Module> &out);

  std::mutex mutex;
  /// Few entries (one per device); owned by pointer so that a Module never
  /// moves.
  std::vector<std::unique_ptr<Module>> modules;
};

} // namespace normc

#endif // NORMC_RUNTIME_CUDAMODULES_H
