//===- PipelinedItems.cpp - a row's statistics in the previous output pass ===//
//
// Rows that fit in cache (up to kMaxPrefetchItemBytes) run as a pipeline:
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
// within 3 g M relative, far inside f32's tolerance, for the M <= 2^15 of
// a 64 KiB row). The prologue and the fused loop add the same terms in the
// same blocked order, so an item's statistics do not depend on where a
// thread's range starts: results are bitwise the same for any number of
// threads.
//
//===----------------------------------------------------------------------===//

#include "codegen/LoopEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Matchers.h"

using namespace mlir;
using namespace mlir::norm;
using namespace mlir::norm::detail;

Value LoopEmitter::pipelineCondition() {
  // f32 data only. f64 data keeps two passes (its shifted sums would not be
  // exact). 16-bit data is bound by its arithmetic rather than by memory
  // (decoding, f64 sums, rounding to nearest even with integer ops) and
  // measured 0-15% slower pipelined (LayerNorm and RMSNorm bf16 4096x4096
  // and 16384x4096, 1 and 2 threads). Lane mode's items are strided vectors
  // of statistics, not rows.
  if (!options.pipelineItems || lane || desc.givenStats || !accType.isF32() ||
      storageType != elementType || !buf.output)
    return Value();
  Value fits =
      b.createOrFold<arith::CmpIOp>(arith::CmpIPredicate::ule, itemBytes(),
                                    indexConstant(kMaxPrefetchItemBytes));
  if (matchPattern(fits, m_Zero()))
    return Value();
  return fits;
}

Type LoopEmitter::pipelinedPartialType() const {
  // RMSNorm's sums of squares as unpipelined (accumulate): f32 squares in
  // blocks of f32 partial sums, where that is accurate.
  return !desc.center && canSquareInF32() ? Float32Type::get(b.getContext())
                                          : Type();
}

SmallVector<Value> LoopEmitter::addPipelinedTerms(Value shiftVec,
                                                  ArrayRef<Value> indices,
                                                  Value mask, ValueRange accs,
                                                  Type squareType) {
  if (desc.center)
    return addOnePassTerms(shiftVec, indices, mask, accs);
  Value x = loadInput(buf.input, indices, mask, squareType);
  if (mask)
    x = arith::SelectOp::create(
        b, mask, x, constant(VectorType::get({vl}, squareType), 0.0));
  return {addSquare(accs[0], x)};
}

SmallVector<Value> LoopEmitter::pipelinedSums(
    ArrayRef<Value> kept, Value x0,
    function_ref<void(ArrayRef<Value> indices, Value mask)> alongside) {
  Value shiftVec = toVector(castFloat(x0, wideType));
  Type partial = pipelinedPartialType();
  Type squareType = partial ? partial : wideType;
  SmallVector<Value> inits =
      desc.center
          ? onePassZeros()
          : SmallVector<Value>{constant(VectorType::get({vl}, wideType), 0.0)};
  return forEachVector(
      keptIndices, 0, inits,
      [&](ArrayRef<Value> indices, Value mask, ValueRange accs) {
        if (alongside)
          alongside(indices, mask);
        // The same position in the summed item.
        SmallVector<Value> at(indices);
        for (auto [index, dim] : llvm::enumerate(layout.dims))
          if (!dim.reduced)
            at[index] = kept[index];
        return addPipelinedTerms(shiftVec, at, mask, accs, squareType);
      },
      partial);
}

std::pair<Value, Value> LoopEmitter::pipelinedStats(ArrayRef<Value> sums,
                                                    ArrayRef<Value> kept) {
  if (desc.center)
    return onePassStats(sums);
  Type statW = statType(wideType);
  Value zero = constant(statW, 0.0);
  Value squares = reduce(sums[0]);
  if (!pipelinedPartialType())
    return {zero, squares};
  // An f32 square overflowed (|x| beyond 2^64), or x holds inf/NaN: the
  // sum again in f64, from cache (as accumulateTwoPass).
  SmallVector<Value> chosen = buildIf(
      isNonFinite(squares), TypeRange{statW},
      [&]() -> SmallVector<Value> {
        Value wideZero = constant(VectorType::get({vl}, wideType), 0.0);
        Value sum = forEachVector(
            SmallVector<Value>(kept), 0, {wideZero},
            [&](ArrayRef<Value> indices, Value mask, ValueRange accs) {
              return addPipelinedTerms(Value(), indices, mask, accs, wideType);
            })[0];
        return {reduce(sum)};
      },
      [&]() -> SmallVector<Value> { return {squares}; });
  return {zero, chosen[0]};
}

void LoopEmitter::emitPipelinedItems(Value begin, Value end, Value streaming,
                                     Value prefetch) {
  // Pass 3 reads each row from cache as it was stored, not from rowScratch.
  rowDecoded = false;
  Value one = constant(statType(wideType), 1.0);
  size_t rank = layout.dims.size();
  auto firstElement = [&](ArrayRef<Value> kept) {
    return desc.center ? loadFirstElement(kept)
                       : constant(statType(accType), 0.0);
  };

  setupItem(begin);
  SmallVector<Value> firstKept = keptIndices;
  Value firstX0 = firstElement(firstKept);
  auto [firstOffset, firstSquares] =
      pipelinedStats(pipelinedSums(firstKept, firstX0, {}), firstKept);

  // Carried from item to item: x0, the offset of the mean from it and the
  // sum of squares, of the item about to be written.
  buildFor(begin, end, indexConstant(1), {firstX0, firstOffset, firstSquares},
           [&](Value item, ValueRange carried) {
             setupItem(item);
             ItemStats stats =
                 finishStats(carried[0], carried[1], carried[2], one);
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
                   Value nextX0 = firstElement(nextKept);
                   OutputPass pass = prepareOutputPass(stats);
                   SmallVector<Type> sumTypes(
                       desc.center ? onePassSumCount() : 1,
                       desc.center ? (Type)onePassSumType()
                                   : VectorType::get({vl}, wideType));
                   SmallVector<Value> sums =
                       withStreamingStores(streaming, sumTypes, [&]() {
                         return pipelinedSums(
                             nextKept, nextX0,
                             [&](ArrayRef<Value> indices, Value mask) {
                               normalizeVector(pass, indices, mask);
                             });
                       });
                   auto [offset, squares] = pipelinedStats(sums, nextKept);
                   return {nextX0, offset, squares};
                 },
                 [&]() -> SmallVector<Value> {
                   nextKeptIndices.clear();
                   withStreamingStores(streaming, [&]() { normalize(stats); });
                   return SmallVector<Value>(carried);
                 });
           });
}
