// LayerNorm for training, as examples/runtime/layer_norm_runtime.cpp uses
// it: the forward of transformer_norms.mlir's layer_norm_768, marked with
// {norm.backward} so that normc also derives its backward kernel,
// layer_norm_768_backward(dy, x, gamma, mean, rstd) -> (dx, dgamma, dbeta),
// which takes the mean/rstd the forward saved.

func.func @layer_norm_768(%x: tensor<?x768xf32>, %w: tensor<768xf32>, %b: tensor<768xf32>)
    -> (tensor<?x768xf32>, tensor<?xf32>, tensor<?xf32>) attributes {norm.backward} {
  %y, %mean, %rstd = norm.layer_norm %x weight(%w) bias(%b) {eps = 1.0e-05 : f64}
      : (tensor<?x768xf32>, tensor<768xf32>, tensor<768xf32>)
      -> (tensor<?x768xf32>, tensor<?xf32>, tensor<?xf32>)
  return %y, %mean, %rstd : tensor<?x768xf32>, tensor<?xf32>, tensor<?xf32>
}
