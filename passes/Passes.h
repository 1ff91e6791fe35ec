//===- Passes.h - norm dialect passes ---------------------------*- C++ -*-===//

#ifndef NORMC_PASSES_PASSES_H
#define NORMC_PASSES_PASSES_H

#include "dialect/NormOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Pass/Pass.h"

namespace mlir {
class RewritePatternSet;
namespace norm {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

/// Patterns rewriting every named norm op into norm.normalize.
void populateNormGeneralizePatterns(RewritePatternSet &patterns);

/// Gradients a backward kernel can compute.
struct BackwardRequest {
  bool dx = true, dgamma = true, dbeta = true;
};

/// Adds `@<name>_backward` next to `forward` (a spec function with one norm
/// op) computing the requested gradients; emits an error and fails when the
/// norm lacks a requested one (dgamma without weight, dbeta without affine).
FailureOr<func::FuncOp> deriveBackwardFunction(func::FuncOp forward,
                                               const BackwardRequest &request);

/// Attribute of a spec function asking for its backward kernel.
constexpr const char *kBackwardAttrName = "norm.backward";

/// Replaces `op` by the equivalent norm.normalize (returned as is when it
/// already is one).
NormalizeOp generalizeNormOp(RewriterBase &rewriter,
                             NormalizationOpInterface op);

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

} // namespace norm
} // namespace mlir

#endif // NORMC_PASSES_PASSES_H
