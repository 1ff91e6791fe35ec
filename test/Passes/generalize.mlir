// RUN: norm-opt %s -split-input-file --norm-generalize | FileCheck %s

// Each CHECK pins the whole generic op: every attribute (reduced dims,
// centering, eps value and placement, affine dims, groups, momentum) and the
// operand/result roles. A wrong attribute fails the match.

// CHECK-LABEL: func @layer_norm
// CHECK-SAME: (%[[X:.*]]: tensor<?x768xf32>, %[[W:.*]]: tensor<768xf32>, %[[B:.*]]: tensor<768xf32>)
// CHECK: %[[Y:.*]], %[[S:.*]]:2 = norm.normalize %[[X]] gamma(%[[W]]) beta(%[[B]]) reduce [1] center eps(1.000000e-05, inside) affine [1] : (tensor<?x768xf32>, tensor<768xf32>, tensor<768xf32>) -> (tensor<?x768xf32>, tensor<?xf32>, tensor<?xf32>)
// CHECK-NEXT: return %[[Y]], %[[S]]#0, %[[S]]#1
// CHECK-NOT: norm.layer_norm
func.func @layer_norm(%x: tensor<?x768xf32>, %w: tensor<768xf32>, %b: tensor<768xf32>)
    -> (tensor<?x768xf32>, tensor<?xf32>, tensor<?xf32>) {
  %y, %m, %r = norm.layer_norm %x weight(%w) bias(%b)
      : (tensor<?x768xf32>, tensor<768xf32>, tensor<768xf32>) -> (tensor<?x768xf32>, tensor<?xf32>, tensor<?xf32>)
  return %y, %m, %r : tensor<?x768xf32>, tensor<?xf32>, tensor<?xf32>
}

// -----

// CHECK-LABEL: func @layer_norm_no_affine_eps_outside_two_dims
// CHECK: norm.normalize %{{.*}} reduce [1, 2] center eps(1.000000e-03, outside) : (tensor<3x4x5xbf16>) -> (tensor<3x4x5xbf16>, tensor<3xf32>, tensor<3xf32>)
func.func @layer_norm_no_affine_eps_outside_two_dims(%x: tensor<3x4x5xbf16>)
    -> (tensor<3x4x5xbf16>, tensor<3xf32>, tensor<3xf32>) {
  %y, %m, %r = norm.layer_norm %x {normalized_ndim = 2 : i64, eps = 1.0e-03 : f64, eps_outside}
      : (tensor<3x4x5xbf16>) -> (tensor<3x4x5xbf16>, tensor<3xf32>, tensor<3xf32>)
  return %y, %m, %r : tensor<3x4x5xbf16>, tensor<3xf32>, tensor<3xf32>
}

// -----

// RMSNorm: no centering, so no saved mean; only rstd.
// CHECK-LABEL: func @rms_norm
// CHECK-SAME: (%[[X:.*]]: tensor<?x4096xf16>, %[[W:.*]]: tensor<4096xf16>)
// CHECK: %[[Y:.*]], %[[R:.*]] = norm.normalize %[[X]] gamma(%[[W]]) reduce [1] eps(9.9999999999999995E-7, inside) affine [1] : (tensor<?x4096xf16>, tensor<4096xf16>) -> (tensor<?x4096xf16>, tensor<?xf32>)
// CHECK-NEXT: return %[[Y]], %[[R]]
func.func @rms_norm(%x: tensor<?x4096xf16>, %w: tensor<4096xf16>) -> (tensor<?x4096xf16>, tensor<?xf32>) {
  %y, %r = norm.rms_norm %x weight(%w) {eps = 1.0e-06 : f64}
      : (tensor<?x4096xf16>, tensor<4096xf16>) -> (tensor<?x4096xf16>, tensor<?xf32>)
  return %y, %r : tensor<?x4096xf16>, tensor<?xf32>
}

// -----

// Without eps, RMSNorm uses the machine epsilon of the input type (PyTorch).
// CHECK-LABEL: func @rms_norm_default_eps_bf16
// CHECK: norm.normalize %{{.*}} reduce [1] eps(7.812500e-03, outside) : (tensor<2x8xbf16>)
func.func @rms_norm_default_eps_bf16(%x: tensor<2x8xbf16>) -> (tensor<2x8xbf16>, tensor<2xf32>) {
  %y, %r = norm.rms_norm %x {eps_outside} : (tensor<2x8xbf16>) -> (tensor<2x8xbf16>, tensor<2xf32>)
  return %y, %r : tensor<2x8xbf16>, tensor<2xf32>
}

// -----

// CHECK-LABEL: func @rms_norm_default_eps_f32
// CHECK: norm.normalize %{{.*}} reduce [1] eps(1.1920928955078125E-7, inside) : (tensor<2x8xf32>)
func.func @rms_norm_default_eps_f32(%x: tensor<2x8xf32>) -> (tensor<2x8xf32>, tensor<2xf32>) {
  %y, %r = norm.rms_norm %x : (tensor<2x8xf32>) -> (tensor<2x8xf32>, tensor<2xf32>)
  return %y, %r : tensor<2x8xf32>, tensor<2xf32>
}

// -----

// BatchNorm training, NCHW: reduce all but the channel, update running stats.
// CHECK-LABEL: func @batch_norm_training_nchw
// CHECK-SAME: (%[[X:.*]]: tensor<?x64x7x7xf32>, %[[W:.*]]: tensor<64xf32>, %[[B:.*]]: tensor<64xf32>, %[[RM:.*]]: tensor<64xf32>, %[[RV:.*]]: tensor<64xf32>)
// CHECK: %[[Y:.*]], %[[S:.*]]:4 = norm.normalize %[[X]] gamma(%[[W]]) beta(%[[B]]) running(%[[RM]], %[[RV]]) reduce [0, 2, 3] center eps(1.000000e-05, inside) affine [1] momentum 1.000000e-01 : (tensor<?x64x7x7xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>) -> (tensor<?x64x7x7xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>)
// CHECK-NEXT: return %[[Y]], %[[S]]#0, %[[S]]#1, %[[S]]#2, %[[S]]#3
func.func @batch_norm_training_nchw(%x: tensor<?x64x7x7xf32>, %w: tensor<64xf32>, %b: tensor<64xf32>,
                                    %rm: tensor<64xf32>, %rv: tensor<64xf32>)
    -> (tensor<?x64x7x7xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>) {
  %y, %m, %r, %nm, %nv = norm.batch_norm %x weight(%w) bias(%b) running(%rm, %rv) {training}
      : (tensor<?x64x7x7xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>)
      -> (tensor<?x64x7x7xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>)
  return %y, %m, %r, %nm, %nv : tensor<?x64x7x7xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>
}

// -----

// BatchNorm training without running stats: no momentum, two statistics.
// CHECK-LABEL: func @batch_norm_training_no_running_nhwc
// CHECK: norm.normalize %{{.*}} reduce [0, 1, 2] center eps(1.000000e-05, outside) : (tensor<2x5x5x8xbf16>) -> (tensor<2x5x5x8xbf16>, tensor<8xf32>, tensor<8xf32>)
func.func @batch_norm_training_no_running_nhwc(%x: tensor<2x5x5x8xbf16>)
    -> (tensor<2x5x5x8xbf16>, tensor<8xf32>, tensor<8xf32>) {
  %y, %m, %r = norm.batch_norm %x {training, channel_dim = 3 : i64, eps_outside}
      : (tensor<2x5x5x8xbf16>) -> (tensor<2x5x5x8xbf16>, tensor<8xf32>, tensor<8xf32>)
  return %y, %m, %r : tensor<2x5x5x8xbf16>, tensor<8xf32>, tensor<8xf32>
}

// -----

// BatchNorm inference: the running stats become given statistics.
// CHECK-LABEL: func @batch_norm_inference_nhwc
// CHECK-SAME: (%[[X:.*]]: tensor<?x5x5x8xf16>, %[[W:.*]]: tensor<8xf16>, %[[RM:.*]]: tensor<8xf32>, %[[RV:.*]]: tensor<8xf32>)
// CHECK: %[[Y:.*]] = norm.normalize %[[X]] gamma(%[[W]]) stats(%[[RM]], %[[RV]]) reduce [0, 1, 2] center eps(2.000000e-05, inside) affine [3] : (tensor<?x5x5x8xf16>, tensor<8xf16>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x5x5x8xf16>
// CHECK-NEXT: return %[[Y]]
func.func @batch_norm_inference_nhwc(%x: tensor<?x5x5x8xf16>, %w: tensor<8xf16>, %rm: tensor<8xf32>, %rv: tensor<8xf32>)
    -> tensor<?x5x5x8xf16> {
  %y = norm.batch_norm %x weight(%w) running(%rm, %rv) {channel_dim = 3 : i64, eps = 2.0e-05 : f64}
      : (tensor<?x5x5x8xf16>, tensor<8xf16>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x5x5x8xf16>
  return %y : tensor<?x5x5x8xf16>
}

// -----

// CHECK-LABEL: func @instance_norm_nchw
// CHECK: norm.normalize %{{.*}} gamma(%{{.*}}) beta(%{{.*}}) reduce [2, 3] center eps(1.000000e-05, inside) affine [1] : (tensor<?x3x8x8xf32>, tensor<3xf32>, tensor<3xf32>) -> (tensor<?x3x8x8xf32>, tensor<?x3xf32>, tensor<?x3xf32>)
func.func @instance_norm_nchw(%x: tensor<?x3x8x8xf32>, %w: tensor<3xf32>, %b: tensor<3xf32>)
    -> (tensor<?x3x8x8xf32>, tensor<?x3xf32>, tensor<?x3xf32>) {
  %y, %m, %r = norm.instance_norm %x weight(%w) bias(%b)
      : (tensor<?x3x8x8xf32>, tensor<3xf32>, tensor<3xf32>) -> (tensor<?x3x8x8xf32>, tensor<?x3xf32>, tensor<?x3xf32>)
  return %y, %m, %r : tensor<?x3x8x8xf32>, tensor<?x3xf32>, tensor<?x3xf32>
}

// -----

// CHECK-LABEL: func @instance_norm_nhwc_no_affine
// CHECK: norm.normalize %{{.*}} reduce [1, 2] center eps(1.000000e-05, inside) : (tensor<2x8x8x3xf32>) -> (tensor<2x8x8x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>)
func.func @instance_norm_nhwc_no_affine(%x: tensor<2x8x8x3xf32>) -> (tensor<2x8x8x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>) {
  %y, %m, %r = norm.instance_norm %x {channel_dim = 3 : i64}
      : (tensor<2x8x8x3xf32>) -> (tensor<2x8x8x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>)
  return %y, %m, %r : tensor<2x8x8x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>
}

// -----

// GroupNorm NCHW: the channel dim splits into groups; spatial dims reduced.
// CHECK-LABEL: func @group_norm_nchw
// CHECK: norm.normalize %{{.*}} gamma(%{{.*}}) beta(%{{.*}}) reduce [2, 3] center eps(1.000000e-05, inside) affine [1] groups 32 along 1 : (tensor<?x64x7x7xbf16>, tensor<64xbf16>, tensor<64xbf16>) -> (tensor<?x64x7x7xbf16>, tensor<?x32xf32>, tensor<?x32xf32>)
func.func @group_norm_nchw(%x: tensor<?x64x7x7xbf16>, %w: tensor<64xbf16>, %b: tensor<64xbf16>)
    -> (tensor<?x64x7x7xbf16>, tensor<?x32xf32>, tensor<?x32xf32>) {
  %y, %m, %r = norm.group_norm %x weight(%w) bias(%b) {num_groups = 32 : i64}
      : (tensor<?x64x7x7xbf16>, tensor<64xbf16>, tensor<64xbf16>) -> (tensor<?x64x7x7xbf16>, tensor<?x32xf32>, tensor<?x32xf32>)
  return %y, %m, %r : tensor<?x64x7x7xbf16>, tensor<?x32xf32>, tensor<?x32xf32>
}

// -----

// CHECK-LABEL: func @group_norm_nhwc_eps_outside
// CHECK: norm.normalize %{{.*}} reduce [1, 2] center eps(1.000000e-05, outside) groups 4 along 3 : (tensor<2x7x7x16xf32>) -> (tensor<2x7x7x16xf32>, tensor<2x4xf32>, tensor<2x4xf32>)
func.func @group_norm_nhwc_eps_outside(%x: tensor<2x7x7x16xf32>) -> (tensor<2x7x7x16xf32>, tensor<2x4xf32>, tensor<2x4xf32>) {
  %y, %m, %r = norm.group_norm %x {num_groups = 4 : i64, channel_dim = 3 : i64, eps_outside}
      : (tensor<2x7x7x16xf32>) -> (tensor<2x7x7x16xf32>, tensor<2x4xf32>, tensor<2x4xf32>)
  return %y, %m, %r : tensor<2x7x7x16xf32>, tensor<2x4xf32>, tensor<2x4xf32>
}

// -----

// The generic op is left alone.
// CHECK-LABEL: func @already_generic
// CHECK: norm.normalize %{{.*}} reduce [1] eps(1.000000e-05, inside)
func.func @already_generic(%x: tensor<2x8xf32>) -> (tensor<2x8xf32>, tensor<2xf32>) {
  %y, %r = norm.normalize %x reduce [1] eps(1.0e-05, inside) : (tensor<2x8xf32>) -> (tensor<2x8xf32>, tensor<2xf32>)
  return %y, %r : tensor<2x8xf32>, tensor<2xf32>
}
