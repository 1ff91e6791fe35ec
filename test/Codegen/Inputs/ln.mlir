func.func @ln(%x: tensor<?x64xf32>, %w: tensor<64xf32>, %b: tensor<64xf32>)
    -> (tensor<?x64xf32>, tensor<?xf32>, tensor<?xf32>) {
  %y, %mean, %rstd = norm.layer_norm %x weight(%w) bias(%b)
      : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?xf32>, tensor<?xf32>)
  return %y, %mean, %rstd : tensor<?x64xf32>, tensor<?xf32>, tensor<?xf32>
}
