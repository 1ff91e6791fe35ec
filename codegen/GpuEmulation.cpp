//===- GpuEmulation.cpp - GPU kernels as host code, for testing -----------===//
//
// There is no GPU on the machines that build and test normc, but its GPU
// kernels must still be checked against the float64 reference. This pass
// copies every gpu.func into the host module as a plain function in which
// the few GPU-specific operations become calls through a per-thread context
// (ids, barrier, warp shuffle): an emulator that runs each block's threads
// as fibers (test/gpu-emulator) executes the very same kernel bodies,
// launched through the real runtime path (plan, parameters, workspace).
// Only the PTX-specific inline assembly (sqrt.rn) is replaced, by
// math.sqrt, which is also correctly rounded, and bf16 conversions are
// expanded to the integer ops that round the same way (RNE).
//
// The context, `struct normc_emu_thread` (test/gpu-emulator/Emulator.h):
//   int64 thread_id[3] @0, block_id[3] @24, block_dim[3] @48, grid_dim[3] @72,
//   void *shared @96, void (*barrier)(ctx) @104,
//   float (*shuffle_down_f32)(ctx, float, int32) @112,
//   double (*shuffle_down_f64)(ctx, double, int32) @120.
//
//===----------------------------------------------------------------------===//

#include "codegen/KernelABI.h"
#include "codegen/Passes.h"

#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::norm {
#define GEN_PASS_DEF_NORMEMULATEGPUKERNELS
#include "codegen/Passes.h.inc"
} // namespace mlir::norm

using namespace mlir;

namespace {

constexpr int64_t kThreadId = 0, kBlockId = 24, kBlockDim = 48, kGridDim = 72,
                  kShared = 96, kBarrier = 104, kShuffleF32 = 112,
                  kShuffleF64 = 120;
constexpr int64_t kSharedElements = 128;

Value fieldAddress(OpBuilder &b, Location loc, Value context, int64_t offset) {
  auto ptr = LLVM::LLVMPointerType::get(b.getContext());
  Value index = LLVM::ConstantOp::create(b, loc, b.getI64Type(), offset);
  return LLVM::GEPOp::create(b, loc, ptr, b.getI8Type(), context,
                             ValueRange{index});
}

/// Replaces the GPU operations of `func` by accesses to `context`.
void rewriteGpuOps(func::FuncOp func, Value context) {
  MLIRContext *ctx = func.getContext();
  auto ptr = LLVM::LLVMPointerType::get(ctx);
  auto readId = [&](OpBuilder &b, Operation *op, int64_t base,
                    gpu::Dimension dim) {
    Location loc = op->getLoc();
    Value address =
        fieldAddress(b, loc, context, base + 8 * static_cast<int64_t>(dim));
    Value value = LLVM::LoadOp::create(b, loc, b.getI64Type(), address);
    op->getResult(0).replaceAllUsesWith(
        arith::IndexCastOp::create(b, loc, b.getIndexType(), value));
    op->erase();
  };
  func.walk([&](Operation *op) {
    OpBuilder b(op);
    Location loc = op->getLoc();
    if (auto id = dyn_cast<gpu::ThreadIdOp>(op))
      return readId(b, op, kThreadId, id.getDimension());
    if (auto id = dyn_cast<gpu::BlockIdOp>(op))
      return readId(b, op, kBlockId, id.getDimension());
    if (auto dim = dyn_cast<gpu::BlockDimOp>(op))
      return readId(b, op, kBlockDim, dim.getDimension());
    if (auto dim = dyn_cast<gpu::GridDimOp>(op))
      return readId(b, op, kGridDim, dim.getDimension());
    if (isa<gpu::BarrierOp>(op)) {
      Value callee = LLVM::LoadOp::create(
          b, loc, ptr, fieldAddress(b, loc, context, kBarrier));
      auto type =
          LLVM::LLVMFunctionType::get(LLVM::LLVMVoidType::get(ctx), {ptr});
      LLVM::CallOp::create(b, loc, type, ValueRange{callee, context});
      op->erase();
      return;
    }
    if (auto shuffle = dyn_cast<gpu::ShuffleOp>(op)) {
      assert(shuffle.getMode() == gpu::ShuffleMode::DOWN &&
             "the kernels only shuffle down");
      Type type = shuffle.getValue().getType();
      Value callee = LLVM::LoadOp::create(
          b, loc, ptr,
          fieldAddress(b, loc, context,
                       type.isF64() ? kShuffleF64 : kShuffleF32));
      auto fnType =
          LLVM::LLVMFunctionType::get(type, {ptr, type, b.getI32Type()});
      Value result =
          LLVM::CallOp::create(b, loc, fnType,
                               ValueRange{callee, context, shuffle.getValue(),
                                          shuffle.getOffset()})
              .getResult();
      shuffle.getShuffleResult().replaceAllUsesWith(result);
      shuffle.getValid().replaceAllUsesWith(
          arith::ConstantIntOp::create(b, loc, 1, 1));
      op->erase();
      return;
    }
    if (auto asmOp = dyn_cast<LLVM::InlineAsmOp>(op)) {
      assert(asmOp.getAsmString().starts_with("sqrt.rn.") &&
             "the only inline PTX is sqrt.rn");
      op->getResult(0).replaceAllUsesWith(
          math::SqrtOp::create(b, loc, asmOp.getOperands()[0]));
      op->erase();
      return;
    }
    if (isa<gpu::ReturnOp>(op)) {
      func::ReturnOp::create(b, loc);
      op->erase();
    }
  });
}

struct NormEmulateGpuKernelsPass
    : public norm::impl::NormEmulateGpuKernelsBase<NormEmulateGpuKernelsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *context = &getContext();
    auto ptr = LLVM::LLVMPointerType::get(context);
    OpBuilder builder = OpBuilder::atBlockEnd(module.getBody());
    for (auto gpuModule : module.getOps<gpu::GPUModuleOp>()) {
      for (auto kernel : gpuModule.getOps<gpu::GPUFuncOp>()) {
        if (kernel.getNumWorkgroupAttributions() > 1 ||
            kernel.getNumPrivateAttributions() != 0) {
          kernel.emitError("emulation supports one workgroup buffer");
          return signalPassFailure();
        }
        // Parameters, the workgroup buffer (a plain memref), the context.
        SmallVector<Type> types(kernel.getArgumentTypes());
        Type sharedType;
        if (kernel.getNumWorkgroupAttributions() == 1) {
          auto gpuShared = cast<MemRefType>(
              kernel.getWorkgroupAttributions().front().getType());
          sharedType =
              MemRefType::get(gpuShared.getShape(), gpuShared.getElementType());
          if (gpuShared.getNumElements() > kSharedElements) {
            kernel.emitError("workgroup buffer larger than the emulator's");
            return signalPassFailure();
          }
          types.push_back(sharedType);
        }
        types.push_back(ptr);
        auto func = func::FuncOp::create(
            builder, kernel.getLoc(), ("__normc_emu_" + kernel.getName()).str(),
            builder.getFunctionType(types, {}));
        // Not a spec: norm-form-kernels leaves it alone.
        func->setAttr(norm::kGpuPlanAttrName, builder.getUnitAttr());
        Region &body = func.getBody();
        IRMapping mapping;
        kernel.getBody().cloneInto(&body, mapping);
        Block &entry = body.front();
        // The cloned block holds the parameters then the attribution.
        if (sharedType)
          entry.getArgument(kernel.getNumArguments()).setType(sharedType);
        Value contextArg = entry.addArgument(ptr, kernel.getLoc());
        rewriteGpuOps(func, contextArg);
        // bf16 conversions as integer ops: the host has no bf16 instructions
        // and the bundles do not link compiler-rt.
        RewritePatternSet patterns(context);
        arith::populateExpandBFloat16Patterns(patterns);
        if (failed(applyPatternsGreedily(func, std::move(patterns)))) {
          func.emitError("cannot expand the bf16 conversions");
          return signalPassFailure();
        }
      }
    }
  }
};

} // namespace

namespace mlir::norm {

/// After the LLVM lowering: `void __normc_emu_<fn>_launch(void **params,
/// normc_emu_thread *ctx)` unpacks the cuLaunchKernel-style parameter array
/// (pointers to each field) and calls the emulated kernel with the shared
/// buffer of the context.
void addGpuEmulationEntries(ModuleOp module) {
  MLIRContext *context = module.getContext();
  auto ptr = LLVM::LLVMPointerType::get(context);
  SmallVector<LLVM::LLVMFuncOp> kernels;
  for (auto func : module.getOps<LLVM::LLVMFuncOp>())
    if (func.getName().starts_with("__normc_emu_") && !func.isExternal())
      kernels.push_back(func);
  OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
  for (LLVM::LLVMFuncOp kernel : kernels) {
    Location loc = kernel.getLoc();
    auto launch = LLVM::LLVMFuncOp::create(
        b, loc, (kernel.getName() + "_launch").str(),
        LLVM::LLVMFunctionType::get(LLVM::LLVMVoidType::get(context),
                                    {ptr, ptr}));
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(launch.addEntryBlock(b));
    Value params = launch.getArgument(0), ctx = launch.getArgument(1);
    ArrayRef<Type> types = kernel.getFunctionType().getParams();
    // Kernel parameters, then the 5 fields of the shared memref, then ctx.
    size_t numParams = types.size() - 6;
    SmallVector<Value> args;
    for (size_t i = 0; i < numParams; ++i) {
      Value slot = LLVM::GEPOp::create(
          b, loc, ptr, ptr, params,
          ValueRange{LLVM::ConstantOp::create(b, loc, b.getI64Type(), i)});
      Value field = LLVM::LoadOp::create(b, loc, ptr, slot);
      args.push_back(LLVM::LoadOp::create(b, loc, types[i], field));
    }
    Value shared =
        LLVM::LoadOp::create(b, loc, ptr, fieldAddress(b, loc, ctx, kShared));
    auto i64 = [&](int64_t value) -> Value {
      return LLVM::ConstantOp::create(b, loc, b.getI64Type(), value);
    };
    args.append({shared, shared, i64(0), i64(kSharedElements), i64(1), ctx});
    LLVM::CallOp::create(b, loc, kernel, args);
    LLVM::ReturnOp::create(b, loc, ValueRange{});
  }
}

} // namespace mlir::norm
