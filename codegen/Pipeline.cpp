//===- Pipeline.cpp - norm ops to the LLVM dialect, in one place ----------===//
//
// The whole CPU lowering as one straight-line list, in the spirit of
// Halide's Lower.cpp: read top to bottom to know what happens to a spec.
//
//===----------------------------------------------------------------------===//

#include "codegen/Passes.h"

#include "passes/Passes.h"

#include "mlir/Conversion/AffineToStandard/AffineToStandard.h"
#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVMPass.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Conversion/VectorToLLVM/ConvertVectorToLLVMPass.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void norm::buildLowerToLLVMPipeline(OpPassManager &pm,
                                    const LowerToLLVMOptions &options) {
  // 1. Functions that ask for their backward (`norm.backward`) get a sibling
  //    with norm.normalize_backward, derived from the forward description.
  pm.addPass(createNormDeriveBackward());
  // 2. Each spec function becomes a kernel on memrefs: its named op is
  //      generalized to norm.normalize, whose description alone drives the
  //      loops over work items (vector accumulators, one store per output
  //      element).
  NormFormKernelsOptions formOptions;
  formOptions.vectorLength = options.vectorLength;
  formOptions.streamingStoreMinBytes = options.streamingStoreMinBytes;
  formOptions.prefetchNextItem = options.prefetchNextItem;
  formOptions.splitLongRows = options.splitLongRows;
  formOptions.pipelineItems = options.pipelineItems;
  formOptions.onePassMinBytes = options.onePassMinBytes;
  pm.addPass(createNormFormKernels(formOptions));
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  // 3. Views (group split, collapsed dims) become plain strided accesses.
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  // 4. Structured control flow and every dialect down to LLVM.
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(createConvertVectorToLLVMPass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  // 5. C entry points (and the bundle manifest) around the kernel bodies.
  NormEmitCInterfaceOptions entryOptions;
  entryOptions.manifest = options.manifest;
  pm.addPass(createNormEmitCInterface(entryOptions));
  pm.addPass(createCanonicalizerPass());
}

void norm::registerCodegenPasses() {
  registerNormCodegenPasses();
  PassPipelineRegistration<LowerToLLVMOptions>(
      "norm-lower-to-llvm",
      "Lower norm specs to the LLVM dialect with C entry points",
      buildLowerToLLVMPipeline);
  PassPipelineRegistration<LowerToPTXOptions>(
      "norm-lower-to-ptx",
      "Lower the gpu.module of norm-form-gpu-kernels to a gpu.binary with PTX",
      buildLowerToPTXPipeline);
}
