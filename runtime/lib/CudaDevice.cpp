//===- CudaDevice.cpp - Kernels on a CUDA GPU -----------------------------===//

#include "CudaDevice.h"

#include "Error.h"

#include <cstring>

namespace normc {

using namespace cuda;

namespace {

/// Makes a context current on the calling thread for the guard's lifetime.
/// Push/pop rather than cuCtxSetCurrent so that a caller's own current
/// context (a framework's, say) is left as it was.
class CurrentContext {
public:
  CurrentContext(const CudaDriver &driver, CUcontext context)
      : driver(driver), result(driver.cuCtxPushCurrent(context)) {}
  ~CurrentContext() {
    if (result == CUDA_SUCCESS) {
      CUcontext popped = nullptr;
      driver.cuCtxPopCurrent(&popped);
    }
  }
  CurrentContext(const CurrentContext &) = delete;
  CurrentContext &operator=(const CurrentContext &) = delete;

  const CudaDriver &driver;
  const CUresult result;
};

/// Plans come from compiled code the runtime cannot otherwise check; a plan
/// that would make the driver misbehave (index out of range, empty grid) is
/// a compiler bug, reported before anything is launched.
normc_status checkPlan(const normc_kernel &kernel, const GpuPlan &plan) {
  const char *name = kernel.spec->name.c_str();
  size_t numFunctions = kernel.spec->gpu.functions.size();
  if (plan.numLaunches < 0 || plan.numLaunches > kMaxGpuLaunches)
    return fail(NORMC_ERROR_INTERNAL,
                "kernel '%s': the GPU plan has %d launches (expected 0 to %d)",
                name, plan.numLaunches, kMaxGpuLaunches);
  if (plan.workspaceBytes < 0)
    return fail(NORMC_ERROR_INTERNAL,
                "kernel '%s': the GPU plan asks for a negative workspace size "
                "(%lld)",
                name, static_cast<long long>(plan.workspaceBytes));
  for (int32_t i = 0; i < plan.numLaunches; ++i) {
    const GpuLaunch &launch = plan.launches[i];
    if (launch.function < 0 ||
        static_cast<size_t>(launch.function) >= numFunctions)
      return fail(NORMC_ERROR_INTERNAL,
                  "kernel '%s': GPU plan launch %d uses function %d but the "
                  "kernel has %zu GPU function%s",
                  name, i, launch.function, numFunctions,
                  numFunctions == 1 ? "" : "s");
    if (!launch.grid[0] || !launch.grid[1] || !launch.grid[2])
      return fail(NORMC_ERROR_INTERNAL,
                  "kernel '%s': GPU plan launch %d has an empty grid "
                  "(%ux%ux%u)",
                  name, i, launch.grid[0], launch.grid[1], launch.grid[2]);
    if (!launch.block[0] || !launch.block[1] || !launch.block[2])
      return fail(NORMC_ERROR_INTERNAL,
                  "kernel '%s': GPU plan launch %d has an empty block "
                  "(%ux%ux%u)",
                  name, i, launch.block[0], launch.block[1], launch.block[2]);
  }
  return NORMC_OK;
}

/// Appends a rank-1 memref descriptor (allocated, aligned, offset, size,
/// stride), the parameter layout of every GPU function (docs/gpu.md).
void appendMemref(std::vector<uint64_t> &values, uint64_t pointer,
                  int64_t size) {
  values.insert(values.end(),
                {pointer, pointer, 0, static_cast<uint64_t>(size), 1});
}

} // namespace

CudaDevice::~CudaDevice() {
  if (context)
    driver.cuDevicePrimaryCtxRelease(info.device);
}

normc_status CudaDevice::initialize() {
  std::lock_guard<std::mutex> lock(mutex);
  if (context)
    return NORMC_OK;
  std::string missing = driver.missingLaunchEntryPoints();
  if (!missing.empty())
    return fail(NORMC_ERROR_DEVICE_UNAVAILABLE,
                "the CUDA driver %s lacks %s, which running kernels needs "
                "(update the driver)",
                driver.path.c_str(), missing.c_str());
  CUdevice device = 0;
  CUresult result = driver.cuDeviceGet(&device, ordinal);
  if (result != CUDA_SUCCESS)
    return fail(NORMC_ERROR_DEVICE_UNAVAILABLE,
                "cannot use cuda:%d (cuDeviceGet: %s)", ordinal,
                driver.describe(result).c_str());
  int major = 0, minor = 0;
  result = driver.cuDeviceGetAttribute(
      &major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device);
  if (result == CUDA_SUCCESS)
    result = driver.cuDeviceGetAttribute(
        &minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device);
  if (result != CUDA_SUCCESS)
    return fail(NORMC_ERROR_DEVICE_UNAVAILABLE,
                "cannot query the compute capability of cuda:%d "
                "(cuDeviceGetAttribute: %s)",
                ordinal, driver.describe(result).c_str());
  // Stream-ordered allocation needs driver support and memory pools on the
  // device (some platforms, e.g. under vGPU, lack them).
  int pools = 0;
  if (driver.cuMemAllocAsync && driver.cuMemFreeAsync &&
      driver.cuDeviceGetAttribute(&pools,
                                  CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED,
                                  device) != CUDA_SUCCESS)
    pools = 0;
  CUcontext primary = nullptr;
  result = driver.cuDevicePrimaryCtxRetain(&primary, device);
  if (result != CUDA_SUCCESS)
    return fail(NORMC_ERROR_DEVICE_UNAVAILABLE,
                "cannot retain the primary context of cuda:%d "
                "(cuDevicePrimaryCtxRetain: %s)",
                ordinal, driver.describe(result).c_str());
  info.driver = &driver;
  info.ordinal = ordinal;
  info.device = device;
  info.computeCapability = major * 10 + minor;
  streamOrderedAlloc = pools != 0;
  context = primary;
  return NORMC_OK;
}

normc_status CudaDevice::launch(const normc_kernel &kernel,
                                const LaunchArgs &args,
                                const LaunchOptions &options) {
  const char *name = kernel.spec->name.c_str();
  if (!kernel.gpuPlan)
    return fail(NORMC_ERROR_UNSUPPORTED,
                "kernel '%s' has no GPU code (compile with normc "
                "--gpu-arch=... to run it on cuda:%d)",
                name, ordinal);
  if (normc_status status = initialize())
    return status;
  CurrentContext current(driver, context);
  if (current.result != CUDA_SUCCESS)
    return fail(NORMC_ERROR_DEVICE_UNAVAILABLE,
                "cannot make the primary context of cuda:%d current "
                "(cuCtxPushCurrent: %s)",
                ordinal, driver.describe(current.result).c_str());
  // Before the plan, so that a bundle without PTX for this GPU is reported
  // the same way whatever the sizes.
  std::vector<CUfunction> functions;
  if (normc_status status =
          kernel.bundle->cudaModules.getFunctions(info, kernel, functions))
    return status;

  // The same dims array the CPU entry gets; never null.
  static const int64_t noDims[1] = {0};
  const int64_t *dims = args.dims.empty() ? noDims : args.dims.data();
  GpuPlan plan;
  std::memset(&plan, 0, sizeof(plan));
  if (int32_t code = kernel.gpuPlan(dims, &plan))
    return fail(NORMC_ERROR_KERNEL_FAILED,
                "kernel '%s': GPU plan failed with code %d (%s)", name, code,
                kernelCodeName(code));
  if (normc_status status = checkPlan(kernel, plan))
    return status;
  if (plan.numLaunches == 0)
    return NORMC_OK; // e.g. an empty batch: nothing to enqueue or wait for

  CUstream stream = static_cast<CUstream>(options.stream);
  CUdeviceptr workspace = 0;
  if (plan.workspaceBytes > 0) {
    size_t bytes = static_cast<size_t>(plan.workspaceBytes);
    CUresult result = streamOrderedAlloc
                          ? driver.cuMemAllocAsync(&workspace, bytes, stream)
                          : driver.cuMemAlloc(&workspace, bytes);
    if (result != CUDA_SUCCESS)
      return fail(result == CUDA_ERROR_OUT_OF_MEMORY
                      ? NORMC_ERROR_RESOURCE_EXHAUSTED
                      : NORMC_ERROR_KERNEL_FAILED,
                  "kernel '%s': cannot allocate a %zu-byte workspace on "
                  "cuda:%d (%s: %s)",
                  name, bytes, ordinal,
                  streamOrderedAlloc ? "cuMemAllocAsync" : "cuMemAlloc",
                  driver.describe(result).c_str());
  }

  // One parameter array serves every launch: the args' descriptors, the
  // workspace's (f64 elements), then the dims. The driver copies the values
  // at launch, so they only need to live until the last cuLaunchKernel.
  size_t nargs = args.pointers.size();
  std::vector<uint64_t> values;
  values.reserve(5 * (nargs + 1) + args.dims.size());
  for (size_t i = 0; i < nargs; ++i)
    appendMemref(values, reinterpret_cast<uintptr_t>(args.pointers[i]),
                 args.numElements[i]);
  appendMemref(values, workspace,
               plan.workspaceBytes / static_cast<int64_t>(sizeof(double)));
  for (int64_t dim : args.dims)
    values.push_back(static_cast<uint64_t>(dim));
  std::vector<void *> params(values.size());
  for (size_t i = 0; i < values.size(); ++i)
    params[i] = &values[i];

  // Stream order makes each launch start after the previous one finished,
  // which multi-launch plans (partials, then finalize) rely on.
  normc_status status = NORMC_OK;
  for (int32_t i = 0; i < plan.numLaunches; ++i) {
    const GpuLaunch &launch = plan.launches[i];
    CUresult result = driver.cuLaunchKernel(
        functions[static_cast<size_t>(launch.function)], launch.grid[0],
        launch.grid[1], launch.grid[2], launch.block[0], launch.block[1],
        launch.block[2], launch.sharedBytes, stream, params.data(), nullptr);
    if (result != CUDA_SUCCESS) {
      status =
          fail(NORMC_ERROR_KERNEL_FAILED,
               "kernel '%s': launch %d of %d ('%s', grid %ux%ux%u, block "
               "%ux%ux%u, %u bytes of dynamic shared memory) failed on cuda:%d "
               "(cuLaunchKernel: %s)",
               name, i + 1, plan.numLaunches,
               kernel.spec->gpu.functions[static_cast<size_t>(launch.function)]
                   .c_str(),
               launch.grid[0], launch.grid[1], launch.grid[2], launch.block[0],
               launch.block[1], launch.block[2], launch.sharedBytes, ordinal,
               driver.describe(result).c_str());
      break;
    }
  }

  // The launches already enqueued still use the workspace. A stream-ordered
  // free runs after them without blocking; a plain cuMemFree must wait for
  // them, which makes an asynchronous run synchronous on such devices.
  bool synchronized = false;
  if (workspace) {
    CUresult result = CUDA_SUCCESS;
    const char *what = "cuMemFreeAsync";
    if (streamOrderedAlloc) {
      result = driver.cuMemFreeAsync(workspace, stream);
    } else {
      what = "cuStreamSynchronize";
      result = driver.cuStreamSynchronize(stream);
      synchronized = true;
      CUresult freed = driver.cuMemFree(workspace);
      if (result == CUDA_SUCCESS) {
        result = freed;
        what = "cuMemFree";
      }
    }
    if (result != CUDA_SUCCESS && status == NORMC_OK)
      status = fail(NORMC_ERROR_KERNEL_FAILED,
                    "kernel '%s' failed on cuda:%d (%s: %s)", name, ordinal,
                    what, driver.describe(result).c_str());
  }
  if (status != NORMC_OK || !options.wait || synchronized)
    return status;
  CUresult result = driver.cuStreamSynchronize(stream);
  if (result != CUDA_SUCCESS)
    return fail(NORMC_ERROR_KERNEL_FAILED,
                "kernel '%s' failed on cuda:%d (cuStreamSynchronize: %s)", name,
                ordinal, driver.describe(result).c_str());
  return NORMC_OK;
}

} // namespace normc
