//===- SplitRows.cpp - long rows reduced in chunks ------------------------===//
//
// A row of 64K elements or more split into chunks (canSplitRows):
//
//   prepass   per chunk c of n_c elements, in cache:
//               d_c = sum(x - x0) / n_c            x0: the row's first element
//               q_c = sum((x - x0 - d_c)^2)
//   main      per row, once per call:
//               d = sum(n_c d_c) / M
//               q = sum(q_c + n_c (d_c - d)^2)     (Chan, Golub, LeVeque)
//             then per chunk: rstd from q / M, y as in pass 3
//
// Every chunk shares the row's shift x0, so the shifted sums keep the
// exactness of the unsplit passes on large-mean rows, and the combination
// adds non-negative terms only: no cancellation. The chunk order is fixed,
// so results do not depend on how the items are spread over threads.
//
//===----------------------------------------------------------------------===//

#include "codegen/LoopEmitter.h"

#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::norm;
using namespace mlir::norm::detail;

void LoopEmitter::setChunkRange(const RowSplit &split, Value chunk) {
  Value chunkLength = indexConstant(kRowSplitChunk);
  innerBegin = arith::MulIOp::create(b, chunk, chunkLength);
  // Rows of a known multiple of the chunk length have no short chunk, and
  // so no masked tail (the chunk length is a multiple of vl).
  std::optional<int64_t> rowLength = getConstantIntValue(split.rowLength);
  innerCount =
      rowLength && *rowLength % kRowSplitChunk == 0
          ? chunkLength
          : (Value)arith::MinUIOp::create(
                b, arith::SubIOp::create(b, split.rowLength, innerBegin),
                chunkLength);
}

void LoopEmitter::clearChunkRange() {
  innerBegin = Value();
  innerCount = Value();
}

/// Elements of chunk `chunk` of a row, in f64.
static Value chunkElements(ImplicitLocOpBuilder &b, const RowSplit &split,
                           Value chunk) {
  Value start = arith::MulIOp::create(
      b, chunk, arith::ConstantIndexOp::create(b, kRowSplitChunk));
  Value count = arith::MinUIOp::create(
      b, arith::SubIOp::create(b, split.rowLength, start),
      arith::ConstantIndexOp::create(b, kRowSplitChunk));
  return arith::UIToFPOp::create(
      b, b.getF64Type(),
      arith::IndexCastUIOp::create(b, b.getI64Type(), count));
}

std::pair<Value, Value> LoopEmitter::combineChunks(const RowSplit &split,
                                                   Value row) {
  Value first = arith::MulIOp::create(b, row, split.chunks);
  auto partial = [&](Value chunk, int64_t which) {
    Value at = arith::AddIOp::create(
        b,
        arith::MulIOp::create(b, arith::AddIOp::create(b, first, chunk),
                              indexConstant(kRowSplitPartials)),
        indexConstant(which));
    return memref::LoadOp::create(b, buf.workspace, ValueRange{at}).getResult();
  };
  Value zero = constant(wideType, 0.0);
  Value sum =
      buildFor(indexConstant(0), split.chunks, indexConstant(1), {zero},
               [&](Value chunk, ValueRange acc) -> SmallVector<Value> {
                 return {math::FmaOp::create(b, chunkElements(b, split, chunk),
                                             partial(chunk, 0), acc[0])};
               })[0];
  Value offset = arith::DivFOp::create(b, sum, reductionCount);
  Value squares = buildFor(
      indexConstant(0), split.chunks, indexConstant(1), {zero},
      [&](Value chunk, ValueRange acc) -> SmallVector<Value> {
        Value gap = arith::SubFOp::create(b, partial(chunk, 0), offset);
        Value between =
            arith::MulFOp::create(b, arith::MulFOp::create(b, gap, gap),
                                  chunkElements(b, split, chunk));
        return {arith::AddFOp::create(
            b, acc[0], arith::AddFOp::create(b, partial(chunk, 1), between))};
      })[0];
  return {offset, squares};
}

void LoopEmitter::emitSplitRows(const RowSplit &split, Value begin, Value end,
                                Value streaming) {
  // No prefetching of the next item and no decoded row: the chunks stream.
  nextKeptIndices.clear();
  rowDecoded = false;
  forEachSplitRow(
      split, begin, end, [&](Value row, Value chunkBegin, Value chunkEnd) {
        Value x0 =
            desc.center ? loadFirstElement() : constant(statType(accType), 0.0);
        // Without centering (RMSNorm) every d_c is 0, and so is d.
        auto [offset, squares] = combineChunks(split, row);
        // The item of the row's first chunk stores the statistics.
        Value storesStats = arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                                                  chunkBegin, indexConstant(0));
        ItemStats stats = finishStats(x0, offset, squares,
                                      constant(wideType, 1.0), storesStats);
        forEachChunk(split, chunkBegin, chunkEnd, [&]() {
          withStreamingStores(streaming, [&]() { normalize(stats); });
        });
      });
}

void LoopEmitter::forEachSplitRow(
    const RowSplit &split, Value begin, Value end,
    function_ref<void(Value row, Value chunkBegin, Value chunkEnd)> body) {
  // The rows that items [begin, end) touch, and the chunks of each.
  Value firstRow = arith::DivUIOp::create(b, begin, split.chunks);
  Value endRow = arith::CeilDivUIOp::create(b, end, split.chunks);
  buildFor(firstRow, endRow, indexConstant(1), {}, [&](Value row, ValueRange) {
    setupItem(row);
    Value rowStart = arith::MulIOp::create(b, row, split.chunks);
    Value chunkBegin = arith::SubIOp::create(
        b, arith::MaxUIOp::create(b, begin, rowStart), rowStart);
    Value chunkEnd = arith::SubIOp::create(
        b,
        arith::MinUIOp::create(
            b, end, arith::AddIOp::create(b, rowStart, split.chunks)),
        rowStart);
    body(row, chunkBegin, chunkEnd);
    return SmallVector<Value>();
  });
}

void LoopEmitter::forEachChunk(const RowSplit &split, Value chunkBegin,
                               Value chunkEnd, function_ref<void()> body) {
  buildFor(chunkBegin, chunkEnd, indexConstant(1), {},
           [&](Value chunk, ValueRange) {
             setChunkRange(split, chunk);
             body();
             clearChunkRange();
             return SmallVector<Value>();
           });
}

void LoopEmitter::emitPrepass(const NormBuffers &buffers, Value begin,
                              Value end) {
  bindBuffers(buffers);
  RowSplit split =
      emitRowSplit(b, layout, sizes, vl, /*splitVeryLongRows=*/desc.center);
  Value rowCount = reductionCount;
  forEachPrepassChunk(split, begin, end, [&](Value item, Value chunk) {
    // accumulate() averages over the elements it visits: the chunk's.
    reductionCount = chunkElements(b, split, chunk);
    Value x0W = castFloat(desc.center ? loadFirstElement()
                                      : constant(statType(accType), 0.0),
                          wideType);
    auto [offset, squares] = accumulateTwoPass(x0W);
    Value at = arith::MulIOp::create(b, item, indexConstant(kRowSplitPartials));
    memref::StoreOp::create(b, offset, buf.workspace, ValueRange{at});
    memref::StoreOp::create(
        b, squares, buf.workspace,
        ValueRange{arith::AddIOp::create(b, at, indexConstant(1))});
    reductionCount = rowCount;
  });
}

void LoopEmitter::forEachPrepassChunk(
    const RowSplit &split, Value begin, Value end,
    function_ref<void(Value item, Value chunk)> body) {
  buildFor(begin, end, indexConstant(1), {}, [&](Value item, ValueRange) {
    Value row = arith::DivUIOp::create(b, item, split.chunks);
    Value chunk = arith::RemUIOp::create(b, item, split.chunks);
    setupItem(row);
    setChunkRange(split, chunk);
    body(item, chunk);
    clearChunkRange();
    return SmallVector<Value>();
  });
}

void norm::emitNormalizePrepassLoops(ImplicitLocOpBuilder &b,
                                     const NormDescription &desc,
                                     const NormBuffers &buffers, Value begin,
                                     Value end,
                                     const LoopEmitOptions &options) {
  LoopEmitter(b, desc, options, cast<MemRefType>(buffers.input.getType()),
              getStatisticsElementType(buffers.elementType))
      .emitPrepass(buffers, begin, end);
}
