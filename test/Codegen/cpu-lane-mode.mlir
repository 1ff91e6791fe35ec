// RUN: norm-opt %s -split-input-file --norm-form-kernels="vector-length=16 split-long-rows=false" --canonicalize --cse | FileCheck %s

// Without split-long-rows: the items below are never split, so that the
// checks see the lane-mode passes alone (batches split into chunks:
// cpu-split-batch.mlir).

// BatchNorm training on channels-last [N*H*W, C]: the innermost dim is kept,
// so statistics are vectorized across channels (one lane per channel) and
// the rows are the reduction. Work items are chunks of 16 channels; the last
// chunk is masked.

// CHECK-LABEL: func.func private @__normc_bn_nhwc_body
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: memref<?x40xf32>, %[[RM:[a-z0-9_]+]]: memref<40xf32>, %[[RV:[a-z0-9_]+]]: memref<40xf32>, %[[Y:[a-z0-9_]+]]: memref<?x40xf32>, %[[MEAN:[a-z0-9_]+]]: memref<40xf32>, %[[RSTD:[a-z0-9_]+]]: memref<40xf32>, %[[RMO:[a-z0-9_]+]]: memref<40xf32>, %[[RVO:[a-z0-9_]+]]: memref<40xf32>,
// CHECK: scf.for %[[ITEM:[a-z0-9_]+]] =
// CHECK:   %[[C0:[a-z0-9_]+]] = arith.muli %{{.*}}, %{{.*}} : index
// CHECK:   %[[MASK:[a-z0-9_]+]] = vector.create_mask %{{.*}} : vector<16xi1>
// CHECK:   vector.maskedload %[[X]][%{{.*}}, %[[C0]]], %[[MASK]]
// An item of 16 channels over N*H*W rows of at least 512 KiB (dynamic here:
// decided per item) would not stay in cache between passes: its statistics
// come from one pass of shifted sums, sum(d) and sum(d^2) in f64, in blocks,
// as long as its error bound allows (at most 2^18 rows).
// CHECK:   %[[BYTES:[a-z0-9_]+]] = arith.muli %{{.*}}, %c64 : index
// CHECK:   %[[LARGE:[a-z0-9_]+]] = arith.cmpi uge, %[[BYTES]], %c524288 : index
// CHECK:   %[[BOUNDED:[a-z0-9_]+]] = arith.cmpi ule, %{{.*}}, %c262144 : index
// CHECK:   %[[ONEPASS:[a-z0-9_]+]] = arith.andi %[[LARGE]], %[[BOUNDED]] : i1
// CHECK:   scf.if %[[ONEPASS]] -> (vector<16xf64>, vector<16xf64>) {
// CHECK:     scf.for {{.*}} -> (vector<16xf64>, vector<16xf64>)
// CHECK:       scf.for {{.*}} -> (vector<16xf64>, vector<16xf64>)
// CHECK:         vector.maskedload %[[X]]
// CHECK:         arith.addf
// CHECK:         math.fma {{.*}} : vector<16xf64>
// CHECK:   } else {
// Otherwise two passes over the cached rows, in blocks (two nested loops)
// into per-lane sums: in f64 for the mean, in f32 blocks added to f64
// totals for the squares. No lane is ever summed across (the only
// reduction is the test for an f32 square that overflowed, which redoes the
// item in f64).
// CHECK:   scf.for {{.*}} -> (vector<16xf64>)
// CHECK:     scf.for {{.*}} -> (vector<16xf64>)
// CHECK:       vector.maskedload %[[X]]
// CHECK:   scf.for {{.*}} -> (vector<16xf64>)
// CHECK:     scf.for {{.*}} -> (vector<16xf32>)
// CHECK:       vector.maskedload %[[X]]
// CHECK:       math.fma {{.*}} : vector<16xf32>
// CHECK-NOT: vector.reduction <add>
// CHECK:   vector.reduction <or>
// CHECK-NOT: vector.reduction <add>
// CHECK:   vector.maskedstore %[[MEAN]][%[[C0]]], %[[MASK]]
// CHECK:   vector.maskedstore %[[RSTD]][%[[C0]]], %[[MASK]]
// Running statistics: (1 - m) * running + m * batch, unbiased variance.
// CHECK:   vector.maskedload %[[RM]][%[[C0]]], %[[MASK]]
// CHECK:   vector.maskedstore %[[RMO]][%[[C0]]], %[[MASK]]
// CHECK:   vector.maskedload %[[RV]][%[[C0]]], %[[MASK]]
// CHECK:   vector.maskedstore %[[RVO]][%[[C0]]], %[[MASK]]
// CHECK:   vector.maskedstore %[[Y]]
func.func @bn_nhwc(%x: tensor<?x40xf32>, %rm: tensor<40xf32>, %rv: tensor<40xf32>)
    -> (tensor<?x40xf32>, tensor<40xf32>, tensor<40xf32>, tensor<40xf32>, tensor<40xf32>) {
  %y, %m, %r, %nm, %nv = norm.batch_norm %x running(%rm, %rv) {training, channel_dim = 1 : i64}
      : (tensor<?x40xf32>, tensor<40xf32>, tensor<40xf32>)
      -> (tensor<?x40xf32>, tensor<40xf32>, tensor<40xf32>, tensor<40xf32>, tensor<40xf32>)
  return %y, %m, %r, %nm, %nv : tensor<?x40xf32>, tensor<40xf32>, tensor<40xf32>, tensor<40xf32>, tensor<40xf32>
}

// -----

// BatchNorm inference: given statistics, no reduction loop at all.

// CHECK-LABEL: func.func private @__normc_bn_infer_body
// CHECK-NOT: vector.reduction
// CHECK-NOT: -> (vector<16xf64>)
// CHECK: math.sqrt
// CHECK: vector.maskedstore
func.func @bn_infer(%x: tensor<2x16x9xf32>, %rm: tensor<16xf32>, %rv: tensor<16xf32>) -> tensor<2x16x9xf32> {
  %y = norm.batch_norm %x running(%rm, %rv) : (tensor<2x16x9xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x16x9xf32>
  return %y : tensor<2x16x9xf32>
}
