//===- NormDescription.cpp - shared verification of normalizations --------===//
//
// Every op of the dialect is verified here, through its NormDescription, so
// the generic op and the named ops reject the same mistakes with the same
// words.
//
//===----------------------------------------------------------------------===//

#include "dialect/NormDescription.h"
#include "dialect/NormOps.h"

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Operation.h"
#include "llvm/ADT/STLExtras.h"
#include <cmath>

using namespace mlir;
using namespace mlir::norm;

DescriptionAttrs norm::getDescriptionAttrs(Builder &builder,
                                           const NormDescription &desc) {
  auto optionalI64 = [&](std::optional<int64_t> value) {
    return value ? builder.getI64IntegerAttr(*value) : IntegerAttr();
  };
  DescriptionAttrs attrs;
  attrs.reductionDims = builder.getDenseI64ArrayAttr(desc.reductionDims);
  attrs.center = desc.center ? builder.getUnitAttr() : UnitAttr();
  attrs.epsilon = builder.getF64FloatAttr(desc.epsilon);
  attrs.epsPlacement =
      EpsPlacementAttr::get(builder.getContext(), desc.epsPlacement);
  if (!desc.affineDims.empty())
    attrs.affineDims = builder.getDenseI64ArrayAttr(desc.affineDims);
  attrs.numGroups = optionalI64(desc.numGroups);
  attrs.groupDim = optionalI64(desc.groupDim);
  return attrs;
}

Type norm::getStatisticsElementType(Type elementType) {
  if (elementType.isF64())
    return elementType;
  return Float32Type::get(elementType.getContext());
}

NormResults norm::assignStatisticsResults(const NormDescription &desc,
                                          bool updatesRunning, Value output,
                                          ValueRange statistics,
                                          unsigned &expectedCount) {
  NormResults results;
  results.output = output;
  SmallVector<Value *> roles;
  if (!desc.givenStats && desc.center)
    roles.push_back(&results.savedMean);
  if (!desc.givenStats)
    roles.push_back(&results.savedRstd);
  if (updatesRunning) {
    roles.push_back(&results.runningMeanOut);
    roles.push_back(&results.runningVarOut);
  }
  expectedCount = roles.size();
  for (auto [role, value] : llvm::zip(roles, statistics))
    *role = value;
  return results;
}

SmallVector<int64_t> norm::getStatisticsShape(const NormDescription &desc,
                                              ArrayRef<int64_t> shape) {
  SmallVector<int64_t> result;
  for (auto [dim, size] : llvm::enumerate(shape)) {
    if (llvm::is_contained(desc.reductionDims, (int64_t)dim))
      continue;
    if (desc.groupDim && *desc.groupDim == (int64_t)dim)
      result.push_back(*desc.numGroups);
    else
      result.push_back(size);
  }
  return result;
}

SmallVector<int64_t> norm::getAffineShape(const NormDescription &desc,
                                          ArrayRef<int64_t> shape) {
  SmallVector<int64_t> result;
  for (int64_t dim : desc.affineDims)
    result.push_back(shape[dim]);
  return result;
}

namespace {
/// Prints a shape as `4x?x8` for diagnostics.
std::string formatShape(ArrayRef<int64_t> shape) {
  std::string text;
  llvm::raw_string_ostream os(text);
  llvm::interleave(
      shape, os,
      [&](int64_t size) {
        if (ShapedType::isDynamic(size))
          os << "?";
        else
          os << size;
      },
      "x");
  if (shape.empty())
    os << "scalar";
  return text;
}

bool isCompatibleShape(ArrayRef<int64_t> actual, ArrayRef<int64_t> expected) {
  if (actual.size() != expected.size())
    return false;
  for (auto [a, e] : llvm::zip(actual, expected))
    if (!ShapedType::isDynamic(a) && !ShapedType::isDynamic(e) && a != e)
      return false;
  return true;
}

/// Checks that the list of dims is in range for `rank` and has no repeats.
LogicalResult checkDimList(Operation *op, StringRef what,
                           ArrayRef<int64_t> dims, int64_t rank,
                           bool requireAscending) {
  for (auto [index, dim] : llvm::enumerate(dims)) {
    if (dim < 0 || dim >= rank)
      return op->emitOpError()
             << what << " dim " << dim
             << " is out of range for an input of rank " << rank;
    if (llvm::is_contained(dims.take_front(index), dim))
      return op->emitOpError() << what << " dim " << dim << " is repeated";
    if (requireAscending && index > 0 && dims[index - 1] > dim)
      return op->emitOpError() << what << " dims must be in ascending order";
  }
  return success();
}

/// The checks on one tensor operand or result with a known expected shape.
struct TensorCheck {
  Operation *op;
  StringRef name;
  Type expectedElementType;
  ArrayRef<int64_t> expectedShape;

  LogicalResult operator()(Value value) const {
    auto type = cast<RankedTensorType>(value.getType());
    if (type.getElementType() != expectedElementType)
      return op->emitOpError()
             << name << " element type " << type.getElementType()
             << " does not match the expected " << expectedElementType;
    if (!isCompatibleShape(type.getShape(), expectedShape))
      return op->emitOpError()
             << name << " has shape " << formatShape(type.getShape())
             << " but the normalization needs " << formatShape(expectedShape);
    return success();
  }
};

} // namespace

LogicalResult norm::verifyDescription(Operation *op,
                                      const NormDescription &desc,
                                      RankedTensorType inputType) {
  int64_t rank = inputType.getRank();
  ArrayRef<int64_t> shape = inputType.getShape();
  if (rank == 0)
    return op->emitOpError("expects a ranked input of rank >= 1");
  // Reduced dims and groups.
  if (failed(checkDimList(op, "reduction", desc.reductionDims, rank,
                          /*requireAscending=*/false)))
    return failure();
  if (desc.groupDim.has_value() != desc.numGroups.has_value())
    return op->emitOpError("expects both a group count and a group dim");
  if (desc.groupDim) {
    int64_t groupDim = *desc.groupDim, groups = *desc.numGroups;
    if (groupDim < 0 || groupDim >= rank)
      return op->emitOpError()
             << "group dim " << groupDim
             << " is out of range for an input of rank " << rank;
    if (llvm::is_contained(desc.reductionDims, groupDim))
      return op->emitOpError()
             << "group dim " << groupDim << " must not be a reduction dim";
    if (groups < 1)
      return op->emitOpError()
             << "number of groups must be positive, got " << groups;
    if (!ShapedType::isDynamic(shape[groupDim]) &&
        shape[groupDim] % groups != 0)
      return op->emitOpError()
             << groups << " groups do not divide the " << shape[groupDim]
             << " channels of dim " << groupDim;
  }
  if (desc.reductionDims.empty() && !desc.groupDim)
    return op->emitOpError("expects at least one reduced dim");

  // A statically empty reduction has no mean: reject it here rather than
  // produce NaNs at run time.
  for (int64_t dim : desc.reductionDims)
    if (shape[dim] == 0)
      return op->emitOpError()
             << "reduces over an empty set: dim " << dim << " has size 0";
  if (desc.groupDim && shape[*desc.groupDim] == 0)
    return op->emitOpError() << "reduces over an empty set: group dim "
                             << *desc.groupDim << " has size 0";

  if (!std::isfinite(desc.epsilon) || desc.epsilon <= 0.0)
    return op->emitOpError()
           << "eps must be positive and finite, got " << desc.epsilon;

  return checkDimList(op, "affine", desc.affineDims, rank,
                      /*requireAscending=*/true);
}

LogicalResult norm::verifyNormalization(Operation *op,
                                        const NormDescription &desc,
                                        const NormOperands &operands,
                                        const NormResults &results,
                                        const NormRoleNames &names) {
  auto inputType = cast<RankedTensorType>(operands.input.getType());
  ArrayRef<int64_t> shape = inputType.getShape();
  Type elementType = inputType.getElementType();
  if (failed(verifyDescription(op, desc, inputType)))
    return failure();

  // Affine parameters.
  bool hasAffine = operands.gamma || operands.beta;
  if (hasAffine && desc.affineDims.empty())
    return op->emitOpError() << "has " << names.gamma << "/" << names.beta
                             << " but no affine dims";
  if (!hasAffine && !desc.affineDims.empty())
    return op->emitOpError()
           << "has affine dims but no " << names.gamma << " or " << names.beta;
  SmallVector<int64_t> affineShape = getAffineShape(desc, shape);
  TensorCheck checkGamma{op, names.gamma, elementType, affineShape};
  TensorCheck checkBeta{op, names.beta, elementType, affineShape};
  if (operands.gamma && failed(checkGamma(operands.gamma)))
    return failure();
  if (operands.beta && failed(checkBeta(operands.beta)))
    return failure();

  // Statistics: given, running and saved ones share one shape and type.
  Type statsType = getStatisticsElementType(elementType);
  SmallVector<int64_t> statsShape = getStatisticsShape(desc, shape);
  auto checkStats = [&](Value value, StringRef name) {
    return TensorCheck{op, name, statsType, statsShape}(value);
  };

  if ((bool)operands.givenMean != (bool)operands.givenVar)
    return op->emitOpError()
           << "expects both " << names.givenMean << " and " << names.givenVar;
  if ((bool)operands.runningMean != (bool)operands.runningVar)
    return op->emitOpError() << "expects both running mean and variance";
  if (desc.givenStats) {
    if (operands.runningMean)
      return op->emitOpError(
          "cannot update running statistics when statistics are given "
          "(inference form)");
    if (failed(checkStats(operands.givenMean, names.givenMean)) ||
        failed(checkStats(operands.givenVar, names.givenVar)))
      return failure();
  }

  bool updatesRunning = (bool)operands.runningMean;
  if (updatesRunning != desc.momentum.has_value())
    return op->emitOpError(updatesRunning
                               ? "expects a momentum for the running "
                                 "statistics"
                               : "has a momentum but no running statistics");
  if (desc.momentum && !(*desc.momentum >= 0.0 && *desc.momentum <= 1.0))
    return op->emitOpError()
           << "momentum must be in [0, 1], got " << *desc.momentum;
  if (updatesRunning) {
    if (failed(checkStats(operands.runningMean, "running mean")) ||
        failed(checkStats(operands.runningVar, "running variance")))
      return failure();
    // The unbiased variance divides by (count - 1).
    int64_t count = 1;
    bool staticCount = true;
    for (int64_t dim : desc.reductionDims) {
      staticCount &= !ShapedType::isDynamic(shape[dim]);
      count *= shape[dim];
    }
    if (desc.groupDim) {
      staticCount &= !ShapedType::isDynamic(shape[*desc.groupDim]);
      count *= shape[*desc.groupDim] / *desc.numGroups;
    }
    if (staticCount && count < 2)
      return op->emitOpError(
          "updating running statistics needs more than one value per "
          "statistic");
  }

  // Results.
  if (results.output.getType() != inputType)
    return op->emitOpError() << "output type " << results.output.getType()
                             << " does not match input type " << inputType;
  if (results.savedMean && failed(checkStats(results.savedMean, "saved mean")))
    return failure();
  if (results.savedRstd && failed(checkStats(results.savedRstd, "saved rstd")))
    return failure();
  if (results.runningMeanOut &&
      failed(checkStats(results.runningMeanOut, "updated running mean")))
    return failure();
  if (results.runningVarOut &&
      failed(checkStats(results.runningVarOut, "updated running variance")))
    return failure();
  return success();
}

LogicalResult
norm::verifyNormalizationBackward(Operation *op, const NormDescription &desc,
                                  const NormBackwardRoles &roles) {
  auto inputType = cast<RankedTensorType>(roles.input.getType());
  ArrayRef<int64_t> shape = inputType.getShape();
  Type elementType = inputType.getElementType();
  if (failed(verifyDescription(op, desc, inputType)))
    return failure();
  if (roles.gradOutput.getType() != inputType)
    return op->emitOpError()
           << "output gradient type " << roles.gradOutput.getType()
           << " does not match input type " << inputType;
  SmallVector<int64_t> affineShape = getAffineShape(desc, shape);
  if (roles.gamma &&
      failed(TensorCheck{op, "gamma", elementType, affineShape}(roles.gamma)))
    return failure();
  if (roles.gamma && desc.affineDims.empty())
    return op->emitOpError("has gamma but no affine dims");

  Type statsType = getStatisticsElementType(elementType);
  SmallVector<int64_t> statsShape = getStatisticsShape(desc, shape);
  auto checkStats = [&](Value value, StringRef name) {
    return TensorCheck{op, name, statsType, statsShape}(value);
  };
  // Saved statistics of the forward: mean (when centered) and rstd; or the
  // given mean and variance of the inference form.
  bool needsMean = desc.center || desc.givenStats;
  if (needsMean != (bool)roles.mean)
    return op->emitOpError(needsMean ? "expects the saved mean (centered "
                                       "normalization)"
                                     : "has a mean but the normalization is "
                                       "not centered");
  if (desc.givenStats != (bool)roles.var)
    return op->emitOpError(desc.givenStats
                               ? "expects the given variance (statistics "
                                 "are given)"
                               : "has a variance but statistics are computed");
  if (!desc.givenStats && !roles.rstd)
    return op->emitOpError("expects the saved rstd");
  if (desc.givenStats && roles.rstd)
    return op->emitOpError("has a saved rstd but statistics are given");
  for (auto [value, name] : {std::pair<Value, StringRef>{roles.mean, "mean"},
                             {roles.rstd, "saved rstd"},
                             {roles.var, "variance"}})
    if (value && failed(checkStats(value, name)))
      return failure();

  if (!roles.gradInput && !roles.gradGamma && !roles.gradBeta)
    return op->emitOpError("computes no gradient");
  if (roles.gradInput && roles.gradInput.getType() != inputType)
    return op->emitOpError()
           << "input gradient type " << roles.gradInput.getType()
           << " does not match input type " << inputType;
  if (roles.gradGamma && !roles.gamma)
    return op->emitOpError("computes the gamma gradient without gamma");
  if (roles.gradBeta && desc.affineDims.empty())
    return op->emitOpError("computes the beta gradient without affine dims");
  for (auto [value, name] :
       {std::pair<Value, StringRef>{roles.gradGamma, "gamma gradient"},
        {roles.gradBeta, "beta gradient"}})
    if (value && failed(TensorCheck{op, name, elementType, affineShape}(value)))
      return failure();
  return success();
}
