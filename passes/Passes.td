//===- Passes.td - norm dialect passes ---------------------*- tablegen -*-===//

#ifndef NORM_PASSES_TD
#define NORM_PASSES_TD

include "mlir/Pass/PassBase.td"

def NormGeneralize : Pass<"norm-generalize"> {
  let summary = "Rewrite named norm ops into the generic norm.normalize";
  let description = [{
    Every named op (layer_norm, rms_norm, batch_norm, instance_norm,
    group_norm) becomes one `norm.normalize` whose attributes state the same
    computation: reduced dims, centering, eps and its placement, affine dims,
    groups, given or running statistics. Later passes and lowerings consume
    only the generic op.
  }];
  let dependentDialects = [];
}

def NormDeriveBackward : Pass<"norm-derive-backward", "::mlir::ModuleOp"> {
  let summary = "Derive backward kernels from forward norm specs";
  let description = [{
    A spec function whose attribute `norm.backward` lists gradients
    (`["dx", "dgamma", "dbeta"]`, any subset; a unit attribute asks for
    every gradient the norm has) gets a sibling function `@<name>_backward`
    that computes them with one `norm.normalize_backward` op. Its arguments:
    the output gradient `dy`, `x`, `gamma` (if the norm is affine), then the
    forward's saved mean (when centered) and rstd, or the given mean and
    variance of an inference-form norm. The backward op carries the
    forward's description unchanged: one derivation serves every variant.
  }];
  let dependentDialects = ["::mlir::func::FuncDialect"];
}

#endif // NORM_PASSES_TD
