func.func @broken(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %y, %r = norm.rms_norm %x : (tensor<4x8xf32>) -> (tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}
