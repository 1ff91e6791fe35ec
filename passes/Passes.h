//===- Passes.h - norm dialect passes ---------------------------*- C++ -*-===//

#ifndef NORMC_PASSES_PASSES_H
#define NORMC_PASSES_PASSES_H

#include "mlir/Pass/Pass.h"

namespace mlir {
class RewritePatternSet;
namespace norm {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

/// Patterns rewriting every named norm op into norm.normalize.
void populateNormGeneralizePatterns(RewritePatternSet &patterns);

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

} // namespace norm
} // namespace mlir

#endif // NORMC_PASSES_PASSES_H
