// RUN: norm-opt %s -split-input-file | norm-opt -split-input-file | FileCheck %s
// RUN: norm-opt %s -split-input-file -mlir-print-op-generic | norm-opt -split-input-file | FileCheck %s

// CHECK-LABEL: func @layer_norm_f32_dynamic
// Attributes equal to their defaults (eps 1e-5, normalized_ndim 1) are elided.
// CHECK: norm.layer_norm %{{.*}} weight(%{{.*}}) bias(%{{.*}}) : (tensor<?x768xf32>, tensor<768xf32>, tensor<768xf32>) -> (tensor<?x768xf32>, tensor<?xf32>, tensor<?xf32>)
func.func @layer_norm_f32_dynamic(%x: tensor<?x768xf32>, %w: tensor<768xf32>, %b: tensor<768xf32>)
    -> (tensor<?x768xf32>, tensor<?xf32>, tensor<?xf32>) {
  %y, %m, %r = norm.layer_norm %x weight(%w) bias(%b) {eps = 1.0e-05 : f64, normalized_ndim = 1 : i64}
      : (tensor<?x768xf32>, tensor<768xf32>, tensor<768xf32>) -> (tensor<?x768xf32>, tensor<?xf32>, tensor<?xf32>)
  return %y, %m, %r : tensor<?x768xf32>, tensor<?xf32>, tensor<?xf32>
}

// -----

// CHECK-LABEL: func @layer_norm_f16_static_two_dims
// CHECK: norm.layer_norm %{{.*}} {eps_outside, normalized_ndim = 2 : i64}
// CHECK-SAME: (tensor<4x8x16xf16>) -> (tensor<4x8x16xf16>, tensor<4xf32>, tensor<4xf32>)
func.func @layer_norm_f16_static_two_dims(%x: tensor<4x8x16xf16>)
    -> (tensor<4x8x16xf16>, tensor<4xf32>, tensor<4xf32>) {
  %y, %m, %r = norm.layer_norm %x {normalized_ndim = 2 : i64, eps_outside}
      : (tensor<4x8x16xf16>) -> (tensor<4x8x16xf16>, tensor<4xf32>, tensor<4xf32>)
  return %y, %m, %r : tensor<4x8x16xf16>, tensor<4xf32>, tensor<4xf32>
}

// -----

// CHECK-LABEL: func @rms_norm_bf16
// CHECK: norm.rms_norm %{{.*}} weight(%{{.*}}) {eps = 9.9999999999999995E-7 : f64}
// CHECK-SAME: (tensor<?x?xbf16>, tensor<?xbf16>) -> (tensor<?x?xbf16>, tensor<?xf32>)
func.func @rms_norm_bf16(%x: tensor<?x?xbf16>, %w: tensor<?xbf16>) -> (tensor<?x?xbf16>, tensor<?xf32>) {
  %y, %r = norm.rms_norm %x weight(%w) {eps = 1.0e-06 : f64}
      : (tensor<?x?xbf16>, tensor<?xbf16>) -> (tensor<?x?xbf16>, tensor<?xf32>)
  return %y, %r : tensor<?x?xbf16>, tensor<?xf32>
}

// -----

// CHECK-LABEL: func @rms_norm_f64_default_eps
// CHECK: norm.rms_norm %{{.*}} : (tensor<2x3xf64>) -> (tensor<2x3xf64>, tensor<2xf64>)
func.func @rms_norm_f64_default_eps(%x: tensor<2x3xf64>) -> (tensor<2x3xf64>, tensor<2xf64>) {
  %y, %r = norm.rms_norm %x : (tensor<2x3xf64>) -> (tensor<2x3xf64>, tensor<2xf64>)
  return %y, %r : tensor<2x3xf64>, tensor<2xf64>
}

// -----

// CHECK-LABEL: func @batch_norm_training
// CHECK: norm.batch_norm %{{.*}} weight(%{{.*}}) bias(%{{.*}}) running(%{{.*}}, %{{.*}}) {momentum = 2.000000e-01 : f64, training}
// CHECK-SAME: -> (tensor<?x16x?x?xbf16>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>)
func.func @batch_norm_training(%x: tensor<?x16x?x?xbf16>, %w: tensor<16xbf16>, %b: tensor<16xbf16>,
                               %rm: tensor<16xf32>, %rv: tensor<16xf32>)
    -> (tensor<?x16x?x?xbf16>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>) {
  %y, %m, %r, %nm, %nv = norm.batch_norm %x weight(%w) bias(%b) running(%rm, %rv) {training, momentum = 0.2 : f64}
      : (tensor<?x16x?x?xbf16>, tensor<16xbf16>, tensor<16xbf16>, tensor<16xf32>, tensor<16xf32>)
      -> (tensor<?x16x?x?xbf16>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>)
  return %y, %m, %r, %nm, %nv : tensor<?x16x?x?xbf16>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>
}

// -----

// CHECK-LABEL: func @batch_norm_training_no_running
// CHECK: norm.batch_norm %{{.*}} {training} : (tensor<8x4xf32>) -> (tensor<8x4xf32>, tensor<4xf32>, tensor<4xf32>)
func.func @batch_norm_training_no_running(%x: tensor<8x4xf32>) -> (tensor<8x4xf32>, tensor<4xf32>, tensor<4xf32>) {
  %y, %m, %r = norm.batch_norm %x {training} : (tensor<8x4xf32>) -> (tensor<8x4xf32>, tensor<4xf32>, tensor<4xf32>)
  return %y, %m, %r : tensor<8x4xf32>, tensor<4xf32>, tensor<4xf32>
}

// -----

// CHECK-LABEL: func @batch_norm_inference_nhwc
// CHECK: norm.batch_norm %{{.*}} running(%{{.*}}, %{{.*}}) {channel_dim = 3 : i64}
// CHECK-SAME: (tensor<2x5x5x8xf16>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x5x5x8xf16>
func.func @batch_norm_inference_nhwc(%x: tensor<2x5x5x8xf16>, %rm: tensor<8xf32>, %rv: tensor<8xf32>) -> tensor<2x5x5x8xf16> {
  %y = norm.batch_norm %x running(%rm, %rv) {channel_dim = 3 : i64}
      : (tensor<2x5x5x8xf16>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x5x5x8xf16>
  return %y : tensor<2x5x5x8xf16>
}

// -----

// CHECK-LABEL: func @instance_norm
// CHECK: norm.instance_norm %{{.*}} weight(%{{.*}}) : (tensor<?x3x?x?xf32>, tensor<3xf32>)
func.func @instance_norm(%x: tensor<?x3x?x?xf32>, %w: tensor<3xf32>)
    -> (tensor<?x3x?x?xf32>, tensor<?x3xf32>, tensor<?x3xf32>) {
  %y, %m, %r = norm.instance_norm %x weight(%w)
      : (tensor<?x3x?x?xf32>, tensor<3xf32>) -> (tensor<?x3x?x?xf32>, tensor<?x3xf32>, tensor<?x3xf32>)
  return %y, %m, %r : tensor<?x3x?x?xf32>, tensor<?x3xf32>, tensor<?x3xf32>
}

// -----

// CHECK-LABEL: func @group_norm_nhwc
// CHECK: norm.group_norm %{{.*}} weight(%{{.*}}) bias(%{{.*}}) {channel_dim = 3 : i64, num_groups = 4 : i64}
// CHECK-SAME: -> (tensor<?x7x7x32xf16>, tensor<?x4xf32>, tensor<?x4xf32>)
func.func @group_norm_nhwc(%x: tensor<?x7x7x32xf16>, %w: tensor<32xf16>, %b: tensor<32xf16>)
    -> (tensor<?x7x7x32xf16>, tensor<?x4xf32>, tensor<?x4xf32>) {
  %y, %m, %r = norm.group_norm %x weight(%w) bias(%b) {num_groups = 4 : i64, channel_dim = 3 : i64}
      : (tensor<?x7x7x32xf16>, tensor<32xf16>, tensor<32xf16>) -> (tensor<?x7x7x32xf16>, tensor<?x4xf32>, tensor<?x4xf32>)
  return %y, %m, %r : tensor<?x7x7x32xf16>, tensor<?x4xf32>, tensor<?x4xf32>
}

// -----

// CHECK-LABEL: func @normalize_layer_norm
// CHECK: norm.normalize %{{.*}} gamma(%{{.*}}) beta(%{{.*}}) reduce [1] center eps(1.000000e-05, inside) affine [1]
// CHECK-SAME: -> (tensor<?x64xf32>, tensor<?xf32>, tensor<?xf32>)
func.func @normalize_layer_norm(%x: tensor<?x64xf32>, %g: tensor<64xf32>, %b: tensor<64xf32>)
    -> (tensor<?x64xf32>, tensor<?xf32>, tensor<?xf32>) {
  %y, %s:2 = norm.normalize %x gamma(%g) beta(%b) reduce [1] center eps(1.0e-05, inside) affine [1]
      : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?xf32>, tensor<?xf32>)
  return %y, %s#0, %s#1 : tensor<?x64xf32>, tensor<?xf32>, tensor<?xf32>
}

// -----

// CHECK-LABEL: func @normalize_rms_eps_outside_f64
// CHECK: norm.normalize %{{.*}} reduce [1] eps(1.000000e-08, outside) : (tensor<3x5xf64>) -> (tensor<3x5xf64>, tensor<3xf64>)
func.func @normalize_rms_eps_outside_f64(%x: tensor<3x5xf64>) -> (tensor<3x5xf64>, tensor<3xf64>) {
  %y, %r = norm.normalize %x reduce [1] eps(1.0e-08, outside) : (tensor<3x5xf64>) -> (tensor<3x5xf64>, tensor<3xf64>)
  return %y, %r : tensor<3x5xf64>, tensor<3xf64>
}

// -----

// CHECK-LABEL: func @normalize_given_stats
// CHECK: norm.normalize %{{.*}} stats(%{{.*}}, %{{.*}}) reduce [0, 2] center eps(1.000000e-03, inside)
// CHECK-SAME: (tensor<?x4x9xbf16>, tensor<4xf32>, tensor<4xf32>) -> tensor<?x4x9xbf16>
func.func @normalize_given_stats(%x: tensor<?x4x9xbf16>, %m: tensor<4xf32>, %v: tensor<4xf32>) -> tensor<?x4x9xbf16> {
  %y = norm.normalize %x stats(%m, %v) reduce [0, 2] center eps(1.0e-03, inside)
      : (tensor<?x4x9xbf16>, tensor<4xf32>, tensor<4xf32>) -> tensor<?x4x9xbf16>
  return %y : tensor<?x4x9xbf16>
}

// -----

// CHECK-LABEL: func @normalize_groups_running
// CHECK: norm.normalize %{{.*}} running(%{{.*}}, %{{.*}}) reduce [2] center eps(1.000000e-05, inside) groups 2 along 1 momentum 5.000000e-01
// CHECK-SAME: -> (tensor<3x8x5xf32>, tensor<3x2xf32>, tensor<3x2xf32>, tensor<3x2xf32>, tensor<3x2xf32>)
func.func @normalize_groups_running(%x: tensor<3x8x5xf32>, %rm: tensor<3x2xf32>, %rv: tensor<3x2xf32>)
    -> (tensor<3x8x5xf32>, tensor<3x2xf32>, tensor<3x2xf32>, tensor<3x2xf32>, tensor<3x2xf32>) {
  %y, %s:4 = norm.normalize %x running(%rm, %rv) reduce [2] center eps(1.0e-05, inside) groups 2 along 1 momentum 0.5
      : (tensor<3x8x5xf32>, tensor<3x2xf32>, tensor<3x2xf32>) -> (tensor<3x8x5xf32>, tensor<3x2xf32>, tensor<3x2xf32>, tensor<3x2xf32>, tensor<3x2xf32>)
  return %y, %s#0, %s#1, %s#2, %s#3 : tensor<3x8x5xf32>, tensor<3x2xf32>, tensor<3x2xf32>, tensor<3x2xf32>, tensor<3x2xf32>
}

// -----

// CHECK-LABEL: func @normalize_backward_layer_norm
// CHECK: norm.normalize_backward %{{.*}}, %{{.*}} gamma(%{{.*}}) mean(%{{.*}}) rstd(%{{.*}}) reduce [1] center eps(1.000000e-05, inside) affine [1] {grad_bias, grad_input, grad_weight}
// CHECK-SAME: -> (tensor<?x64xbf16>, tensor<64xbf16>, tensor<64xbf16>)
func.func @normalize_backward_layer_norm(%dy: tensor<?x64xbf16>, %x: tensor<?x64xbf16>, %g: tensor<64xbf16>, %m: tensor<?xf32>, %r: tensor<?xf32>)
    -> (tensor<?x64xbf16>, tensor<64xbf16>, tensor<64xbf16>) {
  %dx, %dg, %db = norm.normalize_backward %dy, %x gamma(%g) mean(%m) rstd(%r) reduce [1] center eps(1.0e-05, inside) affine [1] {grad_input, grad_weight, grad_bias}
      : (tensor<?x64xbf16>, tensor<?x64xbf16>, tensor<64xbf16>, tensor<?xf32>, tensor<?xf32>) -> (tensor<?x64xbf16>, tensor<64xbf16>, tensor<64xbf16>)
  return %dx, %dg, %db : tensor<?x64xbf16>, tensor<64xbf16>, tensor<64xbf16>
}

// -----

// CHECK-LABEL: func @normalize_backward_given_stats_groups
// CHECK: norm.normalize_backward %{{.*}}, %{{.*}} mean(%{{.*}}) var(%{{.*}}) reduce [2] center eps(1.000000e-05, outside) groups 2 along 1 {grad_input}
func.func @normalize_backward_given_stats_groups(%dy: tensor<3x8x5xf64>, %x: tensor<3x8x5xf64>, %m: tensor<3x2xf64>, %v: tensor<3x2xf64>) -> tensor<3x8x5xf64> {
  %dx = norm.normalize_backward %dy, %x mean(%m) var(%v) reduce [2] center eps(1.0e-05, outside) groups 2 along 1 {grad_input}
      : (tensor<3x8x5xf64>, tensor<3x8x5xf64>, tensor<3x2xf64>, tensor<3x2xf64>) -> tensor<3x8x5xf64>
  return %dx : tensor<3x8x5xf64>
}
