func.func @bad_groups(%x: tensor<2x6x5xf32>) -> tensor<2x6x5xf32> {
  %y, %m, %r = norm.group_norm %x {num_groups = 4 : i64} : (tensor<2x6x5xf32>) -> (tensor<2x6x5xf32>, tensor<2x4xf32>, tensor<2x4xf32>)
  return %y : tensor<2x6x5xf32>
}
