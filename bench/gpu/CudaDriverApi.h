//===- CudaDriverApi.h - the CUDA driver calls of the GPU check kit -------===//
//
// normc_gpu_check moves memory and times work itself, with the CUDA driver
// API opened by dlopen (libcuda.so.1, or $NORMC_CUDA_DRIVER like the
// runtime), so the program has no link-time CUDA dependency and builds on
// machines without CUDA. Only the entry points the kit uses are declared,
// with cuda.h's ABI (CUresult is an int, handles are opaque pointers,
// CUdeviceptr is 64-bit); the "_v2" names are the ones cuda.h maps to.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_BENCH_GPU_CUDADRIVERAPI_H
#define NORMC_BENCH_GPU_CUDADRIVERAPI_H

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <dlfcn.h>
#include <string>
#include <type_traits>

namespace normc::kit {

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctx_st *;
using CUmodule = struct CUmod_st *;
using CUfunction = struct CUfunc_st *;
using CUstream = struct CUstream_st *;
using CUevent = struct CUevent_st *;

constexpr CUresult CUDA_SUCCESS = 0;
constexpr int CU_STREAM_NON_BLOCKING = 1;
constexpr int CU_EVENT_DEFAULT = 0;
constexpr int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
constexpr int CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE = 36;
constexpr int CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH = 37;
constexpr int CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;

struct CudaDriverApi {
  void *handle = nullptr;
  std::string path;

  CUresult (*cuInit)(unsigned) = nullptr;
  CUresult (*cuDriverGetVersion)(int *) = nullptr;
  CUresult (*cuGetErrorName)(CUresult, const char **) = nullptr;
  CUresult (*cuGetErrorString)(CUresult, const char **) = nullptr;
  CUresult (*cuDeviceGetCount)(int *) = nullptr;
  CUresult (*cuDeviceGet)(CUdevice *, int) = nullptr;
  CUresult (*cuDeviceGetName)(char *, int, CUdevice) = nullptr;
  CUresult (*cuDeviceGetAttribute)(int *, int, CUdevice) = nullptr;
  CUresult (*cuDeviceTotalMem)(size_t *, CUdevice) = nullptr;
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice) = nullptr;
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice) = nullptr;
  CUresult (*cuCtxSetCurrent)(CUcontext) = nullptr;
  CUresult (*cuCtxSynchronize)() = nullptr;
  CUresult (*cuMemAlloc)(CUdeviceptr *, size_t) = nullptr;
  CUresult (*cuMemFree)(CUdeviceptr) = nullptr;
  CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr, const void *, size_t,
                                CUstream) = nullptr;
  CUresult (*cuMemcpyDtoHAsync)(void *, CUdeviceptr, size_t,
                                CUstream) = nullptr;
  CUresult (*cuMemcpyDtoDAsync)(CUdeviceptr, CUdeviceptr, size_t,
                                CUstream) = nullptr;
  CUresult (*cuMemsetD8Async)(CUdeviceptr, unsigned char, size_t,
                              CUstream) = nullptr;
  CUresult (*cuStreamCreate)(CUstream *, unsigned) = nullptr;
  CUresult (*cuStreamDestroy)(CUstream) = nullptr;
  CUresult (*cuStreamSynchronize)(CUstream) = nullptr;
  CUresult (*cuEventCreate)(CUevent *, unsigned) = nullptr;
  CUresult (*cuEventDestroy)(CUevent) = nullptr;
  CUresult (*cuEventRecord)(CUevent, CUstream) = nullptr;
  CUresult (*cuEventSynchronize)(CUevent) = nullptr;
  CUresult (*cuEventElapsedTime)(float *, CUevent, CUevent) = nullptr;
  CUresult (*cuModuleLoadData)(CUmodule *, const void *) = nullptr;
  CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule,
                                  const char *) = nullptr;
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned,
                             unsigned, unsigned, unsigned, CUstream, void **,
                             void **) = nullptr;

  /// "CUDA_ERROR_X (text)".
  std::string describe(CUresult r) const {
    const char *name = nullptr, *text = nullptr;
    if (cuGetErrorName)
      cuGetErrorName(r, &name);
    if (cuGetErrorString)
      cuGetErrorString(r, &text);
    return std::string(name ? name : ("CUresult " + std::to_string(r))) + " (" +
           (text ? text : "no description") + ")";
  }

  /// Opens the driver; on failure returns false with `error` set.
  bool load(std::string &error) {
    const char *env = std::getenv("NORMC_CUDA_DRIVER");
    path = env && *env ? env : "libcuda.so.1";
    handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      const char *why = dlerror();
      error = "no CUDA driver (" + path +
              " cannot be loaded: " + (why ? why : "?") + ")";
      return false;
    }
    bool ok = true;
    auto get = [&](const char *name, auto &fn, bool required = true) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(
          dlsym(handle, name));
      if (!fn && required) {
        ok = false;
        error += std::string(error.empty() ? "" : ", ") + name;
      }
    };
    // Versioned names first, as cuda.h's #defines do.
    auto get2 = [&](const char *v2, const char *v1, auto &fn) {
      get(v2, fn, false);
      if (!fn)
        get(v1, fn);
    };
    get("cuInit", cuInit);
    get("cuDriverGetVersion", cuDriverGetVersion);
    get("cuGetErrorName", cuGetErrorName, false);
    get("cuGetErrorString", cuGetErrorString, false);
    get("cuDeviceGetCount", cuDeviceGetCount);
    get("cuDeviceGet", cuDeviceGet);
    get("cuDeviceGetName", cuDeviceGetName);
    get("cuDeviceGetAttribute", cuDeviceGetAttribute);
    get2("cuDeviceTotalMem_v2", "cuDeviceTotalMem", cuDeviceTotalMem);
    get("cuDevicePrimaryCtxRetain", cuDevicePrimaryCtxRetain);
    get2("cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease",
         cuDevicePrimaryCtxRelease);
    get("cuCtxSetCurrent", cuCtxSetCurrent);
    get("cuCtxSynchronize", cuCtxSynchronize);
    get2("cuMemAlloc_v2", "cuMemAlloc", cuMemAlloc);
    get2("cuMemFree_v2", "cuMemFree", cuMemFree);
    get2("cuMemcpyHtoDAsync_v2", "cuMemcpyHtoDAsync", cuMemcpyHtoDAsync);
    get2("cuMemcpyDtoHAsync_v2", "cuMemcpyDtoHAsync", cuMemcpyDtoHAsync);
    get2("cuMemcpyDtoDAsync_v2", "cuMemcpyDtoDAsync", cuMemcpyDtoDAsync);
    get("cuMemsetD8Async", cuMemsetD8Async);
    get("cuStreamCreate", cuStreamCreate);
    get2("cuStreamDestroy_v2", "cuStreamDestroy", cuStreamDestroy);
    get("cuStreamSynchronize", cuStreamSynchronize);
    get("cuEventCreate", cuEventCreate);
    get2("cuEventDestroy_v2", "cuEventDestroy", cuEventDestroy);
    get("cuEventRecord", cuEventRecord);
    get("cuEventSynchronize", cuEventSynchronize);
    get2("cuEventElapsedTime_v2", "cuEventElapsedTime", cuEventElapsedTime);
    get("cuModuleLoadData", cuModuleLoadData);
    get("cuModuleGetFunction", cuModuleGetFunction);
    get("cuLaunchKernel", cuLaunchKernel);
    if (!ok) {
      error = "the CUDA driver " + path + " lacks " + error;
      return false;
    }
    return true;
  }
};

} // namespace normc::kit

#endif // NORMC_BENCH_GPU_CUDADRIVERAPI_H
