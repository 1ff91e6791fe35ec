// RUN: norm-opt %s -split-input-file --norm-derive-backward -verify-diagnostics

// expected-error @+1 {{backward of 'no_weight' asks for dgamma but the norm has no weight}}
func.func @no_weight(%x: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>, tensor<4xf32>)
    attributes {norm.backward = ["dx", "dgamma"]} {
  %y, %m, %r = norm.layer_norm %x : (tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>, tensor<4xf32>)
  return %y, %m, %r : tensor<4x8xf32>, tensor<4xf32>, tensor<4xf32>
}

// -----

// expected-error @+1 {{backward of 'no_bias' asks for dbeta but the norm has no bias}}
func.func @no_bias(%x: tensor<4x8xf32>, %w: tensor<8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>)
    attributes {norm.backward = ["dbeta"]} {
  %y, %r = norm.rms_norm %x weight(%w) : (tensor<4x8xf32>, tensor<8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>)
  return %y, %r : tensor<4x8xf32>, tensor<4xf32>
}

// -----

// expected-error @+1 {{unknown gradient "dmean" in 'norm.backward' (expected "dx", "dgamma", "dbeta")}}
func.func @unknown(%x: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>)
    attributes {norm.backward = ["dmean"]} {
  %y, %r = norm.rms_norm %x : (tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>)
  return %y, %r : tensor<4x8xf32>, tensor<4xf32>
}

// -----

// expected-error @+1 {{'norm.backward' lists no gradient}}
func.func @empty(%x: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>)
    attributes {norm.backward = []} {
  %y, %r = norm.rms_norm %x : (tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>)
  return %y, %r : tensor<4x8xf32>, tensor<4xf32>
}

// -----

// expected-error @+1 {{backward requested for 'nothing', which has no norm op}}
func.func @nothing(%x: tensor<4x8xf32>) -> tensor<4x8xf32> attributes {norm.backward} {
  return %x : tensor<4x8xf32>
}
