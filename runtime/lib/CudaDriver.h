//===- CudaDriver.h - Dynamically loaded CUDA driver API --------*- C++ -*-===//
//
// The runtime must load on machines without CUDA, so the driver library is
// opened with dlopen on first use instead of being linked. Only the handful
// of driver entry points the runtime needs are declared here, with the ABI
// of cuda.h (CUresult is an int-sized enum, handles are opaque pointers).
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_RUNTIME_CUDADRIVER_H
#define NORMC_RUNTIME_CUDADRIVER_H

#include "normc/runtime.h"

#include <string>

namespace normc {
namespace cuda {

using CUresult = int;
using CUdevice = int;
using CUcontext = struct CUctx_st *;
using CUmodule = struct CUmod_st *;
using CUfunction = struct CUfunc_st *;
using CUstream = struct CUstream_st *;

constexpr CUresult CUDA_SUCCESS = 0;
constexpr CUresult CUDA_ERROR_STUB_LIBRARY = 34;
constexpr CUresult CUDA_ERROR_NO_DEVICE = 100;

} // namespace cuda

/// Entry points of one loaded driver library. Function pointers that the
/// driver lacks are null; only cuInit and cuDeviceGetCount are required.
struct CudaDriver {
  std::string path;
  void *handle = nullptr;

  cuda::CUresult (*cuInit)(unsigned flags) = nullptr;
  cuda::CUresult (*cuDeviceGetCount)(int *count) = nullptr;
  cuda::CUresult (*cuGetErrorName)(cuda::CUresult, const char **) = nullptr;
  cuda::CUresult (*cuGetErrorString)(cuda::CUresult, const char **) = nullptr;

  // Needed by the PTX launcher (not used yet): retain the primary context of
  // a device, load a module from PTX text, look up and launch a kernel.
  cuda::CUresult (*cuDeviceGet)(cuda::CUdevice *, int ordinal) = nullptr;
  cuda::CUresult (*cuDevicePrimaryCtxRetain)(cuda::CUcontext *,
                                             cuda::CUdevice) = nullptr;
  cuda::CUresult (*cuDevicePrimaryCtxRelease)(cuda::CUdevice) = nullptr;
  cuda::CUresult (*cuCtxPushCurrent)(cuda::CUcontext) = nullptr;
  cuda::CUresult (*cuCtxPopCurrent)(cuda::CUcontext *) = nullptr;
  cuda::CUresult (*cuModuleLoadData)(cuda::CUmodule *,
                                     const void *image) = nullptr;
  cuda::CUresult (*cuModuleUnload)(cuda::CUmodule) = nullptr;
  cuda::CUresult (*cuModuleGetFunction)(cuda::CUfunction *, cuda::CUmodule,
                                        const char *name) = nullptr;
  cuda::CUresult (*cuLaunchKernel)(cuda::CUfunction, unsigned gridX,
                                   unsigned gridY, unsigned gridZ,
                                   unsigned blockX, unsigned blockY,
                                   unsigned blockZ, unsigned sharedMemBytes,
                                   cuda::CUstream, void **params,
                                   void **extra) = nullptr;
  cuda::CUresult (*cuStreamSynchronize)(cuda::CUstream) = nullptr;

  /// "CUDA_ERROR_X (description)" for messages.
  std::string describe(cuda::CUresult result) const;
};

/// Loads and initializes the CUDA driver (libcuda.so.1, or the path in
/// $NORMC_CUDA_DRIVER). A successfully initialized driver is kept for the
/// life of the process (unloading libcuda is not safe); failures are retried
/// on the next call. Sets the last error on failure.
normc_status loadCudaDriver(const CudaDriver **out);

/// Number of CUDA devices; fails with "no CUDA device" when there are none.
normc_status cudaDeviceCount(const CudaDriver &driver, int32_t *count);

} // namespace normc

#endif // NORMC_RUNTIME_CUDADRIVER_H
