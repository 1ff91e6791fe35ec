// The two norms of a transformer block, as an app would declare them.
// normc compiles each function into one kernel with a C entry point.

// LayerNorm over the hidden dim (BERT/GPT-2 style), any number of tokens.
func.func @layer_norm_768(%x: tensor<?x768xf32>, %w: tensor<768xf32>, %b: tensor<768xf32>)
    -> (tensor<?x768xf32>, tensor<?xf32>, tensor<?xf32>) {
  %y, %mean, %rstd = norm.layer_norm %x weight(%w) bias(%b) {eps = 1.0e-05 : f64}
      : (tensor<?x768xf32>, tensor<768xf32>, tensor<768xf32>)
      -> (tensor<?x768xf32>, tensor<?xf32>, tensor<?xf32>)
  return %y, %mean, %rstd : tensor<?x768xf32>, tensor<?xf32>, tensor<?xf32>
}

// RMSNorm (Llama style) on bf16 activations; only the output is returned.
func.func @rms_norm_4096(%x: tensor<?x4096xbf16>, %w: tensor<4096xbf16>) -> tensor<?x4096xbf16> {
  %y, %rstd = norm.rms_norm %x weight(%w) {eps = 1.0e-06 : f64}
      : (tensor<?x4096xbf16>, tensor<4096xbf16>) -> (tensor<?x4096xbf16>, tensor<?xf32>)
  return %y : tensor<?x4096xbf16>
}
