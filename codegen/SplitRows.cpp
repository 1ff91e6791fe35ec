//===- SplitRows.cpp - long rows reduced in chunks ------------------------===//
//
// A row of 64K elements or more, or a statistic over a large batch, split
// into chunks (canSplitRows): rows along their innermost dim, a batch along
// its outermost dim (in lane mode a row is a vector of statistics, and
// every step below works lane by lane):
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
// A channels-last batch of several lane rows (RowSplit::tiledRows) runs a
// chunk of every row per item, a tile of positions at a time with every
// row within a tile (forEachRowTile), so that each position is read whole.
//
//===----------------------------------------------------------------------===//

#include "codegen/LoopEmitter.h"

#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::norm;
using namespace mlir::norm::detail;

void LoopEmitter::setChunkRange(const RowSplit &split, Value chunk) {
  rangeDim = split.dim;
  rangeBegin = arith::MulIOp::create(b, chunk, split.chunkLength);
  // Rows of a known multiple of the chunk length have no short chunk, and
  // so no masked tail (the chunk length of rows is a multiple of vl).
  std::optional<int64_t> rowLength = getConstantIntValue(split.rowLength);
  std::optional<int64_t> chunkLength = getConstantIntValue(split.chunkLength);
  rangeCount =
      rowLength && chunkLength && *rowLength % *chunkLength == 0
          ? split.chunkLength
          : (Value)arith::MinUIOp::create(
                b, arith::SubIOp::create(b, split.rowLength, rangeBegin),
                split.chunkLength);
}

void LoopEmitter::clearChunkRange() {
  rangeDim = -1;
  rangeBegin = Value();
  rangeCount = Value();
}

Value LoopEmitter::chunkElements(const RowSplit &split, Value chunk) {
  Value start = arith::MulIOp::create(b, chunk, split.chunkLength);
  Value count = b.createOrFold<arith::MulIOp>(
      arith::MinUIOp::create(b,
                             arith::SubIOp::create(b, split.rowLength, start),
                             split.chunkLength),
      split.elementsPerIndex);
  return arith::UIToFPOp::create(
      b, b.getF64Type(),
      arith::IndexCastUIOp::create(b, b.getI64Type(), count));
}

/// Position of partial `which` of prepass item `item` in the workspace.
static Value partialIndex(ImplicitLocOpBuilder &b, const RowSplit &split,
                          Value item, int64_t which) {
  Value at = arith::AddIOp::create(
      b,
      arith::MulIOp::create(
          b, item, arith::ConstantIndexOp::create(b, kRowSplitPartials)),
      arith::ConstantIndexOp::create(b, which));
  if (split.partialLanes == 1)
    return at;
  return arith::MulIOp::create(
      b, at, arith::ConstantIndexOp::create(b, split.partialLanes));
}

std::pair<Value, Value> LoopEmitter::combineChunks(const RowSplit &split,
                                                   Value row) {
  Value first = arith::MulIOp::create(b, row, split.chunks);
  auto partial = [&](Value chunk, int64_t which) {
    return loadWorkspaceStat(
        buf.workspace,
        partialIndex(b, split, arith::AddIOp::create(b, first, chunk), which));
  };
  Value zero = constant(statType(wideType), 0.0);
  Value sum = buildFor(
      indexConstant(0), split.chunks, indexConstant(1), {zero},
      [&](Value chunk, ValueRange acc) -> SmallVector<Value> {
        return {math::FmaOp::create(b, splatStat(chunkElements(split, chunk)),
                                    partial(chunk, 0), acc[0])};
      })[0];
  Value offset = arith::DivFOp::create(b, sum, splatStat(reductionCount));
  Value squares = buildFor(
      indexConstant(0), split.chunks, indexConstant(1), {zero},
      [&](Value chunk, ValueRange acc) -> SmallVector<Value> {
        Value gap = arith::SubFOp::create(b, partial(chunk, 0), offset);
        Value between =
            arith::MulFOp::create(b, arith::MulFOp::create(b, gap, gap),
                                  splatStat(chunkElements(split, chunk)));
        return {arith::AddFOp::create(
            b, acc[0], arith::AddFOp::create(b, partial(chunk, 1), between))};
      })[0];
  return {offset, squares};
}

Value LoopEmitter::chunkSlot(const RowSplit &split, Value row, Value chunk) {
  return arith::AddIOp::create(b, arith::MulIOp::create(b, row, split.chunks),
                               chunk);
}

SmallVector<Value> LoopEmitter::forEachRowTile(
    const RowSplit &split, Value first, Value count, ValueRange inits,
    function_ref<SmallVector<Value>(int64_t row, ValueRange accs)> body) {
  int64_t rows = split.tiledRows;
  size_t perRow = inits.size() / rows;
  Value tile = indexConstant(kRowTilePositions);
  Value end = arith::AddIOp::create(b, first, count);
  SmallVector<Value> results =
      buildFor(first, end, tile, inits, [&](Value tileStart, ValueRange accs) {
        Value tileCount = arith::MinUIOp::create(
            b, arith::SubIOp::create(b, end, tileStart), tile);
        SmallVector<Value> next;
        for (int64_t row = 0; row < rows; ++row) {
          setupItem(indexConstant(row));
          rangeDim = split.dim;
          rangeBegin = tileStart;
          rangeCount = tileCount;
          llvm::append_range(next, body(row, accs.slice(row * perRow, perRow)));
        }
        return next;
      });
  clearChunkRange();
  return results;
}

void LoopEmitter::emitTiledPrepass(const RowSplit &split, Value begin,
                                   Value end) {
  int64_t rows = split.tiledRows;
  Value rowCount = reductionCount;
  Type statW = statType(wideType);
  buildFor(begin, end, indexConstant(1), {}, [&](Value chunk, ValueRange) {
    // accumulate() averages over the elements it visits: the chunk's.
    reductionCount = chunkElements(split, chunk);
    SmallVector<Value> shifts;
    for (int64_t row = 0; row < rows; ++row) {
      setupItem(indexConstant(row));
      shifts.push_back(castFloat(desc.center ? loadFirstElement()
                                             : constant(statType(accType), 0.0),
                                 wideType));
    }
    setChunkRange(split, chunk);
    Value first = rangeBegin, count = rangeCount;
    clearChunkRange();
    unsigned sumCount = onePassSumCount();
    SmallVector<Type> types(2 * rows, statW);
    SmallVector<Value> partials = buildIf(
        split.onePassChunks, types,
        [&]() {
          Value zero = constant(onePassSumType(), 0.0);
          SmallVector<Value> sums = forEachRowTile(
              split, first, count, SmallVector<Value>(sumCount * rows, zero),
              [&](int64_t row, ValueRange accs) {
                return onePassSums(shifts[row], accs);
              });
          SmallVector<Value> stats;
          for (int64_t row = 0; row < rows; ++row) {
            auto [offset, squares] =
                onePassStats(ArrayRef(sums).slice(sumCount * row, sumCount));
            stats.append({offset, squares});
          }
          return stats;
        },
        [&]() {
          // Two passes over each row's chunk in cache (very large batches
          // only, see emitBatchSplit): row by row.
          SmallVector<Value> stats;
          for (int64_t row = 0; row < rows; ++row) {
            setupItem(indexConstant(row));
            setChunkRange(split, chunk);
            auto [offset, squares] = accumulateTwoPass(shifts[row]);
            clearChunkRange();
            stats.append({offset, squares});
          }
          return stats;
        });
    for (int64_t row = 0; row < rows; ++row) {
      Value slot = chunkSlot(split, indexConstant(row), chunk);
      storeWorkspaceStat(partials[2 * row], buf.workspace,
                         partialIndex(b, split, slot, 0));
      storeWorkspaceStat(partials[2 * row + 1], buf.workspace,
                         partialIndex(b, split, slot, 1));
    }
    reductionCount = rowCount;
    return SmallVector<Value>();
  });
  rowDecoded = false;
}

void LoopEmitter::forEachChunkLastFirst(const RowSplit &split, Value begin,
                                        Value end,
                                        function_ref<void(Value chunk)> body) {
  Value last = arith::SubIOp::create(b, split.items, indexConstant(1));
  buildFor(begin, end, indexConstant(1), {}, [&](Value step, ValueRange) {
    body(arith::SubIOp::create(b, last, step));
    return SmallVector<Value>();
  });
}

void LoopEmitter::emitTiledSplitRows(const RowSplit &split, Value begin,
                                     Value end, Value streaming) {
  int64_t rows = split.tiledRows;
  forEachChunkLastFirst(split, begin, end, [&](Value chunk) {
    // The item of the first chunk stores the statistics.
    Value storesStats = arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                                              chunk, indexConstant(0));
    SmallVector<ItemStats> stats;
    for (int64_t row = 0; row < rows; ++row) {
      setupItem(indexConstant(row));
      Value x0 =
          desc.center ? loadFirstElement() : constant(statType(accType), 0.0);
      auto [offset, squares] = combineChunks(split, indexConstant(row));
      stats.push_back(finishStats(
          x0, offset, squares, constant(statType(wideType), 1.0), storesStats));
    }
    setChunkRange(split, chunk);
    Value first = rangeBegin, count = rangeCount;
    clearChunkRange();
    withStreamingStores(streaming, [&]() {
      forEachRowTile(split, first, count, {}, [&](int64_t row, ValueRange) {
        normalize(stats[row]);
        return SmallVector<Value>();
      });
    });
  });
}

void LoopEmitter::emitSplitRows(const RowSplit &split, Value begin, Value end,
                                Value streaming) {
  // No prefetching of the next item and no decoded row: the chunks stream.
  nextKeptIndices.clear();
  rowDecoded = false;
  if (split.tiledRows) {
    emitTiledSplitRows(split, begin, end, streaming);
    return;
  }
  forEachSplitRow(
      split, begin, end, [&](Value row, Value chunkBegin, Value chunkEnd) {
        Value x0 =
            desc.center ? loadFirstElement() : constant(statType(accType), 0.0);
        // Without centering (RMSNorm) every d_c is 0, and so is d.
        auto [offset, squares] = combineChunks(split, row);
        // The item of the row's first chunk stores the statistics.
        Value storesStats = arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                                                  chunkBegin, indexConstant(0));
        ItemStats stats =
            finishStats(x0, offset, squares, constant(statType(wideType), 1.0),
                        storesStats);
        forEachChunk(split, chunkBegin, chunkEnd, [&](Value) {
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
                               Value chunkEnd,
                               function_ref<void(Value chunk)> body) {
  buildFor(chunkBegin, chunkEnd, indexConstant(1), {},
           [&](Value chunk, ValueRange) {
             setChunkRange(split, chunk);
             body(chunk);
             clearChunkRange();
             return SmallVector<Value>();
           });
}

void LoopEmitter::emitPrepass(const NormBuffers &buffers, Value begin,
                              Value end) {
  bindBuffers(buffers);
  RowSplit split = emitForwardSplit(b, layout, sizes, vl, desc.center);
  if (split.tiledRows) {
    emitTiledPrepass(split, begin, end);
    return;
  }
  Value rowCount = reductionCount;
  forEachPrepassChunk(split, begin, end, [&](Value item, Value chunk) {
    // accumulate() averages over the elements it visits: the chunk's.
    reductionCount = chunkElements(split, chunk);
    Value x0W = castFloat(desc.center ? loadFirstElement()
                                      : constant(statType(accType), 0.0),
                          wideType);
    auto [offset, squares] = accumulateOneOrTwoPass(split.onePassChunks, x0W);
    storeWorkspaceStat(offset, buf.workspace, partialIndex(b, split, item, 0));
    storeWorkspaceStat(squares, buf.workspace, partialIndex(b, split, item, 1));
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
