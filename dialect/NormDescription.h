//===- NormDescription.h - what a normalization computes --------*- C++ -*-===//
//
// The attribute-level description shared by the generic op and every named
// op. Verification, generalization and lowering all work from this struct,
// so a new variant is a new combination of fields, not new code.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_DIALECT_NORMDESCRIPTION_H
#define NORMC_DIALECT_NORMDESCRIPTION_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Value.h"
#include "mlir/IR/ValueRange.h"
#include "mlir/Support/LLVM.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include <cstdint>
#include <optional>

namespace mlir {
class Operation;
class Type;
class RankedTensorType;
namespace norm {

enum class EpsPlacement : uint32_t;

struct NormDescription {
  /// Dimensions of the input reduced to compute one statistic.
  llvm::SmallVector<int64_t> reductionDims;
  /// Subtract the mean (LayerNorm, BatchNorm, ...) or not (RMSNorm).
  bool center = true;
  double epsilon = 1e-5;
  EpsPlacement epsPlacement{};
  /// Input dimensions indexed by gamma/beta, ascending.
  llvm::SmallVector<int64_t> affineDims;
  /// GroupNorm: `groupDim` is viewed as [numGroups, size/numGroups]; the
  /// inner part is reduced, the group index is kept.
  std::optional<int64_t> groupDim;
  std::optional<int64_t> numGroups;
  /// Statistics are operands (BatchNorm inference) instead of reductions.
  bool givenStats = false;
  /// Running statistics are updated with this momentum (BatchNorm training).
  std::optional<double> momentum;
};

/// The attributes of norm.normalize / norm.normalize_backward that state a
/// description (absent optional ones are null): the inverse of reading a
/// generic op's description.
struct DescriptionAttrs {
  DenseI64ArrayAttr reductionDims;
  UnitAttr center;
  FloatAttr epsilon;
  Attribute epsPlacement;
  DenseI64ArrayAttr affineDims;
  IntegerAttr numGroups, groupDim;
};
DescriptionAttrs getDescriptionAttrs(Builder &builder,
                                     const NormDescription &desc);

/// Operands of a normalization by role; absent ones are null.
struct NormOperands {
  Value input, gamma, beta, givenMean, givenVar, runningMean, runningVar;
};

/// Results of a normalization by role; absent ones are null.
struct NormResults {
  Value output, savedMean, savedRstd, runningMeanOut, runningVarOut;
};

/// Assigns roles to the statistics results of an op with `desc`, in the
/// order saved mean (computed and centered), saved rstd (computed), updated
/// running mean and variance (running statistics given). Missing results
/// stay null; `expectedCount` receives how many there should be.
NormResults assignStatisticsResults(const NormDescription &desc,
                                    bool updatesRunning, Value output,
                                    ValueRange statistics,
                                    unsigned &expectedCount);

/// Element type of statistics for inputs of `elementType`: f32 for
/// f32/f16/bf16 (f32 accumulation), f64 for f64.
Type getStatisticsElementType(Type elementType);

/// Shape of the statistics: the kept input dims in order, with the group dim
/// replaced by the number of groups.
llvm::SmallVector<int64_t> getStatisticsShape(const NormDescription &desc,
                                              llvm::ArrayRef<int64_t> shape);

/// Shape of gamma/beta: the input dims listed in `affineDims`.
llvm::SmallVector<int64_t> getAffineShape(const NormDescription &desc,
                                          llvm::ArrayRef<int64_t> shape);

/// Operands and results of a backward normalization by role.
struct NormBackwardRoles {
  Value gradOutput, input, gamma, mean, rstd, var;
  Value gradInput, gradGamma, gradBeta;
};

/// Checks the attribute-level description against the input type: reduced,
/// group and affine dims, eps.
LogicalResult verifyDescription(Operation *op, const NormDescription &desc,
                                RankedTensorType inputType);

/// How an op calls its operands in diagnostics (named ops use PyTorch's
/// words: weight, bias, running_mean...).
struct NormRoleNames {
  llvm::StringRef gamma = "gamma", beta = "beta";
  llvm::StringRef givenMean = "given mean", givenVar = "given variance";
};

/// Emits an error on `op` and fails when the description, operands and
/// results are inconsistent. Shared by the generic op and the named ops.
LogicalResult verifyNormalization(Operation *op, const NormDescription &desc,
                                  const NormOperands &operands,
                                  const NormResults &results,
                                  const NormRoleNames &names = {});

/// Verifies a backward normalization (norm.normalize_backward).
LogicalResult verifyNormalizationBackward(Operation *op,
                                          const NormDescription &desc,
                                          const NormBackwardRoles &roles);

} // namespace norm
} // namespace mlir

#endif // NORMC_DIALECT_NORMDESCRIPTION_H
