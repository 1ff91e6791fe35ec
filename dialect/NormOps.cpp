//===- NormOps.cpp - norm dialect operations
//--------------------------------===//
//
// Each op maps its attributes onto a NormDescription and its operands and
// results onto roles; verification is shared (NormDescription.cpp).
//
//===----------------------------------------------------------------------===//

#include "dialect/NormOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/Sequence.h"

using namespace mlir;
using namespace mlir::norm;

#include "dialect/NormEnums.cpp.inc"
#include "dialect/NormInterfaces.cpp.inc"

#define GET_OP_CLASSES
#include "dialect/NormOps.cpp.inc"

static int64_t getRank(Value value) {
  return cast<RankedTensorType>(value.getType()).getRank();
}

static EpsPlacement placementFor(bool epsOutside) {
  return epsOutside ? EpsPlacement::Outside : EpsPlacement::Inside;
}

/// All dims of `rank` except those in `kept`.
static SmallVector<int64_t> allDimsExcept(int64_t rank,
                                          ArrayRef<int64_t> kept) {
  SmallVector<int64_t> dims;
  for (int64_t dim : llvm::seq<int64_t>(0, rank))
    if (!llvm::is_contained(kept, dim))
      dims.push_back(dim);
  return dims;
}

//===----------------------------------------------------------------------===//
// NormalizeOp
//===----------------------------------------------------------------------===//

/// The description attributes shared by norm.normalize and
/// norm.normalize_backward.
template <typename OpTy> static NormDescription describeGenericOp(OpTy op) {
  NormDescription desc;
  desc.reductionDims = llvm::to_vector(op.getReductionDims());
  desc.center = op.getCenter();
  desc.epsilon = op.getEpsilon().convertToDouble();
  desc.epsPlacement = op.getEpsPlacement();
  if (auto affine = op.getAffineDims())
    desc.affineDims = llvm::to_vector(*affine);
  if (auto groups = op.getNumGroups())
    desc.numGroups = *groups;
  if (auto dim = op.getGroupDim())
    desc.groupDim = *dim;
  return desc;
}

NormDescription NormalizeOp::getDescription() {
  NormDescription desc = describeGenericOp(*this);
  desc.givenStats = (bool)getGivenMean();
  if (auto momentum = getMomentum())
    desc.momentum = momentum->convertToDouble();
  return desc;
}

NormOperands NormalizeOp::getNormOperands() {
  return {getInput(),    getGamma(),       getBeta(),      getGivenMean(),
          getGivenVar(), getRunningMean(), getRunningVar()};
}

/// Checks the number of statistics results of an op whose results are
/// `output` followed by a variadic group.
static LogicalResult verifyStatisticsCount(NormalizationOpInterface op,
                                           ValueRange statistics) {
  unsigned expected = 0;
  NormOperands operands = op.getNormOperands();
  assignStatisticsResults(op.getDescription(), (bool)operands.runningMean,
                          Value(), statistics, expected);
  if (statistics.size() != expected)
    return op->emitOpError()
           << "expects " << expected
           << " statistics results (saved mean if centered and computed, "
              "saved rstd if computed, updated running mean and variance if "
              "running statistics are given) but has "
           << statistics.size();
  return success();
}

NormResults NormalizeOp::getNormResults() {
  unsigned expected = 0;
  return assignStatisticsResults(getDescription(), (bool)getRunningMean(),
                                 getOutput(), getStatistics(), expected);
}

LogicalResult NormalizeOp::verify() {
  if (failed(verifyStatisticsCount(*this, getStatistics())))
    return failure();
  return verifyNormalization(*this, getDescription(), getNormOperands(),
                             getNormResults());
}

//===----------------------------------------------------------------------===//
// LayerNormOp / RMSNormOp
//===----------------------------------------------------------------------===//

/// The trailing `count` dims of a rank-`rank` tensor.
static SmallVector<int64_t> trailingDims(int64_t rank, int64_t count) {
  return llvm::to_vector(llvm::seq<int64_t>(rank - count, rank));
}

static LogicalResult verifyNormalizedNdim(Operation *op, int64_t ndim,
                                          int64_t rank) {
  if (ndim < 1 || ndim > rank)
    return op->emitOpError()
           << "normalized_ndim " << ndim << " must be in [1, " << rank << "]";
  return success();
}

static const NormRoleNames kTorchNames{"weight", "bias", "running_mean",
                                       "running_var"};

NormDescription LayerNormOp::getDescription() {
  NormDescription desc;
  desc.reductionDims = trailingDims(getRank(getInput()), getNormalizedNdim());
  desc.center = true;
  desc.epsilon = getEps().convertToDouble();
  desc.epsPlacement = placementFor(getEpsOutside());
  if (getWeight() || getBias())
    desc.affineDims = desc.reductionDims;
  return desc;
}

NormOperands LayerNormOp::getNormOperands() {
  return {getInput(), getWeight(), getBias(), {}, {}, {}, {}};
}

NormResults LayerNormOp::getNormResults() {
  return {getOutput(), getMean(), getRstd(), {}, {}};
}

LogicalResult LayerNormOp::verify() {
  if (failed(verifyNormalizedNdim(*this, getNormalizedNdim(),
                                  getRank(getInput()))))
    return failure();
  return verifyNormalization(*this, getDescription(), getNormOperands(),
                             getNormResults(), kTorchNames);
}

/// PyTorch's rms_norm default: the machine epsilon of the input type.
static double machineEpsilon(Type elementType) {
  auto floatType = cast<FloatType>(elementType);
  return std::ldexp(1.0, 1 - (int)floatType.getFPMantissaWidth());
}

NormDescription RMSNormOp::getDescription() {
  NormDescription desc;
  desc.reductionDims = trailingDims(getRank(getInput()), getNormalizedNdim());
  desc.center = false;
  desc.epsilon = getEps() ? getEps()->convertToDouble()
                          : machineEpsilon(getElementTypeOrSelf(getInput()));
  desc.epsPlacement = placementFor(getEpsOutside());
  if (getWeight())
    desc.affineDims = desc.reductionDims;
  return desc;
}

NormOperands RMSNormOp::getNormOperands() {
  return {getInput(), getWeight(), {}, {}, {}, {}, {}};
}

NormResults RMSNormOp::getNormResults() {
  return {getOutput(), {}, getRstd(), {}, {}};
}

LogicalResult RMSNormOp::verify() {
  if (failed(verifyNormalizedNdim(*this, getNormalizedNdim(),
                                  getRank(getInput()))))
    return failure();
  return verifyNormalization(*this, getDescription(), getNormOperands(),
                             getNormResults(), kTorchNames);
}

//===----------------------------------------------------------------------===//
// Channel-based norms: BatchNorm, InstanceNorm, GroupNorm
//===----------------------------------------------------------------------===//

/// Checks `channelDim` against the input rank. Batch-wise norms (instance,
/// group) keep dim 0 as the batch, so the channel cannot be dim 0 there.
static LogicalResult verifyChannelDim(Operation *op, int64_t channelDim,
                                      int64_t rank, int64_t minRank,
                                      bool batchIsDim0) {
  if (rank < minRank)
    return op->emitOpError() << "expects an input of rank >= " << minRank
                             << ", got rank " << rank;
  int64_t lowest = batchIsDim0 ? 1 : 0;
  if (channelDim < lowest || channelDim >= rank)
    return op->emitOpError() << "channel_dim " << channelDim << " must be in ["
                             << lowest << ", " << rank - 1 << "]";
  return success();
}

NormDescription BatchNormOp::getDescription() {
  NormDescription desc;
  int64_t channel = getChannelDim();
  desc.reductionDims = allDimsExcept(getRank(getInput()), {channel});
  desc.center = true;
  desc.epsilon = getEps().convertToDouble();
  desc.epsPlacement = placementFor(getEpsOutside());
  if (getWeight() || getBias())
    desc.affineDims = {channel};
  desc.givenStats = !getTraining();
  if (getTraining() && getRunningMean())
    desc.momentum = getMomentum().convertToDouble();
  return desc;
}

NormOperands BatchNormOp::getNormOperands() {
  NormOperands operands{getInput(), getWeight(), getBias(), {}, {}, {}, {}};
  if (getTraining()) {
    operands.runningMean = getRunningMean();
    operands.runningVar = getRunningVar();
  } else {
    operands.givenMean = getRunningMean();
    operands.givenVar = getRunningVar();
  }
  return operands;
}

NormResults BatchNormOp::getNormResults() {
  unsigned expected = 0;
  return assignStatisticsResults(getDescription(),
                                 getTraining() && getRunningMean(), getOutput(),
                                 getStatistics(), expected);
}

LogicalResult BatchNormOp::verify() {
  if (failed(verifyChannelDim(*this, getChannelDim(), getRank(getInput()),
                              /*minRank=*/2, /*batchIsDim0=*/false)))
    return failure();
  if (!getTraining() && !getRunningMean())
    return emitOpError("inference form (no 'training') needs "
                       "running(%running_mean, %running_var)");
  if (failed(verifyStatisticsCount(*this, getStatistics())))
    return failure();
  return verifyNormalization(*this, getDescription(), getNormOperands(),
                             getNormResults(), kTorchNames);
}

/// InstanceNorm and GroupNorm: statistics per sample (dim 0) and channel,
/// reduced over every other dim; gamma/beta per channel.
template <typename OpT>
static NormDescription describePerSampleChannelNorm(OpT op) {
  NormDescription desc;
  int64_t channel = op.getChannelDim();
  desc.reductionDims = allDimsExcept(getRank(op.getInput()), {0, channel});
  desc.center = true;
  desc.epsilon = op.getEps().convertToDouble();
  desc.epsPlacement = placementFor(op.getEpsOutside());
  if (op.getWeight() || op.getBias())
    desc.affineDims = {channel};
  return desc;
}

NormDescription InstanceNormOp::getDescription() {
  return describePerSampleChannelNorm(*this);
}

NormOperands InstanceNormOp::getNormOperands() {
  return {getInput(), getWeight(), getBias(), {}, {}, {}, {}};
}

NormResults InstanceNormOp::getNormResults() {
  return {getOutput(), getMean(), getRstd(), {}, {}};
}

LogicalResult InstanceNormOp::verify() {
  if (failed(verifyChannelDim(*this, getChannelDim(), getRank(getInput()),
                              /*minRank=*/3, /*batchIsDim0=*/true)))
    return failure();
  return verifyNormalization(*this, getDescription(), getNormOperands(),
                             getNormResults(), kTorchNames);
}

NormDescription GroupNormOp::getDescription() {
  // The channel dim is also reduced, within each group of channels.
  NormDescription desc = describePerSampleChannelNorm(*this);
  desc.groupDim = getChannelDim();
  desc.numGroups = getNumGroups();
  return desc;
}

NormOperands GroupNormOp::getNormOperands() {
  return {getInput(), getWeight(), getBias(), {}, {}, {}, {}};
}

NormResults GroupNormOp::getNormResults() {
  return {getOutput(), getMean(), getRstd(), {}, {}};
}

LogicalResult GroupNormOp::verify() {
  if (failed(verifyChannelDim(*this, getChannelDim(), getRank(getInput()),
                              /*minRank=*/2, /*batchIsDim0=*/true)))
    return failure();
  return verifyNormalization(*this, getDescription(), getNormOperands(),
                             getNormResults(), kTorchNames);
}

//===----------------------------------------------------------------------===//
// NormalizeBackwardOp
//===----------------------------------------------------------------------===//

NormDescription NormalizeBackwardOp::getDescription() {
  NormDescription desc = describeGenericOp(*this);
  desc.givenStats = (bool)getVar();
  return desc;
}

NormBackwardRoles NormalizeBackwardOp::getRoles() {
  NormBackwardRoles roles;
  roles.gradOutput = getGradOutput();
  roles.input = getInput();
  roles.gamma = getGamma();
  roles.mean = getMean();
  roles.rstd = getRstd();
  roles.var = getVar();
  auto results = getGradients();
  unsigned next = 0;
  auto take = [&](bool wanted) {
    return wanted && next < results.size() ? results[next++] : Value();
  };
  roles.gradInput = take(getGradInput());
  roles.gradGamma = take(getGradWeight());
  roles.gradBeta = take(getGradBias());
  return roles;
}

LogicalResult NormalizeBackwardOp::verify() {
  unsigned expected = getGradInput() + getGradWeight() + getGradBias();
  if (getGradients().size() != expected)
    return emitOpError() << "expects " << expected
                         << " results (one per requested gradient: "
                            "grad_input, grad_weight, grad_bias) but has "
                         << getGradients().size();
  return verifyNormalizationBackward(*this, getDescription(), getRoles());
}
