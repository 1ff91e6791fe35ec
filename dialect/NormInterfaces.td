//===- NormInterfaces.td - normalization op interface ------*- tablegen -*-===//

#ifndef NORM_INTERFACES_TD
#define NORM_INTERFACES_TD

include "mlir/IR/OpBase.td"

def Norm_NormalizationOpInterface : OpInterface<"NormalizationOpInterface"> {
  let cppNamespace = "::mlir::norm";
  let description = [{
    Implemented by every op of the dialect. It exposes one shared description
    of the normalization (`NormDescription`) and the operands/results by
    role, so that verification, generalization and every later pass are
    written once for all variants.
  }];
  let methods = [
    InterfaceMethod<"The generic description of this normalization.",
      "::mlir::norm::NormDescription", "getDescription">,
    InterfaceMethod<"Operands by role (absent ones are null).",
      "::mlir::norm::NormOperands", "getNormOperands">,
    InterfaceMethod<"Results by role (absent ones are null).",
      "::mlir::norm::NormResults", "getNormResults">,
  ];
}

#endif // NORM_INTERFACES_TD
