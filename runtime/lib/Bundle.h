//===- Bundle.h - Loaded bundles and their kernels --------------*- C++ -*-===//
//
// Definitions of the opaque C handles normc_bundle and normc_kernel.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_RUNTIME_BUNDLE_H
#define NORMC_RUNTIME_BUNDLE_H

#include "CudaModules.h"
#include "GpuPlan.h"
#include "Manifest.h"

#include <memory>
#include <string>
#include <vector>

namespace normc {

/// `int32_t __normc_K_packed(void *const *args, const int64_t *dims,
///                           int64_t begin, int64_t end)`, also the prepass
/// `__normc_K_prepass`.
using PackedEntryFn = int32_t (*)(void *const *, const int64_t *, int64_t,
                                  int64_t);
/// `int64_t __normc_K_work(const int64_t *dims)`, also the workspace size and
/// the prepass item count `__normc_K_prepass_work`.
using WorkFn = int64_t (*)(const int64_t *);
/// `int32_t __normc_K_finalize(void *const *args, const int64_t *dims)`
using FinalizeFn = int32_t (*)(void *const *, const int64_t *);

/// Opens the bundle at `path`; sets the thread's last error on failure.
normc_status openBundle(const char *path, normc_bundle **out);

} // namespace normc

struct normc_kernel {
  const normc::KernelSpec *spec = nullptr;
  /// The bundle holding the kernel, and the kernel's index in it.
  normc_bundle *bundle = nullptr;
  size_t index = 0;
  normc::PackedEntryFn entry = nullptr;
  normc::WorkFn work = nullptr;
  normc::WorkFn workspace = nullptr;      // kernels with a workspace only
  normc::FinalizeFn finalize = nullptr;   // kernels with a finalize step only
  normc::PackedEntryFn prepass = nullptr; // kernels with a prepass only
  normc::WorkFn prepassWork = nullptr;    // kernels with a prepass only
  normc::GpuPlanFn gpuPlan = nullptr;     // kernels with GPU code only
  /// Per-dim name pointers and per-arg shapes for the C query API.
  std::vector<const char *> dimNames;
};

struct normc_bundle {
  std::string path;
  void *handle = nullptr;
  /// Copy of the embedded manifest text (kept for normc_bundle_manifest_json).
  std::string manifestText;
  normc::Manifest manifest;
  /// One per manifest kernel; never resized after opening, so pointers to
  /// elements are stable handles.
  std::vector<normc_kernel> kernels;
  /// One per manifest "gpu_archs" entry, in manifest order.
  std::vector<normc::GpuPtx> gpuPtx;
  /// Modules loaded from gpuPtx, one per CUDA device that ran a kernel;
  /// mutable through const kernels (loading is a cache fill).
  mutable normc::CudaModuleCache cudaModules;

  ~normc_bundle();
};

#endif // NORMC_RUNTIME_BUNDLE_H
