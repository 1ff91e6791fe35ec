//===- CudaModules.cpp - The CUDA modules loaded from a bundle ------------===//

#include "CudaModules.h"

#include "Bundle.h"
#include "Error.h"

namespace normc {

using namespace cuda;

namespace {

/// "sm_86" for compute capability 86.
std::string smName(int computeCapability) {
  return format("sm_%d%d", computeCapability / 10, computeCapability % 10);
}

/// PTX for arch sm_XY runs on every GPU of compute capability >= X.Y (the
/// driver JIT-compiles it); the highest such arch is the most specialized
/// code the device can run.
const GpuPtx *selectPtx(const std::vector<GpuPtx> &ptx, int computeCapability) {
  const GpuPtx *best = nullptr;
  for (const GpuPtx &candidate : ptx)
    if (candidate.number <= computeCapability &&
        (!best || candidate.number > best->number))
      best = &candidate;
  return best;
}

} // namespace

normc_status CudaModuleCache::load(const CudaDeviceInfo &device,
                                   const normc_kernel &kernel,
                                   std::unique_ptr<Module> &out) {
  const normc_bundle &bundle = *kernel.bundle;
  const CudaDriver &driver = *device.driver;
  const GpuPtx *ptx = selectPtx(bundle.gpuPtx, device.computeCapability);
  if (!ptx) {
    std::string archs;
    for (const GpuPtx &candidate : bundle.gpuPtx)
      archs += (archs.empty() ? "" : ", ") + candidate.arch;
    std::string deviceArch = smName(device.computeCapability);
    return fail(NORMC_ERROR_UNSUPPORTED,
                "kernel '%s' cannot run on cuda:%d: bundle '%s' has PTX for "
                "%s; cuda:%d is %s (compile with normc --gpu-arch=%s)",
                kernel.spec->name.c_str(), device.ordinal, bundle.path.c_str(),
                archs.c_str(), device.ordinal, deviceArch.c_str(),
                deviceArch.c_str());
  }

  std::unique_ptr<Module> module(new Module());
  module->driver = &driver;
  module->ordinal = device.ordinal;
  module->device = device.device;
  module->ptx = ptx;
  // The module's own reference keeps the context (and so the module) alive
  // until the bundle unloads it.
  CUresult result =
      driver.cuDevicePrimaryCtxRetain(&module->context, device.device);
  if (result != CUDA_SUCCESS)
    return fail(NORMC_ERROR_DEVICE_UNAVAILABLE,
                "cannot retain the primary context of cuda:%d "
                "(cuDevicePrimaryCtxRetain: %s)",
                device.ordinal, driver.describe(result).c_str());

  // With cuModuleLoadDataEx the JIT compiler's error log says what is wrong
  // with the PTX (the CUresult alone only says "invalid PTX").
  char log[8192] = {};
  const char *entryPoint = "cuModuleLoadDataEx";
  if (driver.cuModuleLoadDataEx) {
    CUjit_option options[] = {CU_JIT_ERROR_LOG_BUFFER,
                              CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *values[] = {log, reinterpret_cast<void *>(sizeof(log))};
    result = driver.cuModuleLoadDataEx(&module->module, ptx->text, 2, options,
                                       values);
  } else {
    entryPoint = "cuModuleLoadData";
    result = driver.cuModuleLoadData(&module->module, ptx->text);
  }
  if (result != CUDA_SUCCESS) {
    driver.cuDevicePrimaryCtxRelease(device.device);
    log[sizeof(log) - 1] = '\0';
    std::string detail = driver.describe(result);
    std::string jitLog = log;
    while (!jitLog.empty() && (jitLog.back() == '\n' || jitLog.back() == ' ' ||
                               jitLog.back() == '\r'))
      jitLog.pop_back();
    if (!jitLog.empty())
      detail += "; JIT log: " + jitLog;
    if (result == CUDA_ERROR_UNSUPPORTED_PTX_VERSION)
      return fail(NORMC_ERROR_UNSUPPORTED,
                  "cannot load the %s PTX of bundle '%s' on cuda:%d: the CUDA "
                  "driver is too old for its PTX version; update the driver "
                  "(%s: %s)",
                  ptx->arch.c_str(), bundle.path.c_str(), device.ordinal,
                  entryPoint, detail.c_str());
    return fail(NORMC_ERROR_LOAD_FAILED,
                "cannot load the %s PTX of bundle '%s' on cuda:%d (%s: %s)",
                ptx->arch.c_str(), bundle.path.c_str(), device.ordinal,
                entryPoint, detail.c_str());
  }
  module->functions.resize(bundle.kernels.size());
  out = std::move(module);
  return NORMC_OK;
}

normc_status CudaModuleCache::getFunctions(const CudaDeviceInfo &device,
                                           const normc_kernel &kernel,
                                           std::vector<CUfunction> &out) {
  // One lock for loading and lookup: loading happens once per device, and
  // afterwards the critical section is a short search and a copy.
  std::lock_guard<std::mutex> lock(mutex);
  Module *module = nullptr;
  for (const std::unique_ptr<Module> &candidate : modules)
    if (candidate->driver == device.driver &&
        candidate->ordinal == device.ordinal)
      module = candidate.get();
  if (!module) {
    std::unique_ptr<Module> loaded;
    if (normc_status status = load(device, kernel, loaded))
      return status;
    module = loaded.get();
    modules.push_back(std::move(loaded));
  }

  std::vector<CUfunction> &functions = module->functions[kernel.index];
  if (functions.empty()) {
    const CudaDriver &driver = *device.driver;
    std::vector<CUfunction> resolved;
    for (const std::string &name : kernel.spec->gpu.functions) {
      CUfunction function = nullptr;
      CUresult result =
          driver.cuModuleGetFunction(&function, module->module, name.c_str());
      if (result != CUDA_SUCCESS)
        return fail(NORMC_ERROR_MISSING_SYMBOL,
                    "kernel '%s': GPU function '%s' is not in the %s PTX of "
                    "bundle '%s' (cuModuleGetFunction: %s)",
                    kernel.spec->name.c_str(), name.c_str(),
                    module->ptx->arch.c_str(), kernel.bundle->path.c_str(),
                    driver.describe(result).c_str());
      resolved.push_back(function);
    }
    functions = std::move(resolved);
  }
  out = functions;
  return NORMC_OK;
}

void CudaModuleCache::unloadAll() {
  std::lock_guard<std::mutex> lock(mutex);
  for (const std::unique_ptr<Module> &module : modules) {
    const CudaDriver &driver = *module->driver;
    // cuModuleUnload acts in the current context.
    bool pushed = driver.cuCtxPushCurrent(module->context) == CUDA_SUCCESS;
    driver.cuModuleUnload(module->module);
    if (pushed) {
      CUcontext popped = nullptr;
      driver.cuCtxPopCurrent(&popped);
    }
    driver.cuDevicePrimaryCtxRelease(module->device);
  }
  modules.clear();
}

} // namespace normc
