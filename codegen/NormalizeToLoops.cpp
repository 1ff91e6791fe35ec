//===- NormalizeToLoops.cpp - norm.normalize to vector loops --------------===//
//
// One straight-line recipe for every normalization, on a canonical view of
// the input (CanonicalLayout): groups expanded, like dims collapsed. A work
// item is one statistic whose innermost dim is reduced (row mode), or one
// vector of statistics along a kept innermost dim (lane mode: one lane per
// statistic, or one segment of lanes for a short reduced dim merged into
// it, as GroupNorm NHWC). Each runs:
//
//   pass 1  d   = sum(x*s) / M - x0*s          (sumUnshifted), or
//               = sum(x*s - x0*s) / M          shifted by the first element
//   pass 2  var = sum((x*s - x0*s - d)^2) / M  two-pass: no E[x^2]-E[x]^2
//   final   rstd, mean, running stats           in f64, once per statistic
//   pass 3  y = ((x*s - x0*s - d) * rs) * gamma + beta, stored once
//
// The shift by the first element x0 makes `x - x0` exact for rows with a
// large mean and a tiny spread (Sterbenz), so the mean and the normalized
// values keep full precision. s is 1; only when a sum overflows (values near
// the type's maximum) are passes 1-2 redone with s = 2^-100 (2^-600 for f64),
// a power of two, so the scaling itself is exact. Row data stays in L1/L2
// across the passes, so the input is read from memory once.
//
//===----------------------------------------------------------------------===//

#include "codegen/NormalizeToLoops.h"
#include "codegen/LoopEmitter.h"

#include "dialect/NormOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/STLExtras.h"
#include <cmath>

using namespace mlir;
using namespace mlir::norm;
using namespace mlir::norm::detail;

//===----------------------------------------------------------------------===//
// CanonicalLayout
//===----------------------------------------------------------------------===//

/// Renumbers the runs that satisfy `keep` into the index space of the dims
/// that satisfy `keep`; returns empty when every run has one dim.
static SmallVector<ReassociationIndices>
restrictRuns(ArrayRef<ReassociationIndices> runs,
             ArrayRef<CanonicalLayout::Dim> runDims,
             function_ref<bool(const CanonicalLayout::Dim &)> keep) {
  SmallVector<ReassociationIndices> result;
  int64_t next = 0;
  bool collapses = false;
  for (auto [run, dim] : llvm::zip(runs, runDims)) {
    if (!keep(dim))
      continue;
    ReassociationIndices indices;
    for (size_t i = 0; i < run.size(); ++i)
      indices.push_back(next++);
    collapses |= indices.size() > 1;
    result.push_back(indices);
  }
  return collapses ? result : SmallVector<ReassociationIndices>();
}

/// The canonical layout; with `segment` > 0, the innermost two canonical
/// dims (kept, then reduced of `segment` elements) become one segmented dim.
static CanonicalLayout buildLayout(const NormDescription &desc,
                                   int64_t inputRank, int64_t segment) {
  using Dim = CanonicalLayout::Dim;
  CanonicalLayout layout;
  SmallVector<Dim> expanded;
  bool affineGroup = false;
  for (int64_t dim = 0; dim < inputRank; ++dim) {
    bool affine = llvm::is_contained(desc.affineDims, dim);
    int64_t first = expanded.size();
    if (desc.groupDim && *desc.groupDim == dim) {
      // [groups (kept), channels per group (reduced)].
      expanded.push_back({/*reduced=*/false, affine});
      expanded.push_back({/*reduced=*/true, affine});
      layout.inputExpand.push_back({first, first + 1});
      affineGroup = affine;
      continue;
    }
    expanded.push_back({llvm::is_contained(desc.reductionDims, dim), affine});
    layout.inputExpand.push_back({first});
  }
  if (desc.groupDim) {
    layout.groupDim = desc.groupDim;
    layout.numGroups = *desc.numGroups;
  } else {
    layout.inputExpand.clear();
  }
  if (affineGroup) {
    int64_t next = 0;
    for (int64_t dim : desc.affineDims) {
      if (dim == *desc.groupDim) {
        layout.gammaGroupDim = layout.gammaExpand.size();
        layout.gammaExpand.push_back({next, next + 1});
        next += 2;
      } else {
        layout.gammaExpand.push_back({next++});
      }
    }
  }

  // Collapse runs of alike dims.
  SmallVector<ReassociationIndices> runs;
  for (auto [index, dim] : llvm::enumerate(expanded)) {
    if (!runs.empty() && layout.dims.back().reduced == dim.reduced &&
        layout.dims.back().affine == dim.affine) {
      runs.back().push_back(index);
      continue;
    }
    runs.push_back({(int64_t)index});
    layout.dims.push_back(dim);
  }
  // Statistics have no elements along the segment: their view is the one of
  // the unmerged dims.
  layout.statsCollapse =
      restrictRuns(runs, layout.dims, [](const Dim &d) { return !d.reduced; });
  if (segment) {
    ReassociationIndices inner = runs.pop_back_val();
    llvm::append_range(runs.back(), inner);
    layout.dims.pop_back();
    layout.dims.back().segment = segment;
  }
  if (runs.size() != expanded.size())
    layout.inputCollapse = runs;
  layout.gammaCollapse =
      restrictRuns(runs, layout.dims, [](const Dim &d) { return d.affine; });
  return layout;
}

CanonicalLayout CanonicalLayout::get(const NormDescription &desc,
                                     int64_t inputRank) {
  return buildLayout(desc, inputRank, /*segment=*/0);
}

std::optional<int64_t>
norm::detail::staticCanonicalSize(const CanonicalLayout &layout,
                                  ArrayRef<int64_t> inputShape, int64_t dim) {
  SmallVector<int64_t> expanded;
  for (auto [index, size] : llvm::enumerate(inputShape)) {
    if (layout.groupDim && *layout.groupDim == (int64_t)index) {
      expanded.push_back(layout.numGroups);
      expanded.push_back(ShapedType::isDynamic(size) ? size
                                                     : size / layout.numGroups);
      continue;
    }
    expanded.push_back(size);
  }
  ReassociationIndices run = layout.inputCollapse.empty()
                                 ? ReassociationIndices{dim}
                                 : layout.inputCollapse[dim];
  int64_t product = 1;
  for (int64_t index : run) {
    if (ShapedType::isDynamic(expanded[index]))
      return std::nullopt;
    product *= expanded[index];
  }
  return product;
}

/// Segmented lane mode. When the innermost canonical dim is reduced but
/// short, e.g. GroupNorm NHWC as [N, H*W, G, C/G] with C/G = 2, row mode
/// fills S of the vl lanes of every vector and walks memory S elements at a
/// time. The kept dim K before it is contiguous with it, so [K, S] is viewed
/// as one dim of K*S elements and each vector holds vl/S whole statistics:
/// lane mode whose per-lane sums are added per segment of S lanes once per
/// work item. It needs S static (segments are reduced with shuffles), at
/// least two statistics per vector (with one, row mode does as well), and
/// gamma indexed alike on K and S, so that gamma is contiguous along the
/// merged dim or constant across it.
CanonicalLayout CanonicalLayout::get(const NormDescription &desc,
                                     ArrayRef<int64_t> inputShape,
                                     int64_t lanes) {
  CanonicalLayout layout = get(desc, inputShape.size());
  int64_t rank = layout.dims.size();
  if (rank < 2)
    return layout;
  const Dim &inner = layout.dims[rank - 1], &outer = layout.dims[rank - 2];
  if (!inner.reduced || outer.reduced || inner.affine != outer.affine)
    return layout;
  std::optional<int64_t> segment =
      staticCanonicalSize(layout, inputShape, rank - 1);
  if (!segment || *segment < 1 || 2 * *segment > lanes)
    return layout;
  return buildLayout(desc, inputShape.size(), *segment);
}

//===----------------------------------------------------------------------===//
// Sizes and work items
//===----------------------------------------------------------------------===//

/// Sizes of the canonical dims from the input's sizes.
SmallVector<Value> norm::emitCanonicalSizes(ImplicitLocOpBuilder &b,
                                            const CanonicalLayout &layout,
                                            ValueRange inputSizes) {
  SmallVector<Value> expanded;
  for (auto [dim, size] : llvm::enumerate(inputSizes)) {
    if (layout.groupDim && *layout.groupDim == (int64_t)dim) {
      Value groups = arith::ConstantIndexOp::create(b, layout.numGroups);
      expanded.push_back(groups);
      expanded.push_back(b.createOrFold<arith::DivUIOp>(size, groups));
      continue;
    }
    expanded.push_back(size);
  }
  if (layout.inputCollapse.empty())
    return expanded;
  SmallVector<Value> sizes;
  for (const ReassociationIndices &run : layout.inputCollapse) {
    Value product = expanded[run.front()];
    for (int64_t index : ArrayRef(run).drop_front())
      product = b.createOrFold<arith::MulIOp>(product, expanded[index]);
    sizes.push_back(product);
  }
  return sizes;
}

int64_t norm::detail::statsVectorLength(Type accType,
                                        const LoopEmitOptions &options) {
  return accType.isF64() ? std::max<int64_t>(1, options.vectorLength / 2)
                         : options.vectorLength;
}

/// Statistics along the innermost dim in lane mode: one per segment.
static Value laneStatCount(ImplicitLocOpBuilder &b,
                           const CanonicalLayout &layout, Value size) {
  return b.createOrFold<arith::DivUIOp>(
      size, arith::ConstantIndexOp::create(b, layout.segment()));
}

/// Work items for canonical `sizes`: the product of the kept dims, with the
/// innermost one counted in chunks of `lanes` / segment statistics in lane
/// mode. Shared by the kernels' work-count functions and the emitter, which
/// must agree.
static Value countItems(ImplicitLocOpBuilder &b, const CanonicalLayout &layout,
                        ArrayRef<Value> sizes, int64_t lanes) {
  Value count = arith::ConstantIndexOp::create(b, 1);
  size_t keptEnd = layout.isLaneMode() ? sizes.size() - 1 : sizes.size();
  for (size_t dim = 0; dim < keptEnd; ++dim)
    if (!layout.dims[dim].reduced)
      count = b.createOrFold<arith::MulIOp>(count, sizes[dim]);
  if (layout.isLaneMode())
    count = b.createOrFold<arith::MulIOp>(
        count,
        b.createOrFold<arith::CeilDivUIOp>(
            laneStatCount(b, layout, sizes.back()),
            arith::ConstantIndexOp::create(b, lanes / layout.segment())));
  return count;
}

/// Elements reduced for one statistic: the product of the reduced dims and
/// of the segment.
static Value countReduced(ImplicitLocOpBuilder &b,
                          const CanonicalLayout &layout,
                          ArrayRef<Value> sizes) {
  Value count = arith::ConstantIndexOp::create(b, layout.segment());
  for (auto [dim, size] : llvm::zip(layout.dims, sizes))
    if (dim.reduced)
      count = b.createOrFold<arith::MulIOp>(count, size);
  return count;
}

/// Static sizes from index values (constants where known).
static SmallVector<int64_t> getStaticShape(ValueRange sizes) {
  SmallVector<int64_t> shape;
  for (Value size : sizes)
    shape.push_back(getConstantIntValue(size).value_or(ShapedType::kDynamic));
  return shape;
}

Value norm::emitWorkItemCount(ImplicitLocOpBuilder &b,
                              const NormDescription &desc, Type elementType,
                              ValueRange inputSizes,
                              const LoopEmitOptions &options) {
  int64_t lanes =
      statsVectorLength(getStatisticsElementType(elementType), options);
  CanonicalLayout layout =
      CanonicalLayout::get(desc, getStaticShape(inputSizes), lanes);
  return countItems(b, layout, emitCanonicalSizes(b, layout, inputSizes),
                    lanes);
}

bool norm::detail::hasContiguousRows(const CanonicalLayout &layout) {
  return !layout.isLaneMode() &&
         llvm::count_if(layout.dims, [](const CanonicalLayout::Dim &dim) {
           return dim.reduced;
         }) == 1;
}

bool norm::detail::mayHaveLongRows(const CanonicalLayout &layout,
                                   ArrayRef<int64_t> inputShape,
                                   bool splitVeryLongRows) {
  int64_t last = layout.dims.size() - 1;
  std::optional<int64_t> rowLength =
      staticCanonicalSize(layout, inputShape, last);
  if (!rowLength)
    return true;
  if (*rowLength < kRowSplitMinElements)
    return false;
  // With every size known, the rule of emitRowSplit is decided here.
  int64_t rows = 1;
  for (int64_t dim = 0; dim < last; ++dim) {
    std::optional<int64_t> size = staticCanonicalSize(layout, inputShape, dim);
    if (!size)
      return true;
    rows *= *size;
  }
  return rows < kRowSplitMaxRows ||
         (splitVeryLongRows && *rowLength > kRowSplitAlwaysElements);
}

bool norm::detail::hasBatchDim(const CanonicalLayout &layout) {
  return layout.dims.front().reduced && !hasContiguousRows(layout);
}

bool norm::detail::mayHaveLargeBatch(const CanonicalLayout &layout,
                                     ArrayRef<int64_t> inputShape,
                                     int64_t lanes) {
  // The rule of emitBatchSplit, decided here by whichever of its two
  // counts is known: work items (statistics, or lane chunks of them) and
  // elements per statistic.
  std::optional<int64_t> items = 1, elements = layout.segment();
  auto times = [](std::optional<int64_t> &count, std::optional<int64_t> size) {
    count =
        count && size ? std::optional<int64_t>(*count * *size) : std::nullopt;
  };
  int64_t last = layout.dims.size() - 1;
  for (int64_t dim = 0; dim <= last; ++dim) {
    std::optional<int64_t> size = staticCanonicalSize(layout, inputShape, dim);
    if (layout.dims[dim].reduced)
      times(elements, size);
    else if (dim == last && layout.isLaneMode())
      times(items,
            size ? std::optional<int64_t>(llvm::divideCeil(
                       *size / layout.segment(), lanes / layout.segment()))
                 : std::nullopt);
    else
      times(items, size);
  }
  return !(items && *items >= kRowSplitMaxRows) &&
         !(elements && *elements < kRowSplitMinElements);
}

bool norm::canSplitRows(const NormDescription &desc,
                        ArrayRef<int64_t> inputShape, Type elementType,
                        const LoopEmitOptions &options) {
  // f64 data may rescale its sums per statistic (overflow), which chunks
  // could not combine; given statistics make no reduction.
  if (!options.splitLongRows || desc.givenStats || elementType.isF64())
    return false;
  int64_t lanes =
      statsVectorLength(getStatisticsElementType(elementType), options);
  CanonicalLayout layout = CanonicalLayout::get(desc, inputShape, lanes);
  // Whole rows beyond L2 are read three times when centered (mean,
  // variance, output) but twice otherwise (RMSNorm): only the former save a
  // read by splitting when there are enough rows for the threads.
  if (hasContiguousRows(layout))
    return mayHaveLongRows(layout, inputShape,
                           /*splitVeryLongRows=*/desc.center);
  return hasBatchDim(layout) && mayHaveLargeBatch(layout, inputShape, lanes);
}

RowSplit norm::detail::emitRowSplit(ImplicitLocOpBuilder &b,
                                    const CanonicalLayout &layout,
                                    ArrayRef<Value> sizes, int64_t lanes,
                                    bool splitVeryLongRows) {
  assert(hasContiguousRows(layout) && "rows must be contiguous to split");
  auto index = [&](int64_t value) {
    return arith::ConstantIndexOp::create(b, value);
  };
  RowSplit split;
  split.rows = countItems(b, layout, sizes, lanes);
  split.rowLength = sizes.back();
  auto cmp = [&](arith::CmpIPredicate predicate, Value lhs, int64_t rhs) {
    return b.createOrFold<arith::CmpIOp>(predicate, lhs, index(rhs));
  };
  Value longRows =
      cmp(arith::CmpIPredicate::uge, split.rowLength, kRowSplitMinElements);
  Value fewRows = cmp(arith::CmpIPredicate::ult, split.rows, kRowSplitMaxRows);
  if (splitVeryLongRows)
    fewRows = b.createOrFold<arith::OrIOp>(
        fewRows, cmp(arith::CmpIPredicate::ugt, split.rowLength,
                     kRowSplitAlwaysElements));
  split.enabled = b.createOrFold<arith::AndIOp>(longRows, fewRows);
  split.dim = sizes.size() - 1;
  split.chunkLength = index(kRowSplitChunk);
  split.elementsPerIndex = index(1);
  split.chunks =
      b.createOrFold<arith::CeilDivUIOp>(split.rowLength, split.chunkLength);
  split.items = b.createOrFold<arith::MulIOp>(split.rows, split.chunks);
  return split;
}

RowSplit norm::detail::emitBatchSplit(ImplicitLocOpBuilder &b,
                                      const CanonicalLayout &layout,
                                      ArrayRef<Value> sizes, int64_t lanes) {
  assert(hasBatchDim(layout) && "the outermost dim must be a batch to split");
  auto index = [&](int64_t value) {
    return arith::ConstantIndexOp::create(b, value);
  };
  RowSplit split;
  split.batch = true;
  split.dim = 0;
  split.rows = countItems(b, layout, sizes, lanes);
  split.rowLength = sizes.front();
  // Elements of one statistic per batch index, and of one work item.
  split.elementsPerIndex = index(layout.segment());
  for (size_t dim = 1; dim < sizes.size(); ++dim)
    if (layout.dims[dim].reduced)
      split.elementsPerIndex =
          b.createOrFold<arith::MulIOp>(split.elementsPerIndex, sizes[dim]);
  split.partialLanes = layout.isLaneMode() ? lanes / layout.segment() : 1;
  Value itemElements = b.createOrFold<arith::MulIOp>(split.elementsPerIndex,
                                                     index(split.partialLanes));
  Value statElements =
      b.createOrFold<arith::MulIOp>(split.elementsPerIndex, split.rowLength);
  auto cmp = [&](arith::CmpIPredicate predicate, Value lhs, int64_t rhs) {
    return b.createOrFold<arith::CmpIOp>(predicate, lhs, index(rhs));
  };
  split.enabled = b.createOrFold<arith::AndIOp>(
      cmp(arith::CmpIPredicate::uge, statElements, kRowSplitMinElements),
      cmp(arith::CmpIPredicate::ult, split.rows, kRowSplitMaxRows));
  // Chunks of about kBatchSplitChunkElements per item, at least one index.
  split.chunkLength = b.createOrFold<arith::MaxUIOp>(
      b.createOrFold<arith::DivUIOp>(index(kBatchSplitChunkElements),
                                     itemElements),
      index(1));
  split.chunks =
      b.createOrFold<arith::CeilDivUIOp>(split.rowLength, split.chunkLength);
  split.items = b.createOrFold<arith::MulIOp>(split.rows, split.chunks);
  // Channels-last: a row is a vector of channels, part of every position
  // (64 f32 channels: 2 rows of 32 f32 lanes, 4 of 16 f64 for the
  // backward). Item by item, each row would stream the whole batch for its
  // part of every position, a strided read that the hardware prefetchers
  // serve at a fraction of the copy's bandwidth. Tiled, the rows of a chunk
  // read each position whole.
  std::optional<int64_t> rows = getConstantIntValue(split.rows);
  if (layout.isLaneMode() && layout.segment() == 1 && rows && *rows > 1 &&
      *rows < kRowSplitMaxRows) {
    split.tiledRows = *rows;
    split.items = split.chunks;
  }
  // A chunk's two passes would leave the memory idle during the second one
  // (the chunk is in cache, nothing is prefetched): the prepass sums d and
  // d^2 of d = x - x0 in one pass instead, x0 being the statistic's first
  // element for every chunk, and squares = sum(d^2) - sum(d)^2 / n_c. Each
  // blocked f64 sum over n_c elements rounds by at most
  // g = (64 + n_c/32) 2^-53 relative (row mode adds the halves of each
  // vector first), and the chunks' sums of d^2 add up to
  // q + M (mean - x0)^2 <= (M + 1) q (x0 is one of the M samples), so the
  // variance is within about 3 g M relative: below 7.2e-7, about half f32's
  // tolerance, when (2048 + n_c) M <= 2^36. Beyond that, two passes.
  Value chunkElements =
      b.createOrFold<arith::MulIOp>(split.chunkLength, split.elementsPerIndex);
  split.onePassChunks = b.createOrFold<arith::CmpIOp>(
      arith::CmpIPredicate::ule, statElements,
      b.createOrFold<arith::DivUIOp>(
          index(int64_t(1) << 36),
          b.createOrFold<arith::AddIOp>(chunkElements, index(2048))));
  return split;
}

Value norm::detail::splitSlotCount(ImplicitLocOpBuilder &b,
                                   const RowSplit &split) {
  return b.createOrFold<arith::MulIOp>(split.rows, split.chunks);
}

RowSplit norm::detail::emitForwardSplit(ImplicitLocOpBuilder &b,
                                        const CanonicalLayout &layout,
                                        ArrayRef<Value> sizes, int64_t lanes,
                                        bool center) {
  if (hasContiguousRows(layout))
    return emitRowSplit(b, layout, sizes, lanes, /*splitVeryLongRows=*/center);
  return emitBatchSplit(b, layout, sizes, lanes);
}

namespace {
/// The row split of a forward kernel for input sizes `inputSizes`, or
/// nullopt when the kernel never splits its rows.
std::optional<RowSplit> getRowSplit(ImplicitLocOpBuilder &b,
                                    const NormDescription &desc,
                                    Type elementType, ValueRange inputSizes,
                                    const LoopEmitOptions &options) {
  if (!canSplitRows(desc, getStaticShape(inputSizes), elementType, options))
    return std::nullopt;
  int64_t lanes =
      statsVectorLength(getStatisticsElementType(elementType), options);
  CanonicalLayout layout =
      CanonicalLayout::get(desc, getStaticShape(inputSizes), lanes);
  return emitForwardSplit(b, layout, emitCanonicalSizes(b, layout, inputSizes),
                          lanes, desc.center);
}
} // namespace

Value norm::emitForwardWorkCount(ImplicitLocOpBuilder &b,
                                 const NormDescription &desc, Type elementType,
                                 ValueRange inputSizes,
                                 const LoopEmitOptions &options) {
  Value items = emitWorkItemCount(b, desc, elementType, inputSizes, options);
  std::optional<RowSplit> split =
      getRowSplit(b, desc, elementType, inputSizes, options);
  if (!split)
    return items;
  return b.createOrFold<arith::SelectOp>(split->enabled, split->items, items);
}

Value norm::emitPrepassWorkCount(ImplicitLocOpBuilder &b,
                                 const NormDescription &desc, Type elementType,
                                 ValueRange inputSizes,
                                 const LoopEmitOptions &options) {
  Value none = arith::ConstantIndexOp::create(b, 0);
  std::optional<RowSplit> split =
      getRowSplit(b, desc, elementType, inputSizes, options);
  if (!split)
    return none;
  return b.createOrFold<arith::SelectOp>(split->enabled, split->items, none);
}

Value norm::emitRowSplitWorkspaceSize(ImplicitLocOpBuilder &b,
                                      const NormDescription &desc,
                                      Type elementType, ValueRange inputSizes,
                                      const LoopEmitOptions &options) {
  std::optional<RowSplit> split =
      getRowSplit(b, desc, elementType, inputSizes, options);
  if (!split)
    return arith::ConstantIndexOp::create(b, 0);
  Value slots =
      b.createOrFold<arith::SelectOp>(split->enabled, splitSlotCount(b, *split),
                                      arith::ConstantIndexOp::create(b, 0));
  return b.createOrFold<arith::MulIOp>(
      slots, arith::ConstantIndexOp::create(b, kRowSplitPartials *
                                                   split->partialLanes));
}

Value norm::emitReductionCount(ImplicitLocOpBuilder &b,
                               const NormDescription &desc,
                               ValueRange inputSizes) {
  CanonicalLayout layout = CanonicalLayout::get(desc, inputSizes.size());
  return countReduced(b, layout, emitCanonicalSizes(b, layout, inputSizes));
}

//===----------------------------------------------------------------------===//
// The loop emitter
//===----------------------------------------------------------------------===//

Value LoopEmitter::constant(Type type, double value) {
  auto vectorType = dyn_cast<VectorType>(type);
  Type element = vectorType ? vectorType.getElementType() : type;
  TypedAttr attr = b.getFloatAttr(element, value);
  if (vectorType)
    attr = DenseElementsAttr::get(vectorType, attr);
  return arith::ConstantOp::create(b, attr);
}

/// `type` with its element type replaced (scalar or vector).
static Type withElementType(Type type, Type element) {
  if (auto vectorType = dyn_cast<VectorType>(type))
    return VectorType::get(vectorType.getShape(), element);
  return element;
}

/// 16-bit floats live in memory as i16 (see NormBuffers): x86 without
/// AVX512-BF16/FP16 legalizes masked loads and selects of bf16/f16 vectors
/// through compiler-rt calls that kernels must not depend on. Widening bf16
/// is a shift; narrowing rounds to nearest even with integer ops; f16 uses
/// the hardware conversions (F16C).
static Value splatInt(ImplicitLocOpBuilder &b, int64_t value, Type type) {
  TypedAttr attr = b.getIntegerAttr(getElementTypeOrSelf(type), value);
  if (auto vectorType = dyn_cast<VectorType>(type))
    attr = DenseElementsAttr::get(vectorType, attr);
  return arith::ConstantOp::create(b, attr);
}

static Value decode16(ImplicitLocOpBuilder &b, Value bits, Type logical) {
  Type type = bits.getType();
  if (logical.isF16())
    return arith::ExtFOp::create(
        b, withElementType(type, b.getF32Type()),
        arith::BitcastOp::create(b, withElementType(type, logical), bits)
            .getResult());
  Type i32 = withElementType(type, b.getI32Type());
  Value wide = arith::ExtUIOp::create(b, i32, bits);
  Value shifted = arith::ShLIOp::create(b, wide, splatInt(b, 16, i32));
  return arith::BitcastOp::create(b, withElementType(type, b.getF32Type()),
                                  shifted);
}

/// `nanPayloadHighHalf`: every NaN that can reach `value` has zero low 16
/// bits (see LoopEmitter::nanPayloadsHighHalf), so rounding keeps NaNs NaN
/// without the select.
static Value encode16(ImplicitLocOpBuilder &b, Value value, Type logical,
                      bool nanPayloadHighHalf) {
  Type type = value.getType();
  Type i16 = withElementType(type, b.getI16Type());
  if (logical.isF16())
    return arith::BitcastOp::create(
        b, i16,
        arith::TruncFOp::create(b, withElementType(type, logical), value));
  Type i32 = withElementType(type, b.getI32Type());
  Value bits = arith::BitcastOp::create(b, i32, value);
  Value lsb = arith::AndIOp::create(
      b, arith::ShRUIOp::create(b, bits, splatInt(b, 16, i32)),
      splatInt(b, 1, i32));
  Value rounded = arith::AddIOp::create(
      b, bits, arith::AddIOp::create(b, lsb, splatInt(b, 0x7FFF, i32)));
  // A NaN with zero low half adds at most 0x8000 to it: no carry, so its
  // high half, a NaN, is kept.
  if (nanPayloadHighHalf)
    return arith::TruncIOp::create(
        b, i16, arith::ShRUIOp::create(b, rounded, splatInt(b, 16, i32)));
  // NaN stays a quiet NaN with its sign; rounding could turn it into inf
  // (a low-half payload carried into the exponent) or into a zero (0x7fff
  // or 0xffff high half wrapped around).
  // Chosen on the 32-bit values so that one narrowing serves both.
  Value isNan =
      arith::CmpFOp::create(b, arith::CmpFPredicate::UNO, value, value);
  Value quiet = arith::OrIOp::create(b, bits, splatInt(b, 0x400000, i32));
  Value chosen = arith::SelectOp::create(b, isNan, quiet, rounded);
  return arith::TruncIOp::create(
      b, i16, arith::ShRUIOp::create(b, chosen, splatInt(b, 16, i32)));
}

Value LoopEmitter::castFloat(Value value, Type element) {
  Type from = getElementTypeOrSelf(value.getType());
  if (from == element)
    return value;
  Type to = withElementType(value.getType(), element);
  if (from.getIntOrFloatBitWidth() < element.getIntOrFloatBitWidth())
    return arith::ExtFOp::create(b, to, value);
  // Round to nearest even, once, on the way to the storage type.
  return arith::TruncFOp::create(b, to, value);
}

Value LoopEmitter::splatStat(Value scalar) {
  if (!lane)
    return scalar;
  return vector::BroadcastOp::create(
      b, VectorType::get({statLanes}, scalar.getType()), scalar);
}

Value LoopEmitter::toVector(Value stat) {
  if (!isa<VectorType>(stat.getType()))
    return vector::BroadcastOp::create(b, VectorType::get({vl}, stat.getType()),
                                       stat);
  if (segment == 1)
    return stat;
  // Lane l belongs to statistic l / S; lanes past the last whole segment
  // are never stored and take the last statistic.
  SmallVector<int64_t> picks;
  for (int64_t l = 0; l < vl; ++l)
    picks.push_back(std::min(l / segment, statLanes - 1));
  return vector::ShuffleOp::create(b, stat, stat, picks);
}

Value LoopEmitter::firstOfSegments(Value data) {
  if (segment == 1)
    return data;
  SmallVector<int64_t> picks;
  for (int64_t j = 0; j < statLanes; ++j)
    picks.push_back(j * segment);
  return vector::ShuffleOp::create(b, data, data, picks);
}

Value LoopEmitter::loadInput(Value memref, ValueRange indices, Value mask,
                             Type target) {
  // The storage type, or f32 for buffers decoded once (decodeAffineOnce).
  Type stored = cast<MemRefType>(memref.getType()).getElementType();
  auto vectorType = VectorType::get({vl}, stored);
  Value vec;
  if (mask)
    vec = vector::MaskedLoadOp::create(b, vectorType, memref, indices, mask,
                                       constant(vectorType, 0.0));
  else
    vec = vector::LoadOp::create(b, vectorType, memref, indices);
  Value decoded =
      stored == storageType ? decodeData(vec) : castFloat(vec, accType);
  return target ? castFloat(decoded, target) : decoded;
}

/// Largest gamma (elements) decoded once per call: gamma and beta then
/// take 32 KiB of stack.
static constexpr int64_t kMaxDecodedAffineElements = 4096;

Value LoopEmitter::decodeAffineOnce(Value canonical) {
  auto type =
      canonical ? dyn_cast<MemRefType>(canonical.getType()) : MemRefType();
  // Only 16-bit gamma/beta that vary along the vectors of a row: per-item
  // ones are loaded once per item anyway (loadItemGamma).
  if (!type || storageType == elementType || lane ||
      !layout.dims.back().affine || type.getRank() != 1 ||
      !type.hasStaticShape() ||
      type.getNumElements() > kMaxDecodedAffineElements)
    return canonical;
  int64_t count = type.getNumElements();
  auto decodedType = MemRefType::get({count}, b.getF32Type());
  Value decoded =
      memref::AllocaOp::create(b, decodedType, b.getI64IntegerAttr(64));
  forEachVectorUpTo(indexConstant(count), [&](Value at, Value mask) {
    storeVector(loadInput(canonical, at, mask, b.getF32Type()), decoded, at,
                mask);
  });
  return decoded;
}

void LoopEmitter::storeVector(Value value, Value memref, ValueRange indices,
                              Value mask) {
  if (mask)
    vector::MaskedStoreOp::create(b, memref, indices, mask, value);
  else
    vector::StoreOp::create(b, value, memref, indices);
}

Value LoopEmitter::decodeData(Value stored) {
  if (storageType != elementType)
    return castFloat(decode16(b, stored, elementType), accType);
  return castFloat(stored, accType);
}

/// f64 -> f32 rounded to odd: truncated toward zero, with the last bit set
/// when that dropped anything. Rounding that to a format of at most 22
/// significand bits (bf16, f16) to nearest gives the f64 value correctly
/// rounded; rounding to nearest twice would not: 1 + 2^-8 + 2^-30 rounds to
/// 1 + 2^-8 in f32, a bf16 tie that goes to 1 instead of 1 + 2^-7. Done on
/// the f64 bits, where f32 drops the low 29 significand bits: if any is set,
/// they are cleared and the lowest kept bit is set, which makes the
/// conversion exact and odd (NaNs stay NaNs, infinities have none set).
/// Exact for results in f32's normal range; below 2^-126 the conversion
/// drops more bits and subnormal 16-bit results may still be rounded twice.
static Value truncToOddF32(ImplicitLocOpBuilder &b, Value value) {
  Type type = value.getType();
  Type i64 = withElementType(type, b.getI64Type());
  constexpr int64_t kDropped = (int64_t(1) << 29) - 1;
  Value bits = arith::BitcastOp::create(b, i64, value);
  Value sticky = arith::CmpIOp::create(
      b, arith::CmpIPredicate::ne,
      arith::AndIOp::create(b, bits, splatInt(b, kDropped, i64)),
      splatInt(b, 0, i64));
  Value odd = arith::OrIOp::create(
      b, arith::AndIOp::create(b, bits, splatInt(b, ~kDropped, i64)),
      splatInt(b, kDropped + 1, i64));
  Value exact = arith::BitcastOp::create(
      b, type, arith::SelectOp::create(b, sticky, odd, bits));
  return arith::TruncFOp::create(b, withElementType(type, b.getF32Type()),
                                 exact);
}

Value LoopEmitter::encodeData(Value value, bool roundOnce) {
  if (storageType != elementType) {
    Value narrow = roundOnce && getElementTypeOrSelf(value.getType()).isF64()
                       ? truncToOddF32(b, value)
                       : castFloat(value, b.getF32Type());
    return encode16(b, narrow, elementType, nanPayloadsHighHalf);
  }
  return castFloat(value, elementType);
}

/// Longest row (elements) kept decoded between passes: 16 KiB of stack.
static constexpr int64_t kMaxRowScratchElements = 4096;

Value LoopEmitter::allocRowScratch() {
  // 16-bit rows reduced along the innermost dim only, of a size known at
  // compile time, whose statistics take more than one pass.
  size_t inner = layout.dims.size() - 1;
  std::optional<int64_t> length = getConstantIntValue(sizes[inner]);
  bool innermostOnly = layout.dims[inner].reduced;
  for (size_t d = 0; d < inner; ++d)
    innermostOnly &= !layout.dims[d].reduced;
  if (storageType == elementType || lane || desc.givenStats || !innermostOnly ||
      !length || *length > kMaxRowScratchElements)
    return Value();
  auto type = MemRefType::get({*length}, b.getF32Type());
  return memref::AllocaOp::create(b, type, b.getI64IntegerAttr(64));
}

Value LoopEmitter::loadRow(ArrayRef<Value> indices, Value mask, Type target,
                           bool keep) {
  if (!rowScratch)
    return loadInput(buf.input, indices, mask, target);
  Value at = indices.back();
  if (rowDecoded)
    return loadInput(rowScratch, at, mask, target);
  Value decoded = loadInput(buf.input, indices, mask, b.getF32Type());
  if (keep)
    storeVector(decoded, rowScratch, at, mask);
  return castFloat(decoded, target ? target : accType);
}

Value LoopEmitter::loadGamma(Value memref, ArrayRef<Value> inputIndices,
                             Value mask, Type target) {
  SmallVector<Value> indices;
  for (auto [dim, index] : llvm::zip(layout.dims, inputIndices))
    if (dim.affine)
      indices.push_back(index);
  if (layout.dims.back().affine)
    return loadInput(memref, indices, mask, target);
  Value scalar = memref::LoadOp::create(b, memref, indices);
  Value decoded = toVector(decodeData(scalar));
  return target ? castFloat(decoded, target) : decoded;
}

Value LoopEmitter::loadItemGamma(Value memref) {
  if (!memref || llvm::any_of(layout.dims, [](const CanonicalLayout::Dim &d) {
        return d.reduced && d.affine;
      }))
    return Value();
  return loadGamma(memref, keptIndices, lane ? laneMask : Value());
}

Value LoopEmitter::loadStat(Value memref) {
  Type element = cast<MemRefType>(memref.getType()).getElementType();
  if (!lane)
    return memref::LoadOp::create(b, memref, statIndices);
  auto vectorType = VectorType::get({statLanes}, element);
  return vector::MaskedLoadOp::create(b, vectorType, memref, statIndices,
                                      statMask, constant(vectorType, 0.0));
}

void LoopEmitter::storeStat(Value memref, Value value) {
  if (!memref)
    return;
  value = castFloat(value, cast<MemRefType>(memref.getType()).getElementType());
  if (!lane) {
    memref::StoreOp::create(b, value, memref, statIndices);
    return;
  }
  vector::MaskedStoreOp::create(b, memref, statIndices, statMask, value);
}

/// Whether `mask` (null: no mask) enables every lane. Lane modes pass a
/// mask built from constants when the statistics fill every chunk: those
/// vectors are whole and may be stored streaming.
static bool enablesAllLanes(Value mask) {
  if (!mask)
    return true;
  auto type = cast<VectorType>(mask.getType());
  if (auto create = mask.getDefiningOp<vector::CreateMaskOp>()) {
    for (auto [operand, size] :
         llvm::zip(create.getOperands(), type.getShape())) {
      std::optional<int64_t> bound = getConstantIntValue(operand);
      if (!bound || *bound < size)
        return false;
    }
    return true;
  }
  DenseElementsAttr constant;
  return matchPattern(mask, m_Constant(&constant)) && constant.isSplat() &&
         constant.getSplatValue<bool>();
}

void LoopEmitter::storeOutput(Value value, ArrayRef<Value> indices,
                              Value mask) {
  value = encodeData(value);
  if (streamingStores && enablesAllLanes(mask))
    vector::StoreOp::create(b, value, buf.output, indices,
                            /*nontemporal=*/true,
                            llvm::MaybeAlign(streamingAlignment()));
  else
    storeVector(value, buf.output, indices, mask);
}

int64_t LoopEmitter::streamingAlignment() const {
  if (options.streamingStoreMinBytes < 0)
    return 0;
  // Whole vectors of a work item start every `stride` elements from the
  // start of the innermost dim (chunks of whole segments in lane mode).
  int64_t stride = lane ? statLanes * segment : vl;
  int64_t bytes = stride * storageType.getIntOrFloatBitWidth() / 8;
  int64_t alignment = std::min<int64_t>(bytes & -bytes, 64);
  // Below 16 bytes a streaming store is a scalar one: not worth it.
  return alignment >= 16 ? alignment : 0;
}

Value LoopEmitter::streamingCondition(Value output) {
  int64_t alignment = streamingAlignment();
  if (!output || !alignment)
    return Value();
  Value elementBytes = indexConstant(storageType.getIntOrFloatBitWidth() / 8);
  Value elements = indexConstant(1);
  for (Value size : sizes)
    elements = b.createOrFold<arith::MulIOp>(elements, size);
  Value large = arith::CmpIOp::create(
      b, arith::CmpIPredicate::uge,
      b.createOrFold<arith::MulIOp>(elements, elementBytes),
      indexConstant(options.streamingStoreMinBytes));
  // Every whole vector is aligned when the buffer and each run of the
  // innermost dim are: vector starts are multiples of the stride within
  // the run, and runs start at multiples of its size.
  Value zero = indexConstant(0);
  Value align = indexConstant(alignment);
  Value base = memref::ExtractAlignedPointerAsIndexOp::create(b, output);
  Value runBytes = b.createOrFold<arith::MulIOp>(sizes.back(), elementBytes);
  Value aligned = arith::AndIOp::create(
      b,
      arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                            arith::RemUIOp::create(b, base, align), zero),
      arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                            b.createOrFold<arith::RemUIOp>(runBytes, align),
                            zero));
  return arith::AndIOp::create(b, large, aligned);
}

void LoopEmitter::emitStreamingFence() {
  LLVM::CallIntrinsicOp::create(b, b.getStringAttr("llvm.x86.sse.sfence"),
                                ValueRange{});
}

void LoopEmitter::withStreamingStores(Value condition,
                                      function_ref<void()> emitStores) {
  withStreamingStores(condition, {}, [&]() -> SmallVector<Value> {
    emitStores();
    return {};
  });
}

SmallVector<Value>
LoopEmitter::withStreamingStores(Value condition, TypeRange types,
                                 function_ref<SmallVector<Value>()> emit) {
  if (!condition)
    return emit();
  return buildIf(
      condition, types,
      [&]() {
        streamingStores = true;
        SmallVector<Value> results = emit();
        streamingStores = false;
        return results;
      },
      emit);
}

void LoopEmitter::fenceStreamingStores(Value condition) {
  if (!condition)
    return;
  buildIf(
      condition, {},
      [&]() {
        emitStreamingFence();
        return SmallVector<Value>();
      },
      [&]() { return SmallVector<Value>(); });
}

SmallVector<Value> LoopEmitter::buildFor(
    Value lb, Value ub, Value step, ValueRange inits,
    function_ref<SmallVector<Value>(Value, ValueRange)> body) {
  auto forOp = scf::ForOp::create(b, lb, ub, step, inits);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(forOp.getBody());
  SmallVector<Value> yielded =
      body(forOp.getInductionVar(), forOp.getRegionIterArgs());
  // Without iter_args the builder already added the terminator.
  if (!inits.empty())
    scf::YieldOp::create(b, yielded);
  return SmallVector<Value>(forOp.getResults());
}

SmallVector<Value>
LoopEmitter::buildIf(Value cond, TypeRange types,
                     function_ref<SmallVector<Value>()> thenBody,
                     function_ref<SmallVector<Value>()> elseBody) {
  auto ifOp = scf::IfOp::create(b, types, cond, /*withElseRegion=*/true);
  OpBuilder::InsertionGuard guard(b);
  auto fill = [&](Region &region, function_ref<SmallVector<Value>()> fn) {
    Block &block = region.front();
    if (types.empty()) {
      b.setInsertionPoint(block.getTerminator());
      fn();
      return;
    }
    b.setInsertionPointToEnd(&block);
    scf::YieldOp::create(b, fn());
  };
  fill(ifOp.getThenRegion(), thenBody);
  fill(ifOp.getElseRegion(), elseBody);
  return SmallVector<Value>(ifOp.getResults());
}

void LoopEmitter::forEachVectorUpTo(
    Value count, function_ref<void(Value start, Value mask)> body) {
  Value step = indexConstant(vl);
  Value mainEnd = b.createOrFold<arith::MulIOp>(
      b.createOrFold<arith::DivUIOp>(count, step), step);
  buildFor(indexConstant(0), mainEnd, step, {}, [&](Value j, ValueRange) {
    body(j, Value());
    return SmallVector<Value>();
  });
  Value remainder = b.createOrFold<arith::SubIOp>(count, mainEnd);
  std::optional<int64_t> staticRemainder = getConstantIntValue(remainder);
  if (staticRemainder == 0)
    return;
  auto tail = [&]() -> SmallVector<Value> {
    body(mainEnd,
         vector::CreateMaskOp::create(b, VectorType::get({vl}, b.getI1Type()),
                                      ValueRange{remainder}));
    return {};
  };
  if (staticRemainder) {
    tail();
    return;
  }
  buildIf(arith::CmpIOp::create(b, arith::CmpIPredicate::ne, remainder,
                                indexConstant(0)),
          TypeRange{}, tail, [] { return SmallVector<Value>(); });
}

/// Iterations accumulate into fresh accumulators per block of kBlock steps,
/// added to the running total after each block: every lane then sums about
/// kBlock + n/kBlock terms instead of n, which keeps long rows (65537
/// elements, BatchNorm over N*H*W) accurate in f32.
static constexpr int64_t kBlock = 32;
static_assert(kRowTilePositions == kBlock,
              "a tile of a tiled split must be one block of the sums");

SmallVector<Value> LoopEmitter::buildBlockedFor(
    Value lb, Value ub, Value step, ValueRange inits,
    function_ref<SmallVector<Value>(Value, ValueRange)> body, Type partial,
    unsigned maxima) {
  if (inits.empty())
    return buildFor(lb, ub, step, inits, body);
  size_t firstMaximum = inits.size() - maxima;
  Value span = b.createOrFold<arith::MulIOp>(step, indexConstant(kBlock));
  return buildFor(
      lb, ub, span, inits, [&](Value blockStart, ValueRange totals) {
        Value blockEnd = arith::MinUIOp::create(
            b, arith::AddIOp::create(b, blockStart, span), ub);
        SmallVector<Value> zeros;
        for (auto [i, total] : llvm::enumerate(totals))
          zeros.push_back(
              constant(partial && i < firstMaximum
                           ? withElementType(total.getType(), partial)
                           : total.getType(),
                       0.0));
        SmallVector<Value> parts =
            buildFor(blockStart, blockEnd, step, zeros, body);
        SmallVector<Value> sums;
        for (auto [i, total, part] : llvm::enumerate(totals, parts)) {
          if (i >= firstMaximum) {
            sums.push_back(runningMax(total, part));
            continue;
          }
          sums.push_back(arith::AddFOp::create(
              b, total,
              castFloat(part, getElementTypeOrSelf(total.getType()))));
        }
        return sums;
      });
}

Value LoopEmitter::runningMax(Value acc, Value term) {
  // acc > term ? acc : term, which x86 does in one instruction (MAXPS; a
  // NaN term is taken, a NaN acc dropped). maxnumf would add a NaN check,
  // and with nnan a NaN operand would be poison.
  return arith::SelectOp::create(
      b, arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, acc, term), acc,
      term);
}

Value LoopEmitter::addTerm(Value acc, Value term) {
  return arith::AddFOp::create(
      b, acc, castFloat(term, getElementTypeOrSelf(acc.getType())));
}

Value LoopEmitter::addSquare(Value acc, Value term) {
  term = castFloat(term, getElementTypeOrSelf(acc.getType()));
  return math::FmaOp::create(b, term, term, acc);
}

/// Visits every vector of the current work item's reduced set: scalar loops
/// over the outer reduced dims, then the innermost dim in steps of `vl`
/// (row mode, with a masked tail) or the item's lanes (lane mode).
SmallVector<Value> LoopEmitter::forEachVector(SmallVector<Value> indices,
                                              size_t dim, ValueRange accs,
                                              VectorBody body, Type partial,
                                              unsigned maxima) {
  size_t inner = layout.dims.size() - 1;
  if (dim == inner) {
    if (lane)
      return body(indices, laneMask, accs);
    // The whole row, or the current chunk of a split one.
    bool chunked = rangeDim == (int64_t)inner;
    Value first = chunked ? rangeBegin : indexConstant(0);
    Value size = chunked ? rangeCount : sizes[inner];
    Value step = indexConstant(vl);
    Value mainEnd = b.createOrFold<arith::AddIOp>(
        first, b.createOrFold<arith::MulIOp>(
                   b.createOrFold<arith::DivUIOp>(size, step), step));
    SmallVector<Value> results = buildBlockedFor(
        first, mainEnd, step, accs,
        [&](Value j, ValueRange iterAccs) {
          indices[inner] = j;
          return body(indices, Value(), iterAccs);
        },
        partial, maxima);
    std::optional<int64_t> staticSize = getConstantIntValue(size);
    if (staticSize && *staticSize % vl == 0)
      return results;
    Value remainder = b.createOrFold<arith::SubIOp>(
        chunked ? b.createOrFold<arith::AddIOp>(first, size) : size, mainEnd);
    auto tail = [&]() {
      indices[inner] = mainEnd;
      Value mask = vector::CreateMaskOp::create(
          b, VectorType::get({vl}, b.getI1Type()), ValueRange{remainder});
      return body(indices, mask, results);
    };
    if (staticSize)
      return tail();
    Value hasTail = arith::CmpIOp::create(b, arith::CmpIPredicate::ne,
                                          remainder, indexConstant(0));
    return buildIf(hasTail, ValueRange(results).getTypes(), tail,
                   [&]() { return results; });
  }
  if (!layout.dims[dim].reduced)
    return forEachVector(indices, dim + 1, accs, body, partial, maxima);
  // In lane mode the innermost reduced loop is the long one (N*H*W rows of
  // BatchNorm NHWC): block it like the vector loop of row mode.
  bool innermostReduced = true;
  for (size_t d = dim + 1; d < inner; ++d)
    innermostReduced &= !layout.dims[d].reduced;
  auto next = [&](Value i, ValueRange iterAccs) {
    indices[dim] = i;
    return forEachVector(indices, dim + 1, iterAccs, body, partial, maxima);
  };
  // Every index, or the current chunk of a split batch.
  Value lb = indexConstant(0), ub = sizes[dim];
  if (rangeDim == (int64_t)dim) {
    lb = rangeBegin;
    ub = b.createOrFold<arith::AddIOp>(rangeBegin, rangeCount);
  }
  if (lane && innermostReduced)
    return buildBlockedFor(lb, ub, indexConstant(1), accs, next, partial,
                           maxima);
  return buildFor(lb, ub, indexConstant(1), accs, next);
}

Value LoopEmitter::reduce(Value acc) {
  if (!lane) {
    // Reassociation lets LLVM reduce as a tree; the order is still fixed, so
    // results are bitwise reproducible.
    return vector::ReductionOp::create(b, vector::CombiningKind::ADD, acc,
                                       arith::FastMathFlags::reassoc);
  }
  if (segment == 1)
    return acc;
  // Segment j adds lanes j*S, j*S+1, ... in that order: one shuffle per
  // position, once per work item.
  Value sum;
  for (int64_t i = 0; i < segment; ++i) {
    SmallVector<int64_t> picks;
    for (int64_t j = 0; j < statLanes; ++j)
      picks.push_back(j * segment + i);
    Value part = vector::ShuffleOp::create(b, acc, acc, picks);
    sum = sum ? (Value)arith::AddFOp::create(b, sum, part) : part;
  }
  return sum;
}

Value LoopEmitter::anyStatistic(Value perStatistic) {
  if (!lane)
    return perStatistic;
  return vector::ReductionOp::create(b, vector::CombiningKind::OR,
                                     perStatistic);
}

Value LoopEmitter::isNonFinite(Value stat) {
  Value magnitude = math::AbsFOp::create(b, stat);
  Value finite = arith::CmpFOp::create(b, arith::CmpFPredicate::OLT, magnitude,
                                       constant(stat.getType(), INFINITY));
  Value bad = arith::XOrIOp::create(
      b, finite,
      arith::ConstantOp::create(
          b, finite.getType(),
          isa<VectorType>(finite.getType())
              ? (TypedAttr)DenseElementsAttr::get(
                    cast<ShapedType>(finite.getType()), true)
              : (TypedAttr)b.getBoolAttr(true)));
  return bad;
}

/// Passes 1 and 2 on x*scale shifted by `shift` (= x0*scale), summed in
/// `acc`: returns the scaled offset of the mean from x0 and the scaled sum
/// of squared deviations. With `deviation` = f32 (the fast path, see
/// canSquareInF32), pass 2 computes the deviations and their squares in
/// f32, summed in blocks of f32 partial sums that are added to the `acc`
/// totals: twice the vector width and no conversions.
std::pair<Value, Value> LoopEmitter::accumulate(Type acc, Value scale,
                                                Value shift, Type deviation) {
  if (!deviation)
    deviation = acc;
  Value zero = constant(VectorType::get({vl}, acc), 0.0);
  Value m = castFloat(reductionCount, acc);
  // Scale and shift spread over the lanes, per type, outside the loops.
  // x*s - x0*s as one fma: x*s is exact (s is a power of two), so it rounds
  // like the multiply and subtract it replaces; a plain subtraction when s
  // is 1, nothing when the shift is 0 (RMSNorm).
  bool unscaled = matchPattern(scale, m_OneFloat());
  bool unshifted = matchPattern(shift, m_AnyZeroFloat());
  struct Spread {
    Value scale, shift, zero;
  };
  auto spread = [&](Type type) {
    Value s = toVector(castFloat(shift, type));
    return Spread{toVector(castFloat(scale, type)),
                  unscaled ? s : (Value)arith::NegFOp::create(b, s),
                  constant(VectorType::get({vl}, type), 0.0)};
  };
  Spread wide = spread(acc);
  Spread narrow = deviation == acc ? wide : spread(deviation);
  // `shift` false: x itself (sumUnshifted; only unscaled).
  auto centered = [&](Value x, Value mask, Value offsetVec, bool shift) {
    const Spread &s = getElementTypeOrSelf(x.getType()) == acc ? wide : narrow;
    Value d = x;
    if (!unscaled)
      d = math::FmaOp::create(b, x, s.scale, s.shift);
    else if (!unshifted && shift)
      d = arith::SubFOp::create(b, x, s.shift);
    if (offsetVec)
      d = arith::SubFOp::create(b, d, offsetVec);
    // Tail lanes of a row must not contribute.
    if (mask && !lane)
      d = arith::SelectOp::create(b, mask, d, s.zero);
    return d;
  };

  Value offset = constant(statType(acc), 0.0);
  if (desc.center) {
    // Sums x itself and subtracts x0 from the mean once (sumUnshifted), or
    // sums x - x0.
    bool sumsX = sumUnshifted(acc, scale);
    Value sum = forEachVector(
        keptIndices, 0, {zero},
        [&](ArrayRef<Value> indices, Value mask, ValueRange accs) {
          Value x = loadRow(indices, mask, acc, /*keep=*/true);
          return SmallVector<Value>{
              addTerm(accs[0], centered(x, mask, Value(), !sumsX))};
        })[0];
    offset = arith::DivFOp::create(b, reduce(sum), splatStat(m));
    if (sumsX)
      offset = arith::SubFOp::create(b, offset, shift);
    rowDecoded = (bool)rowScratch;
  }
  Value offsetVec =
      desc.center ? toVector(castFloat(offset, deviation)) : Value();
  Value squares = forEachVector(
      keptIndices, 0, {zero},
      [&](ArrayRef<Value> indices, Value mask, ValueRange accs) {
        Value x = loadRow(indices, mask, deviation, /*keep=*/true);
        return SmallVector<Value>{
            addSquare(accs[0], centered(x, mask, offsetVec, true))};
      },
      deviation)[0];
  rowDecoded = (bool)rowScratch;
  return {offset, reduce(squares)};
}

/// Pass 1 of f32/f16/bf16 data sums x unshifted, in f64, and the offset of
/// the mean from x0 is sum/M - x0: one vector subtraction less per element,
/// a fifth of pass 1's arithmetic (which is most of a bf16 LayerNorm's), and
/// as accurate. Either every x lies within |mean|/2 of the mean, and then
/// all are multiples of one ulp (of the data's type) of |mean|/2 and their
/// partial sums
/// stay below M 2^(p+2) such ulps (p = 8, 11 or 24 significand bits): exact
/// in f64 for M <= 2^27, like the shifted sums (a constant set gives
/// offset 0).
/// Or some x is |mean|/2 away, so std >= |mean| / (2 sqrt(M)), and the
/// blocked sum's error, (32 + M/32) 2^-53 sum|x| <= (32 + M/32) 2^-53 M
/// 3 sqrt(M) std, leaves the offset within 2^-33 std for M = 4096 and
/// 2^-20 std for M = 2^24. Longer sets and f64 data (whose sums are not
/// exact) keep the shift.
bool LoopEmitter::sumUnshifted(Type acc, Value scale) const {
  if (accType.isF64() || !acc.isF64() || !matchPattern(scale, m_OneFloat()))
    return false;
  if (storageType.getIntOrFloatBitWidth() == 16)
    return true; // exact up to M = 2^40
  std::optional<int64_t> m = getConstantIntValue(reducedElements);
  return m && *m <= (int64_t(1) << 27);
}

/// Longest statistic accumulateOnePass is used for (see its bound).
static constexpr int64_t kMaxOnePassElements = 1 << 18;

Value LoopEmitter::itemBytes() {
  Value lanes = indexConstant(1);
  if (lane)
    lanes = b.createOrFold<arith::MinUIOp>(indexConstant(vl), sizes.back());
  return b.createOrFold<arith::MulIOp>(
      b.createOrFold<arith::MulIOp>(reducedElements, lanes),
      indexConstant(storageType.getIntOrFloatBitWidth() / 8));
}

Value LoopEmitter::itemExceedsCache() {
  // f64 data keeps two passes (its shifted sums would not be exact).
  if (accType.isF64() || options.onePassMinBytes < 0)
    return Value();
  Value large =
      b.createOrFold<arith::CmpIOp>(arith::CmpIPredicate::uge, itemBytes(),
                                    indexConstant(options.onePassMinBytes));
  // The error bound of accumulateOnePass grows with M^2: beyond 2^18 it
  // could pass f32 precision, so longer statistics keep two passes.
  Value bounded =
      b.createOrFold<arith::CmpIOp>(arith::CmpIPredicate::ule, reducedElements,
                                    indexConstant(kMaxOnePassElements));
  Value chosen = b.createOrFold<arith::AndIOp>(large, bounded);
  if (matchPattern(chosen, m_Zero()))
    return Value();
  return chosen;
}

/// Statistics from one pass: sum(d) and sum(d^2) with d = x - x0 in f64,
/// then squares = sum(d^2) - sum(d)^2 / M. For f32/f16/bf16 data d and d^2
/// are exact in f64 (24-bit significands), so only the blocked f64 sums
/// round, each by at most g = (64 + M/32) 2^-53 relative (row mode adds
/// the halves of each vector first: addOnePassTerms); the subtraction
/// amplifies that by at most 1 + (mean - x0)^2 / var <= M (x0 is one of the
/// M samples), so the variance is within 3 g M relative: about 7.2e-7 for
/// M <= 2^18 (kMaxOnePassElements), about half f32's tolerance, even for a
/// first element that is the lone outlier; on ordinary data near 1e-13.
std::pair<Value, Value> LoopEmitter::accumulateOnePass(Value shift) {
  return onePassStats(onePassSums(shift, onePassZeros()));
}

bool LoopEmitter::halvesOnePassSums() const { return !lane && vl % 2 == 0; }

VectorType LoopEmitter::onePassSumType() const {
  return VectorType::get({halvesOnePassSums() ? vl / 2 : vl}, wideType);
}

SmallVector<Value> LoopEmitter::onePassZeros() {
  return SmallVector<Value>(onePassSumCount(), constant(onePassSumType(), 0.0));
}

SmallVector<Value> LoopEmitter::onePassSums(Value shift, ValueRange inits) {
  Value shiftVec = toVector(shift);
  return forEachVector(
      keptIndices, 0, inits,
      [&](ArrayRef<Value> indices, Value mask, ValueRange accs) {
        return addOnePassTerms(shiftVec, indices, mask, accs);
      });
}

SmallVector<Value> LoopEmitter::addOnePassTerms(Value shiftVec,
                                                ArrayRef<Value> indices,
                                                Value mask, ValueRange accs) {
  Value d = loadInput(buf.input, indices, mask, wideType);
  if (desc.center)
    d = arith::SubFOp::create(b, d, shiftVec);
  if (mask && !lane)
    d = arith::SelectOp::create(b, mask, d,
                                constant(VectorType::get({vl}, wideType), 0.0));
  if (!halvesOnePassSums()) {
    if (!desc.center)
      return {addSquare(accs[0], d)};
    return {addTerm(accs[0], d), addSquare(accs[1], d)};
  }
  // Row mode folds the two halves of the vector into sums of half its
  // width: vl f64 lanes of each sum would take all sixteen AVX2 registers,
  // and the fused loop of emitPipelinedItems then spills.
  int64_t half = vl / 2;
  Value low = vector::ExtractStridedSliceOp::create(b, d, 0, half, 1);
  Value high = vector::ExtractStridedSliceOp::create(b, d, half, half, 1);
  Value squares = addSquare(addSquare(accs[desc.center ? 1 : 0], low), high);
  if (!desc.center)
    return {squares};
  return {addTerm(accs[0], arith::AddFOp::create(b, low, high)), squares};
}

std::pair<Value, Value> LoopEmitter::onePassStats(ArrayRef<Value> sums) {
  // Without centering (RMSNorm) the mean of the squares is the statistic:
  // no offset, and sum(x^2) as it is.
  if (!desc.center)
    return {constant(statType(wideType), 0.0), reduce(sums[0])};
  Value m = splatStat(reductionCount);
  Value sum = reduce(sums[0]);
  Value offset = arith::DivFOp::create(b, sum, m);
  Value squares = arith::MaximumFOp::create(
      b,
      arith::SubFOp::create(b, reduce(sums[1]),
                            arith::MulFOp::create(b, sum, offset)),
      constant(statType(wideType), 0.0));
  return {offset, squares};
}

bool LoopEmitter::canSquareInF32() const {
  // f32 partial sums of squares lose relative precision below 2^-100
  // (subnormals); such variances only matter next to an eps below 2^-64.
  return !accType.isF64() && desc.epsilon >= std::ldexp(1.0, -64);
}

Value LoopEmitter::loadFirstElement(ArrayRef<Value> kept) {
  if (kept.empty())
    kept = keptIndices;
  SmallVector<Value> first(kept);
  for (auto [index, dim] : llvm::enumerate(layout.dims))
    if (dim.reduced)
      first[index] = indexConstant(0);
  if (lane) {
    first.back() = kept.back();
    return firstOfSegments(loadInput(buf.input, first, laneMask));
  }
  return decodeData(memref::LoadOp::create(b, buf.input, first));
}

// Two passes where the item stays in cache. Pass 1 sums x - x0 in f64: the
// mean must be exact to f32 precision even where it is a small difference
// of large values (mixed-sign rows near the type's maximum), which no f32
// sum achieves. Pass 2 squares in f32 where that is accurate
// (canSquareInF32) and is redone in f64 when an f32 square overflowed
// (|x - mean| beyond 2^64) or the data holds inf/NaN. f64 sums hold the
// squares of any f32/f16/bf16 value; f64 data can still overflow: it is
// then redone scaled by an exact power of two (computeStats).
std::pair<Value, Value> LoopEmitter::accumulateTwoPass(Value x0W) {
  Value one = constant(statType(wideType), 1.0);
  if (!canSquareInF32())
    return accumulate(wideType, one, x0W);
  auto [fastOffset, fastSquares] =
      accumulate(wideType, one, x0W, b.getF32Type());
  Type statW = statType(wideType);
  SmallVector<Value> chosen = buildIf(
      anyStatistic(isNonFinite(fastSquares)), TypeRange{statW, statW},
      [&]() -> SmallVector<Value> {
        auto [o, q] = accumulate(wideType, one, x0W);
        return {o, q};
      },
      [&]() -> SmallVector<Value> {
        return {fastOffset, fastSquares};
      });
  return {chosen[0], chosen[1]};
}

std::pair<Value, Value> LoopEmitter::accumulateOneOrTwoPass(Value onePass,
                                                            Value x0W) {
  if (!onePass)
    return accumulateTwoPass(x0W);
  Type statW = statType(wideType);
  SmallVector<Value> chosen = buildIf(
      onePass, TypeRange{statW, statW},
      [&]() -> SmallVector<Value> {
        auto [o, q] = accumulateOnePass(x0W);
        return {o, q};
      },
      [&]() -> SmallVector<Value> {
        auto [o, q] = accumulateTwoPass(x0W);
        return {o, q};
      });
  // The one-pass branch does not keep the row.
  rowDecoded = false;
  return {chosen[0], chosen[1]};
}

Value LoopEmitter::loadWorkspaceStat(Value workspace, Value at) {
  if (!lane)
    return memref::LoadOp::create(b, workspace, ValueRange{at});
  return vector::LoadOp::create(b, statType(wideType), workspace,
                                ValueRange{at});
}

void LoopEmitter::storeWorkspaceStat(Value value, Value workspace, Value at) {
  if (!lane)
    memref::StoreOp::create(b, value, workspace, ValueRange{at});
  else
    vector::StoreOp::create(b, value, workspace, ValueRange{at});
}

ItemStats LoopEmitter::computeStats() {
  rowDecoded = false;
  Type statW = statType(wideType);
  // The first element of the reduced set (M > 0 is checked by callers).
  Value x0 =
      desc.center ? loadFirstElement() : constant(statType(accType), 0.0);
  Value x0W = castFloat(x0, wideType);
  Value one = constant(statW, 1.0);
  // Items too large for the cache (BatchNorm over N*H*W) would read x from
  // memory in each of passes 1, 2 and 3: their statistics come from one
  // pass instead (accumulateOnePass).
  Value offset, squares;
  std::tie(offset, squares) = accumulateOneOrTwoPass(itemExceedsCache(), x0W);
  Value scaleW = one, offsetW = offset, squaresW = squares;
  bool wideData = accType.isF64();
  if (wideData) {
    Value badStats =
        arith::OrIOp::create(b, isNonFinite(offset), isNonFinite(squares));
    SmallVector<Value> chosen = buildIf(
        anyStatistic(badStats), TypeRange{statW, statW, statW},
        [&]() -> SmallVector<Value> {
          // In lane mode only the statistics that overflowed are scaled; the
          // others get their sums again unscaled (x * 1 is exact). Scaled,
          // eps * s^2 underflows, so a constant set next to an overflowing
          // one would get rstd = inf.
          Value tiny = constant(statW, std::ldexp(1.0, -600));
          Value scale =
              lane ? (Value)arith::SelectOp::create(b, badStats, tiny, one)
                   : tiny;
          Value shift = arith::MulFOp::create(b, x0W, scale);
          auto [o, q] = accumulate(wideType, scale, shift);
          return {scale, o, q};
        },
        [&]() -> SmallVector<Value> {
          return {one, offset, squares};
        });
    scaleW = chosen[0];
    offsetW = chosen[1];
    squaresW = chosen[2];
  }

  return finishStats(x0, offsetW, squaresW, scaleW);
}

ItemStats LoopEmitter::finishStats(Value x0, Value offsetW, Value squaresW,
                                   Value scaleW, Value storeCondition) {
  Type statW = statType(wideType);
  Value x0W = castFloat(x0, wideType);
  Value one = constant(statW, 1.0);
  bool wideData = accType.isF64();
  // Per-statistic math in f64, on values scaled by scaleW.
  Value m = splatStat(reductionCount);
  Value varScaledW = arith::DivFOp::create(b, squaresW, m);
  Value eps = constant(statW, desc.epsilon);
  Value epsScaled = arith::MulFOp::create(b, eps, scaleW);
  Value denominator;
  if (desc.epsPlacement == EpsPlacement::Inside)
    denominator = math::SqrtOp::create(
        b, arith::AddFOp::create(b, varScaledW,
                                 arith::MulFOp::create(b, epsScaled, scaleW)));
  else
    denominator = arith::AddFOp::create(b, math::SqrtOp::create(b, varScaledW),
                                        epsScaled);
  // rstd / s, and rstd itself.
  Value rstdScaledW = arith::DivFOp::create(b, one, denominator);
  Value rstdW = arith::MulFOp::create(b, rstdScaledW, scaleW);
  // (x0*s + d*s) / s: no intermediate exceeds the range of the data.
  Value meanW = arith::DivFOp::create(
      b,
      arith::AddFOp::create(b, arith::MulFOp::create(b, x0W, scaleW), offsetW),
      scaleW);
  auto storeStats = [&]() -> SmallVector<Value> {
    storeStat(buf.savedMean, meanW);
    storeStat(buf.savedRstd, rstdW);

    if (buf.runningMean && (buf.runningMeanOut || buf.runningVarOut)) {
      Value momentum = constant(statW, *desc.momentum);
      Value keep = constant(statW, 1.0 - *desc.momentum);
      auto blend = [&](Value running, Value batch) {
        return arith::AddFOp::create(
            b, arith::MulFOp::create(b, keep, castFloat(running, wideType)),
            arith::MulFOp::create(b, momentum, batch));
      };
      // Unbiased variance: var * M / (M - 1), unscaled.
      Value var = arith::DivFOp::create(
          b, varScaledW, arith::MulFOp::create(b, scaleW, scaleW));
      Value unbiased = arith::DivFOp::create(
          b, arith::MulFOp::create(b, var, m),
          arith::SubFOp::create(b, m, constant(m.getType(), 1.0)));
      storeStat(buf.runningMeanOut, blend(loadStat(buf.runningMean), meanW));
      storeStat(buf.runningVarOut, blend(loadStat(buf.runningVar), unbiased));
    }
    return {};
  };
  // A split row's chunks all compute the statistics; one stores them.
  if (storeCondition)
    buildIf(storeCondition, TypeRange{}, storeStats,
            [] { return SmallVector<Value>(); });
  else
    storeStats();

  // Pass 3 works in the accumulation type on x*s3 so that x - x0 cannot
  // overflow: f32 data with a huge shift or spread uses s3 = 2^-100 (exact;
  // deviations that small next to 2^100 are below f32 precision anyway),
  // f64 data keeps its accumulation scale.
  Value passScaleW = scaleW;
  if (!wideData) {
    Value huge = arith::OrIOp::create(
        b,
        arith::CmpFOp::create(b, arith::CmpFPredicate::OGE,
                              math::AbsFOp::create(b, x0W),
                              constant(statW, std::ldexp(1.0, 100))),
        arith::CmpFOp::create(b, arith::CmpFPredicate::OGE, varScaledW,
                              constant(statW, std::ldexp(1.0, 200))));
    passScaleW = arith::SelectOp::create(
        b, huge, constant(statW, std::ldexp(1.0, -100)), one);
  }
  Value passScale = castFloat(passScaleW, accType);
  ItemStats stats;
  stats.scale = passScale;
  stats.shift = arith::MulFOp::create(b, x0, passScale);
  // Ratios of scales first: the unscaled offset or rstd may not be
  // representable even when the rescaled one is.
  Value rescale = arith::DivFOp::create(b, passScaleW, scaleW);
  stats.offset =
      desc.center
          ? castFloat(arith::MulFOp::create(b, offsetW, rescale), accType)
          : Value();
  stats.rstdScaled =
      castFloat(arith::DivFOp::create(b, rstdScaledW, rescale), accType);
  return stats;
}

ItemStats LoopEmitter::givenStats() {
  Value mean = castFloat(loadStat(buf.givenMean), accType);
  Value varW = castFloat(loadStat(buf.givenVar), wideType);
  Value eps = constant(statType(wideType), desc.epsilon);
  Value denominator =
      desc.epsPlacement == EpsPlacement::Inside
          ? (Value)math::SqrtOp::create(b, arith::AddFOp::create(b, varW, eps))
          : (Value)arith::AddFOp::create(b, math::SqrtOp::create(b, varW), eps);
  Value rstdW =
      arith::DivFOp::create(b, constant(statType(wideType), 1.0), denominator);
  ItemStats stats;
  stats.scale = constant(statType(accType), 1.0);
  stats.shift = mean;
  stats.rstdScaled = castFloat(rstdW, accType);
  return stats;
}

/// Pass 3: y = fma((x*s - x0*s - d) * rs, gamma, beta), one store per
/// element.
void LoopEmitter::normalize(const ItemStats &stats) {
  if (!buf.output)
    return;
  OutputPass pass = prepareOutputPass(stats);
  forEachVector(keptIndices, 0, {},
                [&](ArrayRef<Value> indices, Value mask, ValueRange) {
                  normalizeVector(pass, indices, mask);
                  return SmallVector<Value>();
                });
}

LoopEmitter::OutputPass LoopEmitter::prepareOutputPass(const ItemStats &stats) {
  OutputPass pass;
  if (!desc.givenStats)
    pass.scale = toVector(stats.scale);
  if (desc.center || desc.givenStats) {
    pass.shift = toVector(stats.shift);
    pass.negShift = arith::NegFOp::create(b, pass.shift);
  }
  if (stats.offset)
    pass.offset = toVector(stats.offset);
  pass.rstd = toVector(stats.rstdScaled);
  pass.itemGamma = loadItemGamma(buf.gamma);
  pass.itemBeta = loadItemGamma(buf.beta);
  return pass;
}

void LoopEmitter::normalizeVector(const OutputPass &pass,
                                  ArrayRef<Value> indices, Value mask) {
  prefetchNext(buf.input, indices, mask);
  Value v = loadRow(indices, mask, Type(), /*keep=*/false);
  // x*s - x0*s in one fma: x*s is exact (s is a power of two).
  if (pass.scale && pass.shift)
    v = math::FmaOp::create(b, v, pass.scale, pass.negShift);
  else if (pass.scale)
    v = arith::MulFOp::create(b, v, pass.scale);
  else if (pass.shift)
    v = arith::SubFOp::create(b, v, pass.shift);
  if (pass.offset)
    v = arith::SubFOp::create(b, v, pass.offset);
  v = arith::MulFOp::create(b, v, pass.rstd);
  // Loaded once per item when it does not vary (loadItemGamma).
  auto affine = [&](Value memref, Value perItem) {
    if (!memref || perItem)
      return perItem;
    return loadGamma(memref, indices, mask);
  };
  Value gamma = affine(buf.gamma, pass.itemGamma);
  Value beta = affine(buf.beta, pass.itemBeta);
  // xhat * gamma + beta rounded once.
  if (gamma && beta)
    v = math::FmaOp::create(b, v, gamma, beta);
  else if (gamma)
    v = arith::MulFOp::create(b, v, gamma);
  else if (beta)
    v = arith::AddFOp::create(b, v, beta);
  storeOutput(v, indices, mask);
}

/// Applies an expand then a collapse to a memref view (either may be empty).
static Value reshape(ImplicitLocOpBuilder &b, Value memref,
                     ArrayRef<ReassociationIndices> expand,
                     std::optional<int64_t> groupDim, int64_t groups,
                     ArrayRef<ReassociationIndices> collapse) {
  if (!memref)
    return memref;
  auto type = cast<MemRefType>(memref.getType());
  if (!expand.empty()) {
    SmallVector<OpFoldResult> outputShape;
    SmallVector<int64_t> staticShape;
    for (auto [dim, size] : llvm::enumerate(type.getShape())) {
      OpFoldResult sizeValue = memref::getMixedSize(b, b.getLoc(), memref, dim);
      if ((int64_t)dim != *groupDim) {
        outputShape.push_back(sizeValue);
        staticShape.push_back(size);
        continue;
      }
      outputShape.push_back(b.getIndexAttr(groups));
      staticShape.push_back(groups);
      Value perGroup = b.createOrFold<arith::DivUIOp>(
          getValueOrCreateConstantIndexOp(b, b.getLoc(), sizeValue),
          arith::ConstantIndexOp::create(b, groups));
      outputShape.push_back(getAsOpFoldResult(perGroup));
      staticShape.push_back(ShapedType::isDynamic(size) ? ShapedType::kDynamic
                                                        : size / groups);
    }
    auto expandedType = MemRefType::get(staticShape, type.getElementType());
    memref = memref::ExpandShapeOp::create(b, expandedType, memref, expand,
                                           outputShape);
  }
  if (!collapse.empty())
    memref = memref::CollapseShapeOp::create(b, memref, collapse);
  return memref;
}

Value LoopEmitter::viewInput(Value memref) {
  return reshape(b, memref, layout.inputExpand, layout.groupDim,
                 layout.numGroups, layout.inputCollapse);
}

Value LoopEmitter::viewGamma(Value memref) {
  return reshape(b, memref, layout.gammaExpand, layout.gammaGroupDim,
                 layout.numGroups, layout.gammaCollapse);
}

Value LoopEmitter::viewStats(Value memref) {
  return reshape(b, memref, {}, std::nullopt, 1, layout.statsCollapse);
}

void LoopEmitter::prepare(Type dataType, Type storage, Value canonicalInput) {
  storageType = storage;
  elementType = dataType;
  wideType = b.getF64Type();
  accVector = VectorType::get({vl}, accType);
  lane = layout.isLaneMode();
  segment = lane ? layout.segment() : 1;
  statLanes = lane ? vl / segment : 1;
  sizes.clear();
  for (int64_t dim = 0; dim < (int64_t)layout.dims.size(); ++dim)
    sizes.push_back(b.createOrFold<memref::DimOp>(canonicalInput, dim));
  Value count = countReduced(b, layout, sizes);
  reducedElements = count;
  reductionCount = arith::UIToFPOp::create(
      b, wideType, arith::IndexCastUIOp::create(b, b.getI64Type(), count));
}

Value LoopEmitter::itemCount() { return countItems(b, layout, sizes, vl); }

void LoopEmitter::delinearizeKept(Value rest, int64_t last,
                                  SmallVector<Value> &kept) {
  int64_t outermostKept = -1;
  for (int64_t dim = 0; dim <= last && outermostKept < 0; ++dim)
    if (!layout.dims[dim].reduced)
      outermostKept = dim;
  for (int64_t dim = last; dim >= 0; --dim) {
    if (layout.dims[dim].reduced) {
      kept[dim] = indexConstant(0);
      continue;
    }
    // Work items never exceed the product of the kept sizes, so the
    // outermost index needs no remainder.
    if (dim == outermostKept) {
      kept[dim] = rest;
      continue;
    }
    kept[dim] = arith::RemUIOp::create(b, rest, sizes[dim]);
    rest = arith::DivUIOp::create(b, rest, sizes[dim]);
  }
}

SmallVector<Value> LoopEmitter::atItem(ArrayRef<Value> indices,
                                       ArrayRef<Value> kept) const {
  SmallVector<Value> at(indices);
  for (auto [index, dim] : llvm::enumerate(layout.dims))
    if (!dim.reduced)
      at[index] = kept[index];
  return at;
}

Value LoopEmitter::itemFitsBesideNext() {
  Value fits =
      b.createOrFold<arith::CmpIOp>(arith::CmpIPredicate::ule, itemBytes(),
                                    indexConstant(kMaxPrefetchItemBytes));
  if (matchPattern(fits, m_Zero()))
    return Value();
  return fits;
}

Value LoopEmitter::prefetchCondition() {
  if (lane || !options.prefetchNextItem)
    return Value();
  return itemFitsBesideNext();
}

void LoopEmitter::setupPrefetch(Value item, Value end, Value condition) {
  nextKeptIndices.clear();
  if (!condition)
    return;
  // The next item of this call, or the current one again (its lines are in
  // cache: the prefetches cost an L1 hit) after the last or when the item
  // is too large.
  Value next = arith::AddIOp::create(b, item, indexConstant(1));
  Value useNext = b.createOrFold<arith::AndIOp>(
      arith::CmpIOp::create(b, arith::CmpIPredicate::ult, next, end),
      condition);
  Value target = arith::SelectOp::create(b, useNext, next, item);
  nextKeptIndices.assign(layout.dims.size(), Value());
  delinearizeKept(target, layout.dims.size() - 1, nextKeptIndices);
}

void LoopEmitter::prefetchNext(Value memref, ArrayRef<Value> indices,
                               Value mask) {
  // Masked tails are not prefetched: their lines may end past the buffer.
  if (nextKeptIndices.empty() || mask)
    return;
  SmallVector<Value> at = atItem(indices, nextKeptIndices);
  // One prefetch per cache line of the vector.
  int64_t bytes = storageType.getIntOrFloatBitWidth() / 8;
  int64_t lineElements = std::max<int64_t>(1, 64 / bytes);
  Value first = at.back();
  for (int64_t offset = 0; offset < vl; offset += lineElements) {
    at.back() = b.createOrFold<arith::AddIOp>(first, indexConstant(offset));
    memref::PrefetchOp::create(b, memref, at, /*isWrite=*/false,
                               /*localityHint=*/2, /*isDataCache=*/true);
  }
}

/// Steps ahead for prefetchAhead: a strided lane-mode step of the backward
/// costs about 20-30 cycles, a line from memory several hundred (8, 16, 32
/// and 64 measured alike on BatchNorm NHWC, none 1.5x slower).
static constexpr int64_t kPrefetchAheadSteps = 16;

void LoopEmitter::prefetchAhead(Value memref, ArrayRef<Value> indices,
                                Value mask) {
  if (!lane)
    return;
  int64_t inner = layout.dims.size() - 1;
  // A position whose lanes one vector covers is streamed contiguously.
  std::optional<int64_t> laneCount = getConstantIntValue(sizes[inner]);
  if (laneCount && *laneCount <= vl)
    return;
  int64_t stepDim = inner - 1;
  while (stepDim >= 0 && !layout.dims[stepDim].reduced)
    --stepDim;
  if (stepDim < 0)
    return;
  SmallVector<Value> at(indices);
  Value last = b.createOrFold<arith::SubIOp>(sizes[stepDim], indexConstant(1));
  at[stepDim] = arith::MinUIOp::create(
      b,
      arith::AddIOp::create(b, indices[stepDim],
                            indexConstant(kPrefetchAheadSteps)),
      last);
  // The vector's first line always lies in the buffer; the others only
  // where every lane is in it.
  int64_t bytes = storageType.getIntOrFloatBitWidth() / 8;
  int64_t lineElements = std::max<int64_t>(1, 64 / bytes);
  int64_t lines =
      mask && !enablesAllLanes(mask) ? 1 : llvm::divideCeil(vl, lineElements);
  Value first = at.back();
  for (int64_t line = 0; line < lines; ++line) {
    at.back() = b.createOrFold<arith::AddIOp>(
        first, indexConstant(line * lineElements));
    memref::PrefetchOp::create(b, memref, at, /*isWrite=*/false,
                               /*localityHint=*/3, /*isDataCache=*/true);
  }
}

void LoopEmitter::setupItem(Value item) {
  // Delinearize the work item into the kept indices, innermost first.
  size_t rank = layout.dims.size();
  keptIndices.assign(rank, Value());
  Value rest = item;
  int64_t last = rank - 1;
  Value firstStat;
  if (lane) {
    // Chunks of statLanes statistics, statistic k at elements [k*S, k*S+S).
    Value perChunk = indexConstant(statLanes);
    Value stats = laneStatCount(b, layout, sizes[last]);
    Value chunks = b.createOrFold<arith::CeilDivUIOp>(stats, perChunk);
    Value chunk = arith::RemUIOp::create(b, rest, chunks);
    rest = arith::DivUIOp::create(b, rest, chunks);
    firstStat = arith::MulIOp::create(b, chunk, perChunk);
    keptIndices[last] =
        b.createOrFold<arith::MulIOp>(firstStat, indexConstant(segment));
    // Static sizes that fill every chunk need no masks (the canonicalizer
    // turns the constant masks into plain loads and stores).
    std::optional<int64_t> staticStats = getConstantIntValue(stats);
    Value active =
        staticStats && *staticStats % statLanes == 0
            ? perChunk
            : arith::MinUIOp::create(
                  b, arith::SubIOp::create(b, stats, firstStat), perChunk);
    statMask = vector::CreateMaskOp::create(
        b, VectorType::get({statLanes}, b.getI1Type()), ValueRange{active});
    laneMask =
        vector::CreateMaskOp::create(b, VectorType::get({vl}, b.getI1Type()),
                                     ValueRange{b.createOrFold<arith::MulIOp>(
                                         active, indexConstant(segment))});
    --last;
  }
  delinearizeKept(rest, last, keptIndices);
  statIndices.clear();
  for (auto [dim, index] : llvm::zip(layout.dims, keptIndices))
    if (!dim.reduced)
      statIndices.push_back(index);
  if (lane)
    statIndices.back() = firstStat;
}

void LoopEmitter::bindBuffers(const NormBuffers &buffers) {
  buf.input = viewInput(buffers.input);
  buf.output = viewInput(buffers.output);
  buf.gamma = viewGamma(buffers.gamma);
  buf.beta = viewGamma(buffers.beta);
  buf.givenMean = viewStats(buffers.givenMean);
  buf.givenVar = viewStats(buffers.givenVar);
  buf.runningMean = viewStats(buffers.runningMean);
  buf.runningVar = viewStats(buffers.runningVar);
  buf.savedMean = viewStats(buffers.savedMean);
  buf.savedRstd = viewStats(buffers.savedRstd);
  buf.runningMeanOut = viewStats(buffers.runningMeanOut);
  buf.runningVarOut = viewStats(buffers.runningVarOut);
  buf.workspace = buffers.workspace;
  Type storage = cast<MemRefType>(buffers.input.getType()).getElementType();
  prepare(buffers.elementType, storage, buf.input);
}

void LoopEmitter::emit(const NormBuffers &buffers, Value begin, Value end) {
  bindBuffers(buffers);
  // The forward's outputs derive from x, gamma and beta only (the verifier
  // gives them one element type) unless statistics are given (f32 arrays).
  // Decoded bf16 values have zero low halves, and LLVM's NaN semantics let
  // an arithmetic NaN result carry only a quieted input payload or the
  // preferred NaN's (zero below the quiet bit), f64 conversions included:
  // no NaN reaching the encoder has a low half.
  nanPayloadsHighHalf = elementType.isBF16() && !desc.givenStats;
  buf.gamma = decodeAffineOnce(buf.gamma);
  buf.beta = decodeAffineOnce(buf.beta);
  rowScratch = allocRowScratch();

  // Streaming or not is decided once per call; the pass 3 loop exists in
  // both forms and each item branches to one (a uniform branch).
  Value streaming = streamingCondition(buf.output);
  // Given statistics make one pass: there is no cached pass to overlap.
  Value prefetch = desc.givenStats ? Value() : prefetchCondition();
  auto itemLoop = [&]() -> SmallVector<Value> {
    buildFor(begin, end, indexConstant(1), {}, [&](Value item, ValueRange) {
      setupItem(item);
      setupPrefetch(item, end, prefetch);
      ItemStats stats = desc.givenStats ? givenStats() : computeStats();
      withStreamingStores(streaming, [&]() { normalize(stats); });
      return SmallVector<Value>();
    });
    return {};
  };
  // Rows that fit in cache are pipelined (emitPipelinedItems), decided once
  // per call.
  Value pipelined = pipelineCondition();
  auto pipelinedItems = [&]() -> SmallVector<Value> {
    // The pipeline's prologue reads the first item: none when empty.
    Value nonEmpty =
        arith::CmpIOp::create(b, arith::CmpIPredicate::ult, begin, end);
    return buildIf(
        nonEmpty, TypeRange{},
        [&]() -> SmallVector<Value> {
          emitPipelinedItems(begin, end, streaming, prefetch);
          return {};
        },
        [] { return SmallVector<Value>(); });
  };
  auto items = [&]() -> SmallVector<Value> {
    if (!pipelined)
      return itemLoop();
    if (matchPattern(pipelined, m_One()))
      return pipelinedItems();
    return buildIf(pipelined, TypeRange{}, pipelinedItems, itemLoop);
  };
  // Kernels that may split rows (canSplitRows) take a workspace; whether
  // these rows are split is decided once per call.
  if (buf.workspace) {
    RowSplit split = emitForwardSplit(b, layout, sizes, vl, desc.center);
    buildIf(
        split.enabled, TypeRange{},
        [&]() -> SmallVector<Value> {
          emitSplitRows(split, begin, end, streaming);
          return {};
        },
        items);
  } else {
    items();
  }
  fenceStreamingStores(streaming);
}

Type norm::getStorageType(Type elementType) {
  if (elementType.getIntOrFloatBitWidth() == 16)
    return IntegerType::get(elementType.getContext(), 16);
  return elementType;
}

void norm::emitNormalizeLoops(ImplicitLocOpBuilder &b,
                              const NormDescription &desc,
                              const NormBuffers &buffers, Value begin,
                              Value end, const LoopEmitOptions &options) {
  LoopEmitter(b, desc, options, cast<MemRefType>(buffers.input.getType()),
              getStatisticsElementType(buffers.elementType))
      .emit(buffers, begin, end);
}
