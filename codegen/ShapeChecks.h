//===- ShapeChecks.h - sizes and size checks of a kernel --------*- C++ -*-===//
//
// The checks behind return code 2 (bad shape), shared by the CPU entry
// points (`__normc_K_check`) and the GPU plan functions so that a size is
// rejected the same way on every device.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_CODEGEN_SHAPECHECKS_H
#define NORMC_CODEGEN_SHAPECHECKS_H

#include "dialect/NormDescription.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::norm {

/// Shape of x as ABI codes: static sizes, or -(k+1) for the k-th dynamic
/// dim.
SmallVector<int64_t> getInputShapeCodes(RankedTensorType type);

/// x's sizes as index values: static entries of `xCodes` as constants, the
/// dynamic ones (code -(k+1)) from the i64 value dims[k].
SmallVector<Value> emitInputSizes(ImplicitLocOpBuilder &b,
                                  ArrayRef<int64_t> xCodes, ValueRange dims);

/// An i1 that is true for negative sizes, channels not divisible by the
/// groups, an empty reduction with statistics to compute (unless allowed),
/// or running statistics from a single value.
Value emitShapeError(ImplicitLocOpBuilder &b, const NormDescription &desc,
                     ArrayRef<int64_t> xCodes, ValueRange dims,
                     bool allowEmptyReduction);

} // namespace mlir::norm

#endif // NORMC_CODEGEN_SHAPECHECKS_H
