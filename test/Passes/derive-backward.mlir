// RUN: norm-opt %s -split-input-file --norm-derive-backward | FileCheck %s

// The backward function of each named op carries the forward's description
// unchanged (reduced dims, centering, eps and its placement, affine dims,
// groups) and takes the saved statistics the forward returns. CHECK lines
// pin every attribute.

// CHECK-LABEL: func.func @ln(
// CHECK-NOT: norm.backward
// CHECK-LABEL: func.func @ln_backward
// CHECK-SAME: (%[[DY:[a-z0-9]+]]: tensor<?x768xf32>, %[[X:[a-z0-9]+]]: tensor<?x768xf32>, %[[G:[a-z0-9]+]]: tensor<768xf32>, %[[M:[a-z0-9]+]]: tensor<?xf32>, %[[R:[a-z0-9]+]]: tensor<?xf32>) -> (tensor<?x768xf32>, tensor<768xf32>, tensor<768xf32>)
// CHECK-SAME: attributes {norm.forward_op = "layer_norm"}
// CHECK: %[[G3:.*]]:3 = norm.normalize_backward %[[DY]], %[[X]] gamma(%[[G]]) mean(%[[M]]) rstd(%[[R]]) reduce [1] center eps(1.000000e-05, inside) affine [1] {grad_bias, grad_input, grad_weight}
// CHECK: return %[[G3]]#0, %[[G3]]#1, %[[G3]]#2
func.func @ln(%x: tensor<?x768xf32>, %w: tensor<768xf32>, %b: tensor<768xf32>)
    -> (tensor<?x768xf32>, tensor<?xf32>, tensor<?xf32>) attributes {norm.backward} {
  %y, %m, %r = norm.layer_norm %x weight(%w) bias(%b)
      : (tensor<?x768xf32>, tensor<768xf32>, tensor<768xf32>) -> (tensor<?x768xf32>, tensor<?xf32>, tensor<?xf32>)
  return %y, %m, %r : tensor<?x768xf32>, tensor<?xf32>, tensor<?xf32>
}

// -----

// Frozen weights: only dx. RMSNorm has no mean, eps outside the root.
// CHECK-LABEL: func.func @rms_backward
// CHECK-SAME: (%[[DY:[a-z0-9]+]]: tensor<?x64xbf16>, %[[X:[a-z0-9]+]]: tensor<?x64xbf16>, %[[G:[a-z0-9]+]]: tensor<64xbf16>, %[[R:[a-z0-9]+]]: tensor<?xf32>) -> tensor<?x64xbf16>
// CHECK: norm.normalize_backward %[[DY]], %[[X]] gamma(%[[G]]) rstd(%[[R]]) reduce [1] eps(9.9999999999999995E-7, outside) affine [1] {grad_input}
func.func @rms(%x: tensor<?x64xbf16>, %w: tensor<64xbf16>) -> (tensor<?x64xbf16>, tensor<?xf32>)
    attributes {norm.backward = ["dx"]} {
  %y, %r = norm.rms_norm %x weight(%w) {eps = 1.0e-06 : f64, eps_outside}
      : (tensor<?x64xbf16>, tensor<64xbf16>) -> (tensor<?x64xbf16>, tensor<?xf32>)
  return %y, %r : tensor<?x64xbf16>, tensor<?xf32>
}

// -----

// BatchNorm training: batch statistics; the running stats play no part.
// CHECK-LABEL: func.func @bn_train_backward
// CHECK-SAME: -> (tensor<?x16x5x5xf32>, tensor<16xf32>, tensor<16xf32>)
// CHECK: norm.normalize_backward %{{.*}}, %{{.*}} gamma(%{{.*}}) mean(%{{.*}}) rstd(%{{.*}}) reduce [0, 2, 3] center eps(1.000000e-05, inside) affine [1] {grad_bias, grad_input, grad_weight}
func.func @bn_train(%x: tensor<?x16x5x5xf32>, %w: tensor<16xf32>, %b: tensor<16xf32>, %rm: tensor<16xf32>, %rv: tensor<16xf32>)
    -> (tensor<?x16x5x5xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>) attributes {norm.backward} {
  %y, %m, %r, %nm, %nv = norm.batch_norm %x weight(%w) bias(%b) running(%rm, %rv) {training}
      : (tensor<?x16x5x5xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>)
      -> (tensor<?x16x5x5xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>)
  return %y, %m, %r, %nm, %nv : tensor<?x16x5x5xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>
}

// -----

// BatchNorm inference: given statistics (mean and variance, not rstd); the
// backward is elementwise in x.
// CHECK-LABEL: func.func @bn_infer_backward
// CHECK-SAME: (%[[DY:[a-z0-9]+]]: tensor<?x5x5x16xf16>, %[[X:[a-z0-9]+]]: tensor<?x5x5x16xf16>, %[[G:[a-z0-9]+]]: tensor<16xf16>, %[[M:[a-z0-9]+]]: tensor<16xf32>, %[[V:[a-z0-9]+]]: tensor<16xf32>)
// CHECK: norm.normalize_backward %[[DY]], %[[X]] gamma(%[[G]]) mean(%[[M]]) var(%[[V]]) reduce [0, 1, 2] center eps(1.000000e-05, inside) affine [3] {grad_bias, grad_input, grad_weight}
func.func @bn_infer(%x: tensor<?x5x5x16xf16>, %w: tensor<16xf16>, %b: tensor<16xf16>, %rm: tensor<16xf32>, %rv: tensor<16xf32>)
    -> tensor<?x5x5x16xf16> attributes {norm.backward} {
  %y = norm.batch_norm %x weight(%w) bias(%b) running(%rm, %rv) {channel_dim = 3 : i64}
      : (tensor<?x5x5x16xf16>, tensor<16xf16>, tensor<16xf16>, tensor<16xf32>, tensor<16xf32>) -> tensor<?x5x5x16xf16>
  return %y : tensor<?x5x5x16xf16>
}

// -----

// InstanceNorm without affine parameters: dx only.
// CHECK-LABEL: func.func @inorm_backward
// CHECK-SAME: -> tensor<?x3x8x8xf32>
// CHECK: norm.normalize_backward %{{.*}}, %{{.*}} mean(%{{.*}}) rstd(%{{.*}}) reduce [2, 3] center eps(1.000000e-05, outside) {grad_input}
func.func @inorm(%x: tensor<?x3x8x8xf32>) -> (tensor<?x3x8x8xf32>, tensor<?x3xf32>, tensor<?x3xf32>) attributes {norm.backward} {
  %y, %m, %r = norm.instance_norm %x {eps_outside} : (tensor<?x3x8x8xf32>) -> (tensor<?x3x8x8xf32>, tensor<?x3xf32>, tensor<?x3xf32>)
  return %y, %m, %r : tensor<?x3x8x8xf32>, tensor<?x3xf32>, tensor<?x3xf32>
}

// -----

// GroupNorm: the groups travel with the description.
// CHECK-LABEL: func.func @gn_backward
// CHECK: norm.normalize_backward %{{.*}}, %{{.*}} gamma(%{{.*}}) mean(%{{.*}}) rstd(%{{.*}}) reduce [1, 2] center eps(1.000000e-05, inside) affine [3] groups 4 along 3 {grad_weight}
func.func @gn(%x: tensor<?x7x7x32xf32>, %w: tensor<32xf32>, %b: tensor<32xf32>)
    -> (tensor<?x7x7x32xf32>, tensor<?x4xf32>, tensor<?x4xf32>) attributes {norm.backward = ["dgamma"]} {
  %y, %m, %r = norm.group_norm %x weight(%w) bias(%b) {num_groups = 4 : i64, channel_dim = 3 : i64}
      : (tensor<?x7x7x32xf32>, tensor<32xf32>, tensor<32xf32>) -> (tensor<?x7x7x32xf32>, tensor<?x4xf32>, tensor<?x4xf32>)
  return %y, %m, %r : tensor<?x7x7x32xf32>, tensor<?x4xf32>, tensor<?x4xf32>
}
