//===- Manifest.h - Bundle manifest schema ----------------------*- C++ -*-===//
//
// Typed view of the JSON manifest embedded in a bundle. Parsing checks the
// whole schema up front so that a bundle that opens successfully never fails
// later because of a malformed signature.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_RUNTIME_MANIFEST_H
#define NORMC_RUNTIME_MANIFEST_H

#include "normc/runtime.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace normc {

struct ArgSpec {
  std::string name;
  normc_io io = NORMC_IO_IN;
  normc_dtype dtype = NORMC_DTYPE_F32;
  std::vector<normc_dim> shape;
  /// Index of the input this output may alias exactly, or -1.
  int32_t inplace = -1;
};

/// The "gpu" object of a kernel (bundle ABI 2, docs/gpu.md).
struct GpuSpec {
  /// `int32_t plan(const int64_t *dims, normc_gpu_plan *plan)` (host code).
  std::string plan;
  /// `.entry` names in the PTX of every arch; plan launches index them.
  std::vector<std::string> functions;
};

struct KernelSpec {
  std::string name;
  normc_kernel_kind kind = NORMC_KIND_FORWARD;
  normc_op op = NORMC_OP_LAYER_NORM;
  /// The "attrs" value verbatim (its manifest text), "{}" if absent.
  std::string attrsJson;
  std::string entry;
  std::string work;
  /// `int64_t workspace(const int64_t *dims)` gives the scratch bytes passed
  /// as args[args.size()] (backward kernels, and forward kernels with a
  /// prepass); empty for kernels without a workspace.
  std::string workspace;
  /// `int32_t finalize(void *const *args, const int64_t *dims)` runs once
  /// after every work item (backward kernels); empty if there is none.
  std::string finalize;
  /// The prepass (bundle ABI 3): `int64_t prepassWork(const int64_t *dims)`
  /// items of `int32_t prepassEntry(void *const *args, const int64_t *dims,
  /// int64_t begin, int64_t end)`, which all run before any work item. Both
  /// empty for kernels without a prepass; a kernel with one has a workspace.
  std::string prepassEntry;
  std::string prepassWork;
  /// Dynamic dimension symbols in packed-entry order.
  std::vector<std::string> dims;
  std::vector<ArgSpec> args;
  /// Kernels compiled for the GPU only.
  bool hasGpu = false;
  GpuSpec gpu;
};

struct Manifest {
  uint32_t abiVersion = 0;
  std::string generator;
  /// "gpu_archs": the archs the bundle exports PTX for (normc_gpu_ptx_<arch>);
  /// empty when the bundle has no GPU code.
  std::vector<std::string> gpuArchs;
  std::vector<KernelSpec> kernels;
};

/// The number of an arch name "sm_<major><minor>" (80 for "sm_80", 100 for
/// "sm_100"), comparable with 10 * major + minor of a compute capability;
/// -1 if `arch` is not of that form.
int smArchNumber(std::string_view arch);

/// Parses and validates manifest `text`. On failure returns false with a
/// message that names the offending field path and byte offset.
bool parseManifest(std::string_view text, Manifest &out, std::string &error);

} // namespace normc

#endif // NORMC_RUNTIME_MANIFEST_H
