// RUN: norm-opt %s -split-input-file --norm-form-kernels -verify-diagnostics

func.func @two_norms(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %y, %r = norm.rms_norm %x : (tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>)
  // expected-error @+1 {{kernel 'two_norms' must contain exactly one norm op and a return; this op is not supported here}}
  %z, %s = norm.rms_norm %y : (tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>)
  return %z : tensor<4x8xf32>
}

// -----

// expected-error @+1 {{kernel 'no_norm' contains no norm op}}
func.func @no_norm(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  return %x : tensor<4x8xf32>
}

// -----

func.func @returns_an_argument(%x: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %y, %r = norm.rms_norm %x : (tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>)
  // expected-error @+1 {{kernel 'returns_an_argument': returned value #1 is not a result of the norm op}}
  return %y, %x : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

func.func @returns_twice(%x: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %y, %r = norm.rms_norm %x : (tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>)
  // expected-error @+1 {{kernel 'returns_twice' returns 'y' twice}}
  return %y, %y : tensor<4x8xf32>, tensor<4x8xf32>
}
