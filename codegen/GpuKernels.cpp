//===- GpuKernels.cpp - norm ops to gpu.func kernels ----------------------===//
//
// Bodies of the GPU functions of a normalization, written with the gpu
// dialect (thread/block ids, shuffles, barriers, workgroup memory) over
// scf/arith/vector/memref. Numerics:
//   - statistics: per-thread Welford over 128-bit chunks (no E[x^2]-E[x]^2
//     cancellation), merged across threads with Chan's formula, in f32 for
//     f32/f16/bf16 data (f64 for f64 data);
//   - split statistics: partials stored in f64 and merged in a fixed order;
//   - dgamma/dbeta: per-chunk f64 partials added in chunk order, so every
//     result is bitwise reproducible;
//   - sqrt and division are correctly rounded (sqrt.rn via inline PTX: the
//     gpu-to-nvvm conversion would otherwise call libdevice, which would
//     make the compiler depend on a CUDA installation).
//
//===----------------------------------------------------------------------===//

#include "codegen/GpuKernels.h"
#include "dialect/NormOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::norm;

StringRef norm::getGpuKernelSuffix(GpuKernelKind kind) {
  switch (kind) {
  case GpuKernelKind::Fused:
    return "gpu_fused";
  case GpuKernelKind::Partials:
    return "gpu_partials";
  case GpuKernelKind::Apply:
    return "gpu_apply";
  case GpuKernelKind::AffinePartials:
    return "gpu_affine_partials";
  case GpuKernelKind::AffineFinalize:
    return "gpu_affine_finalize";
  case GpuKernelKind::FusedAffine:
    return "gpu_fused_affine";
  }
  llvm_unreachable("unknown GPU kernel kind");
}

static Type getAccumulationType(Type elementType) {
  if (elementType.isF64())
    return Float64Type::get(elementType.getContext());
  return Float32Type::get(elementType.getContext());
}

MemRefType norm::getGpuSharedType(MLIRContext *context) {
  // 32 warps (1024 threads) x up to four f64 values each.
  return MemRefType::get(
      {32 * 4}, Float64Type::get(context), AffineMap(),
      gpu::AddressSpaceAttr::get(context, gpu::AddressSpace::Workgroup));
}

int64_t norm::getGpuFusedAffineThreads(const NormDescription &desc,
                                       Type elementType,
                                       ArrayRef<int64_t> staticSizes) {
  if (desc.givenStats)
    return 0;
  CanonicalLayout layout = CanonicalLayout::get(desc, staticSizes.size());
  // Canonical static sizes (-1: dynamic).
  SmallVector<int64_t> expanded;
  for (auto [dim, size] : llvm::enumerate(staticSizes)) {
    if (layout.groupDim && *layout.groupDim == (int64_t)dim) {
      expanded.push_back(layout.numGroups);
      expanded.push_back(size < 0 ? -1 : size / layout.numGroups);
      continue;
    }
    expanded.push_back(size);
  }
  SmallVector<int64_t> sizes = expanded;
  if (!layout.inputCollapse.empty()) {
    sizes.clear();
    for (const ReassociationIndices &run : layout.inputCollapse) {
      int64_t product = 1;
      for (int64_t index : run)
        product =
            expanded[index] < 0 || product < 0 ? -1 : product * expanded[index];
      sizes.push_back(product);
    }
  }
  // Gamma indexes exactly the reduced dim, which is contiguous and alone.
  int64_t rank = layout.dims.size();
  const CanonicalLayout::Dim &inner = layout.dims.back();
  int64_t reduced = llvm::count_if(
      layout.dims, [](const CanonicalLayout::Dim &d) { return d.reduced; });
  int64_t affine = llvm::count_if(
      layout.dims, [](const CanonicalLayout::Dim &d) { return d.affine; });
  if (!inner.reduced || !inner.affine || reduced != 1 || affine != 1)
    return 0;
  int64_t size = sizes[rank - 1];
  if (size <= 0)
    return 0;
  // Threads of a row: a multiple of 32, at most 1024, each with as few
  // whole 128-bit vectors (R) as possible, so that its dy, x, gamma and f64
  // dgamma/dbeta accumulators stay in registers.
  int64_t width = 128 / elementType.getIntOrFloatBitWidth();
  for (int64_t vectors = 1; vectors <= 8; ++vectors) {
    if (size % (vectors * width) != 0)
      continue;
    int64_t threads = size / (vectors * width);
    if (threads <= 1024 && threads % 32 == 0)
      return threads;
  }
  return 0;
}

namespace {

/// Index arithmetic, sizes and offsets of the canonical layout.
class GpuEmitter {
public:
  GpuEmitter(ImplicitLocOpBuilder &b, const NormDescription &desc,
             Type elementType, ValueRange inputSizes)
      : b(b), desc(desc), inputSizes(inputSizes),
        layout(CanonicalLayout::get(desc, inputSizes.size())),
        elementType(elementType), accType(getAccumulationType(elementType)),
        width(128 / elementType.getIntOrFloatBitWidth()) {
    sizes = emitCanonicalSizes(b, layout, inputSizes);
    int64_t rank = sizes.size();
    strides.resize(rank);
    gammaStrides.resize(rank);
    statStrides.resize(rank);
    Value stride = c(1), gammaStride = c(1), statStride = c(1);
    for (int64_t d = rank - 1; d >= 0; --d) {
      strides[d] = stride;
      stride = mul(stride, sizes[d]);
      if (layout.dims[d].affine) {
        gammaStrides[d] = gammaStride;
        gammaStride = mul(gammaStride, sizes[d]);
      }
      if (!layout.dims[d].reduced) {
        statStrides[d] = statStride;
        statStride = mul(statStride, sizes[d]);
      }
    }
    numStats = statStride;
    affineCount = gammaStride;
    innerDim = -1;
    for (int64_t d = 0; d < rank; ++d)
      if (layout.dims[d].reduced)
        innerDim = d;
    assert(innerDim >= 0 && "a normalization reduces at least one dim");
    outerCount = c(1);
    nonAffineCount = c(1);
    for (int64_t d = 0; d < rank; ++d) {
      if (layout.dims[d].reduced && d != innerDim) {
        outerReducedDims.push_back(d);
        outerCount = mul(outerCount, sizes[d]);
      }
      if (!layout.dims[d].reduced)
        keptDims.push_back(d);
      if (layout.dims[d].affine)
        affineDims.push_back(d);
      else {
        nonAffineDims.push_back(d);
        nonAffineCount = mul(nonAffineCount, sizes[d]);
      }
    }
    innerCount = sizes[innerDim];
    // The innermost reduced dim is contiguous exactly when it is the last
    // canonical dim; only then are 128-bit loads possible.
    rowMode = innerDim == rank - 1;
    innerAffine = layout.dims[innerDim].affine;
  }

  GpuSchedule schedule(bool backward, bool affineGrads);

  /// See getGpuFusedAffineThreads; static sizes are folded constants.
  int64_t getFusedAffineThreads() const {
    SmallVector<int64_t> staticSizes;
    for (Value size : inputSizes)
      staticSizes.push_back(getConstantIntValue(size).value_or(-1));
    return getGpuFusedAffineThreads(desc, elementType, staticSizes);
  }

  // Index arithmetic (folded when constant).
  Value c(int64_t value) { return arith::ConstantIndexOp::create(b, value); }
  Value add(Value x, Value y) { return b.createOrFold<arith::AddIOp>(x, y); }
  Value mul(Value x, Value y) { return b.createOrFold<arith::MulIOp>(x, y); }
  Value divU(Value x, Value y) { return b.createOrFold<arith::DivUIOp>(x, y); }
  Value remU(Value x, Value y) { return b.createOrFold<arith::RemUIOp>(x, y); }
  Value ceilDiv(Value x, Value y) {
    return b.createOrFold<arith::CeilDivUIOp>(x, y);
  }
  Value minU(Value x, Value y) { return b.createOrFold<arith::MinUIOp>(x, y); }
  Value maxU(Value x, Value y) { return b.createOrFold<arith::MaxUIOp>(x, y); }
  Value ult(Value x, Value y) {
    return b.createOrFold<arith::CmpIOp>(arith::CmpIPredicate::ult, x, y);
  }
  Value ule(Value x, Value y) {
    return b.createOrFold<arith::CmpIOp>(arith::CmpIPredicate::ule, x, y);
  }
  Value eq(Value x, Value y) {
    return b.createOrFold<arith::CmpIOp>(arith::CmpIPredicate::eq, x, y);
  }
  Value select(Value cond, Value x, Value y) {
    return b.createOrFold<arith::SelectOp>(cond, x, y);
  }
  Value both(Value x, Value y) { return b.createOrFold<arith::AndIOp>(x, y); }

  /// Offsets of the element (or statistic) whose indices along `dims`
  /// (outermost first) are the digits of `flat`.
  struct Offsets {
    Value input, gamma, stat;
  };
  Offsets decompose(Value flat, ArrayRef<int64_t> dims) {
    Offsets result{c(0), c(0), c(0)};
    for (size_t j = dims.size(); j-- > 0;) {
      int64_t d = dims[j];
      Value index = j == 0 ? flat : remU(flat, sizes[d]);
      if (j != 0)
        flat = divU(flat, sizes[d]);
      result.input = add(result.input, mul(index, strides[d]));
      if (layout.dims[d].affine)
        result.gamma = add(result.gamma, mul(index, gammaStrides[d]));
      if (!layout.dims[d].reduced)
        result.stat = add(result.stat, mul(index, statStrides[d]));
    }
    return result;
  }

  ImplicitLocOpBuilder &b;
  const NormDescription &desc;
  SmallVector<Value> inputSizes;
  CanonicalLayout layout;
  Type elementType, accType;
  int64_t width; // elements per 128-bit access
  SmallVector<Value> sizes, strides, gammaStrides, statStrides;
  SmallVector<int64_t> keptDims, outerReducedDims, affineDims, nonAffineDims;
  int64_t innerDim;
  bool rowMode, innerAffine;
  Value numStats, affineCount, outerCount, innerCount, nonAffineCount;
};

GpuSchedule GpuEmitter::schedule(bool backward, bool affineGrads) {
  GpuSchedule s;
  s.numStats = numStats;
  s.outerCount = outerCount;
  s.innerCount = innerCount;
  s.reduceCount = mul(outerCount, innerCount);
  // A warp per statistic up to 1024 elements (8 statistics per block), then
  // wider rows so that each thread keeps a handful of 128-bit loads in
  // flight without holding the block to a single long row.
  Value m = s.reduceCount;
  s.threadsX = select(ule(m, c(1024)), c(32),
                      select(ule(m, c(4096)), c(128),
                             select(ule(m, c(16384)), c(256), c(512))));
  s.rowsY = maxU(divU(c(256), s.threadsX), c(1));
  s.rowBlocks = ceilDiv(s.numStats, s.rowsY);
  // Few statistics over long reductions (BatchNorm, small batches of long
  // rows) cannot fill the GPU with one block row each: split each
  // statistic over K blocks, along the outer reduced dims when there are
  // any (whole inner rows stay contiguous), else along the inner dim in
  // multiples of the vector width.
  s.splitOuter = ult(c(1), outerCount);
  Value maxSplits = select(s.splitOuter, outerCount,
                           ceilDiv(innerCount, mul(s.threadsX, c(width))));
  Value wanted = ceilDiv(c(1024), maxU(s.rowBlocks, c(1)));
  Value few = both(ult(s.rowBlocks, c(256)), ule(c(16384), m));
  if (desc.givenStats)
    s.splits = c(1);
  else
    s.splits =
        maxU(select(few, minU(minU(wanted, maxSplits), c(4096)), c(1)), c(1));
  s.chunkOuter =
      select(s.splitOuter, ceilDiv(outerCount, s.splits), outerCount);
  Value innerChunk =
      mul(ceilDiv(ceilDiv(innerCount, s.splits), c(width)), c(width));
  s.chunkInner = select(s.splitOuter, innerCount, innerChunk);

  s.affineCount = affineGrads ? affineCount : c(0);
  s.nonAffineCount = nonAffineCount;
  // Enough (gamma element, chunk) threads to fill a GPU, chunks of at
  // least 16 elements, at most 1024 chunks.
  Value maxChunks = minU(c(1024), maxU(c(1), ceilDiv(nonAffineCount, c(16))));
  s.affineChunks =
      maxU(c(1), minU(ceilDiv(c(131072), maxU(affineCount, c(1))), maxChunks));
  s.affineChunkLen = ceilDiv(nonAffineCount, s.affineChunks);
  // Rows with gamma along them (LayerNorm, RMSNorm) and enough of them:
  // one kernel computes dx and accumulates dgamma/dbeta in registers over
  // a fixed set of rows per thread row, so dy and x are read once. P rows
  // of threads, each summing about 32 rows (at least 256 of them).
  s.fusedAffine = b.createOrFold<arith::ConstantIntOp>(0, 1);
  int64_t fusedThreads = affineGrads ? getFusedAffineThreads() : 0;
  s.fusedThreadsX = c(std::max<int64_t>(fusedThreads, 32));
  s.fusedRowsY =
      c(std::max<int64_t>(1, 256 / std::max<int64_t>(fusedThreads, 32)));
  if (fusedThreads > 0) {
    s.fusedAffine = ule(c(1024), s.numStats);
    Value rows = minU(s.numStats, maxU(c(256), ceilDiv(s.numStats, c(32))));
    Value threadRows = mul(ceilDiv(rows, s.fusedRowsY), s.fusedRowsY);
    s.affineChunks = select(s.fusedAffine, threadRows, s.affineChunks);
  }
  s.affineWorkspace =
      affineGrads ? mul(c(2), mul(s.affineChunks, affineCount)) : c(0);
  // Split partials: (count, mean, M2, shift) forward; sums of g, g u, u and
  // u^2 backward, after the recomputed statistics (c, rstd) of each one.
  Value splitPartials = mul(mul(s.numStats, s.splits), c(4));
  s.rowsWorkspace = select(ult(c(1), s.splits), splitPartials, c(0));
  if (backward)
    s.rowsWorkspace = add(s.rowsWorkspace, mul(s.numStats, c(2)));
  return s;
}

/// Float helpers in the accumulation type and the per-statistic machinery
/// shared by the forward and backward kernels.
class GpuKernelEmitter : public GpuEmitter {
public:
  GpuKernelEmitter(ImplicitLocOpBuilder &b, const NormDescription &desc,
                   Type elementType, ValueRange inputSizes, Value shared,
                   bool backward, bool affineGrads)
      : GpuEmitter(b, desc, elementType, inputSizes), shared(shared) {
    sched = schedule(backward, affineGrads);
    tx = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
    ty = gpu::ThreadIdOp::create(b, gpu::Dimension::y);
    bx = gpu::BlockIdOp::create(b, gpu::Dimension::x);
    by = gpu::BlockIdOp::create(b, gpu::Dimension::y);
  }

  // Floats.
  Value f(double value, Type type = Type()) {
    type = type ? type : accType;
    return arith::ConstantOp::create(b, b.getFloatAttr(type, value));
  }
  Value fadd(Value x, Value y) { return arith::AddFOp::create(b, x, y); }
  Value fsub(Value x, Value y) { return arith::SubFOp::create(b, x, y); }
  Value fmul(Value x, Value y) { return arith::MulFOp::create(b, x, y); }
  Value fdiv(Value x, Value y) { return arith::DivFOp::create(b, x, y); }
  Value fgt(Value x, Value y) {
    return arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, x, y);
  }
  Value toFloat(Value index, Type type = Type()) {
    type = type ? type : accType;
    return arith::UIToFPOp::create(
        b, type, arith::IndexCastUIOp::create(b, b.getI64Type(), index));
  }
  Value convert(Value value, Type type) {
    Type from = getElementTypeOrSelf(value.getType());
    if (from == type)
      return value;
    Type target = type;
    if (auto vector = dyn_cast<VectorType>(value.getType()))
      target = VectorType::get(vector.getShape(), type);
    if (from.getIntOrFloatBitWidth() < type.getIntOrFloatBitWidth())
      return arith::ExtFOp::create(b, target, value);
    return arith::TruncFOp::create(b, target, value);
  }
  /// Correctly rounded square root (sqrt.rn), see the file comment.
  Value sqrt(Value x) {
    bool wide = x.getType().isF64();
    return LLVM::InlineAsmOp::create(
               b, x.getType(), ValueRange{x},
               b.getStringAttr(wide ? "sqrt.rn.f64 $0, $1;"
                                    : "sqrt.rn.f32 $0, $1;"),
               b.getStringAttr(wide ? "=d,d" : "=f,f"), UnitAttr(), UnitAttr(),
               LLVM::TailCallKindAttr(), LLVM::AsmDialectAttr(), ArrayAttr())
        .getResult(0);
  }
  /// rstd from the variance and eps (its placement per the description).
  Value rstdFromVar(Value var) {
    Type type = var.getType();
    Value eps = f(desc.epsilon, type);
    Value denominator = desc.epsPlacement == EpsPlacement::Inside
                            ? sqrt(fadd(var, eps))
                            : fadd(sqrt(var), eps);
    return fdiv(f(1.0, type), denominator);
  }
  Value reduceAdd(Value vector) {
    return vector::ReductionOp::create(b, vector::CombiningKind::ADD, vector);
  }
  Value splat(Value scalar, int64_t lanes) {
    return vector::BroadcastOp::create(
        b, VectorType::get({lanes}, scalar.getType()), scalar);
  }

  // Memory.
  static int64_t bytesOf(Value memref) {
    return cast<MemRefType>(memref.getType())
               .getElementType()
               .getIntOrFloatBitWidth() /
           8;
  }
  Value loadVector(Value memref, Value offset, int64_t lanes) {
    Type stored = cast<MemRefType>(memref.getType()).getElementType();
    Value v = vector::LoadOp::create(b, VectorType::get({lanes}, stored),
                                     memref, ValueRange{offset}, false,
                                     llvm::MaybeAlign(lanes * bytesOf(memref)));
    return convert(v, accType);
  }
  void storeVector(Value memref, Value offset, Value value) {
    Type stored = cast<MemRefType>(memref.getType()).getElementType();
    int64_t lanes = cast<VectorType>(value.getType()).getNumElements();
    vector::StoreOp::create(b, convert(value, stored), memref,
                            ValueRange{offset}, false,
                            llvm::MaybeAlign(lanes * bytesOf(memref)));
  }
  Value loadScalar(Value memref, Value index, Type type = Type()) {
    return convert(memref::LoadOp::create(b, memref, ValueRange{index}),
                   type ? type : accType);
  }
  void storeScalar(Value memref, Value index, Value value) {
    Type stored = cast<MemRefType>(memref.getType()).getElementType();
    // f64 sums reach 16-bit outputs through f32 (within half an ulp of the
    // 16-bit result): sm_80 has no f64 -> bf16 conversion, and neither has
    // the host copy of the emulator without compiler-rt.
    if (value.getType().isF64() && stored.getIntOrFloatBitWidth() == 16)
      value = convert(value, b.getF32Type());
    memref::StoreOp::create(b, convert(value, stored), memref,
                            ValueRange{index});
  }
  /// gamma/beta for the `lanes` elements at gamma offset `offset`: loaded
  /// along the inner dim when gamma indexes it, else one value broadcast.
  Value loadAffine(Value memref, Value offset, int64_t lanes) {
    if (innerAffine)
      return loadVector(memref, offset, lanes);
    return splat(loadScalar(memref, offset), lanes);
  }

  // Control flow.
  SmallVector<Value> buildIf(Value cond, TypeRange types,
                             function_ref<SmallVector<Value>()> thenBody,
                             function_ref<SmallVector<Value>()> elseBody) {
    auto op = scf::IfOp::create(b, types, cond, /*withElseRegion=*/true);
    auto fill = [&](Region &region, function_ref<SmallVector<Value>()> body) {
      OpBuilder::InsertionGuard guard(b);
      Block &block = region.front();
      // Without results the builder already put an empty scf.yield there.
      if (types.empty()) {
        b.setInsertionPoint(block.getTerminator());
        body();
        return;
      }
      b.setInsertionPointToEnd(&block);
      scf::YieldOp::create(b, body());
    };
    fill(op.getThenRegion(), thenBody);
    fill(op.getElseRegion(), elseBody);
    return SmallVector<Value>(op.getResults());
  }
  void buildIf(Value cond, function_ref<void()> thenBody) {
    auto op = scf::IfOp::create(b, TypeRange{}, cond, false);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(op.getThenRegion().front().getTerminator());
    thenBody();
  }
  SmallVector<Value>
  buildFor(Value lb, Value ub, Value step, ValueRange inits,
           function_ref<SmallVector<Value>(Value, ValueRange)> body) {
    auto loop = scf::ForOp::create(
        b, lb, ub, step, inits,
        [&](OpBuilder &nested, Location loc, Value iv, ValueRange args) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(nested.getInsertionBlock(),
                              nested.getInsertionPoint());
          scf::YieldOp::create(b, body(iv, args));
        });
    return SmallVector<Value>(loop.getResults());
  }

  // Work decomposition.
  /// Statistic of this thread row, whether it exists, and its chunk
  /// [oBegin, oEnd) x [iBegin, iEnd) of the reduced elements.
  struct Row {
    Value stat, valid, split;
    Value oBegin, oEnd, iBegin, iEnd;
    Value base, gammaBase; // offsets of the statistic's first element
  };
  Row row() {
    Row r;
    r.stat = add(mul(bx, sched.rowsY), ty);
    r.valid = ult(r.stat, numStats);
    r.split = by;
    Value oBegin = mul(r.split, sched.chunkOuter);
    Value iBegin = mul(r.split, sched.chunkInner);
    r.oBegin = select(sched.splitOuter, oBegin, c(0));
    r.iBegin = select(sched.splitOuter, c(0), iBegin);
    r.oEnd =
        select(sched.splitOuter,
               minU(add(oBegin, sched.chunkOuter), outerCount), outerCount);
    r.iEnd = select(sched.splitOuter, innerCount,
                    minU(add(iBegin, sched.chunkInner), innerCount));
    // Threads past the last statistic take part in the barriers only.
    r.oEnd = select(r.valid, r.oEnd, r.oBegin);
    Offsets base = decompose(r.stat, keptDims);
    r.base = base.input;
    r.gammaBase = base.gamma;
    return r;
  }

  using ElementBody = function_ref<SmallVector<Value>(
      Value offset, Value gammaOffset, int64_t lanes, ValueRange accs)>;
  /// Runs `body` over this thread's elements of `r`: 128-bit vectors when
  /// the inner dim is contiguous, a multiple of the vector and every data
  /// buffer is 16-byte aligned (a uniform branch), single elements
  /// otherwise. Consecutive threads touch consecutive vectors (coalesced).
  SmallVector<Value> forEachElement(const Row &r, ValueRange inits,
                                    ArrayRef<Value> dataBuffers,
                                    ArrayRef<Value> affineBuffers,
                                    ElementBody body) {
    auto loops = [&](int64_t lanes) -> SmallVector<Value> {
      Value step = mul(sched.threadsX, c(lanes));
      return buildFor(
          r.oBegin, r.oEnd, c(1), inits,
          [&](Value o, ValueRange accs) -> SmallVector<Value> {
            Offsets outer = decompose(o, outerReducedDims);
            Value base = add(r.base, outer.input);
            Value gammaBase = add(r.gammaBase, outer.gamma);
            Value first = add(r.iBegin, mul(tx, c(lanes)));
            return buildFor(
                first, r.iEnd, step, accs,
                [&](Value i, ValueRange inner) -> SmallVector<Value> {
                  Value offset = add(base, mul(i, strides[innerDim]));
                  Value gammaOffset =
                      innerAffine
                          ? add(gammaBase, mul(i, gammaStrides[innerDim]))
                          : gammaBase;
                  return body(offset, gammaOffset, lanes, inner);
                });
          });
    };
    if (!rowMode || width == 1)
      return loops(1);
    Value ok = eq(remU(innerCount, c(width)), c(0));
    auto aligned = [&](Value memref) {
      Value address = memref::ExtractAlignedPointerAsIndexOp::create(b, memref);
      return eq(remU(address, c(16)), c(0));
    };
    for (Value buffer : dataBuffers)
      if (buffer)
        ok = both(ok, aligned(buffer));
    if (innerAffine)
      for (Value buffer : affineBuffers)
        if (buffer)
          ok = both(ok, aligned(buffer));
    return buildIf(
        ok, TypeRange(inits), [&]() { return loops(width); },
        [&]() { return loops(1); });
  }

  using Merge = function_ref<SmallVector<Value>(ValueRange, ValueRange)>;
  /// Reduces `values` over the X threads of this row: a shuffle tree in each
  /// warp, then every thread merges the row's warp results from shared
  /// memory in warp order, so all threads hold the same bits. Every thread
  /// of the block must call it (it has barriers).
  SmallVector<Value> rowReduce(SmallVector<Value> values, Merge merge,
                               Value threadsX = Value()) {
    threadsX = threadsX ? threadsX : sched.threadsX;
    Value flat = add(mul(ty, threadsX), tx);
    Value lane = remU(flat, c(32));
    Value warp = divU(flat, c(32));
    Value width32 = arith::ConstantIntOp::create(b, 32, 32);
    for (int64_t offset : {16, 8, 4, 2, 1}) {
      Value delta = arith::ConstantIntOp::create(b, offset, 32);
      SmallVector<Value> others;
      for (Value v : values)
        others.push_back(
            gpu::ShuffleOp::create(b, v, delta, width32, gpu::ShuffleMode::DOWN)
                .getShuffleResult());
      values = merge(values, others);
    }
    int64_t count = values.size();
    assert(count <= 4 && "shared memory holds four values per warp");
    buildIf(eq(lane, c(0)), [&] {
      for (auto [j, v] : llvm::enumerate(values))
        memref::StoreOp::create(b, convert(v, b.getF64Type()), shared,
                                ValueRange{add(mul(warp, c(count)), c(j))});
    });
    gpu::BarrierOp::create(b);
    Value warps = divU(threadsX, c(32));
    Value first = mul(ty, warps);
    SmallVector<Value> zeros;
    for (Value v : values)
      zeros.push_back(f(0.0, v.getType()));
    SmallVector<Value> result = buildFor(
        first, add(first, warps), c(1), zeros,
        [&](Value w, ValueRange accs) -> SmallVector<Value> {
          SmallVector<Value> other;
          for (int64_t j = 0; j < count; ++j)
            other.push_back(
                convert(memref::LoadOp::create(
                            b, shared, ValueRange{add(mul(w, c(count)), c(j))}),
                        accs[j].getType()));
          return merge(accs, other);
        });
    // The buffer is reused by the next reduction of this thread's row.
    gpu::BarrierOp::create(b);
    return result;
  }

  SmallVector<Value> addAll(ValueRange x, ValueRange y) {
    SmallVector<Value> sums;
    for (auto [a, c] : llvm::zip(x, y))
      sums.push_back(fadd(a, c));
    return sums;
  }

  GpuSchedule sched;
  Value shared;
  Value tx, ty, bx, by;
};

//===----------------------------------------------------------------------===//
// Forward
//===----------------------------------------------------------------------===//

class ForwardEmitter : public GpuKernelEmitter {
public:
  ForwardEmitter(ImplicitLocOpBuilder &b, const NormDescription &desc,
                 const NormBuffers &buf, Value workspace, Value shared,
                 ValueRange inputSizes)
      : GpuKernelEmitter(b, desc, buf.elementType, inputSizes, shared,
                         /*backward=*/false, /*affineGrads=*/false),
        buf(buf), workspace(workspace) {}

  void emit(GpuKernelKind kind);

private:
  /// Welford/Chan merge of (count, mean, M2) triples; for RMSNorm the
  /// "mean" stays 0 and M2 is the sum of squares.
  SmallVector<Value> merge(ValueRange x, ValueRange y) {
    Value n = fadd(x[0], y[0]);
    if (!desc.center)
      return {n, x[1], fadd(x[2], y[2])};
    Value zero = f(0.0, n.getType());
    Value ratio = arith::SelectOp::create(b, fgt(n, zero), fdiv(y[0], n), zero);
    Value delta = fsub(y[1], x[1]);
    Value mean = fadd(x[1], fmul(delta, ratio));
    Value m2 =
        fadd(fadd(x[2], y[2]), fmul(fmul(delta, delta), fmul(x[0], ratio)));
    return {n, mean, m2};
  }

  /// This thread's (count, mean, M2) of x - shift over its elements of the
  /// chunk, in f64: it holds the squares of any f32/f16/bf16 deviation and
  /// keeps the mean of near-max data that cancels (f32 Welford lost 1e-4
  /// relative there). The shift (the statistic's first element, the same
  /// in every split) keeps the deviations small for data far from zero.
  SmallVector<Value> accumulate(const Row &r, Value shift) {
    Type f64 = b.getF64Type();
    SmallVector<Value> zeros(3, f(0.0, f64));
    return forEachElement(
        r, zeros, {buf.input}, {},
        [&](Value offset, Value, int64_t lanes,
            ValueRange accs) -> SmallVector<Value> {
          Value v = convert(loadVector(buf.input, offset, lanes), f64);
          Value n = f(lanes, f64);
          if (shift)
            v = fsub(v, splat(shift, lanes));
          if (!desc.center)
            return {fadd(accs[0], n), accs[1],
                    fadd(accs[2], reduceAdd(fmul(v, v)))};
          Value mean = fdiv(reduceAdd(v), n);
          Value dev = fsub(v, splat(mean, lanes));
          return merge(accs, {n, mean, reduceAdd(fmul(dev, dev))});
        });
  }

  /// Split partials: count, mean, M2 and the shift they are relative to (f64).
  static constexpr int64_t kPartialFields = 4;
  Value partialIndex(const Row &r, Value split, int64_t j) {
    return add(mul(add(mul(r.stat, sched.splits), split), c(kPartialFields)),
               c(j));
  }

  /// y = ((x s - shift) - mean) * rstd * gamma + beta, with shift, mean and
  /// rstd already scaled by s (null: no term).
  void normalize(const Row &r, Value scale, Value shift, Value mean,
                 Value rstd) {
    if (!buf.output)
      return;
    forEachElement(r, {}, {buf.input, buf.output}, {buf.gamma, buf.beta},
                   [&](Value offset, Value gammaOffset, int64_t lanes,
                       ValueRange) -> SmallVector<Value> {
                     Value v = loadVector(buf.input, offset, lanes);
                     if (scale)
                       v = fmul(v, splat(scale, lanes));
                     if (shift)
                       v = fsub(v, splat(shift, lanes));
                     if (mean)
                       v = fsub(v, splat(mean, lanes));
                     v = fmul(v, splat(rstd, lanes));
                     if (buf.gamma)
                       v = fmul(v, loadAffine(buf.gamma, gammaOffset, lanes));
                     if (buf.beta)
                       v = fadd(v, loadAffine(buf.beta, gammaOffset, lanes));
                     storeVector(buf.output, offset, v);
                     return {};
                   });
  }

  const NormBuffers &buf;
  Value workspace;
};

void ForwardEmitter::emit(GpuKernelKind kind) {
  Row r = row();
  if (desc.givenStats) {
    SmallVector<Value> stats = buildIf(
        r.valid, TypeRange{accType, accType},
        [&]() -> SmallVector<Value> {
          return {loadScalar(buf.givenMean, r.stat),
                  convert(rstdFromVar(
                              loadScalar(buf.givenVar, r.stat, b.getF64Type())),
                          accType)};
        },
        [&]() -> SmallVector<Value> {
          return {f(0.0), f(0.0)};
        });
    normalize(r, Value(), Value(), stats[0], stats[1]);
    return;
  }

  // The shift is read from x by the blocks that read x for statistics; the
  // apply blocks take it from the partials: with y in place of x, another
  // block may already have overwritten the statistic's first element.
  Type f64 = b.getF64Type();
  Value shift;
  if (desc.center)
    shift = buildIf(
        r.valid, TypeRange{f64},
        [&]() -> SmallVector<Value> {
          if (kind == GpuKernelKind::Apply)
            return {memref::LoadOp::create(
                b, workspace, ValueRange{partialIndex(r, c(0), 3)})};
          return {loadScalar(buf.input, r.base, f64)};
        },
        [&]() -> SmallVector<Value> { return {f(0.0, f64)}; })[0];
  SmallVector<Value> triple;
  if (kind == GpuKernelKind::Apply) {
    // Merge the K partials in split order.
    triple = buildIf(
        r.valid, TypeRange{f64, f64, f64},
        [&]() -> SmallVector<Value> {
          SmallVector<Value> zeros(3, f(0.0, f64));
          SmallVector<Value> merged = buildFor(
              c(0), sched.splits, c(1), zeros,
              [&](Value k, ValueRange accs) -> SmallVector<Value> {
                SmallVector<Value> partial;
                for (int64_t j = 0; j < 3; ++j)
                  partial.push_back(memref::LoadOp::create(
                      b, workspace, ValueRange{partialIndex(r, k, j)}));
                return merge(accs, partial);
              });
          return merged;
        },
        [&]() -> SmallVector<Value> {
          return SmallVector<Value>(3, f(0.0, f64));
        });
  } else {
    triple = rowReduce(accumulate(r, shift),
                       [&](ValueRange x, ValueRange y) { return merge(x, y); });
    if (kind == GpuKernelKind::Partials) {
      buildIf(both(r.valid, eq(tx, c(0))), [&] {
        SmallVector<Value> fields(triple);
        fields.push_back(shift ? shift : f(0.0, f64));
        for (auto [j, field] : llvm::enumerate(fields))
          memref::StoreOp::create(b, field, workspace,
                                  ValueRange{partialIndex(r, r.split, j)});
      });
      return;
    }
  }

  // Population variance; rstd with eps where the description puts it.
  Value var = fdiv(triple[2], triple[0]);
  Value rstd = rstdFromVar(var);
  // The mean of the shifted data; the statistic is shift + offset.
  Value offset = desc.center ? triple[1] : Value();
  Value mean = desc.center ? fadd(shift, offset) : Value();
  buildIf(both(r.valid, both(eq(tx, c(0)), eq(r.split, c(0)))), [&] {
    if (buf.savedMean && mean)
      storeScalar(buf.savedMean, r.stat, mean);
    if (buf.savedRstd)
      storeScalar(buf.savedRstd, r.stat, rstd);
    if (buf.runningMean && (buf.runningMeanOut || buf.runningVarOut)) {
      Value momentum = f(*desc.momentum, f64);
      Value keep = f(1.0 - *desc.momentum, f64);
      auto blend = [&](Value running, Value batch) {
        return fadd(fmul(keep, loadScalar(running, r.stat, f64)),
                    fmul(momentum, convert(batch, f64)));
      };
      // Unbiased variance: var * M / (M - 1).
      Value m = toFloat(sched.reduceCount, f64);
      Value unbiased = fdiv(fmul(convert(var, f64), m), fsub(m, f(1.0, f64)));
      if (buf.runningMeanOut)
        storeScalar(buf.runningMeanOut, r.stat,
                    blend(buf.runningMean, mean ? mean : f(0.0, f64)));
      if (buf.runningVarOut)
        storeScalar(buf.runningVarOut, r.stat, blend(buf.runningVar, unbiased));
    }
  });
  // y in the data's accumulation type, on x scaled by s = 2^-100 when the
  // shift or the spread is huge: x - shift could overflow f32 (+-3e38).
  // Scales are powers of two, so exact.
  Value scale = f(1.0, f64);
  if (!accType.isF64()) {
    Value big = f(std::ldexp(1.0, 100), f64);
    Value x0 = shift ? shift : f(0.0, f64);
    Value huge = arith::OrIOp::create(
        b,
        arith::OrIOp::create(
            b, arith::CmpFOp::create(b, arith::CmpFPredicate::OGE, x0, big),
            arith::CmpFOp::create(b, arith::CmpFPredicate::OLE, x0,
                                  f(-std::ldexp(1.0, 100), f64))),
        arith::CmpFOp::create(b, arith::CmpFPredicate::OGE, var,
                              f(std::ldexp(1.0, 200), f64)));
    scale =
        arith::SelectOp::create(b, huge, f(std::ldexp(1.0, -100), f64), scale);
  }
  auto scaled = [&](Value v) {
    return v ? convert(fmul(v, scale), accType) : Value();
  };
  normalize(r, accType.isF64() ? Value() : convert(scale, accType),
            scaled(shift), scaled(offset), convert(fdiv(rstd, scale), accType));
}

//===----------------------------------------------------------------------===//
// Backward
//===----------------------------------------------------------------------===//

class BackwardEmitter : public GpuKernelEmitter {
public:
  BackwardEmitter(ImplicitLocOpBuilder &b, const NormDescription &desc,
                  const NormBackwardBuffers &buf, Value shared,
                  ValueRange inputSizes)
      : GpuKernelEmitter(b, desc, buf.elementType, inputSizes, shared,
                         /*backward=*/true,
                         /*affineGrads=*/buf.gradGamma || buf.gradBeta),
        buf(buf) {}

  void emit(GpuKernelKind kind);

private:
  /// Saved mean (null for RMSNorm) and rstd of statistic `stat` in f64
  /// (loaded only for a valid statistic).
  std::pair<Value, Value> loadStats(Value stat, Value valid) {
    Type f64 = b.getF64Type();
    SmallVector<Value> stats = buildIf(
        valid, TypeRange{f64, f64},
        [&]() -> SmallVector<Value> { return statsAt(stat); },
        [&]() -> SmallVector<Value> {
          return {f(0.0, f64), f(0.0, f64)};
        });
    return {desc.center || desc.givenStats ? stats[0] : Value(), stats[1]};
  }
  SmallVector<Value> statsAt(Value stat) {
    Type f64 = b.getF64Type();
    Value mean = buf.mean ? loadScalar(buf.mean, stat, f64) : f(0.0, f64);
    Value rstd = buf.rstd ? loadScalar(buf.rstd, stat, f64)
                          : rstdFromVar(loadScalar(buf.var, stat, f64));
    return {mean, rstd};
  }
  /// g = dy * gamma and u = x - mean (x for RMSNorm) for `lanes` elements,
  /// in f64 (x - mean of near-max f32 data overflows f32).
  std::pair<Value, Value> gradAndDeviation(Value offset, Value gammaOffset,
                                           int64_t lanes, Value mean) {
    Type f64 = b.getF64Type();
    Value g = convert(loadVector(buf.gradOutput, offset, lanes), f64);
    if (buf.gamma)
      g = fmul(g, convert(loadAffine(buf.gamma, gammaOffset, lanes), f64));
    Value u = convert(loadVector(buf.input, offset, lanes), f64);
    if (mean)
      u = fsub(u, splat(mean, lanes));
    return {g, u};
  }
  /// Computed statistics are recomputed exactly from the data (the saved
  /// ones are rounded to f32: a rounded mean next to a tiny deviation, or
  /// sqrt(var) recovered as 1/rstd - eps, would be large errors): with
  /// u = x - saved mean, c = mean(u), var = mean(u^2) - c^2, and x-hat =
  /// (u - c) rstd(var). The affine kernels read (c, rstd) from here.
  bool recomputed() const { return !desc.givenStats; }
  Value statIndex(Value stat, int64_t j) {
    return add(sched.affineWorkspace, add(mul(stat, c(2)), c(j)));
  }
  static constexpr int64_t kPartialFields = 4;
  Value partialIndex(const Row &r, Value split, int64_t j) {
    return add(
        add(sched.affineWorkspace, mul(sched.numStats, c(2))),
        add(mul(add(mul(r.stat, sched.splits), split), c(kPartialFields)),
            c(j)));
  }
  /// The coefficients of dx from the four sums (g, g u, u, u^2) over a
  /// statistic: {rstd, c, c1 = mean(g), c2 = k mean(g x-hat)}.
  SmallVector<Value> coefficients(ArrayRef<Value> sums) {
    Type f64 = b.getF64Type();
    Value m = toFloat(sched.reduceCount, f64);
    Value zero = f(0.0, f64);
    Value c0 = desc.center ? fdiv(sums[2], m) : zero;
    Value var = fsub(fdiv(sums[3], m), fmul(c0, c0));
    var = arith::SelectOp::create(b, fgt(var, zero), var, zero);
    Value rstd = rstdFromVar(var);
    Value c1 = desc.center ? fdiv(sums[0], m) : zero;
    Value sumGXHat = fmul(rstd, fsub(sums[1], fmul(c0, sums[0])));
    // d rstd / d var: k = rstd (eps inside) or 1/sqrt(var) (eps outside;
    // a constant statistic has x-hat = 0).
    Value k = rstd;
    if (desc.epsPlacement != EpsPlacement::Inside) {
      Value sigma = sqrt(var);
      k = arith::SelectOp::create(b, fgt(sigma, zero), fdiv(f(1.0, f64), sigma),
                                  zero);
    }
    return {rstd, c0, c1, fmul(k, fdiv(sumGXHat, m))};
  }
  void emitRows(GpuKernelKind kind);
  void emitAffinePartials();
  void emitAffineFinalize();
  void emitFusedAffine();

  const NormBackwardBuffers &buf;
};

void BackwardEmitter::emit(GpuKernelKind kind) {
  switch (kind) {
  case GpuKernelKind::AffinePartials:
    return emitAffinePartials();
  case GpuKernelKind::AffineFinalize:
    return emitAffineFinalize();
  case GpuKernelKind::FusedAffine:
    return emitFusedAffine();
  default:
    return emitRows(kind);
  }
}

/// dx = rstd (g - mean(g)) - k x-hat mean(g x-hat), with k = rstd for eps
/// inside the square root and 1/sqrt(var) for eps outside (docs/backward.md);
/// no mean(g) term for RMSNorm; dx = rstd g for given statistics. One pass
/// sums g, g u, u and u^2 in f64 (see recomputed()); sum(g x-hat) =
/// rstd (sum(g u) - c sum(g)).
void BackwardEmitter::emitRows(GpuKernelKind kind) {
  Type f64 = b.getF64Type();
  Row r = row();
  auto [mean, savedRstd] = loadStats(r.stat, r.valid);
  Value zero = f(0.0, f64);
  Value rstd = savedRstd, correction = zero, c1 = zero, c2 = zero;
  if (recomputed()) {
    SmallVector<Value> sums;
    if (kind == GpuKernelKind::Apply) {
      sums = buildIf(
          r.valid, TypeRange{f64, f64, f64, f64},
          [&]() -> SmallVector<Value> {
            SmallVector<Value> zeros(4, zero);
            return buildFor(
                c(0), sched.splits, c(1), zeros,
                [&](Value k, ValueRange accs) -> SmallVector<Value> {
                  SmallVector<Value> partial;
                  for (int64_t j = 0; j < 4; ++j)
                    partial.push_back(memref::LoadOp::create(
                        b, buf.workspace, ValueRange{partialIndex(r, k, j)}));
                  return addAll(accs, partial);
                });
          },
          [&]() -> SmallVector<Value> { return SmallVector<Value>(4, zero); });
    } else {
      SmallVector<Value> zeros(4, zero);
      sums = forEachElement(r, zeros, {buf.gradOutput, buf.input}, {buf.gamma},
                            [&](Value offset, Value gammaOffset, int64_t lanes,
                                ValueRange accs) -> SmallVector<Value> {
                              auto [g, u] = gradAndDeviation(
                                  offset, gammaOffset, lanes, mean);
                              return {fadd(accs[0], reduceAdd(g)),
                                      fadd(accs[1], reduceAdd(fmul(g, u))),
                                      fadd(accs[2], reduceAdd(u)),
                                      fadd(accs[3], reduceAdd(fmul(u, u)))};
                            });
      sums = rowReduce(
          sums, [&](ValueRange x, ValueRange y) { return addAll(x, y); });
      if (kind == GpuKernelKind::Partials) {
        buildIf(both(r.valid, eq(tx, c(0))), [&] {
          for (int64_t j = 0; j < 4; ++j)
            memref::StoreOp::create(b, sums[j], buf.workspace,
                                    ValueRange{partialIndex(r, r.split, j)});
        });
        return;
      }
    }
    SmallVector<Value> coef = coefficients(sums);
    rstd = coef[0];
    correction = coef[1];
    c1 = coef[2];
    c2 = coef[3];
    // The affine kernels (launched next) use the same x-hat.
    if (buf.gradGamma || buf.gradBeta)
      buildIf(both(r.valid, both(eq(tx, c(0)), eq(r.split, c(0)))), [&] {
        memref::StoreOp::create(b, correction, buf.workspace,
                                ValueRange{statIndex(r.stat, 0)});
        memref::StoreOp::create(b, rstd, buf.workspace,
                                ValueRange{statIndex(r.stat, 1)});
      });
  }
  if (!buf.gradInput)
    return;
  forEachElement(
      r, {}, {buf.gradOutput, buf.input, buf.gradInput}, {buf.gamma},
      [&](Value offset, Value gammaOffset, int64_t lanes,
          ValueRange) -> SmallVector<Value> {
        auto [g, u] = gradAndDeviation(offset, gammaOffset, lanes, mean);
        Value dx = fmul(splat(rstd, lanes), fsub(g, splat(c1, lanes)));
        if (recomputed()) {
          Value xhat =
              fmul(fsub(u, splat(correction, lanes)), splat(rstd, lanes));
          dx = fsub(dx, fmul(splat(c2, lanes), xhat));
        }
        storeVector(buf.gradInput, offset, convert(dx, accType));
        return {};
      });
}

/// dx as in emitRows, for rows whose elements map one to one to gamma:
/// thread row `t` of P handles rows t, t + P, ... (the same number of
/// iterations in every thread, for the barriers), keeps its R vectors of
/// dy, x and gamma in registers for both uses, and accumulates dgamma and
/// dbeta of its columns across its rows; the P partials are added in order
/// by the finalize kernel. dy and x are read from memory once.
void BackwardEmitter::emitFusedAffine() {
  int64_t threads = getFusedAffineThreads();
  if (threads == 0)
    llvm::report_fatal_error("FusedAffine kernel for an ineligible layout");
  int64_t regs = *getConstantIntValue(innerCount) / (threads * width);
  Type f64 = b.getF64Type();
  Value threadRow = add(mul(bx, sched.fusedRowsY), ty);
  Value threadRows = sched.affineChunks;
  Value iterations = ceilDiv(sched.numStats, threadRows);
  // Column (gamma) offset of this thread's j-th vector.
  auto column = [&](int64_t j) {
    return mul(add(tx, mul(c(j), sched.fusedThreadsX)), c(width));
  };
  // 128-bit accesses when every buffer is aligned (a uniform branch), else
  // the same lanes element by element.
  Value aligned = arith::ConstantIntOp::create(b, 1, 1);
  for (Value buffer : {buf.gradOutput, buf.input, buf.gamma, buf.gradInput})
    if (buffer)
      aligned = both(
          aligned,
          eq(remU(memref::ExtractAlignedPointerAsIndexOp::create(b, buffer),
                  c(16)),
             c(0)));
  auto load = [&](Value memref, Value offset, bool vectorized) -> Value {
    if (vectorized)
      return loadVector(memref, offset, width);
    SmallVector<Value> lanes;
    for (int64_t l = 0; l < width; ++l)
      lanes.push_back(vector::ExtractOp::create(
          b, loadVector(memref, add(offset, c(l)), 1), ArrayRef<int64_t>{0}));
    return vector::FromElementsOp::create(b, VectorType::get({width}, accType),
                                          lanes);
  };
  auto store = [&](Value memref, Value offset, Value value, bool vectorized) {
    if (vectorized)
      return storeVector(memref, offset, value);
    for (int64_t l = 0; l < width; ++l)
      storeScalar(memref, add(offset, c(l)),
                  vector::ExtractOp::create(b, value, ArrayRef<int64_t>{l}));
  };

  VectorType vec = VectorType::get({width}, accType);
  VectorType wideVec = VectorType::get({width}, f64);
  Value zeroVec = splat(f(0.0), width);
  Value zeroWide = splat(f(0.0, f64), width);
  SmallVector<Value> gammaRegs;
  auto body = [&](bool vectorized) -> SmallVector<Value> {
    SmallVector<Value> gamma;
    for (int64_t j = 0; j < regs; ++j)
      gamma.push_back(buf.gamma ? load(buf.gamma, column(j), vectorized)
                                : Value());
    // dgamma/dbeta of this thread's columns, in f64.
    SmallVector<Value> inits(2 * regs, zeroWide);
    return buildFor(
        c(0), iterations, c(1), inits,
        [&](Value k, ValueRange accs) -> SmallVector<Value> {
          Value stat = add(threadRow, mul(k, threadRows));
          Value valid = ult(stat, sched.numStats);
          Value mean = loadStats(stat, valid).first;
          Value base = mul(stat, innerCount);
          SmallVector<Type> types(2 * regs, vec);
          // This thread's dy and x, zero past the last row.
          SmallVector<Value> data = buildIf(
              valid, types,
              [&]() -> SmallVector<Value> {
                SmallVector<Value> v;
                for (int64_t j = 0; j < regs; ++j)
                  v.push_back(
                      load(buf.gradOutput, add(base, column(j)), vectorized));
                for (int64_t j = 0; j < regs; ++j)
                  v.push_back(
                      load(buf.input, add(base, column(j)), vectorized));
                return v;
              },
              [&]() -> SmallVector<Value> {
                return SmallVector<Value>(2 * regs, zeroVec);
              });
          // The sums and x-hat in f64, as in emitRows.
          SmallVector<Value> g, u, xhat;
          Value zero = f(0.0, f64);
          SmallVector<Value> sums(4, zero);
          for (int64_t j = 0; j < regs; ++j) {
            Value dy = convert(data[j], f64);
            g.push_back(buf.gamma ? fmul(dy, convert(gamma[j], f64)) : dy);
            Value x = convert(data[regs + j], f64);
            u.push_back(mean ? fsub(x, splat(mean, width)) : x);
            sums[0] = fadd(sums[0], reduceAdd(g[j]));
            sums[1] = fadd(sums[1], reduceAdd(fmul(g[j], u[j])));
            sums[2] = fadd(sums[2], reduceAdd(u[j]));
            sums[3] = fadd(sums[3], reduceAdd(fmul(u[j], u[j])));
          }
          sums = rowReduce(
              sums, [&](ValueRange x, ValueRange y) { return addAll(x, y); },
              sched.fusedThreadsX);
          SmallVector<Value> coef = coefficients(sums);
          Value rstd = coef[0];
          for (int64_t j = 0; j < regs; ++j)
            xhat.push_back(
                fmul(fsub(u[j], splat(coef[1], width)), splat(rstd, width)));
          if (buf.gradInput)
            buildIf(valid, [&] {
              for (int64_t j = 0; j < regs; ++j) {
                Value dx = fsub(
                    fmul(splat(rstd, width), fsub(g[j], splat(coef[2], width))),
                    fmul(splat(coef[3], width), xhat[j]));
                store(buf.gradInput, add(base, column(j)), convert(dx, accType),
                      vectorized);
              }
            });
          // Rows past the end loaded zeros: they add nothing.
          SmallVector<Value> next;
          for (int64_t j = 0; j < regs; ++j)
            next.push_back(fadd(accs[j], fmul(convert(data[j], f64), xhat[j])));
          for (int64_t j = 0; j < regs; ++j)
            next.push_back(fadd(accs[regs + j], convert(data[j], f64)));
          return next;
        });
  };
  SmallVector<Type> accTypes(2 * regs, wideVec);
  SmallVector<Value> accs = buildIf(
      aligned, accTypes, [&]() { return body(true); },
      [&]() { return body(false); });
  // Partials of this thread row, [row][dgamma | dbeta][column], in f64.
  Value affine = sched.affineCount;
  for (int64_t j = 0; j < regs; ++j)
    for (int64_t l = 0; l < width; ++l)
      for (int64_t kind = 0; kind < 2; ++kind) {
        Value lane = vector::ExtractOp::create(b, accs[kind * regs + j],
                                               ArrayRef<int64_t>{l});
        Value index = add(mul(add(mul(threadRow, c(2)), c(kind)), affine),
                          add(column(j), c(l)));
        memref::StoreOp::create(b, lane, buf.workspace, ValueRange{index});
      }
}

/// One thread per gamma element `a` and chunk of the other elements:
/// f64 sums of dy * x-hat and dy over the chunk.
void BackwardEmitter::emitAffinePartials() {
  Type f64 = b.getF64Type();
  Value a = add(mul(bx, c(kGpuAffineThreads)), tx);
  Value chunk = by;
  Value valid = ult(a, sched.affineCount);
  Value begin = mul(chunk, sched.affineChunkLen);
  Value end = minU(add(begin, sched.affineChunkLen), sched.nonAffineCount);
  end = select(valid, end, begin);
  Offsets outer = decompose(a, affineDims);
  SmallVector<Value> zeros(2, f(0.0, f64));
  SmallVector<Value> sums =
      buildFor(begin, end, c(1), zeros, [&](Value i, ValueRange accs) {
        Offsets inner = decompose(i, nonAffineDims);
        Value offset = add(outer.input, inner.input);
        Value dy = loadScalar(buf.gradOutput, offset, f64);
        SmallVector<Value> next(accs);
        if (buf.gradGamma) {
          // x-hat in f64 with the statistics the rows kernel recomputed.
          Value stat = add(outer.stat, inner.stat);
          SmallVector<Value> stats = statsAt(stat);
          Value x = loadScalar(buf.input, offset, f64);
          if (desc.center || desc.givenStats)
            x = fsub(x, stats[0]);
          Value rstd = stats[1];
          if (recomputed()) {
            x = fsub(x, memref::LoadOp::create(b, buf.workspace,
                                               ValueRange{statIndex(stat, 0)}));
            rstd = memref::LoadOp::create(b, buf.workspace,
                                          ValueRange{statIndex(stat, 1)});
          }
          next[0] = fadd(accs[0], fmul(dy, fmul(x, rstd)));
        }
        next[1] = fadd(accs[1], dy);
        return next;
      });
  buildIf(valid, [&] {
    for (int64_t j = 0; j < 2; ++j)
      memref::StoreOp::create(
          b, sums[j], buf.workspace,
          ValueRange{
              add(mul(add(mul(chunk, c(2)), c(j)), sched.affineCount), a)});
  });
}

void BackwardEmitter::emitAffineFinalize() {
  Type f64 = b.getF64Type();
  Value a = add(mul(bx, c(kGpuAffineThreads)), tx);
  buildIf(ult(a, sched.affineCount), [&] {
    SmallVector<Value> zeros(2, f(0.0, f64));
    SmallVector<Value> sums = buildFor(
        c(0), sched.affineChunks, c(1), zeros,
        [&](Value chunk, ValueRange accs) -> SmallVector<Value> {
          SmallVector<Value> partial;
          for (int64_t j = 0; j < 2; ++j)
            partial.push_back(memref::LoadOp::create(
                b, buf.workspace,
                ValueRange{add(
                    mul(add(mul(chunk, c(2)), c(j)), sched.affineCount), a)}));
          return addAll(accs, partial);
        });
    if (buf.gradGamma)
      storeScalar(buf.gradGamma, a, sums[0]);
    if (buf.gradBeta)
      storeScalar(buf.gradBeta, a, sums[1]);
  });
}

} // namespace

GpuSchedule norm::emitGpuSchedule(ImplicitLocOpBuilder &b,
                                  const NormDescription &desc, Type elementType,
                                  ValueRange inputSizes, bool backward,
                                  bool affineGrads) {
  return GpuEmitter(b, desc, elementType, inputSizes)
      .schedule(backward, affineGrads);
}

void norm::emitGpuForwardKernel(ImplicitLocOpBuilder &b,
                                const NormDescription &desc,
                                const NormBuffers &buffers, Value workspace,
                                Value shared, ValueRange inputSizes,
                                GpuKernelKind kind) {
  ForwardEmitter(b, desc, buffers, workspace, shared, inputSizes).emit(kind);
}

void norm::emitGpuBackwardKernel(ImplicitLocOpBuilder &b,
                                 const NormDescription &desc,
                                 const NormBackwardBuffers &buffers,
                                 Value shared, ValueRange inputSizes,
                                 GpuKernelKind kind) {
  BackwardEmitter(b, desc, buffers, shared, inputSizes).emit(kind);
}
