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
      return module.emitError() << "kernel '" << abi.name
                                << "' has no lowered body";
    for (LLVM::LLVMFuncOp f : {body, workCount, check})
      f.setLinkage(LLVM::Linkage::Internal);
    b.setInsertionPointToEnd(module.getBody());
    buildWork();
    buildPacked();
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

  void buildWork() {
    auto type = LLVM::LLVMFunctionType::get(i64, {ptrType});
    auto func = LLVM::LLVMFuncOp::create(b, loc(), abi.workSymbol(), type);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(func.addEntryBlock(b));
    SmallVector<Value> dims = loadDims(func.getArgument(0));
    Value count = LLVM::CallOp::create(b, loc(), workCount, dims).getResult();
    LLVM::ReturnOp::create(b, loc(), count);
  }

  /// The packed entry point: every check, then the body on [begin, end).
  void buildPacked() {
    auto type =
        LLVM::LLVMFunctionType::get(i32, {ptrType, ptrType, i64, i64});
    auto func = LLVM::LLVMFuncOp::create(b, loc(), abi.packedSymbol(), type);
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
    Value failed = LLVM::ICmpOp::create(b, loc(), LLVM::ICmpPredicate::ne,
                                        code, constant(i32, kKernelOk));
    LLVM::CondBrOp::create(b, loc(), failed, exit, ValueRange{code},
                           computeRange, ValueRange{});

    // Clamp [begin, end) to the work items; nothing to do is success, even
    // with null pointers for empty tensors.
    b.setInsertionPointToStart(computeRange);
    Value work = LLVM::CallOp::create(b, loc(), workCount, dims).getResult();
    Value zero = constant(i64, 0);
    Value begin = LLVM::SMaxOp::create(b, loc(), func.getArgument(2), zero);
    Value end = LLVM::SMinOp::create(b, loc(), func.getArgument(3), work);
    Value empty = LLVM::ICmpOp::create(b, loc(), LLVM::ICmpPredicate::sge,
                                       begin, end);
    Value ok = constant(i32, kKernelOk);
    LLVM::CondBrOp::create(b, loc(), empty, exit, ValueRange{ok},
                           checkPointers, ValueRange{});

    b.setInsertionPointToStart(checkPointers);
    SmallVector<Value> pointers;
    Value anyNull = constant(b.getI1Type(), 0);
    Value null = LLVM::ZeroOp::create(b, loc(), ptrType);
    for (unsigned i = 0; i < abi.args.size(); ++i) {
      Value slot = LLVM::GEPOp::create(b, loc(), ptrType, ptrType, argsPtr,
                                       ArrayRef<LLVM::GEPArg>{(int32_t)i});
      Value pointer = LLVM::LoadOp::create(b, loc(), ptrType, slot);
      pointers.push_back(pointer);
      anyNull = LLVM::OrOp::create(
          b, loc(), anyNull,
          LLVM::ICmpOp::create(b, loc(), LLVM::ICmpPredicate::eq, pointer,
                               null));
    }
    LLVM::CondBrOp::create(b, loc(), anyNull, exit,
                           ValueRange{constant(i32, kKernelNullPointer)}, run,
                           ValueRange{});

    b.setInsertionPointToStart(run);
    SmallVector<Value> bodyArgs;
    for (auto [arg, pointer] : llvm::zip(abi.args, pointers))
      appendDescriptor(bodyArgs, arg, pointer, dims);
    bodyArgs.append({begin, end});
    LLVM::CallOp::create(b, loc(), body, bodyArgs);
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
    Value argsArray = LLVM::AllocaOp::create(
        b, loc(), ptrType, ptrType, constant(i64, std::max(1u, numArgs)));
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
    auto packed = module.lookupSymbol<LLVM::LLVMFuncOp>(abi.packedSymbol());
    Value code =
        LLVM::CallOp::create(b, loc(), packed,
                             ValueRange{argsArray, dimsArray, constant(i64, 0),
                                        constant(i64, INT64_MAX)})
            .getResult();
    LLVM::ReturnOp::create(b, loc(), code);
  }

  ModuleOp module;
  const KernelABI &abi;
  OpBuilder b;
  Type ptrType, i64, i32;
  LLVM::LLVMFuncOp body, workCount, check;
};

void addManifest(ModuleOp module, ArrayRef<KernelABI> kernels) {
  OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
  std::string manifest = writeManifest(kernels);
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
  }
};

} // namespace
