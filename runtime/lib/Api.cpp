//===- Api.cpp - C API entry points ---------------------------------------===//
//
// Thin layer that checks handles, forwards to the implementation and
// guarantees that every failure leaves a message for normc_last_error().
// Query functions tolerate NULL handles (returning empty values) so that a
// caller's mistake never crashes the process.
//
//===----------------------------------------------------------------------===//

#include "normc/runtime.h"

#include "Bundle.h"
#include "Context.h"
#include "CudaDriver.h"
#include "Error.h"
#include "Validate.h"

#include <cstring>
#include <unistd.h>

using namespace normc;

namespace {

/// Upper bound on threads per context; far above any real core count but
/// catches garbage values before we try to create millions of threads.
constexpr uint32_t kMaxThreads = 4096;

} // namespace

extern "C" {

const char *normc_status_name(normc_status status) {
  switch (status) {
  case NORMC_OK:
    return "NORMC_OK";
  case NORMC_ERROR_INVALID_ARGUMENT:
    return "NORMC_ERROR_INVALID_ARGUMENT";
  case NORMC_ERROR_LOAD_FAILED:
    return "NORMC_ERROR_LOAD_FAILED";
  case NORMC_ERROR_NOT_A_BUNDLE:
    return "NORMC_ERROR_NOT_A_BUNDLE";
  case NORMC_ERROR_ABI_MISMATCH:
    return "NORMC_ERROR_ABI_MISMATCH";
  case NORMC_ERROR_INVALID_MANIFEST:
    return "NORMC_ERROR_INVALID_MANIFEST";
  case NORMC_ERROR_MISSING_SYMBOL:
    return "NORMC_ERROR_MISSING_SYMBOL";
  case NORMC_ERROR_NOT_FOUND:
    return "NORMC_ERROR_NOT_FOUND";
  case NORMC_ERROR_SIGNATURE_MISMATCH:
    return "NORMC_ERROR_SIGNATURE_MISMATCH";
  case NORMC_ERROR_ALIASING:
    return "NORMC_ERROR_ALIASING";
  case NORMC_ERROR_DEVICE_UNAVAILABLE:
    return "NORMC_ERROR_DEVICE_UNAVAILABLE";
  case NORMC_ERROR_UNSUPPORTED:
    return "NORMC_ERROR_UNSUPPORTED";
  case NORMC_ERROR_KERNEL_FAILED:
    return "NORMC_ERROR_KERNEL_FAILED";
  case NORMC_ERROR_RESOURCE_EXHAUSTED:
    return "NORMC_ERROR_RESOURCE_EXHAUSTED";
  case NORMC_ERROR_INTERNAL:
    return "NORMC_ERROR_INTERNAL";
  }
  return "NORMC_ERROR_UNKNOWN";
}

const char *normc_last_error(void) { return lastError(); }

uint32_t normc_runtime_abi_version(void) { return NORMC_BUNDLE_ABI_VERSION; }

const char *normc_dtype_name(normc_dtype dtype) {
  switch (dtype) {
  case NORMC_DTYPE_F32:
    return "f32";
  case NORMC_DTYPE_F16:
    return "f16";
  case NORMC_DTYPE_BF16:
    return "bf16";
  case NORMC_DTYPE_F64:
    return "f64";
  }
  return nullptr;
}

size_t normc_dtype_size(normc_dtype dtype) {
  switch (dtype) {
  case NORMC_DTYPE_F32:
    return 4;
  case NORMC_DTYPE_F16:
  case NORMC_DTYPE_BF16:
    return 2;
  case NORMC_DTYPE_F64:
    return 8;
  }
  return 0;
}

const char *normc_op_name(normc_op op) {
  switch (op) {
  case NORMC_OP_LAYER_NORM:
    return "layer_norm";
  case NORMC_OP_RMS_NORM:
    return "rms_norm";
  case NORMC_OP_BATCH_NORM:
    return "batch_norm";
  case NORMC_OP_INSTANCE_NORM:
    return "instance_norm";
  case NORMC_OP_GROUP_NORM:
    return "group_norm";
  case NORMC_OP_NORMALIZE:
    return "normalize";
  }
  return nullptr;
}

normc_status normc_device_count(normc_device_type type, int32_t *count) {
  if (!count)
    return fail(NORMC_ERROR_INVALID_ARGUMENT,
                "normc_device_count: count is NULL");
  *count = 0;
  switch (type) {
  case NORMC_DEVICE_CPU:
    *count = 1;
    return NORMC_OK;
  case NORMC_DEVICE_CUDA: {
    const CudaDriver *driver = nullptr;
    if (normc_status status = loadCudaDriver(&driver))
      return status;
    return cudaDeviceCount(*driver, count);
  }
  }
  return fail(NORMC_ERROR_INVALID_ARGUMENT,
              "normc_device_count: invalid device type %d",
              static_cast<int>(type));
}

//===----------------------------------------------------------------------===//
// Bundles and kernels
//===----------------------------------------------------------------------===//

normc_status normc_bundle_open(const char *path, normc_bundle **out) {
  return openBundle(path, out);
}

void normc_bundle_close(normc_bundle *bundle) { delete bundle; }

const char *normc_bundle_generator(const normc_bundle *bundle) {
  return bundle ? bundle->manifest.generator.c_str() : "";
}

const char *normc_bundle_manifest_json(const normc_bundle *bundle) {
  return bundle ? bundle->manifestText.c_str() : "";
}

size_t normc_bundle_num_kernels(const normc_bundle *bundle) {
  return bundle ? bundle->kernels.size() : 0;
}

const normc_kernel *normc_bundle_kernel(const normc_bundle *bundle,
                                        size_t index) {
  if (!bundle || index >= bundle->kernels.size())
    return nullptr;
  return &bundle->kernels[index];
}

normc_status normc_bundle_find_kernel(const normc_bundle *bundle,
                                      const char *name,
                                      const normc_kernel **out) {
  if (!bundle || !name || !out)
    return fail(NORMC_ERROR_INVALID_ARGUMENT,
                "normc_bundle_find_kernel: bundle, name and out must not be "
                "NULL");
  *out = nullptr;
  std::string available;
  for (const normc_kernel &kernel : bundle->kernels) {
    if (kernel.spec->name == name) {
      *out = &kernel;
      return NORMC_OK;
    }
    available += (available.empty() ? "'" : ", '") + kernel.spec->name + "'";
  }
  return fail(NORMC_ERROR_NOT_FOUND,
              "bundle '%s' has no kernel named '%s' (available: %s)",
              bundle->path.c_str(), name,
              available.empty() ? "none" : available.c_str());
}

size_t normc_bundle_num_gpu_archs(const normc_bundle *bundle) {
  return bundle ? bundle->manifest.gpuArchs.size() : 0;
}

const char *normc_bundle_gpu_arch(const normc_bundle *bundle, size_t index) {
  if (!bundle || index >= bundle->manifest.gpuArchs.size())
    return nullptr;
  return bundle->manifest.gpuArchs[index].c_str();
}

const char *normc_kernel_name(const normc_kernel *kernel) {
  return kernel ? kernel->spec->name.c_str() : "";
}

normc_kernel_kind normc_kernel_get_kind(const normc_kernel *kernel) {
  return kernel ? kernel->spec->kind : NORMC_KIND_FORWARD;
}

normc_op normc_kernel_op(const normc_kernel *kernel) {
  return kernel ? kernel->spec->op : NORMC_OP_LAYER_NORM;
}

const char *normc_kernel_attrs_json(const normc_kernel *kernel) {
  return kernel ? kernel->spec->attrsJson.c_str() : "{}";
}

int32_t normc_kernel_has_device_code(const normc_kernel *kernel,
                                     normc_device_type type) {
  if (!kernel)
    return 0;
  switch (type) {
  case NORMC_DEVICE_CPU:
    return 1;
  case NORMC_DEVICE_CUDA:
    return kernel->gpuPlan ? 1 : 0;
  }
  return 0;
}

size_t normc_kernel_num_dims(const normc_kernel *kernel) {
  return kernel ? kernel->spec->dims.size() : 0;
}

const char *normc_kernel_dim_name(const normc_kernel *kernel, size_t index) {
  if (!kernel || index >= kernel->dimNames.size())
    return nullptr;
  return kernel->dimNames[index];
}

size_t normc_kernel_num_args(const normc_kernel *kernel) {
  return kernel ? kernel->spec->args.size() : 0;
}

normc_status normc_kernel_arg(const normc_kernel *kernel, size_t index,
                              normc_arg_info *out) {
  if (!kernel || !out)
    return fail(NORMC_ERROR_INVALID_ARGUMENT,
                "normc_kernel_arg: kernel and out must not be NULL");
  const std::vector<ArgSpec> &args = kernel->spec->args;
  if (index >= args.size())
    return fail(NORMC_ERROR_INVALID_ARGUMENT,
                "kernel '%s' has %zu args; index %zu is out of range",
                kernel->spec->name.c_str(), args.size(), index);
  const ArgSpec &arg = args[index];
  out->name = arg.name.c_str();
  out->io = arg.io;
  out->dtype = arg.dtype;
  out->rank = arg.shape.size();
  out->shape = arg.shape.data();
  out->inplace = arg.inplace >= 0
                     ? args[static_cast<size_t>(arg.inplace)].name.c_str()
                     : nullptr;
  return NORMC_OK;
}

normc_status normc_kernel_find_arg(const normc_kernel *kernel, const char *name,
                                   size_t *index) {
  if (!kernel || !name || !index)
    return fail(NORMC_ERROR_INVALID_ARGUMENT,
                "normc_kernel_find_arg: kernel, name and index must not be "
                "NULL");
  const std::vector<ArgSpec> &args = kernel->spec->args;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i].name == name) {
      *index = i;
      return NORMC_OK;
    }
  }
  return fail(NORMC_ERROR_NOT_FOUND, "kernel '%s' has no arg named '%s'",
              kernel->spec->name.c_str(), name);
}

//===----------------------------------------------------------------------===//
// Contexts and execution
//===----------------------------------------------------------------------===//

void normc_context_options_init(normc_context_options *options) {
  if (!options)
    return;
  options->num_threads = 0;
  options->pin_threads = 1;
}

normc_status normc_context_create(const normc_context_options *options,
                                  normc_context **out) {
  if (!out)
    return fail(NORMC_ERROR_INVALID_ARGUMENT,
                "normc_context_create: out is NULL");
  *out = nullptr;
  normc_context_options defaults;
  normc_context_options_init(&defaults);
  if (!options)
    options = &defaults;
  uint32_t numThreads = options->num_threads;
  if (numThreads == 0) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    numThreads = online > 0 ? static_cast<uint32_t>(online) : 1;
    if (numThreads > kMaxThreads)
      numThreads = kMaxThreads;
  }
  if (numThreads > kMaxThreads)
    return fail(NORMC_ERROR_INVALID_ARGUMENT,
                "normc_context_create: num_threads %u exceeds the maximum of "
                "%u",
                numThreads, kMaxThreads);
  std::unique_ptr<normc_context> context(new normc_context());
  if (normc_status status =
          context->cpu.start(numThreads, options->pin_threads != 0))
    return status; // the destructor joins the workers already started
  *out = context.release();
  return NORMC_OK;
}

void normc_context_destroy(normc_context *context) { delete context; }

uint32_t normc_context_num_threads(const normc_context *context) {
  return context ? context->cpu.numThreads() : 0;
}

normc_status normc_validate(const normc_kernel *kernel,
                            const normc_tensor *args, size_t nargs) {
  if (!kernel)
    return fail(NORMC_ERROR_INVALID_ARGUMENT, "normc_validate: kernel is NULL");
  LaunchArgs launch;
  return validateArgs(*kernel, args, nargs, launch);
}

} // extern "C"

namespace {

normc_status run(const char *function, normc_context *context,
                 const normc_kernel *kernel, const normc_tensor *args,
                 size_t nargs, const LaunchOptions &options) {
  if (!context || !kernel)
    return fail(NORMC_ERROR_INVALID_ARGUMENT,
                "%s: context and kernel must not be NULL", function);
  LaunchArgs launch;
  if (normc_status status = validateArgs(*kernel, args, nargs, launch))
    return status;
  Device *device = nullptr;
  if (normc_status status = context->getDevice(launch.device, &device))
    return status;
  return device->launch(*kernel, launch, options);
}

} // namespace

extern "C" {

normc_status normc_run(normc_context *context, const normc_kernel *kernel,
                       const normc_tensor *args, size_t nargs) {
  LaunchOptions options;
  options.stream = nullptr;
  options.wait = true;
  return run("normc_run", context, kernel, args, nargs, options);
}

normc_status normc_run_async(normc_context *context, const normc_kernel *kernel,
                             const normc_tensor *args, size_t nargs,
                             void *stream) {
  LaunchOptions options;
  options.stream = stream;
  options.wait = false;
  return run("normc_run_async", context, kernel, args, nargs, options);
}

} // extern "C"
