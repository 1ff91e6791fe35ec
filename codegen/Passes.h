//===- Passes.h - normc code generation passes ------------------*- C++ -*-===//

#ifndef NORMC_CODEGEN_PASSES_H
#define NORMC_CODEGEN_PASSES_H

#include "codegen/NormalizeToLoops.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
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
  PassOptions::Option<int64_t> streamingStoreMinBytes{
      *this, "streaming-store-min-bytes",
      llvm::cl::desc("Outputs of at least this many bytes use streaming "
                     "stores when aligned (0 always, -1 never)"),
      llvm::cl::init(LoopEmitOptions::kDefaultStreamingStoreMinBytes)};
  PassOptions::Option<bool> prefetchNextItem{
      *this, "prefetch-next-item",
      llvm::cl::desc("Prefetch the next work item during the last pass over "
                     "the current one"),
      llvm::cl::init(true)};
  PassOptions::Option<bool> pipelineItems{
      *this, "pipeline-items",
      llvm::cl::desc("Take the statistics of a row that fits in cache in "
                     "the output pass of the previous one"),
      llvm::cl::init(true)};
  PassOptions::Option<int64_t> onePassMinBytes{
      *this, "one-pass-min-bytes",
      llvm::cl::desc("Work items not pipelined of at least this many bytes "
                     "take their statistics from one pass (0 always, -1 "
                     "never)"),
      llvm::cl::init(LoopEmitOptions::kDefaultOnePassMinBytes)};
  PassOptions::Option<bool> splitLongRows{
      *this, "split-long-rows",
      llvm::cl::desc("Reduce long rows in chunks (a prepass, then one work "
                     "item per chunk)"),
      llvm::cl::init(true)};
  PassOptions::Option<bool> manifest{
      *this, "manifest", llvm::cl::desc("Embed the bundle manifest"),
      llvm::cl::init(false)};
};

/// The whole CPU lowering, norm ops to the LLVM dialect, as one pipeline.
void buildLowerToLLVMPipeline(OpPassManager &pm,
                              const LowerToLLVMOptions &options);

/// Options of the GPU pipeline: the gpu.module of a spec to PTX.
struct LowerToPTXOptions : public PassPipelineOptions<LowerToPTXOptions> {
  PassOptions::Option<std::string> chip{
      *this, "chip", llvm::cl::desc("GPU architecture (sm_80, sm_90, ...)"),
      llvm::cl::init("sm_90")};
};

/// gpu.module kernels to NVVM and on to a gpu.binary holding PTX text.
void buildLowerToPTXPipeline(OpPassManager &pm,
                             const LowerToPTXOptions &options);

/// The PTX ISA version flag LLVM needs for `chip` ("+ptx80" for sm_90).
std::string getPTXFeatures(llvm::StringRef chip);

/// Adds the `_launch` entries of the emulated GPU kernels (see
/// norm-emulate-gpu-kernels) to a module in the LLVM dialect.
void addGpuEmulationEntries(ModuleOp module);

/// Registers the codegen passes and the `norm-lower-to-llvm` pipeline.
void registerCodegenPasses();

#define GEN_PASS_REGISTRATION
#include "codegen/Passes.h.inc"

} // namespace mlir::norm

#endif // NORMC_CODEGEN_PASSES_H
