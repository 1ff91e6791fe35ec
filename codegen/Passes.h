//===- Passes.h - normc code generation passes ------------------*- C++ -*-===//

#ifndef NORMC_CODEGEN_PASSES_H
#define NORMC_CODEGEN_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassOptions.h"

namespace mlir::norm {

#define GEN_PASS_DECL
#include "codegen/Passes.h.inc"

/// Options of the CPU pipeline from norm ops to the LLVM dialect.
struct LowerToLLVMOptions : public PassPipelineOptions<LowerToLLVMOptions> {
  PassOptions::Option<int64_t> vectorLength{
      *this, "vector-length",
      llvm::cl::desc("Lanes of one f32 accumulator vector"),
      llvm::cl::init(64)};
  PassOptions::Option<bool> manifest{
      *this, "manifest", llvm::cl::desc("Embed the bundle manifest"),
      llvm::cl::init(false)};
};

/// The whole CPU lowering, norm ops to the LLVM dialect, as one pipeline.
void buildLowerToLLVMPipeline(OpPassManager &pm,
                              const LowerToLLVMOptions &options);

/// Registers the codegen passes and the `norm-lower-to-llvm` pipeline.
void registerCodegenPasses();

#define GEN_PASS_REGISTRATION
#include "codegen/Passes.h.inc"

} // namespace mlir::norm

#endif // NORMC_CODEGEN_PASSES_H
