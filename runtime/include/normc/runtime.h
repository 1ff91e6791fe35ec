/*===- normc/runtime.h - normc runtime C API ---------------------*- C -*-===*\
|*                                                                            *|
|* The normc runtime opens bundles produced by the normc compiler (shared     *|
|* libraries holding normalization kernels and an embedded JSON manifest),    *|
|* validates tensor descriptors against each kernel's signature and runs the  *|
|* kernels on a CPU thread pool or, for bundles carrying PTX, on CUDA GPUs.   *|
|* See docs/runtime.md.                                                       *|
|*                                                                            *|
|* Conventions:                                                               *|
|*  - Every fallible function returns a normc_status; on failure a message is *|
|*    stored in thread-local storage and returned by normc_last_error().      *|
|*  - Handles returned by a bundle (normc_kernel, strings, arg info) stay     *|
|*    valid until the bundle is closed.                                       *|
|*  - The header is valid C99 and C++.                                        *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

#ifndef NORMC_RUNTIME_H
#define NORMC_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define NORMC_API
#else
#define NORMC_API __attribute__((visibility("default")))
#endif

/* Enumerations get a fixed underlying type in C++ so that any int a C caller
   stores (including invalid values the runtime must reject) is a valid value
   of the C++ enum type; the size matches the C enum (int) either way. */
#ifdef __cplusplus
#define NORMC_ENUM_BASE : int
#else
#define NORMC_ENUM_BASE
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The bundle ABI version this runtime understands (`normc_abi_version`).
   Version 2 added GPU code (PTX and plan functions, docs/gpu.md); version 3
   the prepass step of forward kernels (docs/runtime.md); bundles of other
   versions are rejected with NORMC_ERROR_ABI_MISMATCH. */
#define NORMC_BUNDLE_ABI_VERSION 3u

/*===----------------------------------------------------------------------===*
 * Status codes and errors
 *===----------------------------------------------------------------------===*/

/* Values are stable: they may be stored or compared across versions. */
typedef enum normc_status NORMC_ENUM_BASE {
  NORMC_OK = 0,
  /* A null handle/pointer, out-of-range index or bad option. */
  NORMC_ERROR_INVALID_ARGUMENT = 1,
  /* The bundle file is missing, unreadable or not a loadable shared library,
     or the CUDA driver rejected the bundle's PTX. */
  NORMC_ERROR_LOAD_FAILED = 2,
  /* A shared library without the normc_manifest/normc_abi_version symbols. */
  NORMC_ERROR_NOT_A_BUNDLE = 3,
  /* The bundle was built for another bundle ABI version. */
  NORMC_ERROR_ABI_MISMATCH = 4,
  /* The manifest is not valid JSON or violates the manifest schema. */
  NORMC_ERROR_INVALID_MANIFEST = 5,
  /* A symbol the manifest names (entry, work, GPU plan, PTX) is missing from
     the bundle, or a GPU function is missing from its PTX. */
  NORMC_ERROR_MISSING_SYMBOL = 6,
  /* No kernel/arg with the requested name. */
  NORMC_ERROR_NOT_FOUND = 7,
  /* Tensor descriptors do not match the kernel signature (count, dtype,
     rank, dims, strides, null data, device). */
  NORMC_ERROR_SIGNATURE_MISMATCH = 8,
  /* An output overlaps another buffer in a way the manifest does not allow. */
  NORMC_ERROR_ALIASING = 9,
  /* The requested device (driver or hardware) is not available. */
  NORMC_ERROR_DEVICE_UNAVAILABLE = 10,
  /* A feature this runtime or bundle does not support. */
  NORMC_ERROR_UNSUPPORTED = 11,
  /* A kernel (or its GPU plan) returned a nonzero status code, or the CUDA
     driver reported a launch or execution error. */
  NORMC_ERROR_KERNEL_FAILED = 12,
  /* Allocating memory or creating threads failed. */
  NORMC_ERROR_RESOURCE_EXHAUSTED = 13,
  /* A bug in the runtime. */
  NORMC_ERROR_INTERNAL = 14
} normc_status;

/* Stable symbolic name of a status code, e.g. "NORMC_ERROR_ABI_MISMATCH". */
NORMC_API const char *normc_status_name(normc_status status);

/* The message of the most recent failing call on the calling thread ("" if
   none). The pointer is valid until the next failing call on this thread. */
NORMC_API const char *normc_last_error(void);

/* Returns NORMC_BUNDLE_ABI_VERSION of the runtime library actually loaded. */
NORMC_API uint32_t normc_runtime_abi_version(void);

/*===----------------------------------------------------------------------===*
 * Enumerations shared by the manifest and tensor descriptors
 *===----------------------------------------------------------------------===*/

/* Zero is deliberately not a dtype so zero-initialized descriptors fail. */
typedef enum normc_dtype NORMC_ENUM_BASE {
  NORMC_DTYPE_F32 = 1,
  NORMC_DTYPE_F16 = 2,
  NORMC_DTYPE_BF16 = 3,
  NORMC_DTYPE_F64 = 4
} normc_dtype;

/* "f32", "f16", "bf16", "f64"; NULL for an invalid value. */
NORMC_API const char *normc_dtype_name(normc_dtype dtype);
/* Size of one element in bytes; 0 for an invalid value. */
NORMC_API size_t normc_dtype_size(normc_dtype dtype);

typedef enum normc_io NORMC_ENUM_BASE {
  NORMC_IO_IN = 0,
  NORMC_IO_OUT = 1,
  NORMC_IO_INOUT = 2
} normc_io;

typedef enum normc_kernel_kind NORMC_ENUM_BASE {
  NORMC_KIND_FORWARD = 0,
  NORMC_KIND_BACKWARD = 1
} normc_kernel_kind;

typedef enum normc_op NORMC_ENUM_BASE {
  NORMC_OP_LAYER_NORM = 0,
  NORMC_OP_RMS_NORM = 1,
  NORMC_OP_BATCH_NORM = 2,
  NORMC_OP_INSTANCE_NORM = 3,
  NORMC_OP_GROUP_NORM = 4,
  NORMC_OP_NORMALIZE = 5
} normc_op;

/* Manifest spelling of an op, e.g. "layer_norm"; NULL if invalid. */
NORMC_API const char *normc_op_name(normc_op op);

/*===----------------------------------------------------------------------===*
 * Devices
 *===----------------------------------------------------------------------===*/

/* CPU is zero so that zero-initialized descriptors describe host memory. */
typedef enum normc_device_type NORMC_ENUM_BASE {
  NORMC_DEVICE_CPU = 0,
  NORMC_DEVICE_CUDA = 1
} normc_device_type;

typedef struct normc_device {
  normc_device_type type;
  int32_t ordinal; /* Must be 0 for the CPU. */
} normc_device;

/* Number of usable devices of `type`. CPU always reports 1. For CUDA, loads
   the driver (libcuda.so.1, or the path in $NORMC_CUDA_DRIVER) on first use
   and fails with NORMC_ERROR_DEVICE_UNAVAILABLE when there is no driver or
   no device. */
NORMC_API normc_status normc_device_count(normc_device_type type,
                                          int32_t *count);

/*===----------------------------------------------------------------------===*
 * Bundles and kernel signatures
 *===----------------------------------------------------------------------===*/

typedef struct normc_bundle normc_bundle;
/* Owned by its bundle; valid until normc_bundle_close. */
typedef struct normc_kernel normc_kernel;

/* Opens a bundle with dlopen(RTLD_NOW | RTLD_LOCAL), checks its ABI version,
   parses its manifest and resolves every kernel's entry points. On failure
   *out is set to NULL. */
NORMC_API normc_status normc_bundle_open(const char *path, normc_bundle **out);
/* Closes a bundle; NULL is ignored. No kernel of the bundle may be running. */
NORMC_API void normc_bundle_close(normc_bundle *bundle);

/* The "generator" manifest field ("" if absent). */
NORMC_API const char *normc_bundle_generator(const normc_bundle *bundle);
/* The complete manifest JSON text as embedded in the bundle. */
NORMC_API const char *normc_bundle_manifest_json(const normc_bundle *bundle);

NORMC_API size_t normc_bundle_num_kernels(const normc_bundle *bundle);
/* Kernels in manifest order; NULL if index is out of range. */
NORMC_API const normc_kernel *normc_bundle_kernel(const normc_bundle *bundle,
                                                  size_t index);
/* NORMC_ERROR_NOT_FOUND (with the available names) if there is no such
   kernel. */
NORMC_API normc_status normc_bundle_find_kernel(const normc_bundle *bundle,
                                                const char *name,
                                                const normc_kernel **out);

/* The GPU architectures the bundle carries PTX for, in manifest order
   ("sm_80", ...); 0 for a bundle without GPU code. normc_bundle_gpu_arch
   returns NULL if index is out of range. */
NORMC_API size_t normc_bundle_num_gpu_archs(const normc_bundle *bundle);
NORMC_API const char *normc_bundle_gpu_arch(const normc_bundle *bundle,
                                            size_t index);

NORMC_API const char *normc_kernel_name(const normc_kernel *kernel);
NORMC_API normc_kernel_kind normc_kernel_get_kind(const normc_kernel *kernel);
NORMC_API normc_op normc_kernel_op(const normc_kernel *kernel);
/* The kernel's "attrs" object, verbatim from the manifest ("{}" if absent). */
NORMC_API const char *normc_kernel_attrs_json(const normc_kernel *kernel);
/* 1 if the kernel has code for devices of `type`, else 0: every kernel runs
   on the CPU; on CUDA only kernels compiled with normc --gpu-arch (whether
   the bundle's PTX suits a particular GPU is only known when it runs).
   0 for a NULL kernel or an invalid type. */
NORMC_API int32_t normc_kernel_has_device_code(const normc_kernel *kernel,
                                               normc_device_type type);

/* Dynamic dimension symbols, in the order the packed entry takes them. */
NORMC_API size_t normc_kernel_num_dims(const normc_kernel *kernel);
NORMC_API const char *normc_kernel_dim_name(const normc_kernel *kernel,
                                            size_t index);

/* One entry of an argument shape: either static (symbol == -1, size >= 0)
   or dynamic (size == -1, symbol = index into the kernel's dims). */
typedef struct normc_dim {
  int64_t size;
  int32_t symbol;
} normc_dim;

typedef struct normc_arg_info {
  const char *name;
  normc_io io;
  normc_dtype dtype;
  size_t rank;
  const normc_dim *shape; /* rank entries */
  /* Name of the input this output may alias exactly, or NULL. */
  const char *inplace;
} normc_arg_info;

NORMC_API size_t normc_kernel_num_args(const normc_kernel *kernel);
NORMC_API normc_status normc_kernel_arg(const normc_kernel *kernel,
                                        size_t index, normc_arg_info *out);
NORMC_API normc_status normc_kernel_find_arg(const normc_kernel *kernel,
                                             const char *name, size_t *index);

/*===----------------------------------------------------------------------===*
 * Contexts and execution
 *===----------------------------------------------------------------------===*/

typedef struct normc_context normc_context;

typedef struct normc_context_options {
  /* Total threads used by a run, including the calling thread, which always
     helps. 0 means the number of online cores. */
  uint32_t num_threads;
  /* Nonzero pins each worker to one core; failure to pin is ignored. */
  int32_t pin_threads;
} normc_context_options;

/* Fills in the defaults: num_threads = 0, pin_threads = 1. */
NORMC_API void normc_context_options_init(normc_context_options *options);

/* Creates a context owning a CPU thread pool. `options` may be NULL. */
NORMC_API normc_status
normc_context_create(const normc_context_options *options, normc_context **out);
/* Joins the worker threads; NULL is ignored. No run may be in flight. */
NORMC_API void normc_context_destroy(normc_context *context);
/* Threads a run may use, including the caller. */
NORMC_API uint32_t normc_context_num_threads(const normc_context *context);

/* A tensor descriptor; the runtime never takes ownership of anything. */
typedef struct normc_tensor {
  void *data; /* May be NULL only if the tensor has no elements. */
  normc_dtype dtype;
  size_t rank;
  const int64_t *shape; /* rank entries; may be NULL when rank == 0 */
  /* Strides in elements, or NULL for contiguous row-major. Only strides
     equivalent to contiguous row-major are supported. */
  const int64_t *strides;
  normc_device device;
} normc_tensor;

/* Checks `args` against the kernel signature exactly as normc_run does,
   without running anything. */
NORMC_API normc_status normc_validate(const normc_kernel *kernel,
                                      const normc_tensor *args, size_t nargs);

/* Validates `args` (one per manifest arg, in manifest order) and runs the
   kernel over all its work items on the device holding the tensors.
   Synchronous: on CUDA it launches on the default stream and waits for it.
   Thread-safe: several threads may run kernels on the same context
   concurrently. */
NORMC_API normc_status normc_run(normc_context *context,
                                 const normc_kernel *kernel,
                                 const normc_tensor *args, size_t nargs);

/* Like normc_run, but for CUDA tensors only enqueues the kernel's launches
   on `stream` (a CUstream of the device's primary context, as used by the
   CUDA runtime; NULL = the default stream) and returns without waiting: the
   tensors must stay allocated until the stream has executed the work, and
   errors that happen while the kernel executes are reported by the caller's
   next synchronization, not here. The descriptors themselves may be freed
   on return. For CPU tensors `stream` is ignored and the run is synchronous,
   exactly as normc_run. */
NORMC_API normc_status normc_run_async(normc_context *context,
                                       const normc_kernel *kernel,
                                       const normc_tensor *args, size_t nargs,
                                       void *stream);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* NORMC_RUNTIME_H */
