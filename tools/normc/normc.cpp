//===- normc.cpp - the normc compiler driver
//-------------------------------===//
//
// normc SPEC.mlir -o OUT --emit=mlir|llvm|asm|obj|shared|header
// normc --op=layer_norm --shape=?x4096 --dtype=bf16 --name=ln -o OUT ...
//
// Every error is one line on stderr and a non-zero exit; the output file is
// only created when everything succeeded.
//
//===----------------------------------------------------------------------===//

#include "QuickSpec.h"
#include "codegen/Emit.h"
#include "codegen/KernelABI.h"
#include "codegen/Passes.h"
#include "dialect/NormDialect.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
namespace cl = llvm::cl;

namespace {

cl::OptionCategory category("normc options");

cl::opt<std::string> inputFile(cl::Positional, cl::desc("<spec.mlir>"),
                               cl::init(""), cl::cat(category));
cl::opt<std::string> outputFile("o", cl::desc("Output file ('-' for stdout)"),
                                cl::value_desc("file"), cl::init("-"),
                                cl::cat(category));
enum class Emit { MLIR, LLVM, Asm, Obj, Shared, Header, PTX };
cl::opt<Emit> emit(
    "emit", cl::desc("What to produce"), cl::init(Emit::Obj),
    cl::values(clEnumValN(Emit::MLIR, "mlir",
                          "the spec (quick form) or the "
                          "parsed spec, in the norm dialect"),
               clEnumValN(Emit::LLVM, "llvm", "optimized LLVM IR"),
               clEnumValN(Emit::Asm, "asm", "x86-64 assembly"),
               clEnumValN(Emit::Obj, "obj", "an object file (default)"),
               clEnumValN(Emit::Shared, "shared",
                          "a bundle: shared library with the kernels and an "
                          "embedded manifest, loadable by the runtime"),
               clEnumValN(Emit::Header, "header",
                          "a C header declaring the kernels"),
               clEnumValN(Emit::PTX, "ptx",
                          "the GPU kernels as PTX for one --gpu-arch "
                          "(default sm_90)")),
    cl::cat(category));
cl::opt<std::string> targetCpu(
    "target-cpu",
    cl::desc("host (default), x86-64-v3 (AVX2), x86-64-v4 (AVX-512) or an "
             "LLVM x86 CPU name"),
    cl::init("host"), cl::cat(category));
cl::opt<std::string> streamingStores(
    "streaming-stores",
    cl::desc("auto (default): outputs of 8 MiB or more are written with "
             "non-temporal stores when aligned; always; never; or a size "
             "in bytes from which auto applies"),
    cl::init("auto"), cl::cat(category));
cl::opt<bool> prefetchNextItem(
    "prefetch-next-item",
    cl::desc("the last pass over a row that fits in cache prefetches the "
             "next row (default true)"),
    cl::init(true), cl::cat(category));
cl::opt<bool> splitLongRows(
    "split-long-rows",
    cl::desc("reduce rows of 64K elements or more in chunks, one work item "
             "each, when there are fewer than 8 rows (forward and backward) "
             "or, for the forward of centered norms, when they hold more "
             "than 256K elements; likewise the batch of fewer than 8 "
             "work items of statistics over 64K elements or more, as "
             "BatchNorm's (default true)"),
    cl::init(true), cl::cat(category));
cl::opt<bool> pipelineItems(
    "pipeline-items",
    cl::desc("a row of up to 64 KiB gets its statistics in the output pass "
             "of the previous row, so that rows stream from memory once "
             "(default true)"),
    cl::init(true), cl::cat(category));
cl::opt<int64_t> onePassMinBytes(
    "one-pass-min-bytes",
    cl::desc("work items (f32/f16/bf16) that are not pipelined and take "
             "at least this many bytes get their statistics from one pass "
             "instead of two (default 524288; 0 always, -1 never)"),
    cl::init(norm::LoopEmitOptions::kDefaultOnePassMinBytes), cl::Hidden,
    cl::cat(category));
cl::list<std::string>
    gpuArchs("gpu-arch",
             cl::desc("also compile GPU kernels (PTX) for these NVIDIA "
                      "architectures, e.g. sm_90 or sm_80,sm_90; bundles "
                      "and objects then carry the PTX (docs/gpu.md)"),
             cl::CommaSeparated, cl::value_desc("sm_NN"), cl::cat(category));
cl::opt<bool> gpuEmulation(
    "gpu-emulation",
    cl::desc("also put host copies of the GPU kernels in the bundle, for "
             "testing without a GPU (test/gpu-emulator)"),
    cl::Hidden, cl::cat(category));
enum OptLevel { O0, O1, O2, O3 };
cl::opt<OptLevel> optLevel(cl::desc("Optimization level"), cl::init(O3),
                           cl::values(clEnumVal(O0, "no optimization"),
                                      clEnumVal(O1, "light"),
                                      clEnumVal(O2, "default pipeline"),
                                      clEnumVal(O3, "aggressive (default)")),
                           cl::cat(category));

cl::OptionCategory quickCategory("quick form (no spec file)");
cl::opt<std::string>
    opName("op",
           cl::desc("layer_norm|rms_norm|batch_norm|instance_norm|group_norm"),
           cl::cat(quickCategory));
cl::opt<std::string> shape("shape",
                           cl::desc("input shape, '?' for dynamic (?x4096)"),
                           cl::cat(quickCategory));
cl::opt<std::string> dtype("dtype", cl::desc("f32 (default), f16, bf16, f64"),
                           cl::init("f32"), cl::cat(quickCategory));
cl::opt<double> eps("eps",
                    cl::desc("epsilon (default: 1e-5; rms_norm: the "
                             "dtype's machine epsilon)"),
                    cl::cat(quickCategory));
cl::opt<bool> epsOutside("eps-outside",
                         cl::desc("1/(sqrt(var)+eps) instead of "
                                  "1/sqrt(var+eps)"),
                         cl::cat(quickCategory));
cl::opt<bool> noAffine("no-affine", cl::desc("no weight/bias"),
                       cl::cat(quickCategory));
cl::opt<int64_t> groups("groups", cl::desc("group_norm: number of groups"),
                        cl::init(0), cl::cat(quickCategory));
cl::opt<bool> training("training",
                       cl::desc("batch_norm: batch statistics and running-"
                                "stat update (default: inference)"),
                       cl::cat(quickCategory));
cl::opt<double> momentum("momentum", cl::desc("batch_norm training momentum"),
                         cl::init(0.1), cl::cat(quickCategory));
cl::opt<std::string> layout("layout",
                            cl::desc("nchw (channel dim 1, default) or nhwc"),
                            cl::init("nchw"), cl::cat(quickCategory));
cl::opt<int64_t> normalizedNdim(
    "normalized-ndim",
    cl::desc("layer_norm/rms_norm: trailing dims normalized (default 1)"),
    cl::init(1), cl::cat(quickCategory));
cl::opt<std::string> kernelName("name", cl::desc("kernel name"),
                                cl::init("kernel"), cl::cat(quickCategory));
cl::opt<bool> backward(
    "backward",
    cl::desc("also emit <name>_backward (dx, and dgamma/dbeta when affine), "
             "derived from the forward; in a spec, mark a function with "
             "attributes {norm.backward} or {norm.backward = [\"dx\"]}"),
    cl::cat(quickCategory));

int fail(const llvm::Twine &message) {
  llvm::errs() << "normc: error: " << message << "\n";
  return 1;
}

/// Header guard from the output file name.
std::string headerGuard(llvm::StringRef path) {
  std::string guard = "NORMC_";
  for (char c : llvm::sys::path::filename(path))
    guard += std::isalnum((unsigned char)c) ? std::toupper(c) : '_';
  return path == "-" ? "NORMC_KERNELS_H" : guard;
}

/// With --gpu-arch (or --emit=ptx): forms the GPU kernels and plans,
/// compiles them to PTX per architecture and records the PTX on the module
/// for the bundle; --emit=ptx prints it instead (returns true: done). The host
/// side (plans and CPU kernels) continues through the CPU pipeline.
FailureOr<bool> compileGpuKernels(ModuleOp module) {
  SmallVector<std::string> archs(gpuArchs.begin(), gpuArchs.end());
  if (emit == Emit::PTX && archs.empty())
    archs.push_back("sm_90");
  if (archs.empty())
    return false;
  for (const std::string &arch : archs)
    if (!norm::isGpuArchName(arch))
      return fail("unknown GPU architecture '" + arch +
                  "' (expected sm_NN, e.g. sm_80 or sm_90)"),
             failure();
  if (emit == Emit::PTX && archs.size() != 1)
    return fail("--emit=ptx prints one architecture; pass a single "
                "--gpu-arch"),
           failure();
  PassManager pm(module.getContext());
  pm.addPass(norm::createNormDeriveBackward());
  pm.addPass(norm::createNormFormGpuKernels());
  if (gpuEmulation)
    pm.addPass(norm::createNormEmulateGpuKernels());
  if (failed(pm.run(module)))
    return failure();
  SmallVector<NamedAttribute> ptx;
  Builder builder(module.getContext());
  for (const std::string &arch : archs) {
    FailureOr<std::string> text = norm::compileGpuKernelsToPTX(module, arch);
    if (failed(text))
      return failure();
    if (emit == Emit::PTX) {
      std::string error;
      auto output = openOutputFile(outputFile, &error);
      if (!output)
        return fail(error), failure();
      output->os() << *text;
      output->keep();
      return true;
    }
    ptx.push_back(builder.getNamedAttr(arch, builder.getStringAttr(*text)));
  }
  norm::eraseGpuKernels(module);
  module->setAttr(norm::kGpuPTXAttrName, builder.getDictionaryAttr(ptx));
  return false;
}

int run(MLIRContext &context) {
  bool quick = !opName.empty();
  if (quick == !inputFile.empty())
    return fail(quick ? "give either a spec file or --op, not both"
                      : "no input: give a spec file or --op=NAME "
                        "(see normc --help)");

  // The spec text and where it comes from.
  llvm::SourceMgr sourceMgr;
  std::string sourceName = inputFile;
  if (quick) {
    normc::QuickSpecOptions options;
    options.op = opName;
    options.shape = shape;
    options.dtype = dtype;
    options.name = kernelName;
    options.layout = layout;
    if (eps.getNumOccurrences())
      options.eps = eps;
    options.epsOutside = epsOutside;
    options.noAffine = noAffine;
    options.training = training;
    options.groups = groups;
    options.normalizedNdim = normalizedNdim;
    options.momentum = momentum;
    options.backward = backward;
    std::string spec, error;
    if (!normc::buildQuickSpec(options, spec, error))
      return fail(error);
    sourceName = "<--op=" + opName + ">";
    sourceMgr.AddNewSourceBuffer(
        llvm::MemoryBuffer::getMemBufferCopy(spec, sourceName), llvm::SMLoc());
  } else {
    std::string error;
    std::unique_ptr<llvm::MemoryBuffer> buffer =
        openInputFile(inputFile, &error);
    if (!buffer)
      return fail("cannot read '" + inputFile + "': " + error);
    sourceMgr.AddNewSourceBuffer(std::move(buffer), llvm::SMLoc());
  }

  // Diagnostics carry file:line:col; keep only the first error line.
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context, llvm::errs());
  OwningOpRef<ModuleOp> module =
      parseSourceFile<ModuleOp>(sourceMgr, ParserConfig(&context));
  if (!module)
    return 1;
  if (module->getOps<func::FuncOp>().empty())
    return fail("'" + sourceName + "' defines no func.func kernels");

  if (emit == Emit::MLIR) {
    std::string error;
    auto output = openOutputFile(outputFile, &error);
    if (!output)
      return fail(error);
    module->print(output->os());
    output->keep();
    return 0;
  }

  // With --emit=ptx the GPU kernels are the whole output.
  FailureOr<bool> written = compileGpuKernels(*module);
  if (failed(written))
    return 1;
  if (*written)
    return 0;

  std::string error;
  norm::TargetOptions targetOptions;
  targetOptions.cpu = targetCpu;
  targetOptions.optLevel = (unsigned)optLevel.getValue();
  std::unique_ptr<llvm::TargetMachine> machine =
      norm::createTargetMachine(targetOptions, error);
  if (!machine)
    return fail(error);

  PassManager pm(&context);
  norm::LowerToLLVMOptions lowerOptions;
  lowerOptions.vectorLength = norm::chooseVectorLength(*machine);
  lowerOptions.manifest = emit == Emit::Shared;
  lowerOptions.prefetchNextItem = prefetchNextItem;
  lowerOptions.splitLongRows = splitLongRows;
  lowerOptions.pipelineItems = pipelineItems;
  lowerOptions.onePassMinBytes = onePassMinBytes;
  if (streamingStores == "always")
    lowerOptions.streamingStoreMinBytes = 0;
  else if (streamingStores == "never")
    lowerOptions.streamingStoreMinBytes = -1;
  else if (streamingStores != "auto") {
    int64_t bytes;
    if (llvm::StringRef(streamingStores).getAsInteger(10, bytes) || bytes < 0)
      return fail("--streaming-stores: expected auto, always, never or a "
                  "size in bytes, got '" +
                  streamingStores + "'");
    lowerOptions.streamingStoreMinBytes = bytes;
  }
  norm::buildLowerToLLVMPipeline(pm, lowerOptions);
  if (failed(pm.run(*module)))
    return 1;

  if (emit == Emit::Header) {
    FailureOr<std::vector<norm::KernelABI>> kernels =
        norm::getModuleKernels(*module);
    if (failed(kernels))
      return fail("internal error: malformed kernel ABI");
    auto output = openOutputFile(outputFile, &error);
    if (!output)
      return fail(error);
    output->os() << norm::writeHeader(*kernels, headerGuard(outputFile),
                                      llvm::sys::path::filename(sourceName));
    output->keep();
    return 0;
  }

  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule = norm::translateAndOptimize(
      *module, llvmContext, *machine, (unsigned)optLevel.getValue(), error);
  if (!llvmModule)
    return fail(error);

  if (emit == Emit::Shared) {
    if (outputFile == "-")
      return fail("--emit=shared needs an output file (-o)");
    llvm::SmallString<128> objectPath;
    if (std::error_code ec =
            llvm::sys::fs::createTemporaryFile("normc", "o", objectPath))
      return fail("cannot create a temporary file: " + ec.message());
    llvm::FileRemover removeObject(objectPath);
    {
      std::error_code ec;
      llvm::raw_fd_ostream os(objectPath, ec);
      if (ec)
        return fail("cannot write '" + objectPath + "': " + ec.message());
      if (!norm::emitMachineCode(*llvmModule, *machine, false, os, error))
        return fail(error);
    }
    // Link next to the destination, then rename: no partial output.
    llvm::SmallString<128> partial(outputFile.getValue());
    partial += ".partial";
    llvm::FileRemover removePartial(partial);
    if (!norm::linkSharedLibrary(objectPath, partial, error))
      return fail(error);
    if (std::error_code ec = llvm::sys::fs::rename(partial, outputFile))
      return fail("cannot write '" + outputFile + "': " + ec.message());
    return 0;
  }

  auto output = openOutputFile(outputFile, &error);
  if (!output)
    return fail(error);
  if (emit == Emit::LLVM) {
    llvmModule->print(output->os(), nullptr);
  } else if (!norm::emitMachineCode(*llvmModule, *machine, emit == Emit::Asm,
                                    output->os(), error)) {
    return fail(error);
  }
  output->keep();
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions({&category, &quickCategory});
  cl::ParseCommandLineOptions(
      argc, argv,
      "normc: compile normalization specs (norm dialect) to CPU kernels\n\n"
      "  normc SPEC.mlir -o OUT --emit=mlir|llvm|asm|obj|shared|header\n"
      "  normc --op=layer_norm --shape=?x4096 --dtype=bf16 --name=ln "
      "-o ln.o\n\n"
      "Each func.func of a spec becomes one exported kernel with a C ABI\n"
      "(docs/abi.md). Errors print one line and exit with status 1.\n");

  DialectRegistry registry;
  registry.insert<norm::NormDialect, func::FuncDialect>();
  norm::registerGpuCodegenDependencies(registry);
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  return run(context);
}
