// RUN: norm-opt %s -split-input-file --norm-form-kernels=vector-length=16 --canonicalize --cse | FileCheck %s

// GroupNorm NCHW: the channel dim is expanded into [groups, channels/group]
// and H, W collapse with it into one contiguous reduced dim, so the kernel
// sees [N, G, C/G*H*W] and reduces rows of 8*5*5 = 200.

// CHECK-LABEL: func.func private @__normc_gn_body
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: memref<?x32x5x5xf32>, %[[W:[a-z0-9_]+]]: memref<32xf32>
// CHECK: %[[XE:[a-z0-9_]+]] = memref.expand_shape %[[X]] {{\[\[}}0], [1, 2], [3], [4]] output_shape [%{{.*}}, 4, 8, 5, 5] : memref<?x32x5x5xf32> into memref<?x4x8x5x5xf32>
// CHECK: %[[XC:[a-z0-9_]+]] = memref.collapse_shape %[[XE]] {{\[\[}}0], [1], [2], [3, 4]] : memref<?x4x8x5x5xf32> into memref<?x4x8x25xf32>
// CHECK: %[[WE:[a-z0-9_]+]] = memref.expand_shape %[[W]] {{\[\[}}0, 1]] output_shape [4, 8] : memref<32xf32> into memref<4x8xf32>
// CHECK: scf.for
// CHECK:   vector.load %[[XC]]
func.func @gn(%x: tensor<?x32x5x5xf32>, %w: tensor<32xf32>, %b: tensor<32xf32>)
    -> (tensor<?x32x5x5xf32>, tensor<?x4xf32>, tensor<?x4xf32>) {
  %y, %m, %r = norm.group_norm %x weight(%w) bias(%b) {num_groups = 4 : i64}
      : (tensor<?x32x5x5xf32>, tensor<32xf32>, tensor<32xf32>) -> (tensor<?x32x5x5xf32>, tensor<?x4xf32>, tensor<?x4xf32>)
  return %y, %m, %r : tensor<?x32x5x5xf32>, tensor<?x4xf32>, tensor<?x4xf32>
}

// -----

// LayerNorm over the last two dims of [B, S, H]: the normalized dims
// collapse into one row of S*H.

// CHECK-LABEL: func.func private @__normc_ln2_body
// CHECK: memref.collapse_shape %{{.*}} {{\[\[}}0], [1, 2]] : memref<?x6x7xf32> into memref<?x42xf32>
// CHECK: memref.collapse_shape %{{.*}} {{\[\[}}0, 1]] : memref<6x7xf32> into memref<42xf32>
func.func @ln2(%x: tensor<?x6x7xf32>, %w: tensor<6x7xf32>) -> (tensor<?x6x7xf32>, tensor<?xf32>, tensor<?xf32>) {
  %y, %m, %r = norm.layer_norm %x weight(%w) {normalized_ndim = 2 : i64}
      : (tensor<?x6x7xf32>, tensor<6x7xf32>) -> (tensor<?x6x7xf32>, tensor<?xf32>, tensor<?xf32>)
  return %y, %m, %r : tensor<?x6x7xf32>, tensor<?xf32>, tensor<?xf32>
}
