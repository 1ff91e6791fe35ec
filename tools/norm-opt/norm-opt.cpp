//===- norm-opt.cpp - opt driver for the norm dialect
//----------------------===//
//
// Registers only what normc uses: the norm dialect, its passes, and the
// upstream dialects that specs and lowerings touch.
//
//===----------------------------------------------------------------------===//

#include "codegen/Emit.h"
#include "codegen/Passes.h"
#include "dialect/NormDialect.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  registry.insert<mlir::norm::NormDialect, mlir::func::FuncDialect,
                  mlir::tensor::TensorDialect, mlir::arith::ArithDialect,
                  mlir::math::MathDialect, mlir::memref::MemRefDialect,
                  mlir::scf::SCFDialect, mlir::vector::VectorDialect,
                  mlir::LLVM::LLVMDialect>();
  mlir::norm::registerGpuCodegenDependencies(registry);
  mlir::norm::registerNormPasses();
  mlir::norm::registerCodegenPasses();
  mlir::registerCanonicalizerPass();
  mlir::registerCSEPass();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "normc optimizer driver\n", registry));
}
