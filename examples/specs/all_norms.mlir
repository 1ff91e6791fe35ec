// Every named normalization of the norm dialect, as a user would write them.
// `normc` compiles each function into one exported kernel.

// LayerNorm over the hidden dim of a [tokens, 768] activation.
func.func @layer_norm(%x: tensor<?x768xf32>, %w: tensor<768xf32>, %b: tensor<768xf32>)
    -> (tensor<?x768xf32>, tensor<?xf32>, tensor<?xf32>) {
  %y, %mean, %rstd = norm.layer_norm %x weight(%w) bias(%b) {eps = 1.0e-05 : f64}
      : (tensor<?x768xf32>, tensor<768xf32>, tensor<768xf32>)
      -> (tensor<?x768xf32>, tensor<?xf32>, tensor<?xf32>)
  return %y, %mean, %rstd : tensor<?x768xf32>, tensor<?xf32>, tensor<?xf32>
}

// RMSNorm (Llama style) on bf16 activations.
func.func @rms_norm(%x: tensor<?x4096xbf16>, %w: tensor<4096xbf16>)
    -> (tensor<?x4096xbf16>, tensor<?xf32>) {
  %y, %rstd = norm.rms_norm %x weight(%w) {eps = 1.0e-06 : f64}
      : (tensor<?x4096xbf16>, tensor<4096xbf16>) -> (tensor<?x4096xbf16>, tensor<?xf32>)
  return %y, %rstd : tensor<?x4096xbf16>, tensor<?xf32>
}

// BatchNorm training on NCHW: batch statistics and running-stat update.
func.func @batch_norm_train(%x: tensor<?x64x56x56xf32>, %w: tensor<64xf32>, %b: tensor<64xf32>,
                            %rm: tensor<64xf32>, %rv: tensor<64xf32>)
    -> (tensor<?x64x56x56xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>) {
  %y, %mean, %rstd, %nrm, %nrv = norm.batch_norm %x weight(%w) bias(%b) running(%rm, %rv)
      {training, momentum = 1.000000e-01 : f64}
      : (tensor<?x64x56x56xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>)
      -> (tensor<?x64x56x56xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>)
  return %y, %mean, %rstd, %nrm, %nrv
      : tensor<?x64x56x56xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>
}

// BatchNorm inference on NHWC: running statistics are given.
func.func @batch_norm_infer(%x: tensor<?x56x56x64xf16>, %w: tensor<64xf16>, %b: tensor<64xf16>,
                            %rm: tensor<64xf32>, %rv: tensor<64xf32>) -> tensor<?x56x56x64xf16> {
  %y = norm.batch_norm %x weight(%w) bias(%b) running(%rm, %rv) {channel_dim = 3 : i64}
      : (tensor<?x56x56x64xf16>, tensor<64xf16>, tensor<64xf16>, tensor<64xf32>, tensor<64xf32>)
      -> tensor<?x56x56x64xf16>
  return %y : tensor<?x56x56x64xf16>
}

// InstanceNorm on NCHW without affine parameters.
func.func @instance_norm(%x: tensor<?x64x32x32xf32>)
    -> (tensor<?x64x32x32xf32>, tensor<?x64xf32>, tensor<?x64xf32>) {
  %y, %mean, %rstd = norm.instance_norm %x
      : (tensor<?x64x32x32xf32>) -> (tensor<?x64x32x32xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  return %y, %mean, %rstd : tensor<?x64x32x32xf32>, tensor<?x64xf32>, tensor<?x64xf32>
}

// GroupNorm with 32 groups on NHWC, eps outside the square root.
func.func @group_norm(%x: tensor<?x28x28x256xf32>, %w: tensor<256xf32>, %b: tensor<256xf32>)
    -> (tensor<?x28x28x256xf32>, tensor<?x32xf32>, tensor<?x32xf32>) {
  %y, %mean, %rstd = norm.group_norm %x weight(%w) bias(%b)
      {num_groups = 32 : i64, channel_dim = 3 : i64, eps_outside}
      : (tensor<?x28x28x256xf32>, tensor<256xf32>, tensor<256xf32>)
      -> (tensor<?x28x28x256xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
  return %y, %mean, %rstd : tensor<?x28x28x256xf32>, tensor<?x32xf32>, tensor<?x32xf32>
}
