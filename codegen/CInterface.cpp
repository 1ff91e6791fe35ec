//===- CInterface.cpp - C entry points of generated kernels ---------------===//
//
// After the conversion to the LLVM dialect, each kernel body takes expanded
// memref descriptors. Callers should not need to know that: this pass adds
// plain C entry points built from the recorded KernelABI.
//
//   int32_t __normc_K_packed(void *const *args, const int64_t *dims,
//                            int64_t begin, int64_t end);
//   int64_t __normc_K_work(const int64_t *dims);
//   int32_t K(T *arg0, ..., int64_t d0, ...);
//
// and, for kernels with a workspace, __normc_K_workspace, with their
// finalize step (backward) and prepass (kernels that split long rows):
// see docs/abi.md.
//
//===----------------------------------------------------------------------===//

#include "codegen/KernelABI.h"
#include "codegen/Passes.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

namespace mlir::norm {
#define GEN_PASS_DEF_NORMEMITCINTERFACE
#include "codegen/Passes.h.inc"
} // namespace mlir::norm

using namespace mlir;
using namespace mlir::norm;

namespace {

class EntryBuilder {
public:
  EntryBuilder(ModuleOp module, const KernelABI &abi)
      : module(module), abi(abi), b(module.getContext()),
        ptrType(LLVM::LLVMPointerType::get(module.getContext())),
        i64(b.getI64Type()), i32(b.getI32Type()) {}

  LogicalResult build() {
    body = module.lookupSymbol<LLVM::LLVMFuncOp>(abi.bodySymbol());
    workCount = module.lookupSymbol<LLVM::LLVMFuncOp>(abi.workCountSymbol());
    check = module.lookupSymbol<LLVM::LLVMFuncOp>(abi.checkSymbol());
    if (!body || !workCount || !check)
      return module.emitError()
             << "kernel '" << abi.name << "' has no lowered body";
    for (LLVM::LLVMFuncOp f : {body, workCount, check})
      f.setLinkage(LLVM::Linkage::Internal);
    auto lookupInternal = [&](StringRef symbol, LLVM::LLVMFuncOp &func) {
      func = module.lookupSymbol<LLVM::LLVMFuncOp>(symbol);
      if (func)
        func.setLinkage(LLVM::Linkage::Internal);
      return (bool)func;
    };
    if (abi.hasWorkspace &&
        !lookupInternal(abi.workspaceCountSymbol(), workspaceCount))
      return module.emitError()
             << "kernel '" << abi.name << "' has no lowered workspace size";
    if (abi.hasFinalize &&
        !lookupInternal(abi.finalizeBodySymbol(), finalizeBody))
      return module.emitError()
             << "kernel '" << abi.name << "' has no lowered finalize step";
    if (abi.hasPrepass &&
        (!lookupInternal(abi.prepassBodySymbol(), prepassBody) ||
         !lookupInternal(abi.prepassCountSymbol(), prepassCount)))
      return module.emitError()
             << "kernel '" << abi.name << "' has no lowered prepass";
    b.setInsertionPointToEnd(module.getBody());
    buildWork(abi.workSymbol(), workCount);
    buildPacked(abi.packedSymbol(), workCount, body);
    if (abi.hasWorkspace)
      buildWorkspace();
    if (abi.hasFinalize)
      buildFinalize();
    if (abi.hasPrepass) {
      buildWork(abi.prepassWorkSymbol(), prepassCount);
      buildPacked(abi.prepassSymbol(), prepassCount, prepassBody);
    }
    buildDirect();
    return success();
  }

private:
  Value constant(Type type, int64_t value) {
    return LLVM::ConstantOp::create(b, loc(), type,
                                    b.getIntegerAttr(type, value));
  }
  Location loc() { return module.getLoc(); }

  /// Loads dims[0..numDims).
  SmallVector<Value> loadDims(Value dimsPtr) {
    SmallVector<Value> dims;
    for (unsigned d = 0; d < abi.numDims; ++d) {
      Value address = LLVM::GEPOp::create(b, loc(), ptrType, i64, dimsPtr,
                                          ArrayRef<LLVM::GEPArg>{(int32_t)d});
      dims.push_back(LLVM::LoadOp::create(b, loc(), i64, address));
    }
    return dims;
  }

  /// `int64_t symbol(const int64_t *dims)`: the items of a step.
  void buildWork(StringRef symbol, LLVM::LLVMFuncOp countFn) {
    auto type = LLVM::LLVMFunctionType::get(i64, {ptrType});
    auto func = LLVM::LLVMFuncOp::create(b, loc(), symbol, type);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(func.addEntryBlock(b));
    SmallVector<Value> dims = loadDims(func.getArgument(0));
    Value count = LLVM::CallOp::create(b, loc(), countFn, dims).getResult();
    LLVM::ReturnOp::create(b, loc(), count);
  }

  /// Loads args[0..n) (and the workspace after them) and returns whether a
  /// tensor with elements (or a non-empty workspace) has a null pointer.
  Value loadPointers(Value argsPtr, ArrayRef<Value> dims,
                     SmallVector<Value> &pointers, Value workspaceElements) {
    Value anyNull = constant(b.getI1Type(), 0);
    Value null = LLVM::ZeroOp::create(b, loc(), ptrType);
    unsigned count = abi.args.size() + (abi.hasWorkspace ? 1 : 0);
    for (unsigned i = 0; i < count; ++i) {
      Value slot = LLVM::GEPOp::create(b, loc(), ptrType, ptrType, argsPtr,
                                       ArrayRef<LLVM::GEPArg>{(int32_t)i});
      Value pointer = LLVM::LoadOp::create(b, loc(), ptrType, slot);
      pointers.push_back(pointer);
      Value elements = workspaceElements;
      if (i < abi.args.size()) {
        elements = constant(i64, 1);
        for (int64_t code : abi.args[i].shape)
          elements = LLVM::MulOp::create(b, loc(), elements,
                                         code >= 0 ? constant(i64, code)
                                                   : dims[-code - 1]);
      }
      Value isNull = LLVM::ICmpOp::create(b, loc(), LLVM::ICmpPredicate::eq,
                                          pointer, null);
      Value nonEmpty = LLVM::ICmpOp::create(b, loc(), LLVM::ICmpPredicate::ne,
                                            elements, constant(i64, 0));
      anyNull = LLVM::OrOp::create(
          b, loc(), anyNull, LLVM::AndOp::create(b, loc(), isNull, nonEmpty));
    }
    return anyNull;
  }

  /// Descriptors of every argument (and the workspace) for a lowered body.
  SmallVector<Value> descriptors(ArrayRef<Value> pointers, ArrayRef<Value> dims,
                                 Value workspaceElements) {
    SmallVector<Value> out;
    for (auto [arg, pointer] : llvm::zip(abi.args, pointers))
      appendDescriptor(out, arg, pointer, dims);
    if (abi.hasWorkspace) {
      Value ws = pointers[abi.args.size()];
      out.append(
          {ws, ws, constant(i64, 0), workspaceElements, constant(i64, 1)});
    }
    return out;
  }

  Value workspaceElements(ArrayRef<Value> dims) {
    if (!abi.hasWorkspace)
      return constant(i64, 0);
    return LLVM::CallOp::create(b, loc(), workspaceCount, dims).getResult();
  }

  /// __normc_K_workspace(dims): scratch bytes.
  void buildWorkspace() {
    auto type = LLVM::LLVMFunctionType::get(i64, {ptrType});
    auto func = LLVM::LLVMFuncOp::create(b, loc(), abi.workspaceSymbol(), type);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(func.addEntryBlock(b));
    SmallVector<Value> dims = loadDims(func.getArgument(0));
    Value bytes = LLVM::MulOp::create(b, loc(), workspaceElements(dims),
                                      constant(i64, sizeof(double)));
    LLVM::ReturnOp::create(b, loc(), bytes);
  }

  /// __normc_K_finalize(args, dims): adds the chunks' partial sums.
  void buildFinalize() {
    auto type = LLVM::LLVMFunctionType::get(i32, {ptrType, ptrType});
    auto func = LLVM::LLVMFuncOp::create(b, loc(), abi.finalizeSymbol(), type);
    OpBuilder::InsertionGuard guard(b);
    Block *entry = func.addEntryBlock(b);
    Block *checkPointers = new Block(), *run = new Block(), *exit = new Block();
    for (Block *block : {checkPointers, run, exit})
      func.getBody().push_back(block);
    exit->addArgument(i32, loc());
    b.setInsertionPointToStart(entry);
    SmallVector<Value> dims = loadDims(func.getArgument(1));
    Value code = LLVM::CallOp::create(b, loc(), check, dims).getResult();
    Value failed = LLVM::ICmpOp::create(b, loc(), LLVM::ICmpPredicate::ne, code,
                                        constant(i32, kKernelOk));
    LLVM::CondBrOp::create(b, loc(), failed, exit, ValueRange{code},
                           checkPointers, ValueRange{});
    b.setInsertionPointToStart(checkPointers);
    Value elements = workspaceElements(dims);
    SmallVector<Value> pointers;
    Value anyNull = loadPointers(func.getArgument(0), dims, pointers, elements);
    LLVM::CondBrOp::create(b, loc(), anyNull, exit,
                           ValueRange{constant(i32, kKernelNullPointer)}, run,
                           ValueRange{});
    b.setInsertionPointToStart(run);
    LLVM::CallOp::create(b, loc(), finalizeBody,
                         descriptors(pointers, dims, elements));
    LLVM::BrOp::create(b, loc(), ValueRange{constant(i32, kKernelOk)}, exit);
    b.setInsertionPointToStart(exit);
    LLVM::ReturnOp::create(b, loc(), exit->getArgument(0));
  }

  /// A packed entry point (of the main step or the prepass): every check,
  /// then `stepBody` on [begin, end) clamped to the items of `countFn`.
  void buildPacked(StringRef symbol, LLVM::LLVMFuncOp countFn,
                   LLVM::LLVMFuncOp stepBody) {
    auto type = LLVM::LLVMFunctionType::get(i32, {ptrType, ptrType, i64, i64});
    auto func = LLVM::LLVMFuncOp::create(b, loc(), symbol, type);
    OpBuilder::InsertionGuard guard(b);
    Block *entry = func.addEntryBlock(b);
    Block *computeRange = new Block(), *checkPointers = new Block(),
          *run = new Block(), *exit = new Block();
    for (Block *block : {computeRange, checkPointers, run, exit})
      func.getBody().push_back(block);
    exit->addArgument(i32, loc());

    b.setInsertionPointToStart(entry);
    Value argsPtr = func.getArgument(0);
    SmallVector<Value> dims = loadDims(func.getArgument(1));
    Value code = LLVM::CallOp::create(b, loc(), check, dims).getResult();
    Value failed = LLVM::ICmpOp::create(b, loc(), LLVM::ICmpPredicate::ne, code,
                                        constant(i32, kKernelOk));
    LLVM::CondBrOp::create(b, loc(), failed, exit, ValueRange{code},
                           computeRange, ValueRange{});

    // Clamp [begin, end) to the work items; nothing to do is success, even
    // with null pointers for empty tensors.
    b.setInsertionPointToStart(computeRange);
    Value work = LLVM::CallOp::create(b, loc(), countFn, dims).getResult();
    Value zero = constant(i64, 0);
    Value begin = LLVM::SMaxOp::create(b, loc(), func.getArgument(2), zero);
    Value end = LLVM::SMinOp::create(b, loc(), func.getArgument(3), work);
    Value empty =
        LLVM::ICmpOp::create(b, loc(), LLVM::ICmpPredicate::sge, begin, end);
    Value ok = constant(i32, kKernelOk);
    LLVM::CondBrOp::create(b, loc(), empty, exit, ValueRange{ok}, checkPointers,
                           ValueRange{});

    // A null pointer is only an error for a tensor with elements (an empty
    // batch may come with null data).
    b.setInsertionPointToStart(checkPointers);
    Value elements = workspaceElements(dims);
    SmallVector<Value> pointers;
    Value anyNull = loadPointers(argsPtr, dims, pointers, elements);
    LLVM::CondBrOp::create(b, loc(), anyNull, exit,
                           ValueRange{constant(i32, kKernelNullPointer)}, run,
                           ValueRange{});

    b.setInsertionPointToStart(run);
    SmallVector<Value> bodyArgs = descriptors(pointers, dims, elements);
    bodyArgs.append({begin, end});
    LLVM::CallOp::create(b, loc(), stepBody, bodyArgs);
    LLVM::BrOp::create(b, loc(), ValueRange{ok}, exit);

    b.setInsertionPointToStart(exit);
    LLVM::ReturnOp::create(b, loc(), exit->getArgument(0));
  }

  /// A memref descriptor expanded as the lowered body takes it: allocated
  /// and aligned pointer, offset, sizes, row-major strides.
  void appendDescriptor(SmallVector<Value> &out, const KernelArg &arg,
                        Value pointer, ArrayRef<Value> dims) {
    out.append({pointer, pointer, constant(i64, 0)});
    SmallVector<Value> sizes;
    for (int64_t code : arg.shape)
      sizes.push_back(code >= 0 ? constant(i64, code) : dims[-code - 1]);
    SmallVector<Value> strides(sizes.size());
    Value stride = constant(i64, 1);
    for (int64_t i = sizes.size() - 1; i >= 0; --i) {
      strides[i] = stride;
      stride = LLVM::MulOp::create(b, loc(), stride, sizes[i]);
    }
    out.append(sizes);
    out.append(strides);
  }

  /// The direct entry point: typed pointers and sizes as parameters.
  void buildDirect() {
    SmallVector<Type> params(abi.args.size(), ptrType);
    params.append(abi.numDims, i64);
    auto func = LLVM::LLVMFuncOp::create(
        b, loc(), abi.name, LLVM::LLVMFunctionType::get(i32, params));
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(func.addEntryBlock(b));
    unsigned numArgs = abi.args.size();
    Value argsArray = LLVM::AllocaOp::create(b, loc(), ptrType, ptrType,
                                             constant(i64, numArgs + 1));
    Value dimsArray = LLVM::AllocaOp::create(
        b, loc(), ptrType, i64, constant(i64, std::max(1u, abi.numDims)));
    for (unsigned i = 0; i < numArgs; ++i) {
      Value slot = LLVM::GEPOp::create(b, loc(), ptrType, ptrType, argsArray,
                                       ArrayRef<LLVM::GEPArg>{(int32_t)i});
      LLVM::StoreOp::create(b, loc(), func.getArgument(i), slot);
    }
    for (unsigned d = 0; d < abi.numDims; ++d) {
      Value slot = LLVM::GEPOp::create(b, loc(), ptrType, i64, dimsArray,
                                       ArrayRef<LLVM::GEPArg>{(int32_t)d});
      LLVM::StoreOp::create(b, loc(), func.getArgument(numArgs + d), slot);
    }
    auto runAll = [&](StringRef symbol) {
      auto packed = module.lookupSymbol<LLVM::LLVMFuncOp>(symbol);
      return LLVM::CallOp::create(b, loc(), packed,
                                  ValueRange{argsArray, dimsArray,
                                             constant(i64, 0),
                                             constant(i64, INT64_MAX)})
          .getResult();
    };
    if (!abi.hasWorkspace) {
      LLVM::ReturnOp::create(b, loc(), runAll(abi.packedSymbol()));
      return;
    }
    // The scratch buffer comes from malloc; then every item of the prepass,
    // every work item, and the finalize step run in turn, each only if the
    // one before succeeded.
    Block *allocated = new Block(), *release = new Block(), *exit = new Block();
    for (Block *block : {allocated, release, exit})
      func.getBody().push_back(block);
    release->addArgument(i32, loc());
    exit->addArgument(i32, loc());
    auto workspaceFn =
        module.lookupSymbol<LLVM::LLVMFuncOp>(abi.workspaceSymbol());
    Value bytes =
        LLVM::CallOp::create(b, loc(), workspaceFn, ValueRange{dimsArray})
            .getResult();
    // malloc(0) may return null: ask for at least one byte.
    Value size = LLVM::SMaxOp::create(b, loc(), bytes, constant(i64, 1));
    Value scratch =
        LLVM::CallOp::create(b, loc(), getOrDeclare("malloc", ptrType, {i64}),
                             ValueRange{size})
            .getResult();
    Value failed =
        LLVM::ICmpOp::create(b, loc(), LLVM::ICmpPredicate::eq, scratch,
                             LLVM::ZeroOp::create(b, loc(), ptrType));
    LLVM::CondBrOp::create(b, loc(), failed, exit,
                           ValueRange{constant(i32, kKernelOutOfMemory)},
                           allocated, ValueRange{});
    b.setInsertionPointToStart(allocated);
    Value slot = LLVM::GEPOp::create(b, loc(), ptrType, ptrType, argsArray,
                                     ArrayRef<LLVM::GEPArg>{(int32_t)numArgs});
    LLVM::StoreOp::create(b, loc(), scratch, slot);
    // Each step's code; a failure skips the steps after it.
    auto thenIfOk = [&](Value code) {
      Block *next = new Block();
      func.getBody().getBlocks().insert(release->getIterator(), next);
      Value ok = LLVM::ICmpOp::create(b, loc(), LLVM::ICmpPredicate::eq, code,
                                      constant(i32, kKernelOk));
      LLVM::CondBrOp::create(b, loc(), ok, next, ValueRange{}, release,
                             ValueRange{code});
      b.setInsertionPointToStart(next);
    };
    if (abi.hasPrepass)
      thenIfOk(runAll(abi.prepassSymbol()));
    Value code = runAll(abi.packedSymbol());
    if (abi.hasFinalize) {
      thenIfOk(code);
      auto finalize =
          module.lookupSymbol<LLVM::LLVMFuncOp>(abi.finalizeSymbol());
      code = LLVM::CallOp::create(b, loc(), finalize,
                                  ValueRange{argsArray, dimsArray})
                 .getResult();
    }
    LLVM::BrOp::create(b, loc(), ValueRange{code}, release);
    b.setInsertionPointToStart(release);
    LLVM::CallOp::create(b, loc(),
                         getOrDeclare("free",
                                      LLVM::LLVMVoidType::get(b.getContext()),
                                      {ptrType}),
                         ValueRange{scratch});
    LLVM::BrOp::create(b, loc(), ValueRange{release->getArgument(0)}, exit);
    b.setInsertionPointToStart(exit);
    LLVM::ReturnOp::create(b, loc(), exit->getArgument(0));
  }

  LLVM::LLVMFuncOp getOrDeclare(StringRef name, Type result,
                                ArrayRef<Type> params) {
    if (auto existing = module.lookupSymbol<LLVM::LLVMFuncOp>(name))
      return existing;
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(module.getBody());
    return LLVM::LLVMFuncOp::create(
        b, loc(), name, LLVM::LLVMFunctionType::get(result, params));
  }

  ModuleOp module;
  const KernelABI &abi;
  OpBuilder b;
  Type ptrType, i64, i32;
  LLVM::LLVMFuncOp body, workCount, check;
  LLVM::LLVMFuncOp finalizeBody, workspaceCount, prepassBody, prepassCount;
};

/// The PTX of each architecture recorded on the module (kGpuPTXAttrName).
SmallVector<std::pair<std::string, std::string>> getModulePTX(ModuleOp module) {
  SmallVector<std::pair<std::string, std::string>> ptx;
  if (auto dict = module->getAttrOfType<DictionaryAttr>(kGpuPTXAttrName))
    for (NamedAttribute entry : dict)
      if (auto text = dyn_cast<StringAttr>(entry.getValue()))
        ptx.emplace_back(entry.getName().str(), text.str());
  return ptx;
}

/// `const char normc_gpu_ptx_<arch>[]`, NUL-terminated.
void addPTX(ModuleOp module) {
  OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
  for (auto [arch, text] : getModulePTX(module)) {
    std::string data = text;
    data.push_back('\0');
    auto arrayType = LLVM::LLVMArrayType::get(b.getI8Type(), data.size());
    LLVM::GlobalOp::create(b, module.getLoc(), arrayType, /*isConstant=*/true,
                           LLVM::Linkage::External, "normc_gpu_ptx_" + arch,
                           b.getStringAttr(data));
  }
  module->removeAttr(kGpuPTXAttrName);
}

void addManifest(ModuleOp module, ArrayRef<KernelABI> kernels) {
  OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
  SmallVector<std::string> archs;
  for (auto &entry : getModulePTX(module))
    archs.push_back(entry.first);
  std::string manifest = writeManifest(kernels, archs);
  manifest.push_back('\0');
  auto arrayType = LLVM::LLVMArrayType::get(b.getI8Type(), manifest.size());
  LLVM::GlobalOp::create(b, module.getLoc(), arrayType, /*isConstant=*/true,
                         LLVM::Linkage::External, "normc_manifest",
                         b.getStringAttr(manifest));
  LLVM::GlobalOp::create(b, module.getLoc(), b.getI32Type(),
                         /*isConstant=*/true, LLVM::Linkage::External,
                         "normc_abi_version",
                         b.getI32IntegerAttr(kBundleAbiVersion));
}

struct NormEmitCInterfacePass
    : public norm::impl::NormEmitCInterfaceBase<NormEmitCInterfacePass> {
  using NormEmitCInterfaceBase::NormEmitCInterfaceBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    FailureOr<std::vector<KernelABI>> kernels = getModuleKernels(module);
    if (failed(kernels)) {
      module.emitError("malformed normc.kernels attribute");
      return signalPassFailure();
    }
    for (const KernelABI &abi : *kernels)
      if (failed(EntryBuilder(module, abi).build()))
        return signalPassFailure();
    if (manifest)
      addManifest(module, *kernels);
    addPTX(module);
    addGpuEmulationEntries(module);
  }
};

} // namespace
