//===- FakeCudaDriver.cpp - Stand-in for libcuda.so.1 ---------------------===//
//
// Loaded through $NORMC_CUDA_DRIVER so that the GPU paths of the runtime can
// be tested on machines without a GPU. cuInit returns FAKE_CUDA_INIT_RESULT
// (a compile definition); everything else is configured through the
// environment (see FakeCuda.h).
//
// Beyond counting devices, the fake implements the driver calls the runtime
// launches kernels with, and records them (FakeCuda.h) so that the tests can
// check the exact calls, geometry and parameters. It enforces the driver's
// rules that a fake would otherwise let slide: module, memory and launch
// calls need a current context, handles must be live, and a primary context
// must not be destroyed while modules or allocations still use it. "Device
// memory" is host memory; kernels do not run.
//
// Variants (compile definitions): FAKE_CUDA_LEGACY lacks the entry points
// added after CUDA 11 that the runtime can do without (cuMemAllocAsync,
// cuMemFreeAsync, cuModuleLoadDataEx); FAKE_CUDA_NO_LAUNCH lacks
// cuLaunchKernel.
//
//===----------------------------------------------------------------------===//

#include "BundleAbi.h"
#include "FakeCuda.h"

#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#ifndef FAKE_CUDA_INIT_RESULT
#define FAKE_CUDA_INIT_RESULT 0
#endif

using namespace fake_cuda;

namespace {

constexpr int kSuccess = 0;
constexpr int kInvalidValue = 1;
constexpr int kInvalidDevice = 101;
constexpr int kInvalidContext = 201;
constexpr int kInvalidHandle = 400;
constexpr int kNotFound = 500;
constexpr int kMaxDevices = 8;

struct Context {
  int device = 0;
  int refs = 0;
};

struct Module {
  std::string image;
  Context *context = nullptr;
  bool live = true;
};

struct Function {
  Module *module = nullptr;
  std::string name;
  int numParams = 0;
};

struct Allocation {
  Context *context = nullptr;
  void *memory = nullptr;
};

std::mutex mutex;
Context contexts[kMaxDevices];
// Modules and functions are never freed, so that a stale handle the runtime
// might use is still recognizable (and reported) rather than a crash.
std::vector<std::unique_ptr<Module>> modules;
std::vector<std::unique_ptr<Function>> functions;
std::map<uint64_t, Allocation> allocations;
std::vector<Event> events;
std::vector<std::string> violations;
std::map<std::string, int> callCounts;
thread_local std::vector<Context *> contextStack;

int envInt(const char *name, int fallback) {
  const char *value = std::getenv(name);
  return value && *value ? std::atoi(value) : fallback;
}

int deviceCount() {
  int count = envInt("FAKE_CUDA_DEVICE_COUNT", 0);
  return count < kMaxDevices ? count : kMaxDevices;
}

/// The CUresult FAKE_CUDA_FAIL injects into this call of `entry`, or 0.
int injected(const char *entry) {
  int call = ++callCounts[entry];
  const char *spec = std::getenv("FAKE_CUDA_FAIL");
  if (!spec)
    return kSuccess;
  std::string rules = spec;
  size_t begin = 0;
  while (begin < rules.size()) {
    size_t end = rules.find(',', begin);
    if (end == std::string::npos)
      end = rules.size();
    std::string rule = rules.substr(begin, end - begin);
    begin = end + 1;
    size_t equals = rule.find('=');
    if (equals == std::string::npos || rule.substr(0, equals) != entry)
      continue;
    std::string value = rule.substr(equals + 1);
    size_t at = value.find('@');
    int only = at == std::string::npos ? 0 : std::atoi(value.c_str() + at + 1);
    if (only == 0 || only == call)
      return std::atoi(value.c_str());
  }
  return kSuccess;
}

void violation(const std::string &what) { violations.push_back(what); }

Context *current() {
  return contextStack.empty() ? nullptr : contextStack.back();
}

/// Module, memory and launch calls act in the current context.
bool requireContext(const char *entry) {
  Context *context = current();
  if (context && context->refs > 0)
    return true;
  violation(std::string(entry) + " without a current (retained) context");
  return false;
}

Event event(Call call, int result) {
  Event e;
  e.call = call;
  e.result = result;
  e.context = current();
  return e;
}

Module *findModule(const void *handle) {
  for (const std::unique_ptr<Module> &module : modules)
    if (module.get() == handle)
      return module.get();
  return nullptr;
}

Function *findFunction(const void *handle) {
  for (const std::unique_ptr<Function> &function : functions)
    if (function.get() == handle)
      return function.get();
  return nullptr;
}

/// Number of parameters of `.entry name(...)` in `image`, or -1 if the
/// image has no such entry.
int entryParams(const std::string &image, const std::string &name) {
  std::string key = ".entry " + name;
  for (size_t at = image.find(key); at != std::string::npos;
       at = image.find(key, at + 1)) {
    size_t after = at + key.size();
    if (after < image.size() && image[after] != '(' && image[after] != ' ' &&
        image[after] != '\n')
      continue; // a longer name with this prefix
    size_t open = image.find('(', after);
    size_t close = image.find(')', open);
    if (open == std::string::npos || close == std::string::npos)
      return -1;
    int count = 0;
    for (size_t p = image.find(".param", open); p < close;
         p = image.find(".param", p + 1))
      ++count;
    return count;
  }
  return -1;
}

int loadModule(void **out, const void *image, unsigned numOptions,
               const int *options, void **values, const char *entry) {
  std::lock_guard<std::mutex> lock(mutex);
  int result = requireContext(entry) ? injected(entry) : kInvalidContext;
  Event e = event(Call::Load, result);
  e.text = static_cast<const char *>(image);
  if (result == kSuccess) {
    modules.emplace_back(new Module{e.text, current(), true});
    *out = modules.back().get();
    e.pointer = reinterpret_cast<uintptr_t>(*out);
  } else if (const char *log = std::getenv("FAKE_CUDA_JIT_LOG")) {
    // CU_JIT_ERROR_LOG_BUFFER (5) with CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES (6).
    char *buffer = nullptr;
    size_t size = 0;
    for (unsigned i = 0; i < numOptions; ++i) {
      if (options[i] == 5)
        buffer = static_cast<char *>(values[i]);
      if (options[i] == 6)
        size = reinterpret_cast<uintptr_t>(values[i]);
    }
    if (buffer && size) {
      std::strncpy(buffer, log, size - 1);
      buffer[size - 1] = '\0';
    }
  }
  events.push_back(e);
  return result;
}

int allocate(uint64_t *out, size_t bytes, const void *stream, bool async,
             const char *entry) {
  std::lock_guard<std::mutex> lock(mutex);
  int result = requireContext(entry) ? injected(entry) : kInvalidContext;
  Event e = event(async ? Call::AllocAsync : Call::Alloc, result);
  e.stream = stream;
  e.bytes = bytes;
  if (result == kSuccess) {
    size_t rounded = (bytes + 255) / 256 * 256;
    void *memory = std::aligned_alloc(256, rounded ? rounded : 256);
    *out = reinterpret_cast<uintptr_t>(memory);
    allocations[*out] = Allocation{current(), memory};
    e.pointer = *out;
  }
  events.push_back(e);
  return result;
}

int release(uint64_t pointer, const void *stream, bool async,
            const char *entry) {
  std::lock_guard<std::mutex> lock(mutex);
  int result = requireContext(entry) ? injected(entry) : kInvalidContext;
  Event e = event(async ? Call::FreeAsync : Call::Free, result);
  e.stream = stream;
  e.pointer = pointer;
  auto it = allocations.find(pointer);
  if (it == allocations.end()) {
    violation(std::string(entry) + " of an unknown pointer");
    result = kInvalidValue;
  } else if (result == kSuccess) {
    std::free(it->second.memory);
    allocations.erase(it);
  }
  e.result = result;
  events.push_back(e);
  return result;
}

} // namespace

//===--- Devices ----------------------------------------------------------===//

NORMC_TEST_EXPORT int cuInit(unsigned) { return FAKE_CUDA_INIT_RESULT; }

NORMC_TEST_EXPORT int cuDeviceGetCount(int *count) {
  *count = envInt("FAKE_CUDA_DEVICE_COUNT", 0);
  return kSuccess;
}

NORMC_TEST_EXPORT int cuGetErrorName(int result, const char **name) {
  switch (result) {
  case 1:
    *name = "CUDA_ERROR_INVALID_VALUE";
    break;
  case 2:
    *name = "CUDA_ERROR_OUT_OF_MEMORY";
    break;
  case 34:
    *name = "CUDA_ERROR_STUB_LIBRARY";
    break;
  case 100:
    *name = "CUDA_ERROR_NO_DEVICE";
    break;
  case 101:
    *name = "CUDA_ERROR_INVALID_DEVICE";
    break;
  case 201:
    *name = "CUDA_ERROR_INVALID_CONTEXT";
    break;
  case 218:
    *name = "CUDA_ERROR_INVALID_PTX";
    break;
  case 222:
    *name = "CUDA_ERROR_UNSUPPORTED_PTX_VERSION";
    break;
  case 400:
    *name = "CUDA_ERROR_INVALID_HANDLE";
    break;
  case 500:
    *name = "CUDA_ERROR_NOT_FOUND";
    break;
  case 700:
    *name = "CUDA_ERROR_ILLEGAL_ADDRESS";
    break;
  case 701:
    *name = "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES";
    break;
  default:
    *name = "CUDA_ERROR_UNKNOWN";
    break;
  }
  return kSuccess;
}

NORMC_TEST_EXPORT int cuGetErrorString(int result, const char **text) {
  *text = result == 100   ? "no CUDA-capable device is detected"
          : result == 700 ? "an illegal memory access was encountered"
                          : "fake driver error";
  return kSuccess;
}

NORMC_TEST_EXPORT int cuDeviceGet(int *device, int ordinal) {
  if (ordinal < 0 || ordinal >= deviceCount())
    return kInvalidDevice;
  *device = ordinal;
  return kSuccess;
}

NORMC_TEST_EXPORT int cuDeviceGetAttribute(int *value, int attribute,
                                           int device) {
  if (device < 0 || device >= deviceCount())
    return kInvalidDevice;
  const char *cc = std::getenv("FAKE_CUDA_COMPUTE_CAPABILITY");
  std::string capability = cc && *cc ? cc : "9.0";
  size_t dot = capability.find('.');
  switch (attribute) {
  case 75: // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
    *value = std::atoi(capability.c_str());
    return kSuccess;
  case 76: // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR
    *value =
        dot == std::string::npos ? 0 : std::atoi(capability.c_str() + dot + 1);
    return kSuccess;
  case 115: // CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED
    *value = envInt("FAKE_CUDA_MEMORY_POOLS", 1);
    return kSuccess;
  default:
    return kInvalidValue;
  }
}

//===--- Contexts ---------------------------------------------------------===//

NORMC_TEST_EXPORT int cuDevicePrimaryCtxRetain(void **context, int device) {
  std::lock_guard<std::mutex> lock(mutex);
  if (device < 0 || device >= deviceCount())
    return kInvalidDevice;
  int result = injected("cuDevicePrimaryCtxRetain");
  Event e = event(Call::Retain, result);
  e.device = device;
  events.push_back(e);
  if (result != kSuccess)
    return result;
  contexts[device].device = device;
  ++contexts[device].refs;
  *context = &contexts[device];
  return kSuccess;
}

NORMC_TEST_EXPORT int cuDevicePrimaryCtxRelease_v2(int device) {
  std::lock_guard<std::mutex> lock(mutex);
  Event e = event(Call::Release, kSuccess);
  e.device = device;
  events.push_back(e);
  if (device < 0 || device >= kMaxDevices || contexts[device].refs <= 0) {
    violation("cuDevicePrimaryCtxRelease of an unretained context");
    return kInvalidContext;
  }
  Context *context = &contexts[device];
  if (--context->refs > 0)
    return kSuccess;
  // The last reference destroys the primary context and everything in it.
  for (const std::unique_ptr<Module> &module : modules)
    if (module->live && module->context == context)
      violation("primary context destroyed with a module still loaded");
  for (const auto &allocation : allocations)
    if (allocation.second.context == context)
      violation("primary context destroyed with memory still allocated");
  return kSuccess;
}

NORMC_TEST_EXPORT int cuCtxPushCurrent_v2(void *handle) {
  std::lock_guard<std::mutex> lock(mutex);
  Context *context = static_cast<Context *>(handle);
  if (context < contexts || context >= contexts + kMaxDevices ||
      context->refs <= 0) {
    violation("cuCtxPushCurrent of a context that is not retained");
    return kInvalidContext;
  }
  contextStack.push_back(context);
  return kSuccess;
}

NORMC_TEST_EXPORT int cuCtxPopCurrent_v2(void **handle) {
  std::lock_guard<std::mutex> lock(mutex);
  if (contextStack.empty()) {
    violation("cuCtxPopCurrent with no current context");
    return kInvalidContext;
  }
  if (handle)
    *handle = contextStack.back();
  contextStack.pop_back();
  return kSuccess;
}

//===--- Modules ----------------------------------------------------------===//

NORMC_TEST_EXPORT int cuModuleLoadData(void **module, const void *image) {
  return loadModule(module, image, 0, nullptr, nullptr, "cuModuleLoadData");
}

#ifndef FAKE_CUDA_LEGACY
NORMC_TEST_EXPORT int cuModuleLoadDataEx(void **module, const void *image,
                                         unsigned numOptions, int *options,
                                         void **values) {
  return loadModule(module, image, numOptions, options, values,
                    "cuModuleLoadDataEx");
}
#endif

NORMC_TEST_EXPORT int cuModuleUnload(void *handle) {
  std::lock_guard<std::mutex> lock(mutex);
  Event e = event(Call::Unload, kSuccess);
  e.pointer = reinterpret_cast<uintptr_t>(handle);
  Module *module = findModule(handle);
  if (!module || !module->live) {
    violation("cuModuleUnload of an unknown or unloaded module");
    e.result = kInvalidHandle;
  } else if (current() != module->context) {
    violation("cuModuleUnload outside the module's context");
    e.result = kInvalidContext;
  } else {
    module->live = false;
  }
  events.push_back(e);
  return e.result;
}

NORMC_TEST_EXPORT int cuModuleGetFunction(void **function, void *handle,
                                          const char *name) {
  std::lock_guard<std::mutex> lock(mutex);
  Event e = event(Call::GetFunction, kSuccess);
  e.pointer = reinterpret_cast<uintptr_t>(handle);
  e.text = name;
  Module *module = findModule(handle);
  if (!module || !module->live) {
    violation("cuModuleGetFunction on an unknown or unloaded module");
    e.result = kInvalidHandle;
  } else {
    int numParams = entryParams(module->image, name);
    if (numParams < 0) {
      e.result = kNotFound;
    } else {
      functions.emplace_back(new Function{module, name, numParams});
      *function = functions.back().get();
    }
  }
  events.push_back(e);
  return e.result;
}

//===--- Memory -----------------------------------------------------------===//

NORMC_TEST_EXPORT int cuMemAlloc_v2(uint64_t *pointer, size_t bytes) {
  return allocate(pointer, bytes, nullptr, false, "cuMemAlloc_v2");
}

NORMC_TEST_EXPORT int cuMemFree_v2(uint64_t pointer) {
  return release(pointer, nullptr, false, "cuMemFree_v2");
}

#ifndef FAKE_CUDA_LEGACY
NORMC_TEST_EXPORT int cuMemAllocAsync(uint64_t *pointer, size_t bytes,
                                      void *stream) {
  return allocate(pointer, bytes, stream, true, "cuMemAllocAsync");
}

NORMC_TEST_EXPORT int cuMemFreeAsync(uint64_t pointer, void *stream) {
  return release(pointer, stream, true, "cuMemFreeAsync");
}
#endif

//===--- Execution --------------------------------------------------------===//

#ifndef FAKE_CUDA_NO_LAUNCH
NORMC_TEST_EXPORT int cuLaunchKernel(void *handle, unsigned gridX,
                                     unsigned gridY, unsigned gridZ,
                                     unsigned blockX, unsigned blockY,
                                     unsigned blockZ, unsigned sharedBytes,
                                     void *stream, void **params,
                                     void **extra) {
  std::lock_guard<std::mutex> lock(mutex);
  int result =
      requireContext("cuLaunchKernel") ? injected("cuLaunchKernel") : 201;
  Event e = event(Call::Launch, result);
  e.stream = stream;
  e.grid[0] = gridX;
  e.grid[1] = gridY;
  e.grid[2] = gridZ;
  e.block[0] = blockX;
  e.block[1] = blockY;
  e.block[2] = blockZ;
  e.sharedBytes = sharedBytes;
  Function *function = findFunction(handle);
  if (!function || !function->module->live) {
    violation("cuLaunchKernel of an unknown function or unloaded module");
    e.result = kInvalidHandle;
  } else {
    e.text = function->name;
    if (function->module->context != current())
      violation("cuLaunchKernel outside the function's context");
    if (extra)
      violation("cuLaunchKernel with 'extra' (the runtime passes params)");
    if (function->numParams > 0 && !params) {
      violation("cuLaunchKernel without params");
      e.result = kInvalidValue;
    }
    // The real driver reads exactly the parameters the PTX declares.
    for (int i = 0; params && i < function->numParams; ++i) {
      int64_t value;
      std::memcpy(&value, params[i], sizeof(value));
      e.params.push_back(value);
    }
  }
  events.push_back(e);
  return e.result;
}
#endif

NORMC_TEST_EXPORT int cuStreamSynchronize(void *stream) {
  std::lock_guard<std::mutex> lock(mutex);
  int result = requireContext("cuStreamSynchronize")
                   ? injected("cuStreamSynchronize")
                   : kInvalidContext;
  Event e = event(Call::Sync, result);
  e.stream = stream;
  events.push_back(e);
  return result;
}

//===--- Test hooks (not part of the driver API) --------------------------===//

/// Forgets the recorded calls, call counts and violations (not the live
/// handles, so a leak from one test still shows up in the next).
NORMC_TEST_EXPORT void fake_cuda_reset() {
  std::lock_guard<std::mutex> lock(mutex);
  events.clear();
  violations.clear();
  callCounts.clear();
}

NORMC_TEST_EXPORT void fake_cuda_events(std::vector<Event> *out) {
  std::lock_guard<std::mutex> lock(mutex);
  *out = events;
}

NORMC_TEST_EXPORT void fake_cuda_health(Health *out) {
  std::lock_guard<std::mutex> lock(mutex);
  Health health;
  health.liveAllocations = static_cast<int64_t>(allocations.size());
  for (const std::unique_ptr<Module> &module : modules)
    health.liveModules += module->live ? 1 : 0;
  for (const Context &context : contexts)
    health.contextRefs += context.refs;
  health.contextDepth = static_cast<int64_t>(contextStack.size());
  health.violations = violations;
  *out = health;
}
