//===- NormBase.td - norm dialect definition ---------------*- tablegen -*-===//
//
// The `norm` dialect describes normalization layers declaratively.
//
//===----------------------------------------------------------------------===//

#ifndef NORM_BASE_TD
#define NORM_BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/EnumAttr.td"

def Norm_Dialect : Dialect {
  let name = "norm";
  let cppNamespace = "::mlir::norm";
  let summary = "Declarative normalization layers";
  let description = [{
    The `norm` dialect states *what* a normalization computes, not how. One
    generic op, `norm.normalize`, describes every variant: which dimensions
    are reduced, whether the mean is subtracted, where epsilon goes, which
    dimensions the affine parameters index, how channels split into groups,
    and whether statistics are computed or given. The named ops
    (`norm.layer_norm`, `norm.rms_norm`, `norm.batch_norm`,
    `norm.instance_norm`, `norm.group_norm`) mirror `torch.nn.functional`
    and are rewritten into the generic op by `--norm-generalize`; every later
    pass and lowering consumes the generic op only.
  }];
}

def Norm_EpsPlacement : I32EnumAttr<"EpsPlacement",
    "where epsilon is added when computing the reciprocal std", [
      I32EnumAttrCase<"Inside", 0, "inside">,
      I32EnumAttrCase<"Outside", 1, "outside">
    ]> {
  let cppNamespace = "::mlir::norm";
  let description = [{
    `inside`: rstd = 1 / sqrt(var + eps) (PyTorch, Apex, HF Llama).
    `outside`: rstd = 1 / (sqrt(var) + eps) (e.g. OLMo).
  }];
}

class Norm_Op<string mnemonic, list<Trait> traits = []>
    : Op<Norm_Dialect, mnemonic, traits>;

// Element types a norm op accepts for its data tensors.
def Norm_FloatTensor : RankedTensorOf<[F32, F16, BF16, F64]>;

#endif // NORM_BASE_TD
