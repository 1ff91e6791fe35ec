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

#endif // NORM_PASSES_TD
