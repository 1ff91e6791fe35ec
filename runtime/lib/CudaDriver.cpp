//===- CudaDriver.cpp - Dynamically loaded CUDA driver API ----------------===//

#include "CudaDriver.h"

#include "Error.h"

#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <map>
#include <memory>
#include <mutex>

namespace normc {

using namespace cuda;

std::string CudaDriver::describe(CUresult result) const {
  const char *name = nullptr;
  const char *text = nullptr;
  if (cuGetErrorName)
    cuGetErrorName(result, &name);
  if (cuGetErrorString)
    cuGetErrorString(result, &text);
  return format("%s (%s)", name ? name : format("CUresult %d", result).c_str(),
                text ? text : "no description");
}

std::string CudaDriver::missingLaunchEntryPoints() const {
  std::string missing;
  auto check = [&](bool present, const char *name) {
    if (!present)
      missing += (missing.empty() ? "" : ", ") + std::string(name);
  };
  check(cuDeviceGet, "cuDeviceGet");
  check(cuDeviceGetAttribute, "cuDeviceGetAttribute");
  check(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
  check(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease");
  check(cuCtxPushCurrent, "cuCtxPushCurrent");
  check(cuCtxPopCurrent, "cuCtxPopCurrent");
  check(cuModuleLoadData || cuModuleLoadDataEx, "cuModuleLoadData");
  check(cuModuleUnload, "cuModuleUnload");
  check(cuModuleGetFunction, "cuModuleGetFunction");
  check(cuLaunchKernel, "cuLaunchKernel");
  check(cuStreamSynchronize, "cuStreamSynchronize");
  check(cuMemAlloc, "cuMemAlloc_v2");
  check(cuMemFree, "cuMemFree_v2");
  return missing;
}

namespace {

template <typename Fn> void resolve(void *handle, const char *name, Fn &fn) {
  fn = reinterpret_cast<Fn>(dlsym(handle, name));
}

// Prefers the versioned entry point, as cuda.h does via its #defines.
template <typename Fn>
void resolveV2(void *handle, const char *name, const char *v2Name, Fn &fn) {
  resolve(handle, v2Name, fn);
  if (!fn)
    resolve(handle, name, fn);
}

normc_status openDriver(const std::string &path, bool isDefault,
                        std::unique_ptr<CudaDriver> &out) {
  void *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char *reason = dlerror();
    std::string detail = reason ? reason : "unknown dlopen error";
    if (detail.find("No such file") != std::string::npos)
      return fail(NORMC_ERROR_DEVICE_UNAVAILABLE,
                  "no CUDA driver (%s not found)%s", path.c_str(),
                  isDefault ? "" : " [from $NORMC_CUDA_DRIVER]");
    return fail(NORMC_ERROR_DEVICE_UNAVAILABLE,
                "no CUDA driver (%s cannot be loaded: %s)", path.c_str(),
                detail.c_str());
  }
  std::unique_ptr<CudaDriver> driver(new CudaDriver());
  driver->path = path;
  driver->handle = handle;
  resolve(handle, "cuInit", driver->cuInit);
  resolve(handle, "cuDeviceGetCount", driver->cuDeviceGetCount);
  resolve(handle, "cuGetErrorName", driver->cuGetErrorName);
  resolve(handle, "cuGetErrorString", driver->cuGetErrorString);
  resolve(handle, "cuDeviceGet", driver->cuDeviceGet);
  resolve(handle, "cuDeviceGetAttribute", driver->cuDeviceGetAttribute);
  resolve(handle, "cuDevicePrimaryCtxRetain", driver->cuDevicePrimaryCtxRetain);
  resolveV2(handle, "cuDevicePrimaryCtxRelease", "cuDevicePrimaryCtxRelease_v2",
            driver->cuDevicePrimaryCtxRelease);
  resolveV2(handle, "cuCtxPushCurrent", "cuCtxPushCurrent_v2",
            driver->cuCtxPushCurrent);
  resolveV2(handle, "cuCtxPopCurrent", "cuCtxPopCurrent_v2",
            driver->cuCtxPopCurrent);
  resolve(handle, "cuModuleLoadData", driver->cuModuleLoadData);
  resolve(handle, "cuModuleLoadDataEx", driver->cuModuleLoadDataEx);
  resolve(handle, "cuModuleUnload", driver->cuModuleUnload);
  resolve(handle, "cuModuleGetFunction", driver->cuModuleGetFunction);
  resolve(handle, "cuLaunchKernel", driver->cuLaunchKernel);
  resolve(handle, "cuStreamSynchronize", driver->cuStreamSynchronize);
  resolve(handle, "cuMemAlloc_v2", driver->cuMemAlloc);
  resolve(handle, "cuMemFree_v2", driver->cuMemFree);
  resolve(handle, "cuMemAllocAsync", driver->cuMemAllocAsync);
  resolve(handle, "cuMemFreeAsync", driver->cuMemFreeAsync);
  if (!driver->cuInit || !driver->cuDeviceGetCount) {
    dlclose(handle);
    return fail(NORMC_ERROR_DEVICE_UNAVAILABLE,
                "no CUDA driver (%s lacks cuInit/cuDeviceGetCount)",
                path.c_str());
  }

  CUresult result = driver->cuInit(0);
  if (result != CUDA_SUCCESS) {
    std::string reason = driver->describe(result);
    dlclose(handle);
    if (result == CUDA_ERROR_NO_DEVICE)
      return fail(NORMC_ERROR_DEVICE_UNAVAILABLE, "no CUDA device (cuInit: %s)",
                  reason.c_str());
    if (result == CUDA_ERROR_STUB_LIBRARY)
      return fail(NORMC_ERROR_DEVICE_UNAVAILABLE,
                  "no CUDA driver (%s is the CUDA toolkit stub library)",
                  path.c_str());
    return fail(NORMC_ERROR_DEVICE_UNAVAILABLE,
                "CUDA driver initialization failed (cuInit: %s)",
                reason.c_str());
  }
  out = std::move(driver);
  return NORMC_OK;
}

} // namespace

normc_status loadCudaDriver(const CudaDriver **out) {
  const char *override = std::getenv("NORMC_CUDA_DRIVER");
  bool isDefault = !override || !*override;
  std::string path = isDefault ? "libcuda.so.1" : override;

  // Keyed by path so that changing $NORMC_CUDA_DRIVER takes effect.
  static std::mutex mutex;
  static auto *drivers =
      new std::map<std::string, std::unique_ptr<CudaDriver>>();
  std::lock_guard<std::mutex> lock(mutex);
  auto it = drivers->find(path);
  if (it == drivers->end()) {
    std::unique_ptr<CudaDriver> driver;
    if (normc_status status = openDriver(path, isDefault, driver))
      return status;
    it = drivers->emplace(path, std::move(driver)).first;
  }
  *out = it->second.get();
  return NORMC_OK;
}

normc_status cudaDeviceCount(const CudaDriver &driver, int32_t *count) {
  int value = 0;
  CUresult result = driver.cuDeviceGetCount(&value);
  if (result != CUDA_SUCCESS)
    return fail(NORMC_ERROR_DEVICE_UNAVAILABLE,
                "cannot count CUDA devices (cuDeviceGetCount: %s)",
                driver.describe(result).c_str());
  if (value <= 0)
    return fail(NORMC_ERROR_DEVICE_UNAVAILABLE,
                "no CUDA device (the driver %s reports 0 devices)",
                driver.path.c_str());
  *count = value;
  return NORMC_OK;
}

} // namespace normc
