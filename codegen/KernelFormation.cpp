//===- KernelFormation.cpp - spec functions to kernels on memrefs ---------===//
//
// A spec function is a declaration: one norm op, arguments in, results out.
// This pass gives it a calling convention (destination buffers for the
// results, a range of work items for threading) and emits its loops.
//
//===----------------------------------------------------------------------===//

#include "codegen/KernelABI.h"
#include "codegen/NormalizeToLoops.h"
#include "codegen/Passes.h"
#include "codegen/ShapeChecks.h"
#include "dialect/NormOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::norm {
#define GEN_PASS_DEF_NORMFORMKERNELS
#include "codegen/Passes.h.inc"
} // namespace mlir::norm

using namespace mlir;
using namespace mlir::norm;

namespace {

std::string dtypeName(Type type) {
  if (type.isF32())
    return "f32";
  if (type.isF16())
    return "f16";
  if (type.isBF16())
    return "bf16";
  return "f64";
}

std::string describeAttrs(const NormDescription &desc) {
  std::string text;
  llvm::raw_string_ostream os(text);
  auto list = [&](ArrayRef<int64_t> dims) {
    os << "[";
    llvm::interleaveComma(dims, os);
    os << "]";
  };
  os << "{\"reduction_dims\": ";
  list(desc.reductionDims);
  os << ", \"center\": " << (desc.center ? "true" : "false")
     << ", \"eps\": " << llvm::format("%.17g", desc.epsilon)
     << ", \"eps_outside\": "
     << (desc.epsPlacement == EpsPlacement::Outside ? "true" : "false")
     << ", \"affine_dims\": ";
  list(desc.affineDims);
  if (desc.groupDim)
    os << ", \"group_dim\": " << *desc.groupDim
       << ", \"num_groups\": " << *desc.numGroups;
  os << ", \"given_stats\": " << (desc.givenStats ? "true" : "false");
  if (desc.momentum)
    os << ", \"momentum\": " << llvm::format("%.17g", *desc.momentum);
  os << "}";
  return text;
}

MemRefType memrefFor(ArrayRef<int64_t> codes, Type element) {
  SmallVector<int64_t> shape;
  for (int64_t code : codes)
    shape.push_back(code < 0 ? ShapedType::kDynamic : code);
  return MemRefType::get(shape, getStorageType(element));
}

/// The spec function's norm op (forward or backward), if the function has
/// the supported form.
FailureOr<Operation *> getKernelOp(func::FuncOp func) {
  Operation *normOp = nullptr;
  for (Operation &op : func.getBody().front()) {
    if (isa<func::ReturnOp>(op))
      continue;
    bool isNorm = isa<NormalizationOpInterface, NormalizeBackwardOp>(op);
    if (!isNorm || normOp) {
      op.emitError() << "kernel '" << func.getSymName()
                     << "' must contain exactly one norm op and a return; "
                        "this op is not supported here";
      return failure();
    }
    normOp = &op;
  }
  if (!normOp) {
    func.emitError() << "kernel '" << func.getSymName()
                     << "' contains no norm op";
    return failure();
  }
  for (OpOperand &operand : normOp->getOpOperands())
    if (!isa<BlockArgument>(operand.get())) {
      normOp->emitError() << "kernel '" << func.getSymName() << "': operand #"
                          << operand.getOperandNumber()
                          << " must be a function argument";
      return failure();
    }
  return normOp;
}

struct Roles {
  /// ABI name of each function argument and of each returned value.
  SmallVector<std::string> argNames, resultNames;
};

LogicalResult nameRoles(func::FuncOp func, NormalizationOpInterface op,
                        Roles &roles) {
  NormOperands in = op.getNormOperands();
  NormResults out = op.getNormResults();
  std::pair<Value, const char *> inputs[] = {{in.input, "x"},
                                             {in.gamma, "gamma"},
                                             {in.beta, "beta"},
                                             {in.givenMean, "mean"},
                                             {in.givenVar, "var"},
                                             {in.runningMean, "running_mean"},
                                             {in.runningVar, "running_var"}};
  for (BlockArgument arg : func.getArguments()) {
    std::string name = "unused" + std::to_string(arg.getArgNumber());
    for (auto [value, role] : inputs)
      if (value == arg) {
        name = role;
        break;
      }
    roles.argNames.push_back(name);
  }
  std::pair<Value, const char *> outputs[] = {
      {out.output, "y"},
      {out.savedMean, "mean"},
      {out.savedRstd, "rstd"},
      {out.runningMeanOut, "running_mean_out"},
      {out.runningVarOut, "running_var_out"}};
  auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  for (OpOperand &operand : ret->getOpOperands()) {
    std::string name;
    for (auto [value, role] : outputs)
      if (value && value == operand.get())
        name = role;
    if (name.empty()) {
      ret.emitError() << "kernel '" << func.getSymName()
                      << "': returned value #" << operand.getOperandNumber()
                      << " is not a result of the norm op";
      return failure();
    }
    if (llvm::is_contained(roles.resultNames, name)) {
      ret.emitError() << "kernel '" << func.getSymName() << "' returns '"
                      << name << "' twice";
      return failure();
    }
    roles.resultNames.push_back(name);
  }
  return success();
}

struct NormFormKernelsPass
    : public norm::impl::NormFormKernelsBase<NormFormKernelsPass> {
  /// The loop emitter's options, from the pass options.
  LoopEmitOptions loopEmitOptions() const {
    LoopEmitOptions options;
    options.vectorLength = vectorLength;
    options.streamingStoreMinBytes = streamingStoreMinBytes;
    options.prefetchNextItem = prefetchNextItem;
    options.splitLongRows = splitLongRows;
    options.pipelineItems = pipelineItems;
    options.onePassMinBytes = onePassMinBytes;
    return options;
  }

  using NormFormKernelsBase::NormFormKernelsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<Attribute> kernels;
    if (auto existing = module->getAttrOfType<ArrayAttr>(kKernelsAttrName))
      llvm::append_range(kernels, existing);
    for (func::FuncOp func :
         llvm::make_early_inc_range(module.getOps<func::FuncOp>())) {
      if (func.isExternal() || func.isPrivate() ||
          func->hasAttr(kGpuPlanAttrName))
        continue;
      FailureOr<KernelABI> abi = formKernel(func);
      if (failed(abi))
        return signalPassFailure();
      if (auto functions =
              func->getAttrOfType<ArrayAttr>(kGpuFunctionsAttrName))
        for (Attribute name : functions)
          abi->gpuFunctions.push_back(cast<StringAttr>(name).str());
      kernels.push_back(abi->toAttr(&getContext()));
      func.erase();
    }
    module->setAttr(kKernelsAttrName, ArrayAttr::get(&getContext(), kernels));
  }

  FailureOr<KernelABI> formKernel(func::FuncOp func) {
    FailureOr<Operation *> kernelOp = getKernelOp(func);
    if (failed(kernelOp))
      return failure();
    if (auto backward = dyn_cast<NormalizeBackwardOp>(*kernelOp))
      return formBackwardKernel(func, backward);
    auto named = cast<NormalizationOpInterface>(*kernelOp);
    // Named ops are generalized here so that the kernel keeps the name the
    // user wrote (for the manifest) and the lowering sees the generic op.
    std::string opName = named->getName().stripDialect().str();
    IRRewriter rewriter(&getContext());
    NormalizationOpInterface op = generalizeNormOp(rewriter, named);
    Roles roles;
    if (failed(nameRoles(func, op, roles)))
      return failure();

    NormDescription desc = op.getDescription();
    NormOperands operands = op.getNormOperands();
    auto inputType = cast<RankedTensorType>(operands.input.getType());
    Type elementType = inputType.getElementType();
    SmallVector<int64_t> xCodes = getInputShapeCodes(inputType);
    SmallVector<int64_t> statsCodes = getStatisticsShape(desc, xCodes);
    SmallVector<int64_t> affineCodes = getAffineShape(desc, xCodes);

    // Every shape derives from x's, so x's dynamic dims are the only sizes
    // the caller passes.
    KernelABI abi;
    abi.name = func.getSymName().str();
    abi.kind = "forward";
    abi.op = opName;
    abi.attrsJson = describeAttrs(desc);
    abi.numDims = llvm::count_if(xCodes, [](int64_t c) { return c < 0; });
    auto codesFor = [&](StringRef role) -> ArrayRef<int64_t> {
      if (role == "x" || role == "y")
        return xCodes;
      if (role == "gamma" || role == "beta")
        return affineCodes;
      return statsCodes;
    };
    SmallVector<Type> memrefTypes;
    for (auto [arg, name] : llvm::zip(func.getArguments(), roles.argNames)) {
      auto type = cast<RankedTensorType>(arg.getType());
      KernelArg karg{name, false, dtypeName(type.getElementType()), {}, ""};
      karg.shape = StringRef(name).starts_with("unused")
                       ? getInputShapeCodes(type)
                       : llvm::to_vector(codesFor(name));
      if (llvm::any_of(karg.shape, [](int64_t c) { return c < 0; }) &&
          StringRef(name).starts_with("unused")) {
        func.emitError() << "kernel '" << abi.name << "': argument #"
                         << arg.getArgNumber()
                         << " is unused by the norm op and has dynamic dims";
        return failure();
      }
      memrefTypes.push_back(memrefFor(karg.shape, type.getElementType()));
      abi.args.push_back(karg);
    }
    auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
    for (auto [value, name] : llvm::zip(ret.getOperands(), roles.resultNames)) {
      Type element = cast<RankedTensorType>(value.getType()).getElementType();
      KernelArg karg{name, true, dtypeName(element),
                     llvm::to_vector(codesFor(name)), ""};
      // The output is written after the last read of the same element.
      if (name == "y")
        karg.inplace = "x";
      memrefTypes.push_back(memrefFor(karg.shape, element));
      abi.args.push_back(karg);
    }

    // Long rows are reduced in chunks by a prepass (canSplitRows), whose
    // partial statistics live in a workspace.
    LoopEmitOptions options = loopEmitOptions();
    if (canSplitRows(desc, inputType.getShape(), elementType, options)) {
      abi.hasWorkspace = true;
      abi.hasPrepass = true;
    }

    OpBuilder moduleBuilder(func);
    ImplicitLocOpBuilder b(func.getLoc(), moduleBuilder);
    emitBody(b, abi, desc, memrefTypes, func, op, roles, /*prepass=*/false);
    if (abi.hasPrepass) {
      emitBody(b, abi, desc, memrefTypes, func, op, roles, /*prepass=*/true);
      emitSizeFunction(
          b, abi.prepassCountSymbol(), abi, xCodes, [&](ValueRange sizes) {
            return emitPrepassWorkCount(b, desc, elementType, sizes, options);
          });
      emitSizeFunction(b, abi.workspaceCountSymbol(), abi, xCodes,
                       [&](ValueRange sizes) {
                         return emitRowSplitWorkspaceSize(b, desc, elementType,
                                                          sizes, options);
                       });
    }
    emitSizeFunction(
        b, abi.workCountSymbol(), abi, xCodes, [&](ValueRange sizes) {
          return emitForwardWorkCount(b, desc, elementType, sizes, options);
        });
    emitCheck(b, abi, desc, xCodes);
    return abi;
  }

  /// A backward spec function: dy, x, gamma, statistics in; gradients out.
  FailureOr<KernelABI> formBackwardKernel(func::FuncOp func,
                                          NormalizeBackwardOp op) {
    NormDescription desc = op.getDescription();
    NormBackwardRoles roles = op.getRoles();
    auto inputType = cast<RankedTensorType>(roles.input.getType());
    Type elementType = inputType.getElementType();
    SmallVector<int64_t> xCodes = getInputShapeCodes(inputType);
    SmallVector<int64_t> statsCodes = getStatisticsShape(desc, xCodes);
    SmallVector<int64_t> affineCodes = getAffineShape(desc, xCodes);

    KernelABI abi;
    abi.name = func.getSymName().str();
    abi.kind = "backward";
    auto opName = func->getAttrOfType<StringAttr>(kForwardOpAttrName);
    abi.op = opName ? opName.str() : "normalize";
    abi.attrsJson = describeAttrs(desc);
    abi.numDims = llvm::count_if(xCodes, [](int64_t c) { return c < 0; });
    abi.hasWorkspace = true;
    abi.hasFinalize = true;

    std::pair<Value, const char *> inputs[] = {
        {roles.gradOutput, "dy"}, {roles.input, "x"},   {roles.gamma, "gamma"},
        {roles.mean, "mean"},     {roles.rstd, "rstd"}, {roles.var, "var"}};
    SmallVector<Type> memrefTypes;
    NormBackwardBuffers buffers; // filled with block arguments below
    SmallVector<Value *> argSlots;
    Value *slotFor[] = {&buffers.gradOutput, &buffers.input, &buffers.gamma,
                        &buffers.mean,       &buffers.rstd,  &buffers.var};
    for (BlockArgument arg : func.getArguments()) {
      int role = -1;
      for (auto [index, entry] : llvm::enumerate(inputs))
        if (entry.first == arg) {
          role = index;
          break;
        }
      if (role < 0) {
        func.emitError() << "kernel '" << abi.name << "': argument #"
                         << arg.getArgNumber()
                         << " is not used by the backward op";
        return failure();
      }
      StringRef name = inputs[role].second;
      auto type = cast<RankedTensorType>(arg.getType());
      ArrayRef<int64_t> codes = role < 2    ? ArrayRef<int64_t>(xCodes)
                                : role == 2 ? ArrayRef<int64_t>(affineCodes)
                                            : ArrayRef<int64_t>(statsCodes);
      abi.args.push_back({name.str(), false, dtypeName(type.getElementType()),
                          llvm::to_vector(codes), ""});
      memrefTypes.push_back(memrefFor(codes, type.getElementType()));
      argSlots.push_back(slotFor[role]);
    }
    std::pair<Value, const char *> outputs[] = {{roles.gradInput, "dx"},
                                                {roles.gradGamma, "dgamma"},
                                                {roles.gradBeta, "dbeta"}};
    Value *outSlot[] = {&buffers.gradInput, &buffers.gradGamma,
                        &buffers.gradBeta};
    auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
    bool returned[3] = {false, false, false};
    for (OpOperand &operand : ret->getOpOperands()) {
      int role = -1;
      for (auto [index, entry] : llvm::enumerate(outputs))
        if (entry.first && entry.first == operand.get())
          role = index;
      if (role < 0) {
        ret.emitError() << "kernel '" << abi.name << "': returned value #"
                        << operand.getOperandNumber()
                        << " is not a result of the backward op";
        return failure();
      }
      if (returned[role]) {
        ret.emitError() << "kernel '" << abi.name << "' returns '"
                        << outputs[role].second << "' twice";
        return failure();
      }
      returned[role] = true;
      ArrayRef<int64_t> codes = role == 0 ? ArrayRef<int64_t>(xCodes)
                                          : ArrayRef<int64_t>(affineCodes);
      abi.args.push_back({outputs[role].second, true, dtypeName(elementType),
                          llvm::to_vector(codes), ""});
      memrefTypes.push_back(memrefFor(codes, elementType));
      argSlots.push_back(outSlot[role]);
    }
    // Partial sums only for the gradients the kernel returns.
    int64_t numPartials = returned[1] + returned[2];

    OpBuilder moduleBuilder(func);
    ImplicitLocOpBuilder b(func.getLoc(), moduleBuilder);
    LoopEmitOptions options = loopEmitOptions();
    // Few long rows are split: a prepass sums pass A per row chunk.
    abi.hasPrepass = canSplitBackwardRows(&getContext(), desc,
                                          inputType.getShape(), options);
    Type workspaceType =
        MemRefType::get({ShapedType::kDynamic}, b.getF64Type());
    auto bindArgs = [&](Block *entry) {
      buffers = NormBackwardBuffers();
      buffers.elementType = elementType;
      for (auto [index, slot] : llvm::enumerate(argSlots))
        *slot = entry->getArgument(index);
      buffers.workspace = entry->getArgument(argSlots.size());
    };
    auto makeFunc = [&](StringRef name, SmallVector<Type> extra) {
      SmallVector<Type> types(memrefTypes);
      types.push_back(workspaceType);
      types.append(extra);
      auto f = func::FuncOp::create(b, name, b.getFunctionType(types, {}));
      f.setPrivate();
      return f;
    };
    {
      OpBuilder::InsertionGuard guard(b);
      func::FuncOp body =
          makeFunc(abi.bodySymbol(), {b.getIndexType(), b.getIndexType()});
      Block *entry = body.addEntryBlock();
      b.setInsertionPointToStart(entry);
      bindArgs(entry);
      unsigned n = entry->getNumArguments();
      emitNormalizeBackwardLoops(b, desc, buffers, entry->getArgument(n - 2),
                                 entry->getArgument(n - 1), options);
      func::ReturnOp::create(b);
    }
    if (abi.hasPrepass) {
      {
        OpBuilder::InsertionGuard guard(b);
        func::FuncOp body = makeFunc(abi.prepassBodySymbol(),
                                     {b.getIndexType(), b.getIndexType()});
        Block *entry = body.addEntryBlock();
        b.setInsertionPointToStart(entry);
        bindArgs(entry);
        unsigned n = entry->getNumArguments();
        emitNormalizeBackwardPrepassLoops(b, desc, buffers,
                                          entry->getArgument(n - 2),
                                          entry->getArgument(n - 1), options);
        func::ReturnOp::create(b);
      }
      emitSizeFunction(
          b, abi.prepassCountSymbol(), abi, xCodes, [&](ValueRange sizes) {
            return emitBackwardPrepassWorkCount(b, desc, sizes, options);
          });
    }
    {
      OpBuilder::InsertionGuard guard(b);
      func::FuncOp finalize = makeFunc(abi.finalizeBodySymbol(), {});
      Block *entry = finalize.addEntryBlock();
      b.setInsertionPointToStart(entry);
      bindArgs(entry);
      SmallVector<Value> sizes;
      for (int64_t d = 0; d < inputType.getRank(); ++d)
        sizes.push_back(b.createOrFold<memref::DimOp>(buffers.input, d));
      Value chunks = emitBackwardChunkCount(b, desc, sizes, options);
      if (buffers.gradGamma || buffers.gradBeta)
        emitNormalizeBackwardFinalize(b, desc, buffers, chunks, options);
      func::ReturnOp::create(b);
    }
    emitSizeFunction(b, abi.workCountSymbol(), abi, xCodes,
                     [&](ValueRange sizes) {
                       return emitBackwardWorkCount(b, desc, sizes, options);
                     });
    emitSizeFunction(b, abi.workspaceCountSymbol(), abi, xCodes,
                     [&](ValueRange sizes) {
                       return emitBackwardWorkspaceSize(b, desc, sizes,
                                                        numPartials, options);
                     });
    // An empty reduction is fine for backward: dx is empty and dgamma/dbeta
    // are sums over nothing (zero), as in PyTorch.
    desc.momentum.reset();
    emitCheck(b, abi, desc, xCodes, /*allowEmptyReduction=*/true);
    return abi;
  }

  /// The body (or, with `prepass`, the prepass body) of a forward kernel:
  /// the memrefs, the workspace if any, then the range of work items.
  void emitBody(ImplicitLocOpBuilder &b, const KernelABI &abi,
                const NormDescription &desc, ArrayRef<Type> memrefTypes,
                func::FuncOp spec, NormalizationOpInterface op,
                const Roles &roles, bool prepass) {
    SmallVector<Type> argTypes(memrefTypes);
    if (abi.hasWorkspace)
      argTypes.push_back(
          MemRefType::get({ShapedType::kDynamic}, b.getF64Type()));
    argTypes.append({b.getIndexType(), b.getIndexType()});
    auto body = func::FuncOp::create(
        b, prepass ? abi.prepassBodySymbol() : abi.bodySymbol(),
        b.getFunctionType(argTypes, {}));
    body.setPrivate();
    Block *entry = body.addEntryBlock();
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(entry);

    NormOperands in = op.getNormOperands();
    NormResults out = op.getNormResults();
    auto argFor = [&](Value operand) -> Value {
      if (!operand)
        return Value();
      return entry->getArgument(cast<BlockArgument>(operand).getArgNumber());
    };
    unsigned numInputs = spec.getNumArguments();
    auto resultFor = [&](StringRef role) -> Value {
      for (auto [index, name] : llvm::enumerate(roles.resultNames))
        if (name == role)
          return entry->getArgument(numInputs + index);
      return Value();
    };
    NormBuffers buffers;
    buffers.elementType = getElementTypeOrSelf(in.input.getType());
    buffers.input = argFor(in.input);
    buffers.gamma = argFor(in.gamma);
    buffers.beta = argFor(in.beta);
    buffers.givenMean = argFor(in.givenMean);
    buffers.givenVar = argFor(in.givenVar);
    buffers.runningMean = argFor(in.runningMean);
    buffers.runningVar = argFor(in.runningVar);
    buffers.output = resultFor("y");
    buffers.savedMean = resultFor("mean");
    buffers.savedRstd = resultFor("rstd");
    buffers.runningMeanOut = resultFor("running_mean_out");
    buffers.runningVarOut = resultFor("running_var_out");
    (void)out;
    LoopEmitOptions options = loopEmitOptions();
    unsigned numArgs = entry->getNumArguments();
    if (abi.hasWorkspace)
      buffers.workspace = entry->getArgument(numArgs - 3);
    Value begin = entry->getArgument(numArgs - 2);
    Value end = entry->getArgument(numArgs - 1);
    if (prepass)
      emitNormalizePrepassLoops(b, desc, buffers, begin, end, options);
    else
      emitNormalizeLoops(b, desc, buffers, begin, end, options);
    func::ReturnOp::create(b);
  }

  static func::FuncOp declareDimsFunc(ImplicitLocOpBuilder &b, StringRef name,
                                      unsigned numDims, Type result) {
    SmallVector<Type> args(numDims, b.getI64Type());
    auto func = func::FuncOp::create(b, name, b.getFunctionType(args, result));
    func.setPrivate();
    b.setInsertionPointToStart(func.addEntryBlock());
    return func;
  }

  /// `int64_t name(d0, d1, ...)` returning `size` of the input's sizes.
  static void
  emitSizeFunction(ImplicitLocOpBuilder &b, StringRef name,
                   const KernelABI &abi, ArrayRef<int64_t> xCodes,
                   function_ref<Value(ValueRange inputSizes)> size) {
    OpBuilder::InsertionGuard guard(b);
    func::FuncOp func = declareDimsFunc(b, name, abi.numDims, b.getI64Type());
    Value count = size(emitInputSizes(b, xCodes, func.getArguments()));
    func::ReturnOp::create(
        b, ValueRange{arith::IndexCastOp::create(b, b.getI64Type(), count)});
  }

  /// Returns kKernelBadShape when emitShapeError says so, else kKernelOk.
  void emitCheck(ImplicitLocOpBuilder &b, const KernelABI &abi,
                 const NormDescription &desc, ArrayRef<int64_t> xCodes,
                 bool allowEmptyReduction = false) {
    OpBuilder::InsertionGuard guard(b);
    func::FuncOp func =
        declareDimsFunc(b, abi.checkSymbol(), abi.numDims, b.getI32Type());
    Value bad = emitShapeError(b, desc, xCodes, func.getArguments(),
                               allowEmptyReduction);
    Value code = arith::SelectOp::create(
        b, bad, arith::ConstantIntOp::create(b, kKernelBadShape, 32),
        arith::ConstantIntOp::create(b, kKernelOk, 32));
    func::ReturnOp::create(b, ValueRange{code});
  }
};

} // namespace

//===----------------------------------------------------------------------===//
// Shape checks shared by the CPU entry points and the GPU plans
//===----------------------------------------------------------------------===//

SmallVector<Value> norm::emitInputSizes(ImplicitLocOpBuilder &b,
                                        ArrayRef<int64_t> xCodes,
                                        ValueRange dims) {
  SmallVector<Value> sizes;
  for (int64_t code : xCodes)
    sizes.push_back(code >= 0 ? (Value)arith::ConstantIndexOp::create(b, code)
                              : (Value)arith::IndexCastOp::create(
                                    b, b.getIndexType(), dims[-code - 1]));
  return sizes;
}

/// Number of statistics (product of the kept dims, groups counted).
static Value keptProduct(ImplicitLocOpBuilder &b, const NormDescription &desc,
                         ArrayRef<Value> sizes) {
  Value count = arith::ConstantIndexOp::create(b, 1);
  for (auto [dim, size] : llvm::enumerate(sizes)) {
    if (llvm::is_contained(desc.reductionDims, (int64_t)dim))
      continue;
    Value factor = size;
    if (desc.groupDim && *desc.groupDim == (int64_t)dim)
      factor = arith::ConstantIndexOp::create(b, *desc.numGroups);
    count = arith::MulIOp::create(b, count, factor);
  }
  return count;
}

Value norm::emitShapeError(ImplicitLocOpBuilder &b, const NormDescription &desc,
                           ArrayRef<int64_t> xCodes, ValueRange dims,
                           bool allowEmptyReduction) {
  Value zero64 = arith::ConstantIntOp::create(b, 0, 64);
  Value bad = arith::ConstantIntOp::create(b, 0, 1);
  for (Value dim : dims)
    bad = arith::OrIOp::create(
        b, bad,
        arith::CmpIOp::create(b, arith::CmpIPredicate::slt, dim, zero64));
  // Sizes are only meaningful once known non-negative; evaluate the rest
  // on clamped values.
  SmallVector<Value> clamped;
  for (Value dim : dims)
    clamped.push_back(arith::MaxSIOp::create(b, dim, zero64));
  SmallVector<Value> sizes = emitInputSizes(b, xCodes, clamped);
  Value zero = arith::ConstantIndexOp::create(b, 0);
  if (desc.groupDim) {
    Value groups = arith::ConstantIndexOp::create(b, *desc.numGroups);
    Value rem = arith::RemUIOp::create(b, sizes[*desc.groupDim], groups);
    bad = arith::OrIOp::create(
        b, bad, arith::CmpIOp::create(b, arith::CmpIPredicate::ne, rem, zero));
  }
  // A statistic over nothing: only an error when statistics are computed
  // (given statistics make the op elementwise).
  Value reduced = emitReductionCount(b, desc, sizes);
  Value keptEmpty =
      arith::CmpIOp::create(b, arith::CmpIPredicate::eq, reduced, zero);
  Value keptCount = keptProduct(b, desc, sizes);
  Value hasStats =
      arith::CmpIOp::create(b, arith::CmpIPredicate::ne, keptCount, zero);
  if (!desc.givenStats && !allowEmptyReduction)
    bad = arith::OrIOp::create(b, bad,
                               arith::AndIOp::create(b, keptEmpty, hasStats));
  // The unbiased running variance divides by M - 1 (PyTorch rejects a
  // single value per channel in training too).
  if (desc.momentum) {
    Value single = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, reduced,
                                         arith::ConstantIndexOp::create(b, 2));
    bad = arith::OrIOp::create(b, bad,
                               arith::AndIOp::create(b, single, hasStats));
  }
  return bad;
}

SmallVector<int64_t> norm::getInputShapeCodes(RankedTensorType type) {
  SmallVector<int64_t> codes;
  int64_t next = 0;
  for (int64_t size : type.getShape())
    codes.push_back(ShapedType::isDynamic(size) ? -(++next) : size);
  return codes;
}
