//===- GpuKernels.h - norm ops to gpu.func kernels --------------*- C++ -*-===//
//
// The GPU lowering of one normalization (forward or derived backward) onto
// flat device buffers. Work is mapped from the canonical layout (see
// CanonicalLayout): a statistic is owned by a row of X threads (a warp for
// short reductions, up to 512 threads for long ones), Y statistics share a
// block, and statistics with few, long reductions are split over K blocks
// (partials, then an apply kernel that merges them in a fixed order). The
// schedule is a function of the sizes only, emitted once and used by both
// the kernels and the host plan function, so the two cannot disagree and
// results do not depend on the GPU.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_CODEGEN_GPUKERNELS_H
#define NORMC_CODEGEN_GPUKERNELS_H

#include "codegen/NormalizeToLoops.h"

namespace mlir::norm {

/// Threads of an affine (dgamma/dbeta) block; row blocks hold X*Y = 256
/// threads except for X = 512.
constexpr int64_t kGpuAffineThreads = 256;

/// The GPU functions of one kernel. The plan picks among them.
enum class GpuKernelKind {
  /// One block row per statistic: reduce, then normalize (or dx).
  Fused,
  /// Split statistics: each of K blocks writes the partial reduction of
  /// its chunk to the workspace...
  Partials,
  /// ... and, in a second launch, merges the K partials in order and
  /// normalizes (or computes dx for) its chunk.
  Apply,
  /// Backward: per-chunk partial sums of dgamma/dbeta (one thread per
  /// gamma element) ...
  AffinePartials,
  /// ... added in chunk order into dgamma/dbeta.
  AffineFinalize,
  /// Backward of rows with gamma along them (LayerNorm, RMSNorm): dx, and
  /// dgamma/dbeta partials accumulated in registers over several rows
  /// (then AffineFinalize); reads dy and x once.
  FusedAffine,
};

/// Suffix of the PTX entry name of `kind` ("gpu_fused", ...).
StringRef getGpuKernelSuffix(GpuKernelKind kind);

/// Launch schedule from the input sizes (index values).
struct GpuSchedule {
  Value numStats;    // S: statistics
  Value reduceCount; // M = O * I: elements per statistic
  Value outerCount;  // O: reduced elements outside the innermost reduced dim
  Value innerCount;  // I: the innermost reduced dim
  Value threadsX;    // X: threads per statistic (32, 128, 256 or 512)
  Value rowsY;       // Y: statistics per block
  Value rowBlocks;   // ceil(S / Y)
  Value splits;      // K: blocks per statistic (1: fused kernel)
  Value splitOuter;  // i1: chunks split O (else I)
  Value chunkOuter;  // outer elements per chunk
  Value chunkInner;  // inner elements per chunk (a multiple of the vector)
  // Backward dgamma/dbeta (zero when not computed).
  Value affineCount;    // A: gamma elements
  Value nonAffineCount; // B: elements per gamma element
  Value affineChunks;   // KC
  Value affineChunkLen; // ceil(B / KC)
  Value fusedAffine;    // i1: the FusedAffine kernel replaces the rows and
                        // affine-partials kernels (then KC = its thread rows)
  Value fusedThreadsX, fusedRowsY; // its block shape
  /// Workspace sizes in f64 elements: dgamma/dbeta partials come first
  /// (2 * KC * A); then, backward, one x-hat correction per statistic (S);
  /// then the split partials of the rows (4 or 3 * S * K).
  Value affineWorkspace, rowsWorkspace;
};

/// `backward`/`affineGrads` say which kernels the schedule serves.
GpuSchedule emitGpuSchedule(ImplicitLocOpBuilder &b,
                            const NormDescription &desc, Type elementType,
                            ValueRange inputSizes, bool backward,
                            bool affineGrads);

/// Emits at the builder's point (the entry of a gpu.func) the body of GPU
/// function `kind` of a forward normalization. Buffers are flat memrefs of
/// the data's own element type; `workspace` is memref<?xf64>; `shared` is
/// the function's workgroup buffer (see getGpuSharedType).
void emitGpuForwardKernel(ImplicitLocOpBuilder &b, const NormDescription &desc,
                          const NormBuffers &buffers, Value workspace,
                          Value shared, ValueRange inputSizes,
                          GpuKernelKind kind);

/// The same for a backward normalization.
void emitGpuBackwardKernel(ImplicitLocOpBuilder &b, const NormDescription &desc,
                           const NormBackwardBuffers &buffers, Value shared,
                           ValueRange inputSizes, GpuKernelKind kind);

/// Threads per row of the FusedAffine kernel, or 0 when it does not apply:
/// gamma must index exactly the reduced dim, which must be contiguous,
/// alone and of a static size that 32..1024 threads (a multiple of 32)
/// cover with at most 8 whole 128-bit vectors each (fewest first).
/// `staticSizes`: the input's sizes, -1 for dynamic ones.
int64_t getGpuFusedAffineThreads(const NormDescription &desc, Type elementType,
                                 ArrayRef<int64_t> staticSizes);

/// Workgroup memory of every kernel: four f64 values per warp.
MemRefType getGpuSharedType(MLIRContext *context);

} // namespace mlir::norm

#endif // NORMC_CODEGEN_GPUKERNELS_H
