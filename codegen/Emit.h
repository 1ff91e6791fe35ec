//===- Emit.h - LLVM IR, assembly, objects and shared libraries -*- C++ -*-===//

#ifndef NORMC_CODEGEN_EMIT_H
#define NORMC_CODEGEN_EMIT_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/Target/TargetMachine.h"
#include <memory>
#include <string>

namespace mlir::norm {

struct TargetOptions {
  /// "host", an x86-64 level ("x86-64-v3", "x86-64-v4") or a CPU name.
  std::string cpu = "host";
  unsigned optLevel = 3;
};

/// An x86-64 target machine for `options`; null with `error` set when the
/// CPU is unknown.
std::unique_ptr<llvm::TargetMachine>
createTargetMachine(const TargetOptions &options, std::string &error);

/// Lanes per f32 accumulator for the target: four native vectors.
int64_t chooseVectorLength(const llvm::TargetMachine &machine);

/// Translates a module in the LLVM dialect to LLVM IR and optimizes it for
/// `machine`.
std::unique_ptr<llvm::Module> translateAndOptimize(ModuleOp module,
                                                   llvm::LLVMContext &context,
                                                   llvm::TargetMachine &machine,
                                                   unsigned optLevel,
                                                   std::string &error);

/// Writes assembly or an object file.
bool emitMachineCode(llvm::Module &module, llvm::TargetMachine &machine,
                     bool assembly, llvm::raw_pwrite_stream &os,
                     std::string &error);

/// Links one object into a shared library with the system compiler driver.
bool linkSharedLibrary(llvm::StringRef objectPath, llvm::StringRef outputPath,
                       std::string &error);

/// Registers what compileGpuKernelsToPTX needs (GPU and NVVM dialects,
/// their LLVM IR translations, the NVVM target).
void registerGpuCodegenDependencies(DialectRegistry &registry);

/// True for "sm_NN" / "sm_NNN" (NN >= 50).
bool isGpuArchName(llvm::StringRef chip);

/// PTX text of the gpu.module kernels of `module` (norm-form-gpu-kernels)
/// for architecture `chip`; errors are reported as diagnostics.
FailureOr<std::string> compileGpuKernelsToPTX(ModuleOp module,
                                              llvm::StringRef chip);

/// Removes the gpu.module kernels once compiled, leaving the host module.
void eraseGpuKernels(ModuleOp module);

} // namespace mlir::norm

#endif // NORMC_CODEGEN_EMIT_H
