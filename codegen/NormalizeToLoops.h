//===- NormalizeToLoops.h - norm.normalize to vector loops ------*- C++ -*-===//
//
// The CPU lowering of one normalization onto memrefs: scf loops over
// independent work items, each computing its statistics with explicit vector
// accumulators and writing the output once.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_CODEGEN_NORMALIZETOLOOPS_H
#define NORMC_CODEGEN_NORMALIZETOLOOPS_H

#include "dialect/NormDescription.h"
#include "mlir/Dialect/Utils/ReshapeOpsUtils.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::norm {

/// Memrefs of one normalization by role (identity layout); absent roles and
/// results nobody reads are null. f16/bf16 data (input, output, gamma,
/// beta) is stored in i16 memrefs; `elementType` says what the bits are.
struct NormBuffers {
  Type elementType;
  Value input, gamma, beta, givenMean, givenVar, runningMean, runningVar;
  Value output, savedMean, savedRstd, runningMeanOut, runningVarOut;
  /// Kernels that may split rows (canSplitRows): a flat f64 buffer of
  /// emitRowSplitWorkspaceSize elements, the chunks' partial statistics.
  Value workspace;
};

struct LoopEmitOptions {
  /// Lanes of one f32 vector accumulator; a multiple of the native width
  /// (e.g. 64 = 4 x AVX-512) so that several independent accumulators hide
  /// the latency of the adds. f64 statistics use half of it.
  int64_t vectorLength = 64;
  /// Outputs of at least this many bytes are written with streaming
  /// (non-temporal) stores, which skip the read-for-ownership of each
  /// destination line and keep the output from evicting the input rows; 0
  /// always, negative never. Small outputs stay in cache for their reader.
  int64_t streamingStoreMinBytes = kDefaultStreamingStoreMinBytes;
  static constexpr int64_t kDefaultStreamingStoreMinBytes = 8 << 20;
  /// Work items whose data (f32/f16/bf16) takes at least this many bytes
  /// get their statistics from one pass of shifted f64 sums instead of two
  /// passes, which would read it from memory twice; negative never. Half
  /// of a typical per-core L2. Pipelined items always take one pass.
  int64_t onePassMinBytes = kDefaultOnePassMinBytes;
  static constexpr int64_t kDefaultOnePassMinBytes = 512 << 10;
  /// Rows that fit in cache take their statistics in the output pass of the
  /// previous row (see LoopEmitter::emitPipelinedItems).
  bool pipelineItems = true;
  /// The last pass over a work item that fits in cache prefetches the next
  /// one (see LoopEmitter::prefetchNext).
  bool prefetchNextItem = true;
  /// Long rows are split into chunks reduced in a prepass (see
  /// canSplitRows).
  bool splitLongRows = true;
};

/// The input viewed so that the lowering sees no groups and as few dims as
/// possible: the group dim is expanded into [groups, channels/groups], then
/// adjacent dims that are both reduced or both kept, and both indexed or
/// both not indexed by gamma, are collapsed.
///
/// For the loops, a short reduced innermost dim may further be merged with
/// the kept dim before it into one segmented dim (see the shape-aware get).
struct CanonicalLayout {
  struct Dim {
    bool reduced = false;
    bool affine = false;
    /// Elements per statistic along a kept dim: 1, or S for the merge of a
    /// kept dim K with a reduced dim S after it ([K, S] viewed as [K*S],
    /// statistic k covering elements [k*S, (k+1)*S)).
    int64_t segment = 1;
  };
  /// Canonical dims, outermost first.
  SmallVector<Dim> dims;
  /// Input rank -> expanded rank (group split); empty when there is none.
  SmallVector<ReassociationIndices> inputExpand;
  /// Expanded rank -> canonical rank; empty when nothing collapses.
  SmallVector<ReassociationIndices> inputCollapse;
  SmallVector<ReassociationIndices> gammaExpand, gammaCollapse;
  SmallVector<ReassociationIndices> statsCollapse;
  /// Position of the group dim in the input and in gamma (if affine).
  std::optional<int64_t> groupDim, gammaGroupDim;
  int64_t numGroups = 1;

  static CanonicalLayout get(const NormDescription &desc, int64_t inputRank);
  /// The layout the loops use for an input of `inputShape` (dynamic sizes
  /// as ShapedType::kDynamic) with vectors of `lanes` elements: get(), with
  /// the innermost dims [K, S] merged into one segmented dim when S is
  /// reduced, static and at most lanes / 2.
  static CanonicalLayout get(const NormDescription &desc,
                             ArrayRef<int64_t> inputShape, int64_t lanes);
  /// True when the innermost canonical dim is kept: statistics are then
  /// vectorized across it (one lane, or one segment of lanes, per
  /// statistic) instead of being reduced along it.
  bool isLaneMode() const { return !dims.back().reduced; }
  /// Lanes per statistic in lane mode.
  int64_t segment() const { return dims.back().segment; }
};

/// Returns the number of independent work items for an input with element
/// type `elementType` and the given sizes (index values, outermost first).
Value emitWorkItemCount(ImplicitLocOpBuilder &b, const NormDescription &desc,
                        Type elementType, ValueRange inputSizes,
                        const LoopEmitOptions &options);

/// Sizes of the canonical dims of `layout` from the input's sizes.
SmallVector<Value> emitCanonicalSizes(ImplicitLocOpBuilder &b,
                                      const CanonicalLayout &layout,
                                      ValueRange inputSizes);

//===----------------------------------------------------------------------===//
// Long rows split within a row
//===----------------------------------------------------------------------===//
//
// A row of 64K elements or more is one statistic that one core would reduce
// alone, and beyond 2^18 elements it no longer stays in cache between the
// passes. Such rows are split into chunks of kRowSplitChunk elements: a
// prepass computes each chunk's mean and sum of squared deviations (two
// passes over a chunk that stays in L1/L2), and the main step combines a
// row's chunks (Chan et al.: exact in f64, no E[x^2]-E[x]^2) and writes the
// output of one chunk per work item. x is read from memory twice instead of
// once (rows of at most 2^18 elements) or three times (longer rows), and
// every chunk is a work item of its own.

/// Elements per chunk of a split row.
constexpr int64_t kRowSplitChunk = 8192;
/// Rows are split when they hold at least this many elements and there are
/// fewer than kRowSplitMaxRows of them, or when they are longer than
/// kRowSplitAlwaysElements and centered (LayerNorm: then splitting also
/// saves a read from memory; RMSNorm reads such rows twice either way).
constexpr int64_t kRowSplitMinElements = 1 << 16;
constexpr int64_t kRowSplitMaxRows = 8;
constexpr int64_t kRowSplitAlwaysElements = 1 << 18;

// Statistics over a large batch (BatchNorm: over N*H*W, with fewer channel
// groups than kRowSplitMaxRows) would leave all but a few threads idle.
// They are split the same way along their outermost reduced dim (the
// batch), in chunks of about this many elements per work item (128 KiB of
// f32: a chunk stays in L2 between the prepass's two passes). x is read
// from memory twice, as by the unsplit one-pass statistics of such items.
constexpr int64_t kBatchSplitChunkElements = 1 << 15;

/// Whether a forward kernel on `inputShape` (dynamic sizes as
/// ShapedType::kDynamic) of `elementType` may split its rows for some
/// sizes: statistics computed (not given) from f32/f16/bf16 data, and
/// either row mode with one reduced canonical dim (LayerNorm, RMSNorm,
/// InstanceNorm and GroupNorm without weights on NCHW) and rows that may be
/// long enough, or an outermost reduced dim (BatchNorm, NCHW or NHWC) and
/// few large enough statistics. Such kernels take a workspace and have a
/// prepass.
bool canSplitRows(const NormDescription &desc, ArrayRef<int64_t> inputShape,
                  Type elementType, const LoopEmitOptions &options);

/// Work items of the forward's main step: one per statistic (or lane chunk
/// of statistics), or one per chunk of a split row.
Value emitForwardWorkCount(ImplicitLocOpBuilder &b, const NormDescription &desc,
                           Type elementType, ValueRange inputSizes,
                           const LoopEmitOptions &options);

/// Work items of the prepass: one per chunk of a split row; 0 when the rows
/// of these sizes are not split.
Value emitPrepassWorkCount(ImplicitLocOpBuilder &b, const NormDescription &desc,
                           Type elementType, ValueRange inputSizes,
                           const LoopEmitOptions &options);

/// f64 elements of the workspace: two per chunk of a split row (per
/// statistic in lane mode).
Value emitRowSplitWorkspaceSize(ImplicitLocOpBuilder &b,
                                const NormDescription &desc, Type elementType,
                                ValueRange inputSizes,
                                const LoopEmitOptions &options);

/// Emits the prepass loops over items [begin, end): each chunk's partial
/// statistics into `buffers.workspace`.
void emitNormalizePrepassLoops(ImplicitLocOpBuilder &b,
                               const NormDescription &desc,
                               const NormBuffers &buffers, Value begin,
                               Value end, const LoopEmitOptions &options);

/// Returns the number of elements reduced for one statistic.
Value emitReductionCount(ImplicitLocOpBuilder &b, const NormDescription &desc,
                         ValueRange inputSizes);

/// The memref element type that holds data of `elementType` (i16 for 16-bit
/// floats).
Type getStorageType(Type elementType);

/// Emits, at the builder's insertion point, the loops that compute the work
/// items [begin, end) of the normalization (of its main step when rows are
/// split: the prepass has run).
void emitNormalizeLoops(ImplicitLocOpBuilder &b, const NormDescription &desc,
                        const NormBuffers &buffers, Value begin, Value end,
                        const LoopEmitOptions &options);

//===----------------------------------------------------------------------===//
// Backward
//===----------------------------------------------------------------------===//

/// Memrefs of one backward normalization by role (see NormBuffers for the
/// storage of 16-bit data). `workspace` is a flat f64 buffer of
/// emitBackwardWorkspaceSize elements holding per-chunk partial sums of
/// dgamma and dbeta, then (split rows) the sums of pass A per row chunk.
struct NormBackwardBuffers {
  Type elementType;
  Value gradOutput, input, gamma, mean, rstd, var;
  Value gradInput, gradGamma, gradBeta;
  Value workspace;
};

/// Work items of a backward kernel are chunks of statistics (at least 16
/// statistics each, or at least 2^18 elements, at most kMaxBackwardChunks
/// chunks); their number
/// depends on the sizes only (never on the thread count), so every chunk
/// sums its part of dgamma/dbeta in a fixed order and the finalize step adds
/// the chunks in a fixed order: results are bitwise identical for any
/// number of threads.
constexpr int64_t kMaxBackwardChunks = 64;
/// The backward splits rows of at least this many elements whatever their
/// number (see emitBackwardSplit), in at most kMaxBackwardRowChunks chunks.
constexpr int64_t kBackwardRowSplitAlwaysElements = 1 << 18;
constexpr int64_t kMaxBackwardRowChunks = 128;

///
/// Long rows (few rows of 64K elements or more, or rows of 2^18 or more)
/// are split like the forward's (canSplitRows): a prepass sums pass A per
/// row chunk, and each main work item is a column chunk run for every row
/// in order, whose pass B uses its row's sums; the rows share one
/// dgamma/dbeta slice, whose columns only that item writes. Only where
/// gamma varies along the row (or there is none), so that different column
/// chunks never add to the same partial. Large batches (BatchNorm with few
/// channel groups) are split too; there every chunk item has a slice of
/// its own.
bool canSplitBackwardRows(MLIRContext *context, const NormDescription &desc,
                          ArrayRef<int64_t> inputShape,
                          const LoopEmitOptions &options);

/// Slices of dgamma/dbeta partials (chunks of statistics; one when rows
/// are split; chunk items of a split batch) that the finalize step adds.
Value emitBackwardChunkCount(ImplicitLocOpBuilder &b,
                             const NormDescription &desc, ValueRange inputSizes,
                             const LoopEmitOptions &options);

/// Work items of the backward's main step: its chunks of statistics, its
/// column chunks when rows are split, or its chunk items of a split batch.
Value emitBackwardWorkCount(ImplicitLocOpBuilder &b,
                            const NormDescription &desc, ValueRange inputSizes,
                            const LoopEmitOptions &options);

/// Work items of the backward's prepass: row chunks; 0 unless split.
Value emitBackwardPrepassWorkCount(ImplicitLocOpBuilder &b,
                                   const NormDescription &desc,
                                   ValueRange inputSizes,
                                   const LoopEmitOptions &options);

/// f64 elements of the workspace: chunks x partial kinds x gamma elements,
/// then the prepass's sums (split rows).
Value emitBackwardWorkspaceSize(ImplicitLocOpBuilder &b,
                                const NormDescription &desc,
                                ValueRange inputSizes, int64_t numPartials,
                                const LoopEmitOptions &options);

/// Emits the loops computing chunks [begin, end): dx, and each chunk's
/// partial dgamma/dbeta in the workspace.
void emitNormalizeBackwardLoops(ImplicitLocOpBuilder &b,
                                const NormDescription &desc,
                                const NormBackwardBuffers &buffers, Value begin,
                                Value end, const LoopEmitOptions &options);

/// Emits the prepass of split rows: pass A's sums of row chunks
/// [begin, end).
void emitNormalizeBackwardPrepassLoops(ImplicitLocOpBuilder &b,
                                       const NormDescription &desc,
                                       const NormBackwardBuffers &buffers,
                                       Value begin, Value end,
                                       const LoopEmitOptions &options);

/// Emits the finalize step: dgamma/dbeta = sums of the chunks' partials.
void emitNormalizeBackwardFinalize(ImplicitLocOpBuilder &b,
                                   const NormDescription &desc,
                                   const NormBackwardBuffers &buffers,
                                   Value numChunks,
                                   const LoopEmitOptions &options);

} // namespace mlir::norm

#endif // NORMC_CODEGEN_NORMALIZETOLOOPS_H
