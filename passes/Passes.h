//===- Passes.h - norm dialect passes ---------------------------*- C++ -*-===//

#ifndef NORMC_PASSES_PASSES_H
#define NORMC_PASSES_PASSES_H

#include "dialect/NormOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Pass/Pass.h"

namespace mlir {
class RewritePatternSet;
namespace norm {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

/// Patterns rewriting every named norm op into norm.normalize.
void populateNormGeneralizePatterns(RewritePatternSet &patterns);

/// Replaces `op` by the equivalent norm.normalize (returned as is when it
/// already is one).
NormalizeOp generalizeNormOp(RewriterBase &rewriter,
                             NormalizationOpInterface op);

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

} // namespace norm
} // namespace mlir

#endif // NORMC_PASSES_PASSES_H
