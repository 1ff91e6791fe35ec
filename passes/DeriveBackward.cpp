//===- DeriveBackward.cpp - backward kernels from forward specs -----------===//
//
// The backward of any normalization is stated once, by norm.normalize_backward
// with the forward's description; this file only wires a forward spec
// function to the saved tensors its backward needs.
//
//===----------------------------------------------------------------------===//

#include "dialect/NormOps.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

namespace mlir::norm {
#define GEN_PASS_DEF_NORMDERIVEBACKWARD
#include "passes/Passes.h.inc"
} // namespace mlir::norm

using namespace mlir;
using namespace mlir::norm;

FailureOr<func::FuncOp>
norm::deriveBackwardFunction(func::FuncOp forward,
                             const BackwardRequest &request) {
  NormalizationOpInterface normOp;
  forward.walk([&](NormalizationOpInterface op) {
    if (!normOp)
      normOp = op;
  });
  if (!normOp)
    return forward.emitError()
           << "backward requested for '" << forward.getSymName()
           << "', which has no norm op";
  NormDescription desc = normOp.getDescription();
  NormOperands operands = normOp.getNormOperands();
  NormResults results = normOp.getNormResults();
  if (request.dgamma && !operands.gamma)
    return forward.emitError() << "backward of '" << forward.getSymName()
                               << "' asks for dgamma but the norm has no "
                                  "weight";
  if (request.dbeta && !operands.beta)
    return forward.emitError() << "backward of '" << forward.getSymName()
                               << "' asks for dbeta but the norm has no "
                                  "bias";

  // Arguments: dy, x, gamma, then the saved or given statistics.
  auto xType = cast<RankedTensorType>(operands.input.getType());
  SmallVector<Type> argTypes = {xType, xType};
  if (operands.gamma)
    argTypes.push_back(operands.gamma.getType());
  Type statsType =
      desc.givenStats
          ? operands.givenMean.getType()
          : (results.savedRstd ? results.savedRstd.getType() : Type());
  bool hasMean = desc.center || desc.givenStats;
  if (hasMean)
    argTypes.push_back(statsType);
  argTypes.push_back(statsType); // rstd, or the given variance
  SmallVector<Type> resultTypes;
  if (request.dx)
    resultTypes.push_back(xType);
  Type affineType = operands.gamma  ? operands.gamma.getType()
                    : operands.beta ? operands.beta.getType()
                                    : Type();
  if (request.dgamma)
    resultTypes.push_back(affineType);
  if (request.dbeta)
    resultTypes.push_back(affineType);

  OpBuilder b(forward);
  b.setInsertionPointAfter(forward);
  Location loc = forward.getLoc();
  auto backward =
      func::FuncOp::create(b, loc, (forward.getSymName() + "_backward").str(),
                           b.getFunctionType(argTypes, resultTypes));
  // The kernel's manifest names the norm it differentiates.
  backward->setAttr("norm.forward_op",
                    b.getStringAttr(normOp->getName().stripDialect()));
  Block *entry = backward.addEntryBlock();
  b.setInsertionPointToStart(entry);
  unsigned next = 2;
  Value gamma = operands.gamma ? entry->getArgument(next++) : Value();
  Value mean = hasMean ? entry->getArgument(next++) : Value();
  Value last = entry->getArgument(next);
  DescriptionAttrs attrs = getDescriptionAttrs(b, desc);
  auto op = NormalizeBackwardOp::create(
      b, loc, resultTypes, entry->getArgument(0), entry->getArgument(1), gamma,
      mean, desc.givenStats ? Value() : last, desc.givenStats ? last : Value(),
      attrs.reductionDims, attrs.center, attrs.epsilon,
      cast<EpsPlacementAttr>(attrs.epsPlacement), attrs.affineDims,
      attrs.numGroups, attrs.groupDim,
      request.dx ? b.getUnitAttr() : UnitAttr(),
      request.dgamma ? b.getUnitAttr() : UnitAttr(),
      request.dbeta ? b.getUnitAttr() : UnitAttr());
  func::ReturnOp::create(b, loc, op.getResults());
  return backward;
}

namespace {

/// Reads the `norm.backward` attribute: a unit attribute asks for every
/// gradient the norm has, a list names them.
FailureOr<BackwardRequest> parseRequest(func::FuncOp func, Attribute attr) {
  if (isa<UnitAttr>(attr)) {
    BackwardRequest request;
    NormalizationOpInterface normOp;
    func.walk([&](NormalizationOpInterface op) { normOp = op; });
    if (normOp) {
      NormOperands operands = normOp.getNormOperands();
      request.dgamma = (bool)operands.gamma;
      request.dbeta = (bool)operands.beta;
    }
    return request;
  }
  auto list = dyn_cast<ArrayAttr>(attr);
  if (!list)
    return func.emitError()
           << "'" << kBackwardAttrName
           << "' must be a unit attribute or a list of \"dx\", \"dgamma\", "
              "\"dbeta\"";
  BackwardRequest request{false, false, false};
  for (Attribute item : list) {
    auto name = dyn_cast<StringAttr>(item);
    if (name && name.getValue() == "dx")
      request.dx = true;
    else if (name && name.getValue() == "dgamma")
      request.dgamma = true;
    else if (name && name.getValue() == "dbeta")
      request.dbeta = true;
    else
      return func.emitError()
             << "unknown gradient " << item << " in '" << kBackwardAttrName
             << "' (expected \"dx\", \"dgamma\", \"dbeta\")";
  }
  if (!request.dx && !request.dgamma && !request.dbeta)
    return func.emitError()
           << "'" << kBackwardAttrName << "' lists no gradient";
  return request;
}

struct NormDeriveBackwardPass
    : public norm::impl::NormDeriveBackwardBase<NormDeriveBackwardPass> {
  void runOnOperation() override {
    for (func::FuncOp func :
         llvm::to_vector(getOperation().getOps<func::FuncOp>())) {
      Attribute attr = func->getAttr(kBackwardAttrName);
      if (!attr)
        continue;
      FailureOr<BackwardRequest> request = parseRequest(func, attr);
      if (failed(request) || failed(deriveBackwardFunction(func, *request)))
        return signalPassFailure();
      func->removeAttr(kBackwardAttrName);
    }
  }
};

} // namespace
