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
using CUdeviceptr = unsigned long long;
using CUjit_option = int;

constexpr CUresult CUDA_SUCCESS = 0;
constexpr CUresult CUDA_ERROR_OUT_OF_MEMORY = 2;
constexpr CUresult CUDA_ERROR_STUB_LIBRARY = 34;
constexpr CUresult CUDA_ERROR_NO_DEVICE = 100;
constexpr CUresult CUDA_ERROR_UNSUPPORTED_PTX_VERSION = 222;

// CUdevice_attribute values.
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
constexpr int CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED = 115;

// CUjit_option values.
constexpr CUjit_option CU_JIT_ERROR_LOG_BUFFER = 5;
constexpr CUjit_option CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6;

} // namespace cuda

/// Entry points of one loaded driver library. Function pointers that the
/// driver lacks are null; only cuInit and cuDeviceGetCount are required to
/// count devices, and missingLaunchEntryPoints() lists what launching needs.
struct CudaDriver {
  std::string path;
  void *handle = nullptr;

  cuda::CUresult (*cuInit)(unsigned flags) = nullptr;
  cuda::CUresult (*cuDeviceGetCount)(int *count) = nullptr;
  cuda::CUresult (*cuGetErrorName)(cuda::CUresult, const char **) = nullptr;
  cuda::CUresult (*cuGetErrorString)(cuda::CUresult, const char **) = nullptr;

  // Used by the PTX launcher: query the device, retain its primary context,
  // load a module from PTX text, look up and launch kernels, allocate the
  // workspace and wait for a stream.
  cuda::CUresult (*cuDeviceGet)(cuda::CUdevice *, int ordinal) = nullptr;
  cuda::CUresult (*cuDeviceGetAttribute)(int *value, int attribute,
                                         cuda::CUdevice) = nullptr;
  cuda::CUresult (*cuDevicePrimaryCtxRetain)(cuda::CUcontext *,
                                             cuda::CUdevice) = nullptr;
  cuda::CUresult (*cuDevicePrimaryCtxRelease)(cuda::CUdevice) = nullptr;
  cuda::CUresult (*cuCtxPushCurrent)(cuda::CUcontext) = nullptr;
  cuda::CUresult (*cuCtxPopCurrent)(cuda::CUcontext *) = nullptr;
  cuda::CUresult (*cuModuleLoadData)(cuda::CUmodule *,
                                     const void *image) = nullptr;
  /// Optional; preferred because it returns the JIT compiler's error log.
  cuda::CUresult (*cuModuleLoadDataEx)(cuda::CUmodule *, const void *image,
                                       unsigned numOptions,
                                       cuda::CUjit_option *options,
                                       void **optionValues) = nullptr;
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
  // Only the _v2 entry points: the unversioned cuMemAlloc/cuMemFree are the
  // legacy 32-bit-size API.
  cuda::CUresult (*cuMemAlloc)(cuda::CUdeviceptr *, size_t bytes) = nullptr;
  cuda::CUresult (*cuMemFree)(cuda::CUdeviceptr) = nullptr;
  /// Optional (CUDA 11.2+): stream-ordered allocation, which lets an
  /// asynchronous run free its workspace without waiting.
  cuda::CUresult (*cuMemAllocAsync)(cuda::CUdeviceptr *, size_t bytes,
                                    cuda::CUstream) = nullptr;
  cuda::CUresult (*cuMemFreeAsync)(cuda::CUdeviceptr, cuda::CUstream) = nullptr;

  /// "CUDA_ERROR_X (description)" for messages.
  std::string describe(cuda::CUresult result) const;

  /// Comma-separated names of the entry points launching needs but this
  /// driver lacks ("" if none).
  std::string missingLaunchEntryPoints() const;
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
