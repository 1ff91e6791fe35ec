//===- LoopEmitter.h - shared machinery of the CPU lowering -----*- C++ -*-===//
//
// Internal to codegen/: the emitter that NormalizeToLoops (forward) and
// NormalizeBackwardToLoops (backward) build on. It knows the canonical
// layout, the work-item decomposition, vector loads/stores with 16-bit
// storage and masked tails, and blocked accumulation loops.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_CODEGEN_LOOPEMITTER_H
#define NORMC_CODEGEN_LOOPEMITTER_H

#include "codegen/NormalizeToLoops.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/BuiltinTypes.h"

namespace mlir::norm::detail {

/// Lanes of one accumulator vector of `accType`.
int64_t statsVectorLength(Type accType, const LoopEmitOptions &options);

/// Statistics of one work item, shaped as scalars (row mode) or as vectors
/// with one lane per statistic (lane mode), in the accumulation type.
/// toVector() spreads them over the lanes of the data.
struct ItemStats {
  Value shift;      // x0 * s
  Value offset;     // d * s: mean - x0, scaled
  Value scale;      // s
  Value rstdScaled; // rstd / s
};

/// How the statistics of one call are split into chunks (see canSplitRows),
/// from the canonical sizes; every value is computed at run time where
/// sizes are dynamic. Two kinds share it: long contiguous rows are cut
/// along their innermost dim (emitRowSplit), and statistics over a large
/// batch (BatchNorm) along their outermost reduced dim (emitBatchSplit).
/// "Row" below is one work item of the unsplit kernel: a statistic, or a
/// vector of them in lane mode.
struct RowSplit {
  Value enabled;   // i1: these rows are split
  Value rows;      // work items of the unsplit kernel
  Value rowLength; // size of the split dim
  Value chunks;    // chunks per row, of chunkLength indices of the split
                   // dim (the last one shorter)
  Value items;     // rows * chunks: work items of the prepass and main step
  /// A batch (emitBatchSplit) rather than rows (emitRowSplit).
  bool batch = false;
  /// The canonical dim cut into chunks, its indices per chunk, and the
  /// elements of one statistic per index of it (1 for rows).
  int64_t dim = 0;
  Value chunkLength;
  Value elementsPerIndex;
  /// f64 lanes of each partial in the workspace: the statistics of a row.
  int64_t partialLanes = 1;
  /// i1, batches only (null for rows): the prepass may take each chunk's
  /// statistics from one pass of shifted sums (see emitBatchSplit).
  Value onePassChunks;
  /// Lane mode with this many rows (> 1, static) per position: each work
  /// item is one chunk of every row, visited a tile of positions at a time
  /// and every row within a tile, so that a position's lines are read
  /// together (a split batch, forward and backward); 0 when rows are
  /// items.
  int64_t tiledRows = 0;
};

/// Positions per tile of a tiled split (RowSplit::tiledRows): the block of
/// the blocked sums (LoopEmitter::buildBlockedFor), so that every tile is
/// one block and the sums are those of the untiled loops, in the same
/// order.
constexpr int64_t kRowTilePositions = 32;

/// Largest item (bytes of one array) whose successor is prefetched, or
/// pipelined: the current and the next item of every array read must fit
/// in L2 together (two arrays x two items x 64 KiB = 256 KiB, half of a
/// 512 KiB L2). Longer rows stream well enough from the hardware
/// prefetcher within the row.
constexpr int64_t kMaxPrefetchItemBytes = 64 << 10;

/// f64 values per chunk and statistic in the workspace: the chunk's mean
/// minus the row's first element, and its sum of squared deviations from
/// its own mean.
constexpr int64_t kRowSplitPartials = 2;

/// Workspace slots of a split's per-chunk partials: one per chunk of every
/// row (rows * chunks, row-major; see LoopEmitter::chunkSlot), whether the
/// work items are row chunks or tiled chunks of every row.
Value splitSlotCount(ImplicitLocOpBuilder &b, const RowSplit &split);

/// The split of `layout` (row mode, one reduced dim) for canonical `sizes`:
/// rows of at least kRowSplitMinElements when there are fewer than
/// kRowSplitMaxRows, or (`splitVeryLongRows`, the forward) when they are
/// longer than kRowSplitAlwaysElements.
RowSplit emitRowSplit(ImplicitLocOpBuilder &b, const CanonicalLayout &layout,
                      ArrayRef<Value> sizes, int64_t lanes,
                      bool splitVeryLongRows);

/// The split of `layout` (outermost dim reduced, not contiguous rows: the
/// batch of BatchNorm) along its outermost dim, in chunks of about
/// kBatchSplitChunkElements per work item: when there are fewer than
/// kRowSplitMaxRows work items of at least kRowSplitMinElements elements
/// per statistic.
RowSplit emitBatchSplit(ImplicitLocOpBuilder &b, const CanonicalLayout &layout,
                        ArrayRef<Value> sizes, int64_t lanes);

/// The split of a forward kernel: emitRowSplit (with `splitVeryLongRows` =
/// `center`) where the statistics are contiguous rows, else
/// emitBatchSplit.
RowSplit emitForwardSplit(ImplicitLocOpBuilder &b,
                          const CanonicalLayout &layout, ArrayRef<Value> sizes,
                          int64_t lanes, bool center);

/// Static size of canonical dim `dim` for an input of `inputShape`, or
/// nullopt when it is dynamic.
std::optional<int64_t> staticCanonicalSize(const CanonicalLayout &layout,
                                           ArrayRef<int64_t> inputShape,
                                           int64_t dim);

/// Whether `layout`'s statistics are contiguous rows (row mode, one reduced
/// dim: the innermost), and whether such rows of the static `inputShape`
/// may be split by emitRowSplit.
bool hasContiguousRows(const CanonicalLayout &layout);
bool mayHaveLongRows(const CanonicalLayout &layout,
                     ArrayRef<int64_t> inputShape, bool splitVeryLongRows);
/// Whether `layout` reduces its outermost dim and its statistics are not
/// contiguous rows, and whether the static `inputShape` may be split by
/// emitBatchSplit.
bool hasBatchDim(const CanonicalLayout &layout);
bool mayHaveLargeBatch(const CanonicalLayout &layout,
                       ArrayRef<int64_t> inputShape, int64_t lanes);

class LoopEmitter {
public:
  /// `accumulation` is the type of the statistics (f64 for the backward),
  /// which sets the vector length and so the layout.
  LoopEmitter(ImplicitLocOpBuilder &b, const NormDescription &desc,
              const LoopEmitOptions &options, MemRefType inputType,
              Type accumulation)
      : b(b), desc(desc), options(options),
        vl(statsVectorLength(accumulation, options)), accType(accumulation),
        layout(CanonicalLayout::get(desc, inputType.getShape(), vl)) {}

  void emit(const NormBuffers &buffers, Value begin, Value end);
  /// The prepass of split rows: partial statistics of chunks [begin, end).
  void emitPrepass(const NormBuffers &buffers, Value begin, Value end);

protected:
  /// Canonical views (CanonicalLayout) of input-, gamma- and stats-shaped
  /// buffers; null stays null.
  Value viewInput(Value memref);
  Value viewGamma(Value memref);
  Value viewStats(Value memref);
  /// Sets the types, mode and sizes from the canonical input.
  void prepare(Type dataType, Type storage, Value canonicalInput);
  /// Canonical views of every buffer in `buf`, then prepare().
  void bindBuffers(const NormBuffers &buffers);
  /// Number of work items (statistics, or lane chunks of them).
  Value itemCount();
  /// Sets keptIndices, statIndices, laneMask and statMask for work item
  /// `item`.
  void setupItem(Value item);
  /// The kept indices of row-mode item `rest`, dims [0, last].
  void delinearizeKept(Value rest, int64_t last, SmallVector<Value> &kept);
  /// `indices` (of a vector of the current item) moved to the item with
  /// kept indices `kept`: the same position in the reduced dims.
  SmallVector<Value> atItem(ArrayRef<Value> indices,
                            ArrayRef<Value> kept) const;

  // Prefetching the next work item. The first pass over an item reads it
  // from memory; the later ones find it in cache and only compute, which
  // leaves the memory idle unless the last pass prefetches the item that
  // comes next, so that its first pass finds it in cache in turn.
  /// Whether items are small enough to prefetch their successor (row mode);
  /// null when never.
  Value prefetchCondition();
  /// Whether the current item is at most kMaxPrefetchItemBytes, so that it
  /// stays in cache beside the next one; null when never.
  Value itemFitsBesideNext();
  /// Sets nextKeptIndices for the item after `item` in [.., end).
  void setupPrefetch(Value item, Value end, Value condition);
  /// Prefetches the lines of the vector at `indices`, moved to the next
  /// item; nothing when not prefetching or for a masked tail.
  void prefetchNext(Value memref, ArrayRef<Value> indices, Value mask);
  /// Lane mode: prefetches the vector kPrefetchAheadSteps steps further
  /// along the innermost reduced dim (clamped to its last index), where a
  /// step's vector covers only part of the lines between two steps (NHWC
  /// with more channels than one vector): the hardware prefetchers do not
  /// follow such strided streams far enough ahead.
  void prefetchAhead(Value memref, ArrayRef<Value> indices, Value mask);

  // Types and constants.
  Type statType(Type element) const {
    return lane ? (Type)VectorType::get({statLanes}, element) : element;
  }
  /// A scalar as a statistic (broadcast in lane mode).
  Value splatStat(Value scalar);
  Value constant(Type type, double value);
  Value indexConstant(int64_t value) {
    return arith::ConstantIndexOp::create(b, value);
  }
  Value castFloat(Value value, Type elementType);
  /// Data element (x, y, gamma, beta) from its storage type to `accType`,
  /// and back.
  Value decodeData(Value stored);
  /// `roundOnce`: an f64 value goes to 16-bit storage correctly rounded
  /// (through f32 rounded to odd) instead of rounded to f32 and then again.
  Value encodeData(Value value, bool roundOnce = false);
  /// A statistic spread over the vl lanes of the data: a scalar is
  /// broadcast; in segmented lane mode, each statistic fills its segment.
  Value toVector(Value stat);
  /// Segmented lane mode: the first lane of every segment.
  Value firstOfSegments(Value data);

  // Memory access.
  Value loadInput(Value memref, ValueRange indices, Value mask,
                  Type target = Type());
  /// A vector store of `value`, masked where `mask` is set.
  void storeVector(Value value, Value memref, ValueRange indices, Value mask);
  /// gamma (or beta) at the input indices, in `target` (default: accType).
  Value loadGamma(Value memref, ArrayRef<Value> inputIndices, Value mask,
                  Type target = Type());
  /// 16-bit gamma (or beta) that varies along the rows, decoded to f32 once
  /// per call into a stack buffer that loadGamma then reads, instead of
  /// once per row; other buffers are returned as they are.
  Value decodeAffineOnce(Value canonical);
  /// The f32 buffer (on the stack) that keeps the current 16-bit row
  /// decoded between the passes of the forward, or null where that does
  /// not apply (see its conditions).
  Value allocRowScratch();
  /// x of the current item at `indices`, as loadInput(buf.input, ...): read
  /// from rowScratch once the row is decoded there, else decoded from the
  /// input and, with `keep`, stored in rowScratch for the next passes.
  Value loadRow(ArrayRef<Value> indices, Value mask, Type target, bool keep);
  /// gamma (or beta) for every vector of the current item when it does not
  /// vary along the reduced dims (lane mode over channels, or one value per
  /// row), else null. Loaded once per item: the stores to the output
  /// between two vectors keep LLVM from hoisting the loads itself.
  Value loadItemGamma(Value memref);
  Value loadStat(Value memref);
  void storeStat(Value memref, Value value);
  /// One f64 statistic of the item at flat index `at` of a workspace: a
  /// scalar, or a vector of its statLanes statistics in lane mode.
  Value loadWorkspaceStat(Value workspace, Value at);
  void storeWorkspaceStat(Value value, Value workspace, Value at);
  /// Stores one vector of the output: a streaming store when
  /// `streamingStores` is set and the vector is whole.
  void storeOutput(Value value, ArrayRef<Value> indices, Value mask);
  /// The alignment in bytes that every whole output vector of a work item
  /// has when the output buffer and its innermost dim are aligned to it,
  /// or 0 when streaming stores do not apply (see streamingCondition).
  int64_t streamingAlignment() const;
  /// Whether this call writes the output `output` (original, uncollapsed)
  /// with streaming stores: large enough, and every whole vector aligned.
  /// Null when never.
  Value streamingCondition(Value output);
  /// Orders the streaming stores before whatever follows the kernel (they
  /// are weakly ordered on x86).
  void emitStreamingFence();
  /// Emits the stores of `emitStores` twice, streaming and not, chosen by
  /// `condition` (a streamingCondition); once, plain, when it is null.
  void withStreamingStores(Value condition, function_ref<void()> emitStores);
  /// The same for code that also yields values (of `types`).
  SmallVector<Value>
  withStreamingStores(Value condition, TypeRange types,
                      function_ref<SmallVector<Value>()> emit);
  /// The fence after the last streaming store, when `condition` holds.
  void fenceStreamingStores(Value condition);

  // Control flow.
  SmallVector<Value>
  buildFor(Value lb, Value ub, Value step, ValueRange inits,
           function_ref<SmallVector<Value>(Value, ValueRange)> body);
  SmallVector<Value> buildIf(Value cond, TypeRange types,
                             function_ref<SmallVector<Value>()> thenBody,
                             function_ref<SmallVector<Value>()> elseBody);
  /// Visits [0, count) of a flat buffer in vectors of vl: whole vectors,
  /// then one masked vector for the rest (none where count is a known
  /// multiple of vl). The body gets the first index and the mask (null for
  /// whole vectors).
  void forEachVectorUpTo(Value count,
                         function_ref<void(Value start, Value mask)> body);
  /// A loop whose iterations accumulate into fresh partial sums per block
  /// of steps, added to `inits` after each block. The partial sums have the
  /// element type `partial` (default: that of the totals) and are widened
  /// when added. The last `maxima` of `inits` are running maxima of
  /// non-negative terms instead (runningMax): each block's start from zero,
  /// in their own type, and are combined with the totals by runningMax.
  SmallVector<Value>
  buildBlockedFor(Value lb, Value ub, Value step, ValueRange inits,
                  function_ref<SmallVector<Value>(Value, ValueRange)> body,
                  Type partial = Type(), unsigned maxima = 0);
  /// The larger of `acc` and `term`, lane by lane, as one x86 max: where
  /// either is NaN the result is `term`, so a running maximum may drop a
  /// NaN (its users learn of NaNs from sums of the same data).
  Value runningMax(Value acc, Value term);
  using VectorBody = function_ref<SmallVector<Value>(
      ArrayRef<Value> indices, Value mask, ValueRange accs)>;
  /// `accs` are the totals; bodies inside a blocked loop see partial sums
  /// of element type `partial` instead (see buildBlockedFor), others the
  /// totals themselves: bodies add with addTerm/addSquare. The last
  /// `maxima` of `accs` are running maxima (see buildBlockedFor).
  SmallVector<Value> forEachVector(SmallVector<Value> indices, size_t dim,
                                   ValueRange accs, VectorBody body,
                                   Type partial = Type(), unsigned maxima = 0);
  /// acc + term and acc + term^2 (fused), with `term` rounded to acc's type
  /// first when it is wider, widened when narrower.
  Value addTerm(Value acc, Value term);
  Value addSquare(Value acc, Value term);

  // Steps.
  /// Per-lane sums to statistics: across the vector (row mode), as is
  /// (lane mode), or per segment (segmented lane mode).
  Value reduce(Value acc);
  /// Per statistic: whether it is inf or NaN.
  Value isNonFinite(Value stat);
  /// Whether a per-statistic condition holds for any statistic of the item
  /// (an i1, or a vector of them in lane mode).
  Value anyStatistic(Value perStatistic);
  std::pair<Value, Value> accumulate(Type acc, Value scale, Value shift,
                                     Type deviation = Type());
  /// Whether pass 1 sums x rather than x - x0 (f16, bf16, f32 of a static
  /// size up to 2^27; unscaled, into f64).
  bool sumUnshifted(Type acc, Value scale) const;
  /// Whether pass 2 may square and sum in f32 (see accumulate).
  bool canSquareInF32() const;
  /// Bytes of one work item's data in storage (its reduced elements, times
  /// its lanes in lane mode).
  Value itemBytes();
  /// Whether the current item's data is too large to stay in cache between
  /// passes (LoopEmitOptions::onePassMinBytes); null when never.
  Value itemExceedsCache();
  /// Passes 1-2 as one pass of shifted sums (see its comment).
  std::pair<Value, Value> accumulateOnePass(Value shift);
  /// The first element of the current item's reduced set (one per
  /// statistic in lane mode), the shift of the passes; of the item with
  /// kept indices `kept` when given.
  Value loadFirstElement(ArrayRef<Value> kept = {});
  /// Passes 1 and 2 in cache (f32 squares where they are exact enough, see
  /// canSquareInF32): the offset of the mean from x0 and the sum of squared
  /// deviations, in the wide type.
  std::pair<Value, Value> accumulateTwoPass(Value x0W);
  /// accumulateOnePass where `onePass` (an i1, per call or per item)
  /// holds, else accumulateTwoPass; the latter alone when it is null.
  std::pair<Value, Value> accumulateOneOrTwoPass(Value onePass, Value x0W);
  ItemStats computeStats();
  /// rstd, mean and running statistics from the offset of the mean from x0
  /// and the sum of squares (both scaled by scaleW); stores them, only
  /// where `storeCondition` holds if it is given.
  ItemStats finishStats(Value x0, Value offsetW, Value squaresW, Value scaleW,
                        Value storeCondition = Value());
  ItemStats givenStats();

  // Split rows (canSplitRows; codegen/SplitRows.cpp).
  /// Restricts the split dim of the current row to chunk `chunk`.
  void setChunkRange(const RowSplit &split, Value chunk);
  void clearChunkRange();
  /// For each row that items [begin, end) (chunks) touch: setupItem, then
  /// `body` with the row and its chunks' range in this call.
  void forEachSplitRow(
      const RowSplit &split, Value begin, Value end,
      function_ref<void(Value row, Value chunkBegin, Value chunkEnd)> body);
  /// `body` for each prepass item of [begin, end): its row set up (see
  /// setupItem) and the loops restricted to its chunk.
  void forEachPrepassChunk(const RowSplit &split, Value begin, Value end,
                           function_ref<void(Value item, Value chunk)> body);
  /// `body` once per chunk (its index in the row) of [chunkBegin,
  /// chunkEnd) of the current row, with the loops restricted to the chunk.
  void forEachChunk(const RowSplit &split, Value chunkBegin, Value chunkEnd,
                    function_ref<void(Value chunk)> body);
  /// The offset of row `row`'s mean from x0 and its sum of squares, from
  /// its chunks' partials in the workspace.
  std::pair<Value, Value> combineChunks(const RowSplit &split, Value row);
  /// Elements of one statistic in chunk `chunk`, in f64.
  Value chunkElements(const RowSplit &split, Value chunk);
  /// Tiled splits (RowSplit::tiledRows): `body` for every row of every tile
  /// of `count` positions from `first` of the split dim, with the row set
  /// up (setupItem) and the loops restricted to the tile, and the row's
  /// slice of the carried values (`inits`: every row's, in row order).
  SmallVector<Value> forEachRowTile(
      const RowSplit &split, Value first, Value count, ValueRange inits,
      function_ref<SmallVector<Value>(int64_t row, ValueRange accs)> body);
  /// `body` for each chunk of items [begin, end) of a tiled split's main
  /// step, the last chunk first: the prepass read the chunks in order, so
  /// the last ones may still be in the (last-level) cache.
  void forEachChunkLastFirst(const RowSplit &split, Value begin, Value end,
                             function_ref<void(Value chunk)> body);
  /// The workspace slot (row * chunks + chunk) of a row's chunk.
  Value chunkSlot(const RowSplit &split, Value row, Value chunk);
  /// The one-pass shifted sums of accumulateOnePass over the current item
  /// (or chunk, or tile), added to `inits`, and their statistics. Centered
  /// norms sum d = x - x0 and d^2, others x^2 alone (onePassSumCount).
  SmallVector<Value> onePassSums(Value shift, ValueRange inits);
  std::pair<Value, Value> onePassStats(ArrayRef<Value> sums);
  unsigned onePassSumCount() const { return desc.center ? 2 : 1; }
  /// Initial values of onePassSums, and their type: vectors of vl f64
  /// lanes, or vl / 2 where each vector's halves are added first (row mode,
  /// even vl; see addOnePassTerms).
  SmallVector<Value> onePassZeros();
  VectorType onePassSumType() const;
  bool halvesOnePassSums() const;
  /// The terms of the vector of x at `indices` added to the sums `accs`
  /// (onePassSums' loop body; `shiftVec` is x0 spread over the lanes).
  SmallVector<Value> addOnePassTerms(Value shiftVec, ArrayRef<Value> indices,
                                     Value mask, ValueRange accs);
  /// The prepass of a tiled split: each item is a chunk of every row.
  void emitTiledPrepass(const RowSplit &split, Value begin, Value end);
  /// The main step of a tiled split: items [begin, end) are chunks of
  /// every row, run last chunk first.
  void emitTiledSplitRows(const RowSplit &split, Value begin, Value end,
                          Value streaming);
  /// The main step of split rows: items [begin, end) are chunks; each row
  /// combines its partials once per call and then writes its chunks.
  void emitSplitRows(const RowSplit &split, Value begin, Value end,
                     Value streaming);
  void normalize(const ItemStats &stats);
  /// Pass 3's per-item values, spread over the lanes once per item.
  struct OutputPass {
    Value scale, shift, negShift, offset, rstd; // null when not applied
    Value itemGamma, itemBeta;                  // see loadItemGamma
  };
  OutputPass prepareOutputPass(const ItemStats &stats);
  /// Pass 3 on the vector at `indices` of the current item: loads x,
  /// normalizes it and stores y (prefetching the next item's vector).
  void normalizeVector(const OutputPass &pass, ArrayRef<Value> indices,
                       Value mask);

  // Pipelined items (codegen/PipelinedItems.cpp).
  /// Whether this call's items are pipelined (emitPipelinedItems): row
  /// mode, centered statistics computed from f32 data, an output, and items
  /// of at most kMaxPrefetchItemBytes; null when never.
  Value pipelineCondition();
  /// Items [begin, end), begin < end, pipelined: the statistics of item
  /// i + 1 are summed in the loop that writes item i's output.
  void emitPipelinedItems(Value begin, Value end, Value streaming,
                          Value prefetch);
  /// The statistics' sums of the item with kept indices `kept` (and first
  /// element `x0`), in a loop over the current item's vectors that runs
  /// `alongside` (if given) on each of them first: the one-pass sums of
  /// onePassSums.
  SmallVector<Value> pipelinedSums(
      ArrayRef<Value> kept, Value x0,
      function_ref<void(ArrayRef<Value> indices, Value mask)> alongside);

  ImplicitLocOpBuilder &b;
  const NormDescription &desc;
  LoopEmitOptions options;
  int64_t vl; // lanes per accumulator vector
  Type accType;
  CanonicalLayout layout;
  NormBuffers buf;          // canonical views
  SmallVector<Value> sizes; // canonical sizes
  bool lane = false;
  int64_t segment = 1;   // lanes per statistic (lane mode)
  int64_t statLanes = 1; // statistics per vector: vl / segment (lane mode)
  Type elementType, storageType, wideType;
  /// Whether every NaN the kernel can compute has a zero low 16-bit half
  /// (bf16 data and nothing else read into the outputs): bf16 encoding then
  /// needs no NaN select (encode16).
  bool nanPayloadsHighHalf = false;
  VectorType accVector;
  Value reductionCount;  // M, in the wide type (of the chunk, in a prepass)
  Value reducedElements; // M, as an index
  /// The range of canonical dim `rangeDim` the loops visit: a chunk of a
  /// split row; null (and -1) for every index of every dim.
  int64_t rangeDim = -1;
  Value rangeBegin, rangeCount;
  // Per work item.
  SmallVector<Value> keptIndices; // input indices; reduced dims unset
  SmallVector<Value> statIndices;
  SmallVector<Value> nextKeptIndices; // see prefetchNext; empty when off
  Value laneMask;                     // lanes of the data vector (lane mode)
  Value statMask;                     // statistics of the item (lane mode)
  bool streamingStores = false; // storeOutput writes whole vectors streaming
  Value rowScratch;             // see allocRowScratch; null when not used
  bool rowDecoded = false; // every path so far stored the row in rowScratch
};

} // namespace mlir::norm::detail

#endif // NORMC_CODEGEN_LOOPEMITTER_H
