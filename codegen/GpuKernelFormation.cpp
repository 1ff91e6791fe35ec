//===- GpuKernelFormation.cpp - spec functions to GPU kernels + plans -----===//
//
// For each spec function: the gpu.funcs of its normalization (GpuKernels)
// with the uniform parameter list of docs/gpu.md, and the host function
// that checks the sizes and writes the launch plan.
//
//===----------------------------------------------------------------------===//

#include "codegen/GpuKernels.h"
#include "codegen/KernelABI.h"
#include "codegen/Passes.h"
#include "codegen/ShapeChecks.h"
#include "dialect/NormOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

namespace mlir::norm {
#define GEN_PASS_DEF_NORMFORMGPUKERNELS
#include "codegen/Passes.h.inc"
} // namespace mlir::norm

using namespace mlir;
using namespace mlir::norm;

namespace {

constexpr const char *kGpuModuleName = "normc_gpu";

/// Byte offsets of struct normc_gpu_plan / normc_gpu_launch (docs/gpu.md).
constexpr int64_t kPlanNumLaunches = 0, kPlanWorkspaceBytes = 8,
                  kPlanLaunches = 16, kLaunchSize = 32, kLaunchFunction = 0,
                  kLaunchGrid = 4, kLaunchBlock = 16, kLaunchShared = 28;
constexpr int64_t kMaxGridX = (1ll << 31) - 1;

/// One spec function seen as a GPU kernel: its norm op and, for every
/// argument in ABI order (arguments, then returned values), the memref it
/// becomes and the role it plays.
struct GpuSpec {
  std::string name;
  NormDescription desc;
  Type elementType;
  SmallVector<int64_t> xCodes;
  unsigned numDims = 0;
  SmallVector<Type> memrefTypes;
  /// Binds the kernel's memref arguments to roles.
  std::function<void(ValueRange, NormBuffers &)> bindForward;
  std::function<void(ValueRange, NormBackwardBuffers &)> bindBackward;
  bool backward = false;
  bool hasGradInput = false, affineGrads = false;
};

MemRefType flatMemref(Type tensorType) {
  return MemRefType::get({ShapedType::kDynamic},
                         cast<RankedTensorType>(tensorType).getElementType());
}

/// Index of `value` among `values`, or -1.
int64_t indexOf(ValueRange values, Value value) {
  for (auto [index, v] : llvm::enumerate(values))
    if (value && v == value)
      return index;
  return -1;
}

FailureOr<GpuSpec> analyze(func::FuncOp func) {
  GpuSpec spec;
  spec.name = func.getSymName().str();
  Operation *normOp = nullptr;
  for (Operation &op : func.getBody().front())
    if (isa<NormalizationOpInterface, NormalizeBackwardOp>(op))
      normOp = &op;
  if (!normOp)
    return func.emitError()
               << "kernel '" << spec.name << "' contains no norm op",
           failure();
  auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  SmallVector<Value> abiValues(func.getArguments());
  llvm::append_range(abiValues, ret.getOperands());
  for (Value value : abiValues)
    spec.memrefTypes.push_back(flatMemref(value.getType()));
  unsigned numArgs = func.getNumArguments();
  // Position of `value` among the kernel's parameters (-1: absent).
  auto position = [&](Value value, bool result) -> int64_t {
    if (!value)
      return -1;
    if (!result)
      return indexOf(func.getArguments(), value);
    int64_t index = indexOf(ret.getOperands(), value);
    return index < 0 ? -1 : numArgs + index;
  };
  auto pick = [](ValueRange args, int64_t index) {
    return index < 0 ? Value() : args[index];
  };

  if (auto backward = dyn_cast<NormalizeBackwardOp>(normOp)) {
    spec.backward = true;
    spec.desc = backward.getDescription();
    NormBackwardRoles roles = backward.getRoles();
    auto inputType = cast<RankedTensorType>(roles.input.getType());
    spec.elementType = inputType.getElementType();
    spec.xCodes = getInputShapeCodes(inputType);
    int64_t slots[] = {
        position(roles.gradOutput, false), position(roles.input, false),
        position(roles.gamma, false),      position(roles.mean, false),
        position(roles.rstd, false),       position(roles.var, false),
        position(roles.gradInput, true),   position(roles.gradGamma, true),
        position(roles.gradBeta, true)};
    spec.hasGradInput = slots[6] >= 0;
    spec.affineGrads = slots[7] >= 0 || slots[8] >= 0;
    Type elementType = spec.elementType;
    spec.bindBackward = [=](ValueRange args, NormBackwardBuffers &buf) {
      buf.elementType = elementType;
      buf.gradOutput = pick(args, slots[0]);
      buf.input = pick(args, slots[1]);
      buf.gamma = pick(args, slots[2]);
      buf.mean = pick(args, slots[3]);
      buf.rstd = pick(args, slots[4]);
      buf.var = pick(args, slots[5]);
      buf.gradInput = pick(args, slots[6]);
      buf.gradGamma = pick(args, slots[7]);
      buf.gradBeta = pick(args, slots[8]);
    };
  } else {
    auto op = cast<NormalizationOpInterface>(normOp);
    spec.desc = op.getDescription();
    NormOperands in = op.getNormOperands();
    NormResults out = op.getNormResults();
    auto inputType = cast<RankedTensorType>(in.input.getType());
    spec.elementType = inputType.getElementType();
    spec.xCodes = getInputShapeCodes(inputType);
    int64_t slots[] = {
        position(in.input, false),          position(in.gamma, false),
        position(in.beta, false),           position(in.givenMean, false),
        position(in.givenVar, false),       position(in.runningMean, false),
        position(in.runningVar, false),     position(out.output, true),
        position(out.savedMean, true),      position(out.savedRstd, true),
        position(out.runningMeanOut, true), position(out.runningVarOut, true)};
    Type elementType = spec.elementType;
    spec.bindForward = [=](ValueRange args, NormBuffers &buf) {
      buf.elementType = elementType;
      buf.input = pick(args, slots[0]);
      buf.gamma = pick(args, slots[1]);
      buf.beta = pick(args, slots[2]);
      buf.givenMean = pick(args, slots[3]);
      buf.givenVar = pick(args, slots[4]);
      buf.runningMean = pick(args, slots[5]);
      buf.runningVar = pick(args, slots[6]);
      buf.output = pick(args, slots[7]);
      buf.savedMean = pick(args, slots[8]);
      buf.savedRstd = pick(args, slots[9]);
      buf.runningMeanOut = pick(args, slots[10]);
      buf.runningVarOut = pick(args, slots[11]);
    };
  }
  spec.numDims = llvm::count_if(spec.xCodes, [](int64_t c) { return c < 0; });
  return spec;
}

/// The GPU functions of `spec`, in plan function-index order.
SmallVector<GpuKernelKind> kernelKinds(const GpuSpec &spec) {
  SmallVector<GpuKernelKind> kinds;
  // Backward dgamma/dbeta use the statistics the rows kernels recompute.
  bool rows = !spec.backward || spec.hasGradInput ||
              (spec.affineGrads && !spec.desc.givenStats);
  if (rows) {
    kinds.push_back(GpuKernelKind::Fused);
    if (!spec.desc.givenStats) {
      kinds.push_back(GpuKernelKind::Partials);
      kinds.push_back(GpuKernelKind::Apply);
    }
  }
  if (spec.backward && spec.affineGrads) {
    kinds.push_back(GpuKernelKind::AffinePartials);
    kinds.push_back(GpuKernelKind::AffineFinalize);
    SmallVector<int64_t> staticSizes;
    for (int64_t code : spec.xCodes)
      staticSizes.push_back(code < 0 ? -1 : code);
    if (getGpuFusedAffineThreads(spec.desc, spec.elementType, staticSizes))
      kinds.push_back(GpuKernelKind::FusedAffine);
  }
  return kinds;
}

std::string functionName(const GpuSpec &spec, GpuKernelKind kind) {
  return spec.name + "_" + getGpuKernelSuffix(kind).str();
}

void emitGpuFunction(OpBuilder &moduleBuilder, Location loc,
                     const GpuSpec &spec, GpuKernelKind kind) {
  ImplicitLocOpBuilder b(loc, moduleBuilder);
  MLIRContext *context = b.getContext();
  SmallVector<Type> params(spec.memrefTypes);
  params.push_back(MemRefType::get({ShapedType::kDynamic}, b.getF64Type()));
  params.append(spec.numDims, b.getI64Type());
  auto func = gpu::GPUFuncOp::create(
      b, functionName(spec, kind), b.getFunctionType(params, {}),
      TypeRange{getGpuSharedType(context)}, TypeRange{});
  func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), b.getUnitAttr());
  OpBuilder::InsertionGuard guard(b);
  Block &entry = func.getBody().front();
  b.setInsertionPointToStart(&entry);
  // The block also holds the workgroup attribution after the parameters.
  ValueRange args = func.getArguments().take_front(params.size());
  ValueRange buffers = args.take_front(spec.memrefTypes.size());
  Value workspace = args[spec.memrefTypes.size()];
  SmallVector<Value> sizes =
      emitInputSizes(b, spec.xCodes, args.take_back(spec.numDims));
  Value shared = func.getWorkgroupAttributions().front();
  if (spec.backward) {
    NormBackwardBuffers buf;
    spec.bindBackward(buffers, buf);
    buf.workspace = workspace;
    emitGpuBackwardKernel(b, spec.desc, buf, shared, sizes, kind);
  } else {
    NormBuffers buf;
    spec.bindForward(buffers, buf);
    emitGpuForwardKernel(b, spec.desc, buf, workspace, shared, sizes, kind);
  }
  gpu::ReturnOp::create(b);
}

/// `int32_t __normc_K_gpu_plan(const int64_t *dims, normc_gpu_plan *plan)`.
class PlanEmitter {
public:
  PlanEmitter(ImplicitLocOpBuilder &b, const GpuSpec &spec,
              ArrayRef<GpuKernelKind> kinds)
      : b(b), spec(spec), kinds(kinds) {}

  void emit() {
    auto ptr = LLVM::LLVMPointerType::get(b.getContext());
    auto func =
        func::FuncOp::create(b, "__normc_" + spec.name + "_gpu_plan",
                             b.getFunctionType({ptr, ptr}, {b.getI32Type()}));
    // Not a spec: norm-form-kernels leaves it alone.
    func->setAttr(kGpuPlanAttrName, b.getUnitAttr());
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(func.addEntryBlock());
    Value dimsPtr = func.getArgument(0);
    plan = func.getArgument(1);
    SmallVector<Value> dims;
    for (unsigned k = 0; k < spec.numDims; ++k)
      dims.push_back(LLVM::LoadOp::create(b, b.getI64Type(),
                                          byteAddress(dimsPtr, c(8 * k))));
    Value bad = emitShapeError(b, spec.desc, spec.xCodes, dims,
                               /*allowEmptyReduction=*/spec.backward);
    // The schedule is evaluated on clamped sizes; bad ones launch nothing.
    SmallVector<Value> clamped;
    for (Value dim : dims)
      clamped.push_back(arith::MaxSIOp::create(
          b, dim, arith::ConstantIntOp::create(b, 0, 64)));
    SmallVector<Value> sizes = emitInputSizes(b, spec.xCodes, clamped);
    GpuSchedule s = emitGpuSchedule(b, spec.desc, spec.elementType, sizes,
                                    spec.backward, spec.affineGrads);

    Value count = c(0);
    Value one = c(1);
    Value split = ult(one, s.splits);
    Value rowsWork = both(ult(c(0), s.numStats), ult(c(0), s.reduceCount));
    bool rows = llvm::is_contained(kinds, GpuKernelKind::Fused);
    Value affineBlocks = ceilDiv(s.affineCount, c(kGpuAffineThreads));
    bad = arith::OrIOp::create(b, bad, ult(c(kMaxGridX), s.rowBlocks));
    if (spec.backward && spec.affineGrads)
      bad = arith::OrIOp::create(b, bad, ult(c(kMaxGridX), affineBlocks));
    bool fusedAffineKernel =
        llvm::is_contained(kinds, GpuKernelKind::FusedAffine);
    // The fused dx + dgamma/dbeta kernel, when the schedule picks it,
    // replaces the rows kernels and the affine partials.
    Value general = arith::ConstantIntOp::create(b, 1, 1);
    if (fusedAffineKernel) {
      Value threadRowBlocks = ceilDiv(s.affineChunks, s.fusedRowsY);
      count = launch(s.fusedAffine, count, GpuKernelKind::FusedAffine,
                     {threadRowBlocks, one}, {s.fusedThreadsX, s.fusedRowsY});
      general = arith::XOrIOp::create(b, s.fusedAffine, trueValue());
    }
    if (rows) {
      Value fused = both(both(rowsWork, general),
                         arith::XOrIOp::create(b, split, trueValue()));
      count = launch(fused, count, GpuKernelKind::Fused, {s.rowBlocks, one},
                     {s.threadsX, s.rowsY});
      if (!spec.desc.givenStats) {
        Value splitWork = both(both(rowsWork, general), split);
        count = launch(splitWork, count, GpuKernelKind::Partials,
                       {s.rowBlocks, s.splits}, {s.threadsX, s.rowsY});
        count = launch(splitWork, count, GpuKernelKind::Apply,
                       {s.rowBlocks, s.splits}, {s.threadsX, s.rowsY});
      }
    }
    if (spec.backward && spec.affineGrads) {
      Value any = ult(c(0), s.affineCount);
      Value block = c(kGpuAffineThreads);
      count = launch(both(any, general), count, GpuKernelKind::AffinePartials,
                     {affineBlocks, s.affineChunks}, {block, one});
      count = launch(any, count, GpuKernelKind::AffineFinalize,
                     {affineBlocks, one}, {block, one});
    }
    count = arith::SelectOp::create(b, bad, c(0), count);
    store32(byteAddress(plan, c(kPlanNumLaunches)), count);
    store32(byteAddress(plan, c(kPlanNumLaunches + 4)), c(0));
    Value workspace = mul(add(s.affineWorkspace, s.rowsWorkspace), c(8));
    LLVM::StoreOp::create(
        b, arith::IndexCastUIOp::create(b, b.getI64Type(), workspace),
        byteAddress(plan, c(kPlanWorkspaceBytes)));
    Value code = arith::SelectOp::create(
        b, bad, arith::ConstantIntOp::create(b, kKernelBadShape, 32),
        arith::ConstantIntOp::create(b, kKernelOk, 32));
    func::ReturnOp::create(b, ValueRange{code});
  }

private:
  Value c(int64_t v) { return arith::ConstantIndexOp::create(b, v); }
  Value add(Value x, Value y) { return b.createOrFold<arith::AddIOp>(x, y); }
  Value mul(Value x, Value y) { return b.createOrFold<arith::MulIOp>(x, y); }
  Value ceilDiv(Value x, Value y) {
    return b.createOrFold<arith::CeilDivUIOp>(x, y);
  }
  Value ult(Value x, Value y) {
    return b.createOrFold<arith::CmpIOp>(arith::CmpIPredicate::ult, x, y);
  }
  Value both(Value x, Value y) { return b.createOrFold<arith::AndIOp>(x, y); }
  Value trueValue() { return arith::ConstantIntOp::create(b, 1, 1); }
  Value byteAddress(Value base, Value offset) {
    return LLVM::GEPOp::create(
        b, LLVM::LLVMPointerType::get(b.getContext()), b.getI8Type(), base,
        ValueRange{arith::IndexCastOp::create(b, b.getI64Type(), offset)});
  }
  void store32(Value address, Value index) {
    LLVM::StoreOp::create(
        b, arith::IndexCastUIOp::create(b, b.getI32Type(), index), address);
  }

  /// Writes launch slot `count` when `cond` holds; returns the new count.
  Value launch(Value cond, Value count, GpuKernelKind kind,
               std::array<Value, 2> grid, std::array<Value, 2> block) {
    int64_t function = llvm::find(kinds, kind) - kinds.begin();
    auto ifOp = scf::IfOp::create(b, TypeRange{}, cond, false);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPoint(ifOp.getThenRegion().front().getTerminator());
      Value slot = add(c(kPlanLaunches), mul(count, c(kLaunchSize)));
      auto field = [&](int64_t offset) {
        return byteAddress(plan, add(slot, c(offset)));
      };
      store32(field(kLaunchFunction), c(function));
      store32(field(kLaunchGrid), grid[0]);
      store32(field(kLaunchGrid + 4), grid[1]);
      store32(field(kLaunchGrid + 8), c(1));
      store32(field(kLaunchBlock), block[0]);
      store32(field(kLaunchBlock + 4), block[1]);
      store32(field(kLaunchBlock + 8), c(1));
      store32(field(kLaunchShared), c(0));
    }
    return arith::SelectOp::create(b, cond, add(count, c(1)), count);
  }

  ImplicitLocOpBuilder &b;
  const GpuSpec &spec;
  ArrayRef<GpuKernelKind> kinds;
  Value plan;
};

struct NormFormGpuKernelsPass
    : public norm::impl::NormFormGpuKernelsBase<NormFormGpuKernelsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *context = &getContext();
    SmallVector<func::FuncOp> specs;
    for (func::FuncOp func : module.getOps<func::FuncOp>())
      if (!func.isExternal() && !func.isPrivate())
        specs.push_back(func);
    if (specs.empty())
      return;
    module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                    UnitAttr::get(context));
    auto gpuModule = module.lookupSymbol<gpu::GPUModuleOp>(kGpuModuleName);
    if (!gpuModule) {
      OpBuilder builder = OpBuilder::atBlockEnd(module.getBody());
      gpuModule =
          gpu::GPUModuleOp::create(builder, module.getLoc(), kGpuModuleName);
    }
    for (func::FuncOp func : specs) {
      FailureOr<GpuSpec> spec = analyze(func);
      if (failed(spec))
        return signalPassFailure();
      SmallVector<GpuKernelKind> kinds = kernelKinds(*spec);
      OpBuilder gpuBuilder = OpBuilder::atBlockEnd(gpuModule.getBody());
      SmallVector<Attribute> names;
      for (GpuKernelKind kind : kinds) {
        emitGpuFunction(gpuBuilder, func.getLoc(), *spec, kind);
        names.push_back(StringAttr::get(context, functionName(*spec, kind)));
      }
      OpBuilder hostBuilder(func);
      ImplicitLocOpBuilder b(func.getLoc(), hostBuilder);
      PlanEmitter(b, *spec, kinds).emit();
      func->setAttr(kGpuFunctionsAttrName, ArrayAttr::get(context, names));
    }
  }
};

} // namespace
