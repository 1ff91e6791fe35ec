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
// Everything is computed in f64 and rounded once on store. Work items are
// chunks of statistics (16 statistics or 2^18 elements or more each,
// kMaxBackwardChunks at most, fixed by the sizes); each owns a slice of the
// workspace for its dgamma/dbeta partial sums, and the finalize step adds
// the slices in chunk order. No atomics, and the
// result does not depend on how chunks are spread over threads.
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

Value norm::emitBackwardChunkCount(ImplicitLocOpBuilder &b,
                                   const NormDescription &desc,
                                   ValueRange inputSizes,
                                   const LoopEmitOptions &options) {
  // Backward computes in f64: its work items use the f64 vector length.
  Value items = emitWorkItemCount(b, desc, b.getF64Type(), inputSizes, options);
  return chunkCount(b, items, inputSizes);
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
  return b.createOrFold<arith::MulIOp>(chunks, perChunk);
}

namespace {

class BackwardEmitter : public LoopEmitter {
public:
  /// All backward arithmetic is f64 (see the file comment).
  BackwardEmitter(ImplicitLocOpBuilder &b, const NormDescription &desc,
                  const LoopEmitOptions &options, MemRefType inputType)
      : LoopEmitter(b, desc, options, inputType, b.getF64Type()) {}

  void emitChunks(const NormBackwardBuffers &buffers, Value begin, Value end);
  void emitFinalize(const NormBackwardBuffers &buffers, Value numChunks);

private:
  void setup(const NormBackwardBuffers &buffers);
  void processItem();
  /// Flat index of gamma's element at the given input indices.
  Value gammaOffset(ArrayRef<Value> indices);
  void addPartial(int64_t which, Value contribution, ArrayRef<Value> indices,
                  Value mask);
  Value zeroMasked(Value v, Value mask);

  Value dy, dx, workspace;
  Value gammaCount; // G
  Value chunkBase;  // workspace offset of the current chunk
  Value streaming;  // whether dx is written with streaming stores
  int64_t numPartials = 0;
  int64_t dgammaSlot = -1, dbetaSlot = -1;
  bool wantDx = false;
  SmallVector<Value> gammaSizes; // canonical sizes of the affine dims
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
                                 ArrayRef<Value> indices, Value mask) {
  Value slot = b.createOrFold<arith::MulIOp>(indexConstant(which), gammaCount);
  Value at = b.createOrFold<arith::AddIOp>(
      b.createOrFold<arith::AddIOp>(chunkBase, slot), gammaOffset(indices));
  if (layout.dims.back().affine) {
    // One partial per lane: a vector read-modify-write.
    Value old = loadInput(workspace, at, mask);
    storeVector(arith::AddFOp::create(b, old, contribution), workspace, at,
                mask);
    return;
  }
  // Every lane belongs to the same gamma element. Masked-off lanes hold
  // zeros (loads pass 0 through and dy = 0 there).
  Value total =
      vector::ReductionOp::create(b, vector::CombiningKind::ADD, contribution,
                                  arith::FastMathFlags::reassoc);
  Value old = memref::LoadOp::create(b, workspace, ValueRange{at});
  memref::StoreOp::create(b, arith::AddFOp::create(b, old, total), workspace,
                          ValueRange{at});
}

void BackwardEmitter::processItem() {
  Type stat = statType(accType);
  Value zeroStat = constant(stat, 0.0);
  Value one = constant(stat, 1.0);
  Value eps = constant(stat, desc.epsilon);

  // Statistics: the forward's saved rstd (and mean), or rstd from the given
  // variance exactly as the forward computed it.
  Value rstd, mean = zeroStat;
  if (desc.givenStats) {
    Value var = castFloat(loadStat(buf.givenVar), accType);
    Value denominator =
        desc.epsPlacement == EpsPlacement::Inside
            ? (Value)math::SqrtOp::create(b, arith::AddFOp::create(b, var, eps))
            : (Value)arith::AddFOp::create(b, math::SqrtOp::create(b, var),
                                           eps);
    rstd = arith::DivFOp::create(b, one, denominator);
  } else {
    rstd = castFloat(loadStat(buf.savedRstd), accType);
  }
  if (desc.center || desc.givenStats)
    mean = castFloat(loadStat(buf.savedMean), accType);
  // f64 data near its maximum: x - mean can overflow; work on x * 2^-600
  // (exact) and fold the scale into rstd.
  Value scale;
  if (elementType.isF64()) {
    Value huge = arith::OrIOp::create(
        b,
        arith::CmpFOp::create(b, arith::CmpFPredicate::OGE,
                              math::AbsFOp::create(b, mean),
                              constant(stat, std::ldexp(1.0, 960))),
        arith::CmpFOp::create(b, arith::CmpFPredicate::OLE, rstd,
                              constant(stat, std::ldexp(1.0, -960))));
    scale = arith::SelectOp::create(b, huge,
                                    constant(stat, std::ldexp(1.0, -600)), one);
  }
  Value scaleVec = scale ? toVector(scale) : Value();
  Value rstdOverScale =
      scale ? (Value)arith::DivFOp::create(b, rstd, scale) : rstd;
  Value rstdVec = toVector(rstdOverScale);
  Value meanVec =
      toVector(scale ? (Value)arith::MulFOp::create(b, mean, scale) : mean);

  // x*s - mean'*s, which passes A and B scale differently.
  auto centeredOf = [&](ArrayRef<Value> indices, Value mask) -> Value {
    Value x = loadInput(buf.input, indices, mask);
    if (scaleVec)
      x = arith::MulFOp::create(b, x, scaleVec);
    return arith::SubFOp::create(b, x, meanVec);
  };
  auto xhatOf = [&](ArrayRef<Value> indices, Value mask) {
    return arith::MulFOp::create(b, centeredOf(indices, mask), rstdVec);
  };
  Value itemGamma = loadItemGamma(buf.gamma);
  auto gOf = [&](Value dyVec, ArrayRef<Value> indices, Value mask) -> Value {
    if (!buf.gamma)
      return dyVec;
    return arith::MulFOp::create(
        b, dyVec, itemGamma ? itemGamma : loadGamma(buf.gamma, indices, mask));
  };

  // Pass A (computed statistics): the sums that couple the elements of one
  // statistic, over xhat' = (x - mean') * rstd' with the saved (f32-rounded)
  // mean' and rstd'. From them the exact statistics are recovered:
  //   c    = mean(xhat')                    (mean' - mean) * rstd'
  //   var  = (mean(xhat'^2) - c^2) / rstd'^2
  //   rstd = 1/sqrt(var+eps) or 1/(sqrt(var)+eps), from var
  // so xhat = (xhat' - c) * rstd / rstd' is exact, and the rounding of the
  // saved statistics does not leak into the gradients, which matters where
  // dx is a small difference of large terms (tiny sets, eps outside).
  bool outside = desc.epsPlacement == EpsPlacement::Outside;
  Value c = zeroStat, mg = zeroStat, mgx = zeroStat, k = zeroStat;
  Value ratio = one;      // exact rstd / saved rstd
  Value rstdExact = rstd; // given statistics: rstd is exact already
  if (!desc.givenStats) {
    // f32/f16/bf16 data: the sums run over x - mean' and are scaled by
    // rstd' once after the loop (one multiply less per element; the squares
    // of such deviations stay far inside f64's range). f64 data sums xhat'.
    bool scaleAfter = !elementType.isF64();
    Value zero = constant(accVector, 0.0);
    SmallVector<Value> sums = forEachVector(
        keptIndices, 0, {zero, zero, zero, zero},
        [&](ArrayRef<Value> indices, Value mask, ValueRange accs) {
          Value xhat = zeroMasked(scaleAfter ? centeredOf(indices, mask)
                                             : xhatOf(indices, mask),
                                  mask);
          Value g = gOf(loadInput(dy, indices, mask), indices, mask);
          SmallVector<Value> next(accs);
          next[0] = arith::AddFOp::create(b, accs[0], g);
          next[1] = math::FmaOp::create(b, g, xhat, accs[1]);
          if (desc.center)
            next[2] = arith::AddFOp::create(b, accs[2], xhat);
          next[3] = math::FmaOp::create(b, xhat, xhat, accs[3]);
          return next;
        });
    Value m = splatStat(reductionCount);
    auto scaled = [&](Value sum, Value factor) -> Value {
      return scaleAfter ? (Value)arith::MulFOp::create(b, sum, factor) : sum;
    };
    Value rstdSquared = arith::MulFOp::create(b, rstd, rstd);
    Value sumG = reduce(sums[0]), sumGX = scaled(reduce(sums[1]), rstd);
    if (desc.center)
      c = arith::DivFOp::create(b, scaled(reduce(sums[2]), rstd), m);
    Value varHat = arith::MaximumFOp::create(
        b,
        arith::SubFOp::create(
            b,
            arith::DivFOp::create(b, scaled(reduce(sums[3]), rstdSquared), m),
            arith::MulFOp::create(b, c, c)),
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
      rstdExact = arith::DivFOp::create(b, one, denominator);
      ratio = arith::DivFOp::create(b, rstdExact, rstd);
    }
    // f64 statistics are exact already (and rescaling them could leave
    // f64's range for data near its maximum).
    mg = arith::DivFOp::create(b, sumG, m);
    mgx = arith::MulFOp::create(
        b,
        arith::DivFOp::create(
            b,
            arith::SubFOp::create(b, sumGX, arith::MulFOp::create(b, c, sumG)),
            m),
        ratio);
    if (!outside) {
      k = rstdExact;
    } else {
      // k = 1/sqrt(var) = rstd' / std(xhat'); a constant set has xhat = 0
      // and contributes nothing, so k = 0 there instead of inf.
      Value positive =
          arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, stdHat, zeroStat);
      k = arith::SelectOp::create(
          b, positive, arith::DivFOp::create(b, rstd, stdHat), zeroStat);
    }
  }

  // Pass B: dx, and this chunk's dgamma/dbeta partials, with the per-item
  // factors folded so that each element costs few f64 operations:
  //   xhat = (x - mean') * (rstd' * ratio) - c * ratio
  //   dx   = rstd * (g - mg) - (k * mgx) * xhat
  Value rstdExactVec = toVector(rstdExact);
  Value negRstdMgVec = toVector(
      arith::NegFOp::create(b, arith::MulFOp::create(b, rstdExact, mg)));
  Value xhatScaleVec = toVector(arith::MulFOp::create(b, rstdOverScale, ratio));
  Value negCVec =
      toVector(arith::NegFOp::create(b, arith::MulFOp::create(b, c, ratio)));
  Value negKMgxVec =
      toVector(arith::NegFOp::create(b, arith::MulFOp::create(b, k, mgx)));
  auto exactXhatOf = [&](ArrayRef<Value> indices, Value mask) -> Value {
    return math::FmaOp::create(b, centeredOf(indices, mask), xhatScaleVec,
                               negCVec);
  };
  withStreamingStores(streaming, [&]() {
    forEachVector(
        keptIndices, 0, {},
        [&](ArrayRef<Value> indices, Value mask, ValueRange) {
          prefetchNext(buf.input, indices, mask);
          prefetchNext(dy, indices, mask);
          Value dyVec = loadInput(dy, indices, mask);
          Value xhat = exactXhatOf(indices, mask);
          if (wantDx) {
            Value g = gOf(dyVec, indices, mask);
            Value result;
            if (desc.givenStats) {
              result = arith::MulFOp::create(b, rstdExactVec, g);
            } else {
              // rstd * (g - mg) as one fma.
              Value centered =
                  desc.center
                      ? (Value)math::FmaOp::create(b, g, rstdExactVec,
                                                   negRstdMgVec)
                      : (Value)arith::MulFOp::create(b, rstdExactVec, g);
              result = math::FmaOp::create(b, negKMgxVec, xhat, centered);
            }
            storeOutput(result, indices, mask);
          }
          if (dgammaSlot >= 0)
            addPartial(dgammaSlot, arith::MulFOp::create(b, dyVec, xhat),
                       indices, mask);
          if (dbetaSlot >= 0)
            addPartial(dbetaSlot, dyVec, indices, mask);
          return SmallVector<Value>();
        });
  });
}

void BackwardEmitter::emitChunks(const NormBackwardBuffers &buffers,
                                 Value begin, Value end) {
  setup(buffers);
  buf.gamma = decodeAffineOnce(buf.gamma);
  Value items = itemCount();
  Value chunks = chunkCount(b, items, sizes);
  Value perChunk = b.createOrFold<arith::MulIOp>(
      gammaCount, indexConstant(std::max<int64_t>(numPartials, 1)));
  // dx is written with streaming stores when large (see LoopEmitOptions).
  streaming = wantDx ? streamingCondition(dx) : Value();
  // Given statistics make one pass: there is no cached pass to overlap.
  Value prefetch = desc.givenStats ? Value() : prefetchCondition();
  buildFor(begin, end, indexConstant(1), {}, [&](Value chunk, ValueRange) {
    chunkBase = arith::MulIOp::create(b, chunk, perChunk);
    if (numPartials) {
      // This chunk's slice starts from zero.
      Value sliceEnd = arith::AddIOp::create(
          b, chunkBase,
          arith::MulIOp::create(b, gammaCount, indexConstant(numPartials)));
      buildFor(chunkBase, sliceEnd, indexConstant(1), {},
               [&](Value i, ValueRange) {
                 memref::StoreOp::create(b, constant(wideType, 0.0), workspace,
                                         ValueRange{i});
                 return SmallVector<Value>();
               });
    }
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
  fenceStreamingStores(streaming);
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
      storeVector(encodeData(total), result, j, mask);
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

void norm::emitNormalizeBackwardFinalize(ImplicitLocOpBuilder &b,
                                         const NormDescription &desc,
                                         const NormBackwardBuffers &buffers,
                                         Value numChunks,
                                         const LoopEmitOptions &options) {
  BackwardEmitter(b, desc, options, cast<MemRefType>(buffers.input.getType()))
      .emitFinalize(buffers, numChunks);
}
