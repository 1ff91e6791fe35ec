//===- Generalize.cpp - named norm ops to norm.normalize ------------------===//
//
// One pattern serves every named op: the op's NormDescription and its
// operands/results by role are all the generic op needs.
//
//===----------------------------------------------------------------------===//

#include "dialect/NormOps.h"
#include "passes/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::norm {
#define GEN_PASS_DEF_NORMGENERALIZE
#include "passes/Passes.h.inc"
} // namespace mlir::norm

using namespace mlir;
using namespace mlir::norm;

namespace {

/// Builds the norm.normalize equivalent of `op`.
NormalizeOp buildGenericOp(OpBuilder &builder, Location loc,
                           NormalizationOpInterface op) {
  NormDescription desc = op.getDescription();
  NormOperands operands = op.getNormOperands();
  NormResults results = op.getNormResults();
  // Statistics results in the generic op's role order; absent roles are
  // skipped, exactly as NormalizeOp::getNormResults assigns them.
  SmallVector<Type> statisticsTypes;
  for (Value value : {results.savedMean, results.savedRstd,
                      results.runningMeanOut, results.runningVarOut})
    if (value)
      statisticsTypes.push_back(value.getType());
  DescriptionAttrs attrs = getDescriptionAttrs(builder, desc);
  return NormalizeOp::create(
      builder, loc, results.output.getType(), statisticsTypes, operands.input,
      operands.gamma, operands.beta, operands.givenMean, operands.givenVar,
      operands.runningMean, operands.runningVar, attrs.reductionDims,
      attrs.center, attrs.epsilon, cast<EpsPlacementAttr>(attrs.epsPlacement),
      attrs.affineDims, attrs.numGroups, attrs.groupDim,
      desc.momentum ? builder.getF64FloatAttr(*desc.momentum) : FloatAttr());
}

struct GeneralizeNamedNorm
    : public OpInterfaceRewritePattern<NormalizationOpInterface> {
  using OpInterfaceRewritePattern::OpInterfaceRewritePattern;

  LogicalResult matchAndRewrite(NormalizationOpInterface op,
                                PatternRewriter &rewriter) const override {
    if (isa<NormalizeOp>(op))
      return rewriter.notifyMatchFailure(op, "already generic");
    generalizeNormOp(rewriter, op);
    return success();
  }
};

struct NormGeneralizePass
    : public norm::impl::NormGeneralizeBase<NormGeneralizePass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateNormGeneralizePatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace

NormalizeOp mlir::norm::generalizeNormOp(RewriterBase &rewriter,
                                         NormalizationOpInterface op) {
  if (auto generic = dyn_cast<NormalizeOp>(op.getOperation()))
    return generic;
  NormResults from = op.getNormResults();
  rewriter.setInsertionPoint(op);
  NormalizeOp generic = buildGenericOp(rewriter, op.getLoc(), op);
  NormResults to = generic.getNormResults();
  // Map results by role; the named op's result order is its own.
  SmallVector<Value> replacements;
  for (Value result : op->getResults()) {
    if (result == from.output)
      replacements.push_back(to.output);
    else if (result == from.savedMean)
      replacements.push_back(to.savedMean);
    else if (result == from.savedRstd)
      replacements.push_back(to.savedRstd);
    else if (result == from.runningMeanOut)
      replacements.push_back(to.runningMeanOut);
    else
      replacements.push_back(to.runningVarOut);
  }
  rewriter.replaceOp(op, replacements);
  return generic;
}

void mlir::norm::populateNormGeneralizePatterns(RewritePatternSet &patterns) {
  patterns.add<GeneralizeNamedNorm>(patterns.getContext());
}
