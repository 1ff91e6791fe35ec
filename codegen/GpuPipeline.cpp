//===- GpuPipeline.cpp - the gpu.module of a spec to PTX ------------------===//
//
// The GPU side of the lowering, in one place: the kernels formed by
// norm-form-gpu-kernels go through the upstream NVVM pipeline (gpu to
// NVVM, LLVM's NVPTX backend) and come out as PTX text, one module per
// architecture.
//
//===----------------------------------------------------------------------===//

#include "codegen/Emit.h"
#include "codegen/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Pipelines/Passes.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"

using namespace mlir;

std::string norm::getPTXFeatures(StringRef chip) {
  // The oldest PTX ISA that knows the architecture, so that the PTX loads
  // on the oldest driver that supports the GPU.
  unsigned sm = 0;
  if (!chip.consume_front("sm_") ||
      chip.take_while(llvm::isDigit).getAsInteger(10, sm))
    return "+ptx80";
  if (sm >= 100)
    return "+ptx86";
  if (sm >= 90)
    return "+ptx80";
  if (sm >= 89)
    return "+ptx78";
  if (sm >= 87)
    return "+ptx74";
  if (sm >= 86)
    return "+ptx71";
  return "+ptx70";
}

void norm::buildLowerToPTXPipeline(OpPassManager &pm,
                                   const LowerToPTXOptions &options) {
  gpu::GPUToNVVMPipelineOptions nvvm;
  nvvm.cubinChip = options.chip;
  nvvm.cubinFeatures = getPTXFeatures(options.chip);
  nvvm.cubinFormat = "isa";
  nvvm.optLevel = 3;
  gpu::buildLowerToNVVMPassPipeline(pm, nvvm);
}

bool norm::isGpuArchName(StringRef chip) {
  unsigned sm = 0;
  // Plain sm_NN only: the runtime picks the highest arch <= the device's,
  // which arch-specific variants (sm_90a) would not honour.
  return chip.consume_front("sm_") && chip.size() >= 2 && chip.size() <= 3 &&
         llvm::all_of(chip, llvm::isDigit) && !chip.getAsInteger(10, sm) &&
         sm >= 50;
}

FailureOr<std::string> norm::compileGpuKernelsToPTX(ModuleOp module,
                                                    StringRef chip) {
  auto gpuModules = llvm::to_vector(module.getOps<gpu::GPUModuleOp>());
  if (gpuModules.empty())
    return module.emitError("no gpu.module to compile"), failure();
  OpBuilder builder(module.getContext());
  OwningOpRef<ModuleOp> device = ModuleOp::create(module.getLoc());
  (*device)->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                     builder.getUnitAttr());
  builder.setInsertionPointToEnd(device->getBody());
  for (gpu::GPUModuleOp gpuModule : gpuModules)
    builder.clone(*gpuModule.getOperation());
  PassManager pm(module.getContext());
  LowerToPTXOptions options;
  options.chip = chip.str();
  buildLowerToPTXPipeline(pm, options);
  if (failed(pm.run(*device)))
    return failure();
  std::string ptx;
  for (auto binary : device->getOps<gpu::BinaryOp>())
    for (Attribute attr : binary.getObjects())
      ptx += cast<gpu::ObjectAttr>(attr).getObject().getValue().str();
  return ptx;
}

void norm::eraseGpuKernels(ModuleOp module) {
  for (auto gpuModule :
       llvm::make_early_inc_range(module.getOps<gpu::GPUModuleOp>()))
    gpuModule.erase();
  module->removeAttr(gpu::GPUDialect::getContainerModuleAttrName());
}

void norm::registerGpuCodegenDependencies(DialectRegistry &registry) {
  registry.insert<gpu::GPUDialect, NVVM::NVVMDialect>();
  // The NVVM pipeline converts through the dialects' ConvertToLLVM
  // interfaces, and gpu-module-to-binary needs the NVVM target attribute's
  // model and the LLVM IR translations of every dialect that reaches it.
  registerAllExtensions(registry);
  registerAllToLLVMIRTranslations(registry);
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
}
