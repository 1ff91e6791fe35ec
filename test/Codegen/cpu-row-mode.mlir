// RUN: norm-opt %s -split-input-file --norm-form-kernels="vector-length=16 pipeline-items=false" --canonicalize --cse | FileCheck %s

// The passes of one work item; f32 rows that fit in cache run them
// pipelined by default (cpu-pipelined-items.mlir), the others (f64 and
// 16-bit data, longer rows) as below.

// LayerNorm over rows of 100: one work item per row. Pass 1 reads the row
// as vectors into f64 accumulators (a masked tail for 100 = 6*16 + 4): the
// mean must be exact where it is a small difference of large values. Pass 2
// squares the deviations in f32 (fused) into f64 totals, and is redone in
// f64 when an f32 square overflowed. The statistics are stored once per
// row, and pass 3 writes each output element with exactly one store.

// CHECK-LABEL: func.func private @__normc_ln_body
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: memref<?x100xf32>, %[[G:[a-z0-9_]+]]: memref<100xf32>, %[[B:[a-z0-9_]+]]: memref<100xf32>, %[[Y:[a-z0-9_]+]]: memref<?x100xf32>, %[[MEAN:[a-z0-9_]+]]: memref<?xf32>, %[[RSTD:[a-z0-9_]+]]: memref<?xf32>, %[[BEGIN:[a-z0-9_]+]]: index, %[[END:[a-z0-9_]+]]: index)
// CHECK: scf.for %[[ROW:[a-z0-9_]+]] = %[[BEGIN]] to %[[END]]
// The shift: the row's first element.
// CHECK:   %[[X0:[a-z0-9_]+]] = memref.load %[[X]][%[[ROW]], %{{.*}}]
// Pass 1: sum of x in f64 (exact for a set clustered around a large mean),
// then the mean's offset from x0 once.
// CHECK:   %[[X0W:[a-z0-9_]+]] = arith.extf %[[X0]] : f32 to f64
// CHECK:   scf.for {{.*}} iter_args(%{{.*}} = %{{.*}}) -> (vector<16xf64>)
// CHECK:     vector.load %[[X]][%[[ROW]], %{{.*}}] : memref<?x100xf32>, vector<16xf32>
// CHECK:     %[[XW:[a-z0-9_]+]] = arith.extf {{.*}} : vector<16xf32> to vector<16xf64>
// CHECK-NOT: arith.subf
// CHECK:     arith.addf %{{.*}}, %[[XW]]
// CHECK:   vector.constant_mask [4] : vector<16xi1>
// CHECK:   vector.maskedload %[[X]]
// CHECK:   %[[SUM:[a-z0-9_]+]] = vector.reduction <add>, %{{.*}} fastmath<reassoc> : vector<16xf64> into f64
// CHECK:   %[[MEAN0:[a-z0-9_]+]] = arith.divf %[[SUM]]
// CHECK:   arith.subf %[[MEAN0]], %[[X0W]] : f64
// Pass 2: sum of squared deviations from the mean (two-pass, no E[x^2]), in
// f32, added to f64 totals.
// CHECK:   scf.for {{.*}} -> (vector<16xf32>)
// CHECK:     vector.load %[[X]]
// CHECK:     arith.subf {{.*}} : vector<16xf32>
// CHECK:     arith.subf {{.*}} : vector<16xf32>
// CHECK:     math.fma {{.*}} : vector<16xf32>
// CHECK:   arith.extf {{.*}} : vector<16xf32> to vector<16xf64>
// CHECK:   %[[SQUARES:[a-z0-9_]+]] = vector.reduction <add>
// CHECK:   %[[FINITE:[a-z0-9_]+]] = arith.cmpf olt, %{{.*}}, %{{.*}} : f64
// CHECK:   scf.if %[[FINITE]] -> (f64, f64) {
// CHECK:     scf.yield %{{.*}}, %[[SQUARES]]
// CHECK:   } else {
// CHECK:     scf.for {{.*}} -> (vector<16xf64>)
// CHECK:     scf.for {{.*}} -> (vector<16xf64>)
// CHECK:       math.fma {{.*}} : vector<16xf64>
// CHECK:   }
// rstd = 1 / sqrt(var + eps), eps inside.
// CHECK:   arith.addf %{{.*}}, %{{.*}} : f64
// CHECK:   math.sqrt %{{.*}} : f64
// CHECK:   arith.divf
// CHECK:   memref.store %{{.*}}, %[[MEAN]][%[[ROW]]]
// CHECK:   memref.store %{{.*}}, %[[RSTD]][%[[ROW]]]
// Pass 3: normalize, scale, shift, one store.
// CHECK:   scf.for %[[J:[a-z0-9_]+]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:     vector.load %[[X]][%[[ROW]], %[[J]]]
// CHECK:     vector.load %[[G]][%[[J]]]
// CHECK:     vector.load %[[B]][%[[J]]]
// CHECK-NOT: vector.load
// CHECK:     vector.store %{{.*}}, %[[Y]][%[[ROW]], %[[J]]]
// CHECK-NEXT: }
// CHECK:   vector.maskedstore %[[Y]]
// CHECK-NOT: vector.store
// CHECK: return
func.func @ln(%x: tensor<?x100xf32>, %w: tensor<100xf32>, %b: tensor<100xf32>)
    -> (tensor<?x100xf32>, tensor<?xf32>, tensor<?xf32>) {
  %y, %mean, %rstd = norm.layer_norm %x weight(%w) bias(%b)
      : (tensor<?x100xf32>, tensor<100xf32>, tensor<100xf32>) -> (tensor<?x100xf32>, tensor<?xf32>, tensor<?xf32>)
  return %y, %mean, %rstd : tensor<?x100xf32>, tensor<?xf32>, tensor<?xf32>
}

// -----

// RMSNorm, eps outside the root: no shift, no pass 1, rstd = 1/(sqrt(ms)+eps).
// A row length that is a multiple of the vector needs no tail.

// CHECK-LABEL: func.func private @__normc_rms_body
// CHECK: scf.for
// CHECK-NOT: memref.load
// CHECK:   scf.for {{.*}} -> (vector<16xf32>)
// CHECK:     %[[V:[a-z0-9_]+]] = vector.load
// CHECK-NEXT: math.fma %[[V]], %[[V]], %{{.*}} : vector<16xf32>
// CHECK:   scf.if
// CHECK:   %[[MS:[a-z0-9_]+]] = arith.divf
// CHECK:   %[[ROOT:[a-z0-9_]+]] = math.sqrt %[[MS]]
// CHECK:   arith.addf %[[ROOT]], %{{.*}} : f64
// CHECK-NOT: vector.maskedstore
// CHECK: return
func.func @rms(%x: tensor<8x64xf32>) -> (tensor<8x64xf32>, tensor<8xf32>) {
  %y, %r = norm.rms_norm %x {eps = 1.0e-06 : f64, eps_outside} : (tensor<8x64xf32>) -> (tensor<8x64xf32>, tensor<8xf32>)
  return %y, %r : tensor<8x64xf32>, tensor<8xf32>
}

// -----

// Only the output is returned: statistics are computed but never stored.

// CHECK-LABEL: func.func private @__normc_y_only_body
// CHECK-SAME: (%{{.*}}: memref<4x32xf32>, %{{.*}}: memref<4x32xf32>, %{{.*}}: index, %{{.*}}: index)
// CHECK-NOT: memref.store
// CHECK: vector.store
// CHECK-NOT: memref.store
func.func @y_only(%x: tensor<4x32xf32>) -> tensor<4x32xf32> {
  %y, %m, %r = norm.layer_norm %x : (tensor<4x32xf32>) -> (tensor<4x32xf32>, tensor<4xf32>, tensor<4xf32>)
  return %y : tensor<4x32xf32>
}
