//===- NormOps.td - norm dialect operations ----------------*- tablegen -*-===//

#ifndef NORM_OPS_TD
#define NORM_OPS_TD

include "dialect/NormBase.td"
include "dialect/NormInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

//===----------------------------------------------------------------------===//
// Generic op
//===----------------------------------------------------------------------===//

def Norm_NormalizeOp : Norm_Op<"normalize", [
    Pure, AttrSizedOperandSegments,
    DeclareOpInterfaceMethods<Norm_NormalizationOpInterface>]> {
  let summary = "Generic normalization: one description for every variant";
  let description = [{
    Normalizes `input` over the elements selected by `reduce`:

    ```
    mean = average(input) over the reduced set      (0 without `center`)
    var  = average((input - mean)^2)                (biased)
    rstd = 1 / sqrt(var + eps)                      (eps `inside`)
         = 1 / (sqrt(var) + eps)                    (eps `outside`)
    output = (input - mean) * rstd * gamma + beta
    ```

    * `reduce [dims]`: input dimensions reduced for one statistic.
    * `center`: subtract the mean (LayerNorm, BatchNorm, InstanceNorm,
      GroupNorm); without it the op is an RMS normalization.
    * `eps(value, inside|outside)`: epsilon and where it is added.
    * `affine [dims]`: the input dimensions that `gamma`/`beta` index, in
      ascending order; gamma's shape is the input's sizes at these dims.
    * `groups G along d`: dimension `d` (not reduced) is viewed as
      `[G, size(d)/G]`; the inner part is reduced, the group index is kept.
    * `stats(%mean, %var)`: statistics are given (BatchNorm inference); no
      reduction happens and the op is elementwise.
    * `running(%mean, %var)` with `momentum m`: running statistics updated as
      `(1-m)*running + m*batch`, using the unbiased variance (PyTorch).

    Statistics have the shape of the kept dims (group dim replaced by `G`)
    and element type f32 (f64 for f64 inputs). Results: `output`, then the
    saved `mean` (with `center`, when statistics are computed), the saved
    `rstd` (when computed), and the updated running mean and variance (when
    `running` is given).

    Example (LayerNorm over the last dim):

    ```mlir
    %y, %mean, %rstd = norm.normalize %x gamma(%g) beta(%b) reduce [1]
        center eps(1.0e-05, inside) affine [1]
        : (tensor<?x4096xf32>, tensor<4096xf32>, tensor<4096xf32>)
        -> (tensor<?x4096xf32>, tensor<?xf32>, tensor<?xf32>)
    ```
  }];

  let arguments = (ins
    Norm_FloatTensor:$input,
    Optional<Norm_FloatTensor>:$gamma,
    Optional<Norm_FloatTensor>:$beta,
    Optional<Norm_FloatTensor>:$given_mean,
    Optional<Norm_FloatTensor>:$given_var,
    Optional<Norm_FloatTensor>:$running_mean,
    Optional<Norm_FloatTensor>:$running_var,
    DenseI64ArrayAttr:$reduction_dims,
    UnitAttr:$center,
    F64Attr:$epsilon,
    Norm_EpsPlacement:$eps_placement,
    OptionalAttr<DenseI64ArrayAttr>:$affine_dims,
    OptionalAttr<I64Attr>:$num_groups,
    OptionalAttr<I64Attr>:$group_dim,
    OptionalAttr<F64Attr>:$momentum);

  // Which statistics results exist follows from the attributes and
  // operands (see getNormResults), so they are one variadic group.
  let results = (outs
    Norm_FloatTensor:$output,
    Variadic<Norm_FloatTensor>:$statistics);

  let assemblyFormat = [{
    $input
    (`gamma` `(` $gamma^ `)`)?
    (`beta` `(` $beta^ `)`)?
    (`stats` `(` $given_mean^ `,` $given_var `)`)?
    (`running` `(` $running_mean^ `,` $running_var `)`)?
    `reduce` $reduction_dims
    (`center` $center^)?
    `eps` `(` $epsilon `,` $eps_placement `)`
    (`affine` $affine_dims^)?
    (`groups` $num_groups^ `along` $group_dim)?
    (`momentum` $momentum^)?
    attr-dict `:` functional-type(operands, results)
  }];

  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Backward
//===----------------------------------------------------------------------===//

def Norm_NormalizeBackwardOp : Norm_Op<"normalize_backward", [
    Pure, AttrSizedOperandSegments]> {
  let summary = "Gradients of a normalization, from its description";
  let description = [{
    The backward of `norm.normalize` with the same description attributes
    (`reduce`, `center`, `eps`, `affine`, `groups`, given statistics). It is
    built by `--norm-derive-backward` from the forward op, never written per
    norm. With g = dy * gamma, xhat = (x - mean) * rstd and means over the
    reduced set:

    ```
    dx     = rstd * (g - mean(g)) - k * xhat * mean(g * xhat)   (center)
           = rstd * g             - k * xhat * mean(g * xhat)   (no center)
           = rstd * g                                           (given stats)
    k      = -2 rstd'(var) / rstd^2
           = rstd                      eps inside:  rstd = 1/sqrt(var+eps)
           = 1 / sqrt(var)             eps outside: rstd = 1/(sqrt(var)+eps)
    dgamma = sum(dy * xhat), dbeta = sum(dy)  over the dims gamma does not index
    ```

    Operands: the output gradient `dy`, the input `x`, `gamma` if the forward
    had it, and the forward's saved `mean` (when centered) and `rstd`, or the
    given `mean` and `var` of the inference form (`stats_given`). Results, in
    this order, as requested by `grad_input`, `grad_weight`, `grad_bias`:
    dx, dgamma, dbeta.
  }];

  let arguments = (ins
    Norm_FloatTensor:$grad_output,
    Norm_FloatTensor:$input,
    Optional<Norm_FloatTensor>:$gamma,
    Optional<Norm_FloatTensor>:$mean,
    Optional<Norm_FloatTensor>:$rstd,
    Optional<Norm_FloatTensor>:$var,
    DenseI64ArrayAttr:$reduction_dims,
    UnitAttr:$center,
    F64Attr:$epsilon,
    Norm_EpsPlacement:$eps_placement,
    OptionalAttr<DenseI64ArrayAttr>:$affine_dims,
    OptionalAttr<I64Attr>:$num_groups,
    OptionalAttr<I64Attr>:$group_dim,
    UnitAttr:$grad_input,
    UnitAttr:$grad_weight,
    UnitAttr:$grad_bias);

  let results = (outs Variadic<Norm_FloatTensor>:$gradients);

  let assemblyFormat = [{
    $grad_output `,` $input
    (`gamma` `(` $gamma^ `)`)?
    (`mean` `(` $mean^ `)`)?
    (`rstd` `(` $rstd^ `)`)?
    (`var` `(` $var^ `)`)?
    `reduce` $reduction_dims
    (`center` $center^)?
    `eps` `(` $epsilon `,` $eps_placement `)`
    (`affine` $affine_dims^)?
    (`groups` $num_groups^ `along` $group_dim)?
    attr-dict `:` functional-type(operands, results)
  }];

  let extraClassDeclaration = [{
    /// The forward's description (given statistics when `var` is present).
    NormDescription getDescription();
    NormBackwardRoles getRoles();
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Named ops (PyTorch-like attributes)
//===----------------------------------------------------------------------===//

class Norm_NamedOp<string mnemonic, list<Trait> traits = []>
    : Norm_Op<mnemonic, !listconcat(traits, [
        Pure, DeclareOpInterfaceMethods<Norm_NormalizationOpInterface>])> {
  let hasVerifier = 1;
}

def Norm_LayerNormOp : Norm_NamedOp<"layer_norm", [AttrSizedOperandSegments]> {
  let summary = "Layer normalization over the trailing dims";
  let description = [{
    `torch.nn.functional.layer_norm`: normalizes over the last
    `normalized_ndim` dims; `weight`/`bias` have the shape of those dims.
    Results: output, saved mean and saved rstd (per leading index).

    ```mlir
    %y, %mean, %rstd = norm.layer_norm %x weight(%w) bias(%b)
        {normalized_ndim = 1 : i64, eps = 1.0e-05 : f64}
        : (tensor<?x768xf32>, tensor<768xf32>, tensor<768xf32>)
        -> (tensor<?x768xf32>, tensor<?xf32>, tensor<?xf32>)
    ```
  }];
  let arguments = (ins
    Norm_FloatTensor:$input,
    Optional<Norm_FloatTensor>:$weight,
    Optional<Norm_FloatTensor>:$bias,
    DefaultValuedAttr<I64Attr, "1">:$normalized_ndim,
    DefaultValuedAttr<F64Attr, "1e-5">:$eps,
    UnitAttr:$eps_outside);
  let results = (outs Norm_FloatTensor:$output, Norm_FloatTensor:$mean,
                      Norm_FloatTensor:$rstd);
  let assemblyFormat = [{
    $input (`weight` `(` $weight^ `)`)? (`bias` `(` $bias^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
}

def Norm_RMSNormOp : Norm_NamedOp<"rms_norm"> {
  let summary = "RMS normalization over the trailing dims";
  let description = [{
    `torch.nn.functional.rms_norm`: `x / sqrt(mean(x^2) + eps) * weight` over
    the last `normalized_ndim` dims. Without `eps`, epsilon is the machine
    epsilon of the input element type, as in PyTorch. Results: output and
    saved rstd.
  }];
  let arguments = (ins
    Norm_FloatTensor:$input,
    Optional<Norm_FloatTensor>:$weight,
    DefaultValuedAttr<I64Attr, "1">:$normalized_ndim,
    OptionalAttr<F64Attr>:$eps,
    UnitAttr:$eps_outside);
  let results = (outs Norm_FloatTensor:$output, Norm_FloatTensor:$rstd);
  let assemblyFormat = [{
    $input (`weight` `(` $weight^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
}

def Norm_BatchNormOp : Norm_NamedOp<"batch_norm", [
    AttrSizedOperandSegments]> {
  let summary = "Batch normalization (training or inference)";
  let description = [{
    `torch.nn.functional.batch_norm`: statistics per channel (`channel_dim`,
    default 1 for NCHW; 3 for NHWC) over every other dim.

    * With `training`: batch statistics are computed; results are the output,
      the saved mean and rstd, and, when `running(%rm, %rv)` is given, the
      updated running mean and variance (momentum, unbiased variance).
    * Without `training` (inference): `running(%rm, %rv)` is required and
      used as the statistics; the only result is the output.
  }];
  let arguments = (ins
    Norm_FloatTensor:$input,
    Optional<Norm_FloatTensor>:$weight,
    Optional<Norm_FloatTensor>:$bias,
    Optional<Norm_FloatTensor>:$running_mean,
    Optional<Norm_FloatTensor>:$running_var,
    UnitAttr:$training,
    DefaultValuedAttr<F64Attr, "0.1">:$momentum,
    DefaultValuedAttr<F64Attr, "1e-5">:$eps,
    UnitAttr:$eps_outside,
    DefaultValuedAttr<I64Attr, "1">:$channel_dim);
  // training: saved mean, saved rstd, then the updated running mean and
  // variance when running statistics are given; inference: none.
  let results = (outs
    Norm_FloatTensor:$output,
    Variadic<Norm_FloatTensor>:$statistics);
  let assemblyFormat = [{
    $input (`weight` `(` $weight^ `)`)? (`bias` `(` $bias^ `)`)?
    (`running` `(` $running_mean^ `,` $running_var `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
}

def Norm_InstanceNormOp : Norm_NamedOp<"instance_norm",
                                       [AttrSizedOperandSegments]> {
  let summary = "Instance normalization over the spatial dims";
  let description = [{
    `torch.nn.functional.instance_norm` (without running statistics):
    statistics per (batch, channel) over the spatial dims. Input rank >= 3;
    batch is dim 0, the channel dim is `channel_dim` (1 for NCHW, the last
    dim for NHWC). Results: output, saved mean and rstd with shape [N, C].
  }];
  let arguments = (ins
    Norm_FloatTensor:$input,
    Optional<Norm_FloatTensor>:$weight,
    Optional<Norm_FloatTensor>:$bias,
    DefaultValuedAttr<F64Attr, "1e-5">:$eps,
    UnitAttr:$eps_outside,
    DefaultValuedAttr<I64Attr, "1">:$channel_dim);
  let results = (outs Norm_FloatTensor:$output, Norm_FloatTensor:$mean,
                      Norm_FloatTensor:$rstd);
  let assemblyFormat = [{
    $input (`weight` `(` $weight^ `)`)? (`bias` `(` $bias^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
}

def Norm_GroupNormOp : Norm_NamedOp<"group_norm", [AttrSizedOperandSegments]> {
  let summary = "Group normalization";
  let description = [{
    `torch.nn.functional.group_norm`: the channel dim (`channel_dim`, 1 for
    NCHW, the last dim for NHWC) is split into `num_groups` groups;
    statistics per (batch, group) over the group's channels and the spatial
    dims. `weight`/`bias` are per channel. Results: output, saved mean and
    rstd with shape [N, num_groups].
  }];
  let arguments = (ins
    Norm_FloatTensor:$input,
    Optional<Norm_FloatTensor>:$weight,
    Optional<Norm_FloatTensor>:$bias,
    I64Attr:$num_groups,
    DefaultValuedAttr<F64Attr, "1e-5">:$eps,
    UnitAttr:$eps_outside,
    DefaultValuedAttr<I64Attr, "1">:$channel_dim);
  let results = (outs Norm_FloatTensor:$output, Norm_FloatTensor:$mean,
                      Norm_FloatTensor:$rstd);
  let assemblyFormat = [{
    $input (`weight` `(` $weight^ `)`)? (`bias` `(` $bias^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
}

#endif // NORM_OPS_TD
