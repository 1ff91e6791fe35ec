// RUN: norm-opt %s -split-input-file --norm-form-kernels --canonicalize | FileCheck %s

// The size check of a GroupNorm kernel with dynamic channels: negative sizes,
// channels not divisible by the groups, and an empty reduction with
// statistics to compute are all NORMC_ERR_BAD_SHAPE (2).

// CHECK-LABEL: func.func private @__normc_gn_check
// CHECK-SAME: (%[[N:[a-z0-9_]+]]: i64, %[[C:[a-z0-9_]+]]: i64, %[[S:[a-z0-9_]+]]: i64) -> i32
// CHECK-DAG: %[[BAD:.*]] = arith.constant 2 : i32
// CHECK-DAG: arith.cmpi slt, %[[N]]
// CHECK-DAG: arith.cmpi slt, %[[C]]
// CHECK-DAG: arith.cmpi slt, %[[S]]
// CHECK-DAG: arith.remui %{{.*}}, %{{.*}} : index
// CHECK: arith.select %{{.*}}, %[[BAD]], %{{.*}} : i32
func.func @gn(%x: tensor<?x?x?xf32>) -> (tensor<?x?x?xf32>, tensor<?x4xf32>, tensor<?x4xf32>) {
  %y, %m, %r = norm.group_norm %x {num_groups = 4 : i64} : (tensor<?x?x?xf32>) -> (tensor<?x?x?xf32>, tensor<?x4xf32>, tensor<?x4xf32>)
  return %y, %m, %r : tensor<?x?x?xf32>, tensor<?x4xf32>, tensor<?x4xf32>
}

// -----

// BatchNorm training with running statistics needs two values per channel.

// CHECK-LABEL: func.func private @__normc_bn_check
// CHECK: arith.cmpi ult, %{{.*}}, %c2 : index
func.func @bn(%x: tensor<?x8xf32>, %rm: tensor<8xf32>, %rv: tensor<8xf32>)
    -> (tensor<?x8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>) {
  %y, %m, %r, %nm, %nv = norm.batch_norm %x running(%rm, %rv) {training}
      : (tensor<?x8xf32>, tensor<8xf32>, tensor<8xf32>) -> (tensor<?x8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>)
  return %y, %m, %r, %nm, %nv : tensor<?x8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>
}
