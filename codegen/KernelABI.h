//===- KernelABI.h - the C ABI of a generated kernel ------------*- C++ -*-===//
//
// What a caller sees of one kernel: its arguments in order (pointers), their
// element types and shapes in terms of the dynamic dims d0, d1, ... (int64
// parameters). Kernel formation records it on the module; the C entry
// points, the header and the bundle manifest are all written from it.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_CODEGEN_KERNELABI_H
#define NORMC_CODEGEN_KERNELABI_H

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"
#include "llvm/ADT/SmallVector.h"
#include <string>
#include <vector>

namespace mlir::norm {

/// Bumped whenever the entry points or the manifest change incompatibly.
constexpr unsigned kBundleAbiVersion = 3;

/// Return codes of every generated entry point.
enum KernelStatus : int32_t {
  kKernelOk = 0,
  kKernelNullPointer = 1,
  kKernelBadShape = 2,
  kKernelOutOfMemory = 3,
};

struct KernelArg {
  std::string name;
  bool isOutput = false;
  std::string dtype; // f32, f16, bf16, f64
  /// Sizes: >= 0 static; a negative value -(k+1) is the dynamic dim dk.
  SmallVector<int64_t> shape;
  /// For an output: the input it may alias exactly (computing in place).
  std::string inplace;
};

struct KernelABI {
  std::string name; // the C symbol
  std::string kind; // "forward" or "backward"
  std::string op;   // layer_norm, rms_norm, ..., normalize
  std::string attrsJson;
  unsigned numDims = 0;
  SmallVector<KernelArg> args;
  /// A scratch buffer (runtime-allocated, passed as args[args.size()]),
  /// used by a finalize step after all work items (backward kernels) or a
  /// prepass before them (forward kernels that split long rows).
  bool hasWorkspace = false;
  bool hasFinalize = false;
  bool hasPrepass = false;
  /// GPU functions (PTX entry names); empty without GPU code.
  SmallVector<std::string> gpuFunctions;

  DictionaryAttr toAttr(MLIRContext *context) const;
  static FailureOr<KernelABI> fromAttr(DictionaryAttr attr);

  /// Symbols of the uniform entry points used by the runtime.
  std::string packedSymbol() const { return "__normc_" + name + "_packed"; }
  std::string workSymbol() const { return "__normc_" + name + "_work"; }
  std::string bodySymbol() const { return "__normc_" + name + "_body"; }
  std::string checkSymbol() const { return "__normc_" + name + "_check"; }
  std::string workCountSymbol() const {
    return "__normc_" + name + "_workcount";
  }
  std::string workspaceSymbol() const {
    return "__normc_" + name + "_workspace";
  }
  std::string workspaceCountSymbol() const {
    return "__normc_" + name + "_wscount";
  }
  std::string gpuPlanSymbol() const { return "__normc_" + name + "_gpu_plan"; }
  std::string finalizeSymbol() const { return "__normc_" + name + "_finalize"; }
  std::string prepassSymbol() const { return "__normc_" + name + "_prepass"; }
  std::string prepassWorkSymbol() const {
    return "__normc_" + name + "_prepass_work";
  }
  std::string prepassBodySymbol() const {
    return "__normc_" + name + "_prepassbody";
  }
  std::string prepassCountSymbol() const {
    return "__normc_" + name + "_prepasscount";
  }
  std::string finalizeBodySymbol() const {
    return "__normc_" + name + "_finalizebody";
  }
};

/// Attribute of a derived backward spec function naming the forward's op.
constexpr const char *kForwardOpAttrName = "norm.forward_op";

/// Attribute of a spec function listing its GPU functions (PTX entry names,
/// in plan function-index order), set by norm-form-gpu-kernels.
constexpr const char *kGpuFunctionsAttrName = "normc.gpu_functions";

/// Marks host functions that are not specs (GPU plans, emulated kernels).
constexpr const char *kGpuPlanAttrName = "normc.gpu_plan";

/// Module attribute: dictionary arch -> PTX text, embedded in the bundle
/// as `normc_gpu_ptx_<arch>`.
constexpr const char *kGpuPTXAttrName = "normc.gpu_ptx";

/// Module attribute holding the ABI of every kernel (an array of dicts).
constexpr const char *kKernelsAttrName = "normc.kernels";

/// Reads the kernels recorded on `module`.
FailureOr<std::vector<KernelABI>> getModuleKernels(ModuleOp module);

/// The bundle manifest (JSON) describing `kernels`, with PTX for `gpuArchs`.
std::string writeManifest(ArrayRef<KernelABI> kernels,
                          ArrayRef<std::string> gpuArchs = {});

/// A C header declaring every kernel with plain C types.
std::string writeHeader(ArrayRef<KernelABI> kernels, StringRef guard,
                        StringRef source);

} // namespace mlir::norm

#endif // NORMC_CODEGEN_KERNELABI_H
