//===- NormalizeBackwardToLoops.cpp - norm.normalize_backward to loops ----===//
//
// One recipe for the gradients of every normalization, from its description
// alone. With g = dy * gamma and xhat = (x - mean) * rstd, over one
// statistic's reduced set of M elements:
//
//   pass A  Sg = sum(g), Sgx = sum(g * xhat), Sx = sum(xhat), Sxx = sum(xhat^2)
//   then    c   = Sx / M            the mean of xhat, 0 in exact arithmetic:
//                                   it cancels the rounding of the f32 saved
//                                   mean, which matters for large-mean rows
//           mg  = Sg / M,  mgx = (Sgx - c * Sg) / M
//           k   = -2 rstd'(var) / rstd^2
//               = rstd                      eps inside  (rstd = 1/sqrt(v+eps))
//               = rstd / sqrt(Sxx/M - c^2)  eps outside (rstd =
//               1/(sqrt(v)+eps)),
//                                           i.e. 1/sqrt(var)
//   pass B  dx = rstd * (g - mg) - k * (xhat - c) * mgx   (centered)
//              = rstd * g - k * xhat * mgx                (not centered)
//              = rstd * g                                 (given statistics)
//           partial dgamma += dy * (xhat - c), partial dbeta += dy
//
// Everything is computed in f64 and rounded once on store, except the dx of
// a 16-bit row whose f32 evaluation has a small enough error bound (pass A
// also takes the maxima that bound it: f32DxCondition). Work items are
// chunks of statistics (16 statistics or 2^18 elements or more each,
// kMaxBackwardChunks at most, fixed by the sizes); each owns a slice of the
// workspace for its dgamma/dbeta partial sums, and the finalize step adds
// the slices in chunk order. No atomics, and the
// result does not depend on how chunks are spread over threads.
//
// Long rows and large batches with few channel groups (canSplitRows) are
// split further: a prepass sums pass A per chunk of a row or batch, and
// each main item combines its row's sums before pass B on its chunk: a
// column chunk of every row in row order, or one chunk of a batch
// (emitSplitRows; channels-last, one chunk of every lane row, visited in
// tiles of positions: emitTiledPassA/B).
//
//===----------------------------------------------------------------------===//

#include "codegen/LoopEmitter.h"
#include "codegen/NormalizeToLoops.h"

#include "dialect/NormOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "llvm/Support/SaveAndRestore.h"

using namespace mlir;
using namespace mlir::norm;
using namespace mlir::norm::detail;

/// Chunks of at least 16 items, or fewer items (down to 1) of at least 2^18
/// elements together, and at most kMaxBackwardChunks: small inputs do not
/// pay for clearing and adding 64 partial slices, and a few long rows (8 of
/// 65536) still make more than one chunk for the threads to share. Depends
/// on the sizes (input or canonical: same product) only.
static Value chunkCount(ImplicitLocOpBuilder &b, Value items,
                        ValueRange sizes) {
  constexpr int64_t kMinItemsPerChunk = 16;
  constexpr int64_t kMinChunkElements = 1 << 18;
  auto c = [&](int64_t v) { return arith::ConstantIndexOp::create(b, v); };
  Value one = c(1);
  Value elements = one;
  for (Value size : sizes)
    elements = b.createOrFold<arith::MulIOp>(elements, size);
  Value perItem = b.createOrFold<arith::CeilDivUIOp>(
      elements, b.createOrFold<arith::MaxUIOp>(items, one));
  Value minItems = b.createOrFold<arith::MinUIOp>(
      c(kMinItemsPerChunk),
      b.createOrFold<arith::CeilDivUIOp>(
          c(kMinChunkElements), b.createOrFold<arith::MaxUIOp>(perItem, one)));
  Value chunks = b.createOrFold<arith::CeilDivUIOp>(items, minItems);
  return b.createOrFold<arith::MinUIOp>(chunks, c(kMaxBackwardChunks));
}

/// Sums of pass A per row chunk of a split row (sumPassA).
static constexpr int64_t kPassASums = 4;

bool norm::canSplitBackwardRows(MLIRContext *context,
                                const NormDescription &desc,
                                ArrayRef<int64_t> inputShape,
                                const LoopEmitOptions &options) {
  // Given statistics make no pass A: nothing couples a row's chunks.
  if (!options.splitLongRows || desc.givenStats)
    return false;
  int64_t lanes = statsVectorLength(Float64Type::get(context), options);
  CanonicalLayout layout = CanonicalLayout::get(desc, inputShape, lanes);
  // A large batch (BatchNorm) with few channel groups: every chunk item
  // has a partial slice of its own, so gamma may be anything.
  if (hasBatchDim(layout))
    return mayHaveLargeBatch(layout, inputShape, lanes);
  if (!hasContiguousRows(layout))
    return false;
  // Chunks of one row add to disjoint dgamma/dbeta partials only where
  // gamma varies along the row, and only along it.
  bool affineAlongRowsOnly =
      llvm::all_of(ArrayRef(layout.dims).drop_back(),
                   [](const CanonicalLayout::Dim &dim) { return !dim.affine; });
  if (!desc.affineDims.empty() &&
      (!layout.dims.back().affine || !affineAlongRowsOnly))
    return false;
  // Few long rows (the threads need their chunks), or rows so long that
  // unsplit chunks would hold one row each, and so one partial slice of
  // gamma's size per row (see emitBackwardSplit).
  if (mayHaveLongRows(layout, inputShape, /*splitVeryLongRows=*/false))
    return true;
  std::optional<int64_t> rowLength =
      staticCanonicalSize(layout, inputShape, layout.dims.size() - 1);
  return !rowLength || *rowLength >= kBackwardRowSplitAlwaysElements;
}

/// Partial slices of a split backward: one for split rows (each main item
/// owns a range of columns of it), or one per chunk item of a split batch
/// (whose chunks add to the same gamma elements).
static Value splitSlices(ImplicitLocOpBuilder &b, const RowSplit &split) {
  return split.batch ? split.items : arith::ConstantIndexOp::create(b, 1);
}

/// Work items of the main step of a split backward: the chunks of a batch,
/// or the column chunks of split rows, each running every row's chunk.
static Value splitMainItems(const RowSplit &split) {
  return split.batch ? split.items : split.chunks;
}

/// The split of a backward kernel: a large batch, or long rows. Rows are
/// split where there are few of them (emitRowSplit: the threads need the
/// chunks; its two passes read a long row twice in any case, so unlike the
/// forward there is no read to save), or where they hold 2^18 elements or
/// more: chunks of statistics would then hold one row each, and each a
/// partial slice of gamma's size (64 rows of 1M f32 took 1 GiB of
/// workspace for 256 MiB of input, cleared, added to row by row and read
/// again by the finalize). Split rows share one slice: each main item is a
/// column chunk and runs it for every row in order. Chunks are 8192
/// elements, longer where a row would have more than kMaxBackwardRowChunks
/// of them (each main item adds up every row's chunk sums).
static RowSplit emitBackwardSplit(ImplicitLocOpBuilder &b,
                                  const CanonicalLayout &layout,
                                  ArrayRef<Value> sizes, int64_t lanes) {
  if (!hasContiguousRows(layout))
    return emitBatchSplit(b, layout, sizes, lanes);
  RowSplit split =
      emitRowSplit(b, layout, sizes, lanes, /*splitVeryLongRows=*/false);
  auto index = [&](int64_t v) { return arith::ConstantIndexOp::create(b, v); };
  // An empty batch takes the unsplit path: no chunks, zero dgamma/dbeta.
  split.enabled = b.createOrFold<arith::AndIOp>(
      b.createOrFold<arith::OrIOp>(
          split.enabled, b.createOrFold<arith::CmpIOp>(
                             arith::CmpIPredicate::uge, split.rowLength,
                             index(kBackwardRowSplitAlwaysElements))),
      b.createOrFold<arith::CmpIOp>(arith::CmpIPredicate::ne, split.rows,
                                    index(0)));
  Value baseChunks = b.createOrFold<arith::CeilDivUIOp>(split.rowLength,
                                                        index(kRowSplitChunk));
  split.chunkLength = b.createOrFold<arith::MulIOp>(
      index(kRowSplitChunk), b.createOrFold<arith::CeilDivUIOp>(
                                 baseChunks, index(kMaxBackwardRowChunks)));
  split.chunks =
      b.createOrFold<arith::CeilDivUIOp>(split.rowLength, split.chunkLength);
  split.items = b.createOrFold<arith::MulIOp>(split.rows, split.chunks);
  return split;
}

/// The row split of a backward kernel for input sizes `inputSizes`, or
/// nullopt when it never splits its rows.
static std::optional<RowSplit>
getBackwardRowSplit(ImplicitLocOpBuilder &b, const NormDescription &desc,
                    ValueRange inputSizes, const LoopEmitOptions &options) {
  SmallVector<int64_t> shape;
  for (Value size : inputSizes)
    shape.push_back(getConstantIntValue(size).value_or(ShapedType::kDynamic));
  if (!canSplitBackwardRows(b.getContext(), desc, shape, options))
    return std::nullopt;
  int64_t lanes = statsVectorLength(b.getF64Type(), options);
  CanonicalLayout layout = CanonicalLayout::get(desc, shape, lanes);
  return emitBackwardSplit(b, layout, emitCanonicalSizes(b, layout, inputSizes),
                           lanes);
}

Value norm::emitBackwardChunkCount(ImplicitLocOpBuilder &b,
                                   const NormDescription &desc,
                                   ValueRange inputSizes,
                                   const LoopEmitOptions &options) {
  // Backward computes in f64: its work items use the f64 vector length.
  Value items = emitWorkItemCount(b, desc, b.getF64Type(), inputSizes, options);
  Value chunks = chunkCount(b, items, inputSizes);
  std::optional<RowSplit> split =
      getBackwardRowSplit(b, desc, inputSizes, options);
  if (!split)
    return chunks;
  return b.createOrFold<arith::SelectOp>(split->enabled, splitSlices(b, *split),
                                         chunks);
}

Value norm::emitBackwardWorkCount(ImplicitLocOpBuilder &b,
                                  const NormDescription &desc,
                                  ValueRange inputSizes,
                                  const LoopEmitOptions &options) {
  Value chunks = emitBackwardChunkCount(b, desc, inputSizes, options);
  std::optional<RowSplit> split =
      getBackwardRowSplit(b, desc, inputSizes, options);
  if (!split)
    return chunks;
  return b.createOrFold<arith::SelectOp>(split->enabled, splitMainItems(*split),
                                         chunks);
}

Value norm::emitBackwardPrepassWorkCount(ImplicitLocOpBuilder &b,
                                         const NormDescription &desc,
                                         ValueRange inputSizes,
                                         const LoopEmitOptions &options) {
  Value none = arith::ConstantIndexOp::create(b, 0);
  std::optional<RowSplit> split =
      getBackwardRowSplit(b, desc, inputSizes, options);
  if (!split)
    return none;
  return b.createOrFold<arith::SelectOp>(split->enabled, split->items, none);
}

/// Elements of gamma: the input sizes at the affine dims.
static Value gammaElements(ImplicitLocOpBuilder &b, const NormDescription &desc,
                           ValueRange inputSizes) {
  Value count = arith::ConstantIndexOp::create(b, 1);
  for (int64_t dim : desc.affineDims)
    count = b.createOrFold<arith::MulIOp>(count, inputSizes[dim]);
  return count;
}

Value norm::emitBackwardWorkspaceSize(ImplicitLocOpBuilder &b,
                                      const NormDescription &desc,
                                      ValueRange inputSizes,
                                      int64_t numPartials,
                                      const LoopEmitOptions &options) {
  Value chunks = emitBackwardChunkCount(b, desc, inputSizes, options);
  Value perChunk = b.createOrFold<arith::MulIOp>(
      gammaElements(b, desc, inputSizes),
      arith::ConstantIndexOp::create(b, numPartials));
  Value partials = b.createOrFold<arith::MulIOp>(chunks, perChunk);
  // Then pass A's sums of every row chunk (per statistic in lane mode).
  std::optional<RowSplit> split =
      getBackwardRowSplit(b, desc, inputSizes, options);
  if (!split)
    return partials;
  Value slots =
      b.createOrFold<arith::SelectOp>(split->enabled, splitSlotCount(b, *split),
                                      arith::ConstantIndexOp::create(b, 0));
  return b.createOrFold<arith::AddIOp>(
      partials, b.createOrFold<arith::MulIOp>(
                    slots, arith::ConstantIndexOp::create(
                               b, kPassASums * split->partialLanes)));
}

namespace {

class BackwardEmitter : public LoopEmitter {
public:
  /// All backward arithmetic is f64 (see the file comment).
  BackwardEmitter(ImplicitLocOpBuilder &b, const NormDescription &desc,
                  const LoopEmitOptions &options, MemRefType inputType)
      : LoopEmitter(b, desc, options, inputType, b.getF64Type()),
        mayProcessSplitRows(canSplitBackwardRows(
            b.getContext(), desc, inputType.getShape(), options)) {}

  void emitChunks(const NormBackwardBuffers &buffers, Value begin, Value end);
  void emitFinalize(const NormBackwardBuffers &buffers, Value numChunks);
  /// The prepass of split rows: pass A's sums of row chunks [begin, end).
  void emitPrepass(const NormBackwardBuffers &buffers, Value begin, Value end);

private:
  /// What every element of the current item needs: the saved statistics,
  /// and the scale of f64 data near its maximum.
  struct ItemContext {
    Value rstd, mean; // saved (or from the given variance)
    Value scaleVec;   // x * s (f64 data near its maximum), or null
    Value rstdOverScale;
    Value rstdVec, meanVec;
    Value itemGamma; // see loadItemGamma
  };
  /// The per-item factors of pass B (see the file comment).
  struct Factors {
    Value c, mg, mgx, k, ratio, rstdExact;
  };

  void setup(const NormBackwardBuffers &buffers);
  ItemContext loadItemContext();
  Value centeredOf(const ItemContext &ctx, ArrayRef<Value> indices, Value mask);
  Value gOf(const ItemContext &ctx, Value dyVec, ArrayRef<Value> indices,
            Value mask, Type target = Type());
  bool sumsScaledAfter() const;
  /// Pass A: sum(g), sum(g * xhat'), sum(xhat'), sum(xhat'^2) over the
  /// item (or chunk), xhat' unscaled by rstd' where sumsScaledAfter(); with
  /// `ranges`, then max |g| and max |x - mean'| (see f32DxCondition).
  SmallVector<Value> sumPassA(const ItemContext &ctx, bool ranges = false);
  /// Pass A's per-lane accumulators, added to `inits` (lane mode, or row
  /// mode's halves: see sumPassA), before the reduction to statistics;
  /// with `ranges`, two running maxima (maximumLanes f32 lanes) follow.
  SmallVector<Value> accumulatePassA(const ItemContext &ctx, ValueRange inits,
                                     bool ranges = false);
  Factors factorsFromSums(const ItemContext &ctx, ArrayRef<Value> sums);
  Factors givenFactors(const ItemContext &ctx);
  /// The per-item factors of pass B, folded so that each element costs few
  /// operations (passBFactors): per statistic, or spread over the lanes of
  /// the data (spread).
  struct PassBFactors {
    Value rstdExact, negRstdMg, xhatScale, negC, negKMgx;
  };
  PassBFactors passBFactors(const ItemContext &ctx, const Factors &f);
  PassBFactors spread(const PassBFactors &s, Type element);
  /// Whether this kernel's pass B may compute dx in f32 (see
  /// f32DxCondition): row mode, 16-bit data, statistics from the forward,
  /// and dx wanted.
  bool mayComputeDxInF32() const;
  /// Whether the current item's dx may be computed in f32: the rounding
  /// error bound of that evaluation is at most kF32DxErrorBound.
  Value f32DxCondition(const PassBFactors &s, Value maxAbsG,
                       Value maxAbsDeviation);
  /// Pass B with factors `s` (passBFactors): dx and the dgamma/dbeta
  /// partials; dx in f32 where `f32Dx` (an i1, null for never) holds.
  void passB(const ItemContext &ctx, const PassBFactors &s,
             Value f32Dx = Value());
  /// Pass B's loop over the item (or chunk, or tile): writes dx, and
  /// returns the item's dgamma/dbeta partials added to `inits` where they
  /// are summed in the item (itemPartialSlots), else adds them to the
  /// workspace vector by vector and returns nothing. `v` are the factors
  /// spread in f64; with `dxF32` (spread in f32), dx is computed in f32.
  SmallVector<Value> passBLoop(const ItemContext &ctx, const PassBFactors &v,
                               ValueRange inits,
                               const PassBFactors *dxF32 = nullptr);
  /// The partials that pass B sums in the item (see partialsConstantInItem).
  SmallVector<int64_t> itemPartialSlots() const;
  /// Adds the item's summed partials (passBLoop) to the workspace.
  void addItemPartials(ValueRange sums);
  /// The sums of pass A of split row (or lane row of a batch) `row`: its
  /// chunks' sums in the workspace, added in chunk order.
  SmallVector<Value> splitRowSums(const RowSplit &split, Value row);
  /// The prepass and main step of a tiled split: items [begin, end) are
  /// chunks of every row.
  void emitTiledPassA(const RowSplit &split, Value begin, Value end);
  void emitTiledPassB(const RowSplit &split, Value perChunk, Value begin,
                      Value end);
  /// Whether every element of a work item adds to the same dgamma/dbeta
  /// partials (no reduced dim indexes gamma; plain lane or row mode).
  bool partialsConstantInItem() const;
  void processItem();
  /// The main step of a split: items [begin, end) are column chunks run for
  /// every row (split rows), or chunks of a batch (each of its channel
  /// groups adds its chunks' sums once per call, then runs pass B per
  /// chunk).
  void emitSplitRows(const RowSplit &split, Value perChunk, Value begin,
                     Value end);
  /// Workspace index of sum `which` of row chunk `item` (split rows; the
  /// sums follow the partial slices, see splitSlices; one per statistic of
  /// the row, see loadWorkspaceStat).
  Value sumIndex(const RowSplit &split, Value item, int64_t which);
  /// Clears the partial slice at chunkBase.
  void clearSlice();
  /// Flat index of gamma's element at the given input indices.
  Value gammaOffset(ArrayRef<Value> indices);
  /// Adds `contribution` (times `factor`, when given: one fma with the
  /// read-modify-write) to partial `which` at `indices`.
  void addPartial(int64_t which, Value contribution, ArrayRef<Value> indices,
                  Value mask, Value factor = Value());
  /// acc + term * factor as one fma, or acc + term without a factor.
  Value addScaled(Value acc, Value term, Value factor);
  Value zeroMasked(Value v, Value mask);

  Value dy, dx, workspace;
  Value gammaCount; // G
  Value chunkBase;  // workspace offset of the current chunk
  /// Pass B stores the partials instead of adding them: the first row of a
  /// column chunk of split rows (emitSplitRows).
  bool partialsStored = false;
  Value streaming; // whether dx is written with streaming stores
  int64_t numPartials = 0;
  int64_t dgammaSlot = -1, dbetaSlot = -1;
  bool wantDx = false;
  SmallVector<Value> gammaSizes; // canonical sizes of the affine dims
  bool mayProcessSplitRows;      // canSplitBackwardRows
  bool dxInF32Eligible = false;  // mayComputeDxInF32
};

void BackwardEmitter::setup(const NormBackwardBuffers &buffers) {
  buf.input = viewInput(buffers.input);
  buf.gamma = viewGamma(buffers.gamma);
  buf.savedMean = viewStats(buffers.mean);
  buf.savedRstd = viewStats(buffers.rstd);
  buf.givenVar = viewStats(buffers.var);
  dy = viewInput(buffers.gradOutput);
  dx = viewInput(buffers.gradInput);
  buf.output = dx;
  workspace = buffers.workspace;
  wantDx = (bool)buffers.gradInput;
  if (buffers.gradGamma)
    dgammaSlot = numPartials++;
  if (buffers.gradBeta)
    dbetaSlot = numPartials++;
  Type storage = cast<MemRefType>(buffers.input.getType()).getElementType();
  prepare(buffers.elementType, storage, buf.input);
  gammaCount = indexConstant(1);
  gammaSizes.clear();
  for (auto [dim, size] : llvm::zip(layout.dims, sizes))
    if (dim.affine) {
      gammaSizes.push_back(size);
      gammaCount = b.createOrFold<arith::MulIOp>(gammaCount, size);
    }
}

Value BackwardEmitter::zeroMasked(Value v, Value mask) {
  if (!mask || lane)
    return v;
  return arith::SelectOp::create(b, mask, v, constant(v.getType(), 0.0));
}

Value BackwardEmitter::gammaOffset(ArrayRef<Value> indices) {
  Value offset = indexConstant(0);
  size_t next = 0;
  for (auto [dim, index] : llvm::zip(layout.dims, indices)) {
    if (!dim.affine)
      continue;
    offset = b.createOrFold<arith::AddIOp>(
        b.createOrFold<arith::MulIOp>(offset, gammaSizes[next++]), index);
  }
  return offset;
}

void BackwardEmitter::addPartial(int64_t which, Value contribution,
                                 ArrayRef<Value> indices, Value mask,
                                 Value factor) {
  auto product = [&]() -> Value {
    return factor ? (Value)arith::MulFOp::create(b, contribution, factor)
                  : contribution;
  };
  Value slot = b.createOrFold<arith::MulIOp>(indexConstant(which), gammaCount);
  Value at = b.createOrFold<arith::AddIOp>(
      b.createOrFold<arith::AddIOp>(chunkBase, slot), gammaOffset(indices));
  if (layout.dims.back().affine) {
    // The first row of a column chunk of split rows: stored, not added (no
    // clearing, no read).
    if (partialsStored) {
      storeVector(product(), workspace, at, mask);
      return;
    }
    // One partial per lane: a vector read-modify-write.
    Value old = loadInput(workspace, at, mask);
    storeVector(addScaled(old, contribution, factor), workspace, at, mask);
    return;
  }
  // Every lane belongs to the same gamma element. Masked-off lanes hold
  // zeros (loads pass 0 through and dy = 0 there).
  Value total = vector::ReductionOp::create(
      b, vector::CombiningKind::ADD, product(), arith::FastMathFlags::reassoc);
  Value old = memref::LoadOp::create(b, workspace, ValueRange{at});
  memref::StoreOp::create(b, arith::AddFOp::create(b, old, total), workspace,
                          ValueRange{at});
}

Value BackwardEmitter::addScaled(Value acc, Value term, Value factor) {
  if (!factor)
    return arith::AddFOp::create(b, acc, term);
  return math::FmaOp::create(b, term, factor, acc);
}

BackwardEmitter::ItemContext BackwardEmitter::loadItemContext() {
  Type stat = statType(accType);
  Value zeroStat = constant(stat, 0.0);
  Value one = constant(stat, 1.0);
  Value eps = constant(stat, desc.epsilon);
  ItemContext ctx;

  // Statistics: the forward's saved rstd (and mean), or rstd from the given
  // variance exactly as the forward computed it.
  ctx.mean = zeroStat;
  if (desc.givenStats) {
    Value var = castFloat(loadStat(buf.givenVar), accType);
    Value denominator =
        desc.epsPlacement == EpsPlacement::Inside
            ? (Value)math::SqrtOp::create(b, arith::AddFOp::create(b, var, eps))
            : (Value)arith::AddFOp::create(b, math::SqrtOp::create(b, var),
                                           eps);
    ctx.rstd = arith::DivFOp::create(b, one, denominator);
  } else {
    ctx.rstd = castFloat(loadStat(buf.savedRstd), accType);
  }
  if (desc.center || desc.givenStats)
    ctx.mean = castFloat(loadStat(buf.savedMean), accType);
  // f64 data near its maximum: x - mean can overflow; work on x * 2^-600
  // (exact) and fold the scale into rstd.
  Value scale;
  if (elementType.isF64()) {
    Value huge = arith::OrIOp::create(
        b,
        arith::CmpFOp::create(b, arith::CmpFPredicate::OGE,
                              math::AbsFOp::create(b, ctx.mean),
                              constant(stat, std::ldexp(1.0, 960))),
        arith::CmpFOp::create(b, arith::CmpFPredicate::OLE, ctx.rstd,
                              constant(stat, std::ldexp(1.0, -960))));
    scale = arith::SelectOp::create(b, huge,
                                    constant(stat, std::ldexp(1.0, -600)), one);
  }
  ctx.scaleVec = scale ? toVector(scale) : Value();
  ctx.rstdOverScale =
      scale ? (Value)arith::DivFOp::create(b, ctx.rstd, scale) : ctx.rstd;
  ctx.rstdVec = toVector(ctx.rstdOverScale);
  ctx.meanVec = toVector(
      scale ? (Value)arith::MulFOp::create(b, ctx.mean, scale) : ctx.mean);
  ctx.itemGamma = loadItemGamma(buf.gamma);
  return ctx;
}

Value BackwardEmitter::centeredOf(const ItemContext &ctx,
                                  ArrayRef<Value> indices, Value mask) {
  // x*s - mean'*s, which passes A and B scale differently.
  Value x = loadInput(buf.input, indices, mask);
  if (ctx.scaleVec)
    x = arith::MulFOp::create(b, x, ctx.scaleVec);
  return arith::SubFOp::create(b, x, ctx.meanVec);
}

Value BackwardEmitter::gOf(const ItemContext &ctx, Value dyVec,
                           ArrayRef<Value> indices, Value mask, Type target) {
  if (!buf.gamma)
    return dyVec;
  // An item's gamma was read in its storage type (f32 or 16-bit) and
  // widened: narrowing it back is exact.
  Value gamma = ctx.itemGamma ? (target ? castFloat(ctx.itemGamma, target)
                                        : ctx.itemGamma)
                              : loadGamma(buf.gamma, indices, mask, target);
  return arith::MulFOp::create(b, dyVec, gamma);
}

bool BackwardEmitter::sumsScaledAfter() const {
  // f32/f16/bf16 data: the sums run over x - mean' and are scaled by rstd'
  // once after the loop (one multiply less per element; the squares of such
  // deviations stay far inside f64's range). f64 data sums xhat'.
  return !elementType.isF64();
}

/// Whether pass A adds each vector's halves into accumulators of half its
/// lanes (row mode; see accumulatePassA).
static bool halvesPassA(bool lane, int64_t vl) {
  return !lane && vl % 2 == 0 && vl >= 8;
}

/// Lanes of pass A's running maxima (f32): one register, as vl / 2 f64
/// lanes are.
static int64_t maximumLanes(int64_t vl) { return vl / 2; }

SmallVector<Value> BackwardEmitter::sumPassA(const ItemContext &ctx,
                                             bool ranges) {
  VectorType sumType =
      halvesPassA(lane, vl)
          ? VectorType::get({vl / 2}, accVector.getElementType())
          : accVector;
  Value zero = constant(sumType, 0.0);
  SmallVector<Value> inits = {zero, zero, zero, zero};
  if (ranges)
    inits.append(
        2, constant(VectorType::get({maximumLanes(vl)}, b.getF32Type()), 0.0));
  SmallVector<Value> reduced;
  for (auto [i, acc] : llvm::enumerate(accumulatePassA(ctx, inits, ranges)))
    reduced.push_back(
        i < kPassASums ? reduce(acc)
                       : castFloat(vector::ReductionOp::create(
                                       b, vector::CombiningKind::MAXIMUMF, acc),
                                   wideType));
  return reduced;
}

SmallVector<Value> BackwardEmitter::accumulatePassA(const ItemContext &ctx,
                                                    ValueRange inits,
                                                    bool ranges) {
  bool scaleAfter = sumsScaledAfter();
  // Row mode adds each vector's two halves into accumulators of half its
  // lanes: four sums of vl f64 lanes would take every AVX2 register (16), and
  // the spills inside the loop cost more than the arithmetic. Half as many
  // still leave two independent accumulators per sum (8 chains in flight, as
  // 2 FMA pipes of latency 4 need). Lane modes keep one lane per statistic.
  bool halve = halvesPassA(lane, vl);
  auto half = [&](Value v, int64_t which) -> Value {
    return vector::ExtractStridedSliceOp::create(
        b, v, ArrayRef<int64_t>{which * (vl / 2)}, ArrayRef<int64_t>{vl / 2},
        ArrayRef<int64_t>{1});
  };
  auto add = [&](Value acc, Value term) -> Value {
    if (!halve)
      return arith::AddFOp::create(b, acc, term);
    return arith::AddFOp::create(
        b, arith::AddFOp::create(b, acc, half(term, 0)), half(term, 1));
  };
  auto fma = [&](Value lhs, Value rhs, Value acc) -> Value {
    if (!halve)
      return math::FmaOp::create(b, lhs, rhs, acc);
    return math::FmaOp::create(
        b, half(lhs, 1), half(rhs, 1),
        math::FmaOp::create(b, half(lhs, 0), half(rhs, 0), acc));
  };
  // The maxima fold each vector into one register.
  Type f32 = b.getF32Type();
  int64_t lanes = maximumLanes(vl);
  auto foldMax = [&](Value acc, Value v) {
    for (int64_t at = 0; at < vl; at += lanes)
      acc =
          runningMax(acc, vector::ExtractStridedSliceOp::create(
                              b, v, ArrayRef<int64_t>{at},
                              ArrayRef<int64_t>{lanes}, ArrayRef<int64_t>{1}));
    return acc;
  };
  Value mean32 = ranges ? toVector(castFloat(ctx.mean, f32)) : Value();
  return forEachVector(
      keptIndices, 0, inits,
      [&](ArrayRef<Value> indices, Value mask, ValueRange accs) {
        prefetchAhead(buf.input, indices, mask);
        prefetchAhead(dy, indices, mask);
        Value xhat, g, x32, g32;
        if (!ranges) {
          Value centered = centeredOf(ctx, indices, mask);
          xhat = zeroMasked(scaleAfter ? centered
                                       : (Value)arith::MulFOp::create(
                                             b, centered, ctx.rstdVec),
                            mask);
          g = gOf(ctx, loadInput(dy, indices, mask), indices, mask);
        } else {
          // 16-bit data (mayComputeDxInF32; sums scaled after, so xhat' is
          // x - mean' here): x and dy read in f32, and g formed in f32,
          // where it is exact (two 8- or 11-bit significands), then
          // widened: the sums are those of the f64 evaluation.
          x32 = loadInput(buf.input, indices, mask, f32);
          g32 = gOf(ctx, loadInput(dy, indices, mask, f32), indices, mask, f32);
          xhat = zeroMasked(
              arith::SubFOp::create(b, castFloat(x32, accType), ctx.meanVec),
              mask);
          g = castFloat(g32, accType);
        }
        SmallVector<Value> next(accs);
        next[0] = add(accs[0], g);
        next[1] = fma(g, xhat, accs[1]);
        if (desc.center)
          next[2] = add(accs[2], xhat);
        next[3] = fma(xhat, xhat, accs[3]);
        if (ranges) {
          // Masked-off lanes read 0: g is 0 there, x - mean' is not.
          next[4] = foldMax(accs[4], math::AbsFOp::create(b, g32));
          next[5] = foldMax(
              accs[5], zeroMasked(math::AbsFOp::create(
                                      b, arith::SubFOp::create(b, x32, mean32)),
                                  mask));
        }
        return next;
      },
      Type(), ranges ? 2 : 0);
}

BackwardEmitter::Factors
BackwardEmitter::factorsFromSums(const ItemContext &ctx, ArrayRef<Value> sums) {
  Type stat = statType(accType);
  Value zeroStat = constant(stat, 0.0);
  Value one = constant(stat, 1.0);
  Value eps = constant(stat, desc.epsilon);
  Value rstd = ctx.rstd;
  // Pass A's sums run over xhat' = (x - mean') * rstd' with the saved
  // (f32-rounded) mean' and rstd'. From them the exact statistics are
  // recovered:
  //   c    = mean(xhat')                    (mean' - mean) * rstd'
  //   var  = (mean(xhat'^2) - c^2) / rstd'^2
  //   rstd = 1/sqrt(var+eps) or 1/(sqrt(var)+eps), from var
  // so xhat = (xhat' - c) * rstd / rstd' is exact, and the rounding of the
  // saved statistics does not leak into the gradients, which matters where
  // dx is a small difference of large terms (tiny sets, eps outside).
  bool outside = desc.epsPlacement == EpsPlacement::Outside;
  bool scaleAfter = sumsScaledAfter();
  Factors f;
  f.c = zeroStat;
  f.ratio = one;
  f.rstdExact = rstd;
  Value m = splatStat(reductionCount);
  auto scaled = [&](Value sum, Value factor) -> Value {
    return scaleAfter ? (Value)arith::MulFOp::create(b, sum, factor) : sum;
  };
  Value rstdSquared = arith::MulFOp::create(b, rstd, rstd);
  Value sumG = sums[0], sumGX = scaled(sums[1], rstd);
  if (desc.center)
    f.c = arith::DivFOp::create(b, scaled(sums[2], rstd), m);
  Value varHat = arith::MaximumFOp::create(
      b,
      arith::SubFOp::create(
          b, arith::DivFOp::create(b, scaled(sums[3], rstdSquared), m),
          arith::MulFOp::create(b, f.c, f.c)),
      zeroStat);
  // std(xhat') = sqrt(var) * rstd'.
  Value stdHat = math::SqrtOp::create(b, varHat);
  if (!elementType.isF64()) {
    // f32 statistics: recover rstd exactly from var = varHat / rstd'^2.
    Value root = arith::DivFOp::create(b, stdHat, rstd);
    Value denominator =
        outside ? (Value)arith::AddFOp::create(b, root, eps)
                : (Value)math::SqrtOp::create(
                      b, arith::AddFOp::create(
                             b, arith::MulFOp::create(b, root, root), eps));
    f.rstdExact = arith::DivFOp::create(b, one, denominator);
    f.ratio = arith::DivFOp::create(b, f.rstdExact, rstd);
  }
  // f64 statistics are exact already (and rescaling them could leave
  // f64's range for data near its maximum).
  f.mg = arith::DivFOp::create(b, sumG, m);
  f.mgx = arith::MulFOp::create(
      b,
      arith::DivFOp::create(
          b,
          arith::SubFOp::create(b, sumGX, arith::MulFOp::create(b, f.c, sumG)),
          m),
      f.ratio);
  if (!outside) {
    f.k = f.rstdExact;
  } else {
    // k = 1/sqrt(var) = rstd' / std(xhat'); a constant set has xhat = 0
    // and contributes nothing, so k = 0 there instead of inf.
    Value positive =
        arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, stdHat, zeroStat);
    f.k = arith::SelectOp::create(
        b, positive, arith::DivFOp::create(b, rstd, stdHat), zeroStat);
  }
  return f;
}

BackwardEmitter::PassBFactors
BackwardEmitter::passBFactors(const ItemContext &ctx, const Factors &f) {
  //   xhat = (x - mean') * (rstd' * ratio) - c * ratio
  //   dx   = rstd * (g - mg) - (k * mgx) * xhat
  PassBFactors s;
  s.rstdExact = f.rstdExact;
  s.negRstdMg =
      arith::NegFOp::create(b, arith::MulFOp::create(b, f.rstdExact, f.mg));
  s.xhatScale = arith::MulFOp::create(b, ctx.rstdOverScale, f.ratio);
  s.negC = arith::NegFOp::create(b, arith::MulFOp::create(b, f.c, f.ratio));
  s.negKMgx = arith::NegFOp::create(b, arith::MulFOp::create(b, f.k, f.mgx));
  return s;
}

BackwardEmitter::PassBFactors BackwardEmitter::spread(const PassBFactors &s,
                                                      Type element) {
  auto one = [&](Value factor) { return toVector(castFloat(factor, element)); };
  return {one(s.rstdExact), one(s.negRstdMg), one(s.xhatScale), one(s.negC),
          one(s.negKMgx)};
}

bool BackwardEmitter::mayComputeDxInF32() const {
  // 16-bit data only: there pass B is compute-bound in f64 (conversions on
  // top of the arithmetic); f32 data converts as it loads, and measured no
  // faster with an f32 dx.
  return !lane && (elementType.isBF16() || elementType.isF16()) &&
         !desc.givenStats && wantDx && vl % 2 == 0;
}

/// The largest error f32DxCondition admits in dx before its rounding to the
/// output type: 2^-18, about 0.4 of f32's atol (1e-5; numerics.md).
static constexpr double kF32DxErrorBound = 0x1p-18;

Value BackwardEmitter::f32DxCondition(const PassBFactors &s, Value maxAbsG,
                                      Value maxAbsDeviation) {
  // In f32 (u = 2^-24), with G >= |g| and D >= |x - mean'|:
  //   d    = x - mean'                     error u|d|
  //   xhat = fma(d, xhatScale, negC)       error <= 3u(|d xhatScale| + |c'|)
  //   cen  = fma(g, rstd, negRstdMg)       error <= 3u rstd (|g| + |mg|)
  //   dx   = fma(negKMgx, xhat, cen)       error <= u|dx| + |k mgx| (4u(...))
  // (g exact for 16-bit data, one rounding for f32; each factor rounded to
  // f32 once), so with T = rstd (G + |mg|) + |k mgx| (xhatScale D + |c'|)
  // the error is at most u|dx| + 5u T. u|dx| is far inside every rtol;
  // 5u T <= kF32DxErrorBound keeps the absolute part far inside atol.
  // Otherwise (large rstd: tiny variance, eps outside; large gradients;
  // anything non-finite, which the sums carry) the item stays in f64.
  Type stat = statType(wideType);
  auto abs = [&](Value v) -> Value { return math::AbsFOp::create(b, v); };
  auto mul = [&](Value x, Value y) -> Value {
    return arith::MulFOp::create(b, x, y);
  };
  auto add = [&](Value x, Value y) -> Value {
    return arith::AddFOp::create(b, x, y);
  };
  Value scaledDeviation = mul(s.xhatScale, maxAbsDeviation);
  Value terms = add(mul(s.rstdExact, add(maxAbsG, abs(s.negRstdMg))),
                    mul(abs(s.negKMgx), add(scaledDeviation, abs(s.negC))));
  Value bound = mul(constant(stat, 5 * 0x1p-24), terms);
  // Ordered comparisons: false for NaN.
  auto atMost = [&](Value v, double limit) -> Value {
    return arith::CmpFOp::create(b, arith::CmpFPredicate::OLE, v,
                                 constant(stat, limit));
  };
  Value safe = atMost(bound, kF32DxErrorBound);
  // Every f32 operand and intermediate stays far from overflow (a tiny
  // rstd could let a huge G pass the bound).
  for (Value v : {s.rstdExact, abs(s.negRstdMg), s.xhatScale, abs(s.negC),
                  abs(s.negKMgx), maxAbsG, scaledDeviation, maxAbsDeviation})
    safe = arith::AndIOp::create(b, safe, atMost(v, 0x1p100));
  return safe;
}

SmallVector<int64_t> BackwardEmitter::itemPartialSlots() const {
  // Where gamma does not vary along the reduction (BatchNorm, InstanceNorm)
  // the item's dgamma/dbeta partials all go to the same elements: they are
  // summed in registers over the item, vector by vector, and added to the
  // workspace once after the loop. A read-modify-write per vector step
  // would chain every step through memory (store-to-load forwarding, about
  // 10 cycles a step) and, in row mode, reduce across the vector each time.
  SmallVector<int64_t> slots;
  if (partialsConstantInItem())
    for (int64_t slot : {dgammaSlot, dbetaSlot})
      if (slot >= 0)
        slots.push_back(slot);
  return slots;
}

void BackwardEmitter::addItemPartials(ValueRange sums) {
  for (auto [slot, sum] : llvm::zip(itemPartialSlots(), sums))
    addPartial(slot, sum, keptIndices, lane ? laneMask : Value());
}

void BackwardEmitter::passB(const ItemContext &ctx, const PassBFactors &s,
                            Value f32Dx) {
  PassBFactors wide = spread(s, accType);
  SmallVector<Value> zeros(itemPartialSlots().size(), constant(accVector, 0.0));
  if (!f32Dx) {
    withStreamingStores(
        streaming, [&]() { addItemPartials(passBLoop(ctx, wide, zeros)); });
    return;
  }
  PassBFactors narrow = spread(s, b.getF32Type());
  SmallVector<Type> types(zeros.size(), accVector);
  withStreamingStores(streaming, [&]() {
    addItemPartials(buildIf(
        f32Dx, types, [&]() { return passBLoop(ctx, wide, zeros, &narrow); },
        [&]() { return passBLoop(ctx, wide, zeros); }));
  });
}

SmallVector<Value> BackwardEmitter::passBLoop(const ItemContext &ctx,
                                              const PassBFactors &v,
                                              ValueRange inits,
                                              const PassBFactors *dxF32) {
  SmallVector<int64_t> itemSlots = itemPartialSlots();
  bool sumPartialsInItem = !itemSlots.empty();
  Type f32 = b.getF32Type();
  Value mean32 = dxF32 ? toVector(castFloat(ctx.mean, f32)) : Value();
  // The f32 evaluation's results are finite (f32DxCondition): no NaN to
  // keep from the 16-bit rounding.
  llvm::SaveAndRestore<bool> finite(nanPayloadsHighHalf,
                                    nanPayloadsHighHalf || dxF32);
  // rstd * (g - mg) as one fma, then minus (k * mgx) * xhat.
  auto dxOf = [&](Value g, Value xhat, const PassBFactors &factors) -> Value {
    if (desc.givenStats)
      return arith::MulFOp::create(b, factors.rstdExact, g);
    Value centered =
        desc.center ? (Value)math::FmaOp::create(b, g, factors.rstdExact,
                                                 factors.negRstdMg)
                    : (Value)arith::MulFOp::create(b, factors.rstdExact, g);
    return math::FmaOp::create(b, factors.negKMgx, xhat, centered);
  };
  return forEachVector(
      keptIndices, 0, inits,
      [&](ArrayRef<Value> indices, Value mask, ValueRange accs) {
        prefetchNext(buf.input, indices, mask);
        prefetchNext(dy, indices, mask);
        prefetchAhead(buf.input, indices, mask);
        prefetchAhead(dy, indices, mask);
        // The partials take xhat in f64 either way (the same values: 16-bit
        // data read in f32 and widened).
        Value x32 = dxF32 ? loadInput(buf.input, indices, mask, f32) : Value();
        Value dy32 = dxF32 ? loadInput(dy, indices, mask, f32) : Value();
        Value dyVec =
            dxF32 ? castFloat(dy32, accType) : loadInput(dy, indices, mask);
        Value centeredX = dxF32 ? (Value)arith::SubFOp::create(
                                      b, castFloat(x32, accType), ctx.meanVec)
                                : centeredOf(ctx, indices, mask);
        Value xhat = math::FmaOp::create(b, centeredX, v.xhatScale, v.negC);
        if (dxF32) {
          Value xhat32 =
              math::FmaOp::create(b, arith::SubFOp::create(b, x32, mean32),
                                  dxF32->xhatScale, dxF32->negC);
          storeOutput(dxOf(gOf(ctx, dy32, indices, mask, f32), xhat32, *dxF32),
                      indices, mask);
        } else if (wantDx) {
          storeOutput(dxOf(gOf(ctx, dyVec, indices, mask), xhat, v), indices,
                      mask);
        }
        // dgamma adds dy * xhat, dbeta dy: the product fused with its
        // addition (one rounding, one operation less).
        auto factor = [&](int64_t slot) {
          return slot == dgammaSlot ? xhat : Value();
        };
        if (sumPartialsInItem) {
          // Masked-off lanes hold zeros (dy loads pass 0 through).
          SmallVector<Value> next;
          for (auto [slot, acc] : llvm::zip(itemSlots, accs))
            next.push_back(addScaled(acc, dyVec, factor(slot)));
          return next;
        }
        for (int64_t slot : {dgammaSlot, dbetaSlot})
          if (slot >= 0)
            addPartial(slot, dyVec, indices, mask, factor(slot));
        return SmallVector<Value>();
      });
}

bool BackwardEmitter::partialsConstantInItem() const {
  return numPartials > 0 && segment == 1 &&
         llvm::none_of(layout.dims, [](const CanonicalLayout::Dim &d) {
           return d.reduced && d.affine;
         });
}

BackwardEmitter::Factors BackwardEmitter::givenFactors(const ItemContext &ctx) {
  // Given statistics: dx = rstd * g, xhat = (x - mean) * rstd.
  Type stat = statType(accType);
  Value zeroStat = constant(stat, 0.0);
  return {zeroStat, zeroStat, zeroStat, zeroStat, constant(stat, 1.0),
          ctx.rstd};
}

void BackwardEmitter::processItem() {
  ItemContext ctx = loadItemContext();
  if (desc.givenStats) {
    passB(ctx, passBFactors(ctx, givenFactors(ctx)));
    return;
  }
  SmallVector<Value> sums = sumPassA(ctx, dxInF32Eligible);
  Factors f = factorsFromSums(ctx, ArrayRef(sums).take_front(kPassASums));
  PassBFactors s = passBFactors(ctx, f);
  Value f32Dx;
  if (dxInF32Eligible)
    f32Dx = f32DxCondition(s, sums[kPassASums], sums[kPassASums + 1]);
  passB(ctx, s, f32Dx);
}

void BackwardEmitter::emitChunks(const NormBackwardBuffers &buffers,
                                 Value begin, Value end) {
  setup(buffers);
  buf.gamma = decodeAffineOnce(buf.gamma);
  dxInF32Eligible = mayComputeDxInF32();
  Value items = itemCount();
  Value chunks = chunkCount(b, items, sizes);
  Value perChunk = b.createOrFold<arith::MulIOp>(
      gammaCount, indexConstant(std::max<int64_t>(numPartials, 1)));
  // dx is written with streaming stores when large (see LoopEmitOptions).
  streaming = wantDx ? streamingCondition(dx) : Value();
  // Given statistics make one pass: there is no cached pass to overlap.
  Value prefetch = desc.givenStats ? Value() : prefetchCondition();
  auto chunkLoop = [&]() -> SmallVector<Value> {
    buildFor(begin, end, indexConstant(1), {}, [&](Value chunk, ValueRange) {
      chunkBase = arith::MulIOp::create(b, chunk, perChunk);
      // This chunk's slice starts from zero.
      clearSlice();
      // Items [chunk * I / P, (chunk + 1) * I / P).
      Value first = arith::DivUIOp::create(
          b, arith::MulIOp::create(b, chunk, items), chunks);
      Value last = arith::DivUIOp::create(
          b,
          arith::MulIOp::create(
              b, arith::AddIOp::create(b, chunk, indexConstant(1)), items),
          chunks);
      buildFor(first, last, indexConstant(1), {}, [&](Value item, ValueRange) {
        setupItem(item);
        setupPrefetch(item, last, prefetch);
        processItem();
        return SmallVector<Value>();
      });
      return SmallVector<Value>();
    });
    return {};
  };
  if (mayProcessSplitRows) {
    RowSplit split = emitBackwardSplit(b, layout, sizes, vl);
    buildIf(
        split.enabled, TypeRange{},
        [&]() -> SmallVector<Value> {
          emitSplitRows(split, perChunk, begin, end);
          return {};
        },
        chunkLoop);
  } else {
    chunkLoop();
  }
  fenceStreamingStores(streaming);
}

void BackwardEmitter::clearSlice() {
  if (!numPartials)
    return;
  Value sliceEnd = arith::AddIOp::create(
      b, chunkBase,
      arith::MulIOp::create(b, gammaCount, indexConstant(numPartials)));
  buildFor(chunkBase, sliceEnd, indexConstant(1), {}, [&](Value i, ValueRange) {
    memref::StoreOp::create(b, constant(wideType, 0.0), workspace,
                            ValueRange{i});
    return SmallVector<Value>();
  });
}

Value BackwardEmitter::sumIndex(const RowSplit &split, Value item,
                                int64_t which) {
  // After the partial slices (as emitBackwardWorkspaceSize counts them:
  // none without gradients of gamma).
  Value sums = arith::MulIOp::create(
      b, splitSlices(b, split),
      b.createOrFold<arith::MulIOp>(gammaCount, indexConstant(numPartials)));
  Value at = arith::AddIOp::create(
      b, arith::MulIOp::create(b, item, indexConstant(kPassASums)),
      indexConstant(which));
  if (split.partialLanes != 1)
    at = arith::MulIOp::create(b, at, indexConstant(split.partialLanes));
  return arith::AddIOp::create(b, sums, at);
}

SmallVector<Value> BackwardEmitter::splitRowSums(const RowSplit &split,
                                                 Value row) {
  Value rowStart = arith::MulIOp::create(b, row, split.chunks);
  Value zero = constant(statType(wideType), 0.0);
  SmallVector<Value> inits(kPassASums, zero);
  return buildFor(
      indexConstant(0), split.chunks, indexConstant(1), inits,
      [&](Value chunk, ValueRange acc) {
        Value item = arith::AddIOp::create(b, rowStart, chunk);
        SmallVector<Value> next;
        for (int64_t which = 0; which < kPassASums; ++which)
          next.push_back(arith::AddFOp::create(
              b, acc[which],
              loadWorkspaceStat(workspace, sumIndex(split, item, which))));
        return next;
      });
}

void BackwardEmitter::emitSplitRows(const RowSplit &split, Value perChunk,
                                    Value begin, Value end) {
  // No prefetching of the next item: the chunks stream.
  nextKeptIndices.clear();
  if (split.tiledRows) {
    emitTiledPassB(split, perChunk, begin, end);
    return;
  }
  auto rowSums = [&](Value row) { return splitRowSums(split, row); };
  if (split.batch) {
    // The chunks of a batch add to the same gamma elements: each has a
    // slice of its own, cleared and added to as a chunk of statistics' is.
    forEachSplitRow(
        split, begin, end, [&](Value row, Value chunkBegin, Value chunkEnd) {
          Value rowStart = arith::MulIOp::create(b, row, split.chunks);
          ItemContext ctx = loadItemContext();
          Factors f = factorsFromSums(ctx, rowSums(row));
          forEachChunk(split, chunkBegin, chunkEnd, [&](Value chunk) {
            chunkBase = arith::MulIOp::create(
                b, arith::AddIOp::create(b, rowStart, chunk), perChunk);
            clearSlice();
            passB(ctx, passBFactors(ctx, f));
          });
        });
    return;
  }
  // Split rows: items [begin, end) are column chunks, each run for every row
  // in row order. Gamma varies along the row (canSplitBackwardRows), so an
  // item alone writes its columns of the one partial slice: the first row
  // stores them (no clearing), the others add to them, in the same order
  // for any number of threads.
  chunkBase = indexConstant(0);
  buildFor(begin, end, indexConstant(1), {}, [&](Value chunk, ValueRange) {
    auto runRow = [&](Value row) {
      setupItem(row);
      ItemContext ctx = loadItemContext();
      Factors f = factorsFromSums(ctx, rowSums(row));
      setChunkRange(split, chunk);
      passB(ctx, passBFactors(ctx, f));
      clearChunkRange();
    };
    partialsStored = true;
    runRow(indexConstant(0));
    partialsStored = false;
    buildFor(indexConstant(1), split.rows, indexConstant(1), {},
             [&](Value row, ValueRange) {
               runRow(row);
               return SmallVector<Value>();
             });
    return SmallVector<Value>();
  });
}

void BackwardEmitter::emitTiledPassA(const RowSplit &split, Value begin,
                                     Value end) {
  int64_t rows = split.tiledRows;
  buildFor(begin, end, indexConstant(1), {}, [&](Value chunk, ValueRange) {
    SmallVector<ItemContext> contexts;
    for (int64_t row = 0; row < rows; ++row) {
      setupItem(indexConstant(row));
      contexts.push_back(loadItemContext());
    }
    setChunkRange(split, chunk);
    Value first = rangeBegin, count = rangeCount;
    SmallVector<Value> zeros(rows * kPassASums, constant(accVector, 0.0));
    SmallVector<Value> sums = forEachRowTile(
        split, first, count, zeros, [&](int64_t row, ValueRange accs) {
          return accumulatePassA(contexts[row], accs);
        });
    for (int64_t row = 0; row < rows; ++row) {
      Value slot = chunkSlot(split, indexConstant(row), chunk);
      for (int64_t which = 0; which < kPassASums; ++which)
        storeWorkspaceStat(sums[row * kPassASums + which], workspace,
                           sumIndex(split, slot, which));
    }
    return SmallVector<Value>();
  });
}

void BackwardEmitter::emitTiledPassB(const RowSplit &split, Value perChunk,
                                     Value begin, Value end) {
  int64_t rows = split.tiledRows;
  forEachChunkLastFirst(split, begin, end, [&](Value chunk) {
    chunkBase = arith::MulIOp::create(b, chunk, perChunk);
    clearSlice();
    SmallVector<ItemContext> contexts;
    SmallVector<PassBFactors> vectors;
    for (int64_t row = 0; row < rows; ++row) {
      setupItem(indexConstant(row));
      contexts.push_back(loadItemContext());
      vectors.push_back(
          spread(passBFactors(
                     contexts.back(),
                     factorsFromSums(contexts.back(),
                                     splitRowSums(split, indexConstant(row)))),
                 accType));
    }
    setChunkRange(split, chunk);
    Value first = rangeBegin, count = rangeCount;
    size_t perRow = itemPartialSlots().size();
    SmallVector<Value> zeros(rows * perRow, constant(accVector, 0.0));
    withStreamingStores(streaming, [&]() {
      SmallVector<Value> partials = forEachRowTile(
          split, first, count, zeros, [&](int64_t row, ValueRange accs) {
            return passBLoop(contexts[row], vectors[row], accs);
          });
      for (int64_t row = 0; row < rows; ++row) {
        setupItem(indexConstant(row));
        addItemPartials(ArrayRef(partials).slice(row * perRow, perRow));
      }
    });
  });
}

void BackwardEmitter::emitPrepass(const NormBackwardBuffers &buffers,
                                  Value begin, Value end) {
  setup(buffers);
  buf.gamma = decodeAffineOnce(buf.gamma);
  RowSplit split = emitBackwardSplit(b, layout, sizes, vl);
  if (split.tiledRows) {
    emitTiledPassA(split, begin, end);
    return;
  }
  forEachPrepassChunk(split, begin, end, [&](Value item, Value) {
    ItemContext ctx = loadItemContext();
    SmallVector<Value> sums = sumPassA(ctx);
    for (auto [which, sum] : llvm::enumerate(sums))
      storeWorkspaceStat(sum, workspace, sumIndex(split, item, which));
  });
}

void BackwardEmitter::emitFinalize(const NormBackwardBuffers &buffers,
                                   Value numChunks) {
  setup(buffers);
  Value perChunk = b.createOrFold<arith::MulIOp>(
      gammaCount, indexConstant(std::max<int64_t>(numPartials, 1)));
  auto finalize = [&](Value result, int64_t slot) {
    // Gradients of gamma are gamma-shaped: view them flat.
    auto type = cast<MemRefType>(result.getType());
    if (type.getRank() != 1) {
      ReassociationIndices all;
      for (int64_t d = 0; d < type.getRank(); ++d)
        all.push_back(d);
      result = memref::CollapseShapeOp::create(
          b, result, ArrayRef<ReassociationIndices>{all});
    }
    Value slotBase =
        b.createOrFold<arith::MulIOp>(indexConstant(slot), gammaCount);
    // Vectors of gamma elements, each the sum of its chunks' partials in
    // chunk order (the same order as one element at a time).
    auto sumChunks = [&](Value j, Value mask) {
      Value total = buildFor(
          indexConstant(0), numChunks, indexConstant(1),
          {constant(VectorType::get({vl}, wideType), 0.0)},
          [&](Value p, ValueRange acc) -> SmallVector<Value> {
            Value at = arith::AddIOp::create(
                b,
                arith::AddIOp::create(b, arith::MulIOp::create(b, p, perChunk),
                                      slotBase),
                j);
            return {arith::AddFOp::create(b, acc[0],
                                          loadInput(workspace, at, mask))};
          })[0];
      // Sums of many terms can sit just beside a 16-bit tie that f32 cannot
      // hold: rounded once (a per-call cost; dx, per element, is rounded
      // to f32 first, see numerics.md).
      storeVector(encodeData(total, /*roundOnce=*/true), result, j, mask);
    };
    forEachVectorUpTo(gammaCount, sumChunks);
  };
  if (buffers.gradGamma)
    finalize(buffers.gradGamma, dgammaSlot);
  if (buffers.gradBeta)
    finalize(buffers.gradBeta, dbetaSlot);
}

} // namespace

void norm::emitNormalizeBackwardLoops(ImplicitLocOpBuilder &b,
                                      const NormDescription &desc,
                                      const NormBackwardBuffers &buffers,
                                      Value begin, Value end,
                                      const LoopEmitOptions &options) {
  BackwardEmitter(b, desc, options, cast<MemRefType>(buffers.input.getType()))
      .emitChunks(buffers, begin, end);
}

void norm::emitNormalizeBackwardPrepassLoops(ImplicitLocOpBuilder &b,
                                             const NormDescription &desc,
                                             const NormBackwardBuffers &buffers,
                                             Value begin, Value end,
                                             const LoopEmitOptions &options) {
  BackwardEmitter(b, desc, options, cast<MemRefType>(buffers.input.getType()))
      .emitPrepass(buffers, begin, end);
}

void norm::emitNormalizeBackwardFinalize(ImplicitLocOpBuilder &b,
                                         const NormDescription &desc,
                                         const NormBackwardBuffers &buffers,
                                         Value numChunks,
                                         const LoopEmitOptions &options) {
  BackwardEmitter(b, desc, options, cast<MemRefType>(buffers.input.getType()))
      .emitFinalize(buffers, numChunks);
}
