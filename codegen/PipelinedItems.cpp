//===- PipelinedItems.cpp - a row's statistics in the previous output pass ===//
//
// Centered statistics (LayerNorm, and InstanceNorm, GroupNorm, BatchNorm in
// row mode) of f32 rows that fit in cache (up to kMaxPrefetchItemBytes) run
// as a pipeline:
//
//   prologue  one-pass sums of item `begin`
//   item i    its statistics from its sums (finishStats), then one loop
//             over its vectors that writes y (pass 3, x from cache) and
//             adds the one-pass sums of item i + 1 (x from memory)
//   last      pass 3 alone
//
// Unpipelined, passes 1 and 2 of a row compute on cached data while the
// memory idles, and pass 3 then waits on the transfers (the next row's
// prefetch and its own output's stores) with little to compute: the time
// per row is close to the sum of the arithmetic and the transfers. Here the
// only pass over a row that reads memory is the one that also writes the
// previous row, and item i + 2 is prefetched in it, so the transfers
// overlap all of the arithmetic. The statistics take one pass of shifted
// f64 sums (accumulateOnePass: d = x - x0 and d^2, whose variance stays
// within 3 g M relative, 3.1e-9, for the M <= 2^14 of a 64 KiB row). The
// prologue and the fused loop add the same terms in the same blocked
// order, so an item's statistics do not depend on where a thread's range
// starts: results are bitwise the same for any number of threads.
//
//===----------------------------------------------------------------------===//

#include "codegen/LoopEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::norm;
using namespace mlir::norm::detail;

Value LoopEmitter::pipelineCondition() {
  // Centered norms of f32 data only (docs/cpu.md, "Pipelined rows", has
  // the measurements). Without centering (RMSNorm) the unpipelined loop has
  // one compute-only pass, an f32 sum of squares, not two: pipelined it
  // gained nothing, and rows of 1024 ran slower. f64 data keeps two passes (its
  // shifted sums would not be exact). 16-bit data is bound by its arithmetic
  // (decoding, f64 sums, rounding to nearest even with integer ops) and
  // measured 9-32% slower pipelined (LayerNorm bf16). Lane mode's items are
  // strided vectors of statistics, not rows.
  if (!options.pipelineItems || !desc.center || lane || desc.givenStats ||
      !accType.isF32() || storageType != elementType || !buf.output)
    return Value();
  return itemFitsBesideNext();
}

SmallVector<Value> LoopEmitter::pipelinedSums(
    ArrayRef<Value> kept, Value x0,
    function_ref<void(ArrayRef<Value> indices, Value mask)> alongside) {
  Value shiftVec = toVector(castFloat(x0, wideType));
  return forEachVector(
      keptIndices, 0, onePassZeros(),
      [&](ArrayRef<Value> indices, Value mask, ValueRange accs) {
        if (alongside)
          alongside(indices, mask);
        // The same position in the summed item.
        return addOnePassTerms(shiftVec, atItem(indices, kept), mask, accs);
      });
}

void LoopEmitter::emitPipelinedItems(Value begin, Value end, Value streaming,
                                     Value prefetch) {
  // Pass 3 reads each row from cache as it was stored, not from rowScratch.
  rowDecoded = false;
  Value one = constant(statType(wideType), 1.0);
  size_t rank = layout.dims.size();
  setupItem(begin);
  SmallVector<Value> firstKept = keptIndices;
  Value firstX0 = loadFirstElement(firstKept);
  auto [firstOffset, firstSquares] =
      onePassStats(pipelinedSums(firstKept, firstX0, {}));

  // Carried from item to item: x0, the offset of the mean from it and the
  // sum of squares, of the item about to be written.
  buildFor(
      begin, end, indexConstant(1), {firstX0, firstOffset, firstSquares},
      [&](Value item, ValueRange carried) {
        setupItem(item);
        ItemStats stats = finishStats(carried[0], carried[1], carried[2], one);
        Value next = arith::AddIOp::create(b, item, indexConstant(1));
        Value hasNext =
            arith::CmpIOp::create(b, arith::CmpIPredicate::ult, next, end);
        return buildIf(
            hasNext, ValueRange(carried).getTypes(),
            [&]() -> SmallVector<Value> {
              SmallVector<Value> nextKept(rank, Value());
              delinearizeKept(next, rank - 1, nextKept);
              // normalizeVector prefetches item i + 2 (or i + 1 again).
              setupPrefetch(next, end, prefetch);
              Value nextX0 = loadFirstElement(nextKept);
              OutputPass pass = prepareOutputPass(stats);
              SmallVector<Type> sumTypes(onePassSumCount(), onePassSumType());
              SmallVector<Value> sums =
                  withStreamingStores(streaming, sumTypes, [&]() {
                    return pipelinedSums(
                        nextKept, nextX0,
                        [&](ArrayRef<Value> indices, Value mask) {
                          normalizeVector(pass, indices, mask);
                        });
                  });
              auto [offset, squares] = onePassStats(sums);
              return {nextX0, offset, squares};
            },
            [&]() -> SmallVector<Value> {
              nextKeptIndices.clear();
              withStreamingStores(streaming, [&]() { normalize(stats); });
              return SmallVector<Value>(carried);
            });
      });
}
