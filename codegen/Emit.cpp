//===- Emit.cpp - LLVM IR, assembly, objects and shared libraries ---------===//

#include "codegen/Emit.h"

#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/Triple.h"

using namespace mlir;

std::unique_ptr<llvm::TargetMachine>
norm::createTargetMachine(const TargetOptions &options, std::string &error) {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  llvm::Triple triple("x86_64-unknown-linux-gnu");
  const llvm::Target *target =
      llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return nullptr;
  std::string cpu = options.cpu;
  std::string features;
  if (cpu == "host") {
    cpu = llvm::sys::getHostCPUName().str();
    llvm::StringMap<bool> hostFeatures = llvm::sys::getHostCPUFeatures();
    for (auto &feature : hostFeatures)
      features += (features.empty() ? "" : ",") +
                  std::string(feature.second ? "+" : "-") +
                  feature.first().str();
  }
  std::unique_ptr<llvm::MCSubtargetInfo> subtarget(
      target->createMCSubtargetInfo(triple, "", ""));
  if (subtarget && !subtarget->isCPUStringValid(cpu)) {
    error = "unknown target CPU '" + options.cpu +
            "' (use host, x86-64-v3, x86-64-v4 or an LLVM x86 CPU name)";
    return nullptr;
  }
  llvm::TargetOptions targetOptions;
  std::optional<llvm::Reloc::Model> reloc = llvm::Reloc::PIC_;
  llvm::CodeGenOptLevel level =
      options.optLevel == 0   ? llvm::CodeGenOptLevel::None
      : options.optLevel == 1 ? llvm::CodeGenOptLevel::Less
      : options.optLevel == 2 ? llvm::CodeGenOptLevel::Default
                              : llvm::CodeGenOptLevel::Aggressive;
  return std::unique_ptr<llvm::TargetMachine>(target->createTargetMachine(
      triple, cpu, features, targetOptions, reloc, std::nullopt, level));
}

int64_t norm::chooseVectorLength(const llvm::TargetMachine &machine) {
  llvm::StringRef features = machine.getTargetFeatureString();
  llvm::StringRef cpu = machine.getTargetCPU();
  bool avx512 =
      features.contains("+avx512f") ||
      (features.empty() &&
       (cpu == "x86-64-v4" || cpu.contains("avx512") ||
        cpu == "sapphirerapids" || cpu == "skylake-avx512" ||
        cpu == "icelake-server" || cpu == "znver4" || cpu == "znver5"));
  return avx512 ? 64 : 32;
}

std::unique_ptr<llvm::Module>
norm::translateAndOptimize(ModuleOp module, llvm::LLVMContext &context,
                           llvm::TargetMachine &machine, unsigned optLevel,
                           std::string &error) {
  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(module, context, "normc");
  if (!llvmModule) {
    error = "translation to LLVM IR failed";
    return nullptr;
  }
  llvmModule->setTargetTriple(machine.getTargetTriple());
  llvmModule->setDataLayout(machine.createDataLayout());
  // Kernels carry the CPU and its features so that every function, not
  // just the code generator's default, is compiled for them.
  for (llvm::Function &function : *llvmModule) {
    if (function.isDeclaration())
      continue;
    function.addFnAttr("target-cpu", machine.getTargetCPU());
    if (!machine.getTargetFeatureString().empty())
      function.addFnAttr("target-features", machine.getTargetFeatureString());
  }
  auto optimize =
      makeOptimizingTransformer(optLevel, /*sizeLevel=*/0, &machine);
  if (llvm::Error err = optimize(llvmModule.get())) {
    error = llvm::toString(std::move(err));
    return nullptr;
  }
  return llvmModule;
}

bool norm::emitMachineCode(llvm::Module &module, llvm::TargetMachine &machine,
                           bool assembly, llvm::raw_pwrite_stream &os,
                           std::string &error) {
  llvm::legacy::PassManager passes;
  auto type = assembly ? llvm::CodeGenFileType::AssemblyFile
                       : llvm::CodeGenFileType::ObjectFile;
  if (machine.addPassesToEmitFile(passes, os, nullptr, type)) {
    error = "the target cannot emit this file type";
    return false;
  }
  passes.run(module);
  return true;
}

bool norm::linkSharedLibrary(llvm::StringRef objectPath,
                             llvm::StringRef outputPath, std::string &error) {
  llvm::ErrorOr<std::string> driver = llvm::sys::findProgramByName("cc");
  if (!driver)
    driver = llvm::sys::findProgramByName("clang-22");
  if (!driver) {
    error = "no C compiler driver (cc) found to link the shared library";
    return false;
  }
  llvm::SmallVector<llvm::StringRef> args = {*driver, "-shared", "-o",
                                             outputPath, objectPath};
  std::string message;
  int rc = llvm::sys::ExecuteAndWait(*driver, args, std::nullopt, {}, 0, 0,
                                     &message);
  if (rc != 0) {
    error = "linking " + outputPath.str() + " failed" +
            (message.empty() ? "" : ": " + message);
    return false;
  }
  return true;
}
