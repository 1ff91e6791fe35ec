// RUN: norm-opt %s -split-input-file --norm-form-kernels=vector-length=32 --canonicalize --cse | FileCheck %s

// LayerNorm backward: work items are chunks of rows (at most 64, fixed by
// the sizes). A chunk clears its slice of the f64 workspace, then per row:
// pass A reads dy, x and gamma once into four f64 vector sums (g, g*xhat,
// xhat, xhat^2), each vector of 16 f64 added as two halves into sums of 8
// lanes (four sums of 16 lanes would take all 16 AVX2 registers), the
// per-row scalars follow, and pass B writes dx once and adds dy*xhat and dy
// into the chunk's dgamma/dbeta partials. The finalize body adds the
// chunks' partials in chunk order.

// CHECK-LABEL: func.func private @__normc_lnb_body
// CHECK-SAME: (%[[DY:[a-z0-9]+]]: memref<?x100xf32>, %[[X:[a-z0-9]+]]: memref<?x100xf32>, %[[G:[a-z0-9]+]]: memref<100xf32>, %[[M:[a-z0-9]+]]: memref<?xf32>, %[[R:[a-z0-9]+]]: memref<?xf32>, %[[DX:[a-z0-9]+]]: memref<?x100xf32>, %{{.*}}: memref<100xf32>, %{{.*}}: memref<100xf32>, %[[WS:[a-z0-9]+]]: memref<?xf64>, %[[B:[a-z0-9]+]]: index, %[[E:[a-z0-9]+]]: index)
// CHECK: %[[CHUNKS:.*]] = arith.minui %{{.*}}, %c64 : index
// CHECK: scf.for %[[CHUNK:.*]] = %[[B]] to %[[E]]
// CHECK:   scf.for
// CHECK:     memref.store %{{.*}}, %[[WS]]
// CHECK:   arith.divui %{{.*}}, %[[CHUNKS]]
// CHECK:   arith.divui %{{.*}}, %[[CHUNKS]]
// CHECK:   scf.for %[[ROW:.*]] =
// CHECK:     memref.load %[[R]][%[[ROW]]]
// CHECK:     memref.load %[[M]][%[[ROW]]]
// CHECK:     scf.for {{.*}} -> (vector<8xf64>, vector<8xf64>, vector<8xf64>, vector<8xf64>)
// CHECK:       vector.load %[[X]]
// CHECK:       vector.load %[[DY]]
// CHECK:       vector.load %[[G]]
// CHECK:       vector.extract_strided_slice %{{.*}} {offsets = [0], sizes = [8], strides = [1]} : vector<16xf64> to vector<8xf64>
// CHECK:       vector.extract_strided_slice %{{.*}} {offsets = [8], sizes = [8], strides = [1]} : vector<16xf64> to vector<8xf64>
// CHECK-COUNT-4: vector.reduction <add>, %{{.*}} : vector<8xf64> into f64
// CHECK:     math.sqrt
// CHECK:     scf.for
// CHECK:       vector.load %[[DY]]
// CHECK:       vector.load %[[X]]
// CHECK:       vector.load %[[G]]
// CHECK:       vector.store %{{.*}}, %[[DX]]
// dgamma adds dy * xhat as one fma with its read-modify-write; dbeta adds dy.
// CHECK:       %[[OLDG:.*]] = vector.load %[[WS]]
// CHECK:       %[[NEWG:.*]] = math.fma %{{.*}}, %{{.*}}, %[[OLDG]] : vector<16xf64>
// CHECK:       vector.store %[[NEWG]], %[[WS]]
// CHECK:       %[[OLDB:.*]] = vector.load %[[WS]]
// CHECK:       %[[NEWB:.*]] = arith.addf %[[OLDB]], %{{.*}} : vector<16xf64>
// CHECK:       vector.store %[[NEWB]], %[[WS]]
// CHECK:     vector.maskedstore %[[DX]]

// CHECK-LABEL: func.func private @__normc_lnb_finalizebody
// CHECK-SAME: %[[DG:[a-z0-9]+]]: memref<100xf32>, %[[DB:[a-z0-9]+]]: memref<100xf32>, %[[WS:[a-z0-9]+]]: memref<?xf64>)
// The finalize adds the chunks' partials in chunk order, a vector of gamma
// elements at a time (96 = 6 * 16, then a masked tail of 4).
// CHECK: scf.for %[[J:.*]] = %c0 to %c96 step %c16
// CHECK:   scf.for {{.*}} iter_args({{.*}}) -> (vector<16xf64>)
// CHECK:     vector.load %[[WS]]
// CHECK:   arith.truncf {{.*}} : vector<16xf64> to vector<16xf32>
// CHECK:   vector.store %{{.*}}, %[[DG]][%[[J]]]
// CHECK: vector.constant_mask [4] : vector<16xi1>
// CHECK: scf.for {{.*}} -> (vector<16xf64>)
// CHECK:   vector.maskedload %[[WS]]
// CHECK: vector.maskedstore %[[DG]]
// CHECK: scf.for
// CHECK:   vector.store %{{.*}}, %[[DB]]
// CHECK: vector.maskedstore %[[DB]]

// CHECK-LABEL: func.func private @__normc_lnb_workcount
// CHECK: arith.minui %{{.*}}, %c64
func.func @lnb(%dy: tensor<?x100xf32>, %x: tensor<?x100xf32>, %g: tensor<100xf32>, %m: tensor<?xf32>, %r: tensor<?xf32>)
    -> (tensor<?x100xf32>, tensor<100xf32>, tensor<100xf32>) {
  %dx, %dg, %db = norm.normalize_backward %dy, %x gamma(%g) mean(%m) rstd(%r) reduce [1] center eps(1.0e-05, inside) affine [1] {grad_input, grad_weight, grad_bias}
      : (tensor<?x100xf32>, tensor<?x100xf32>, tensor<100xf32>, tensor<?xf32>, tensor<?xf32>) -> (tensor<?x100xf32>, tensor<100xf32>, tensor<100xf32>)
  return %dx, %dg, %db : tensor<?x100xf32>, tensor<100xf32>, tensor<100xf32>
}

// -----

// BatchNorm inference backward: given statistics, so no pass A at all;
// dx = rstd * dy * gamma elementwise, rstd from the given variance.

// CHECK-LABEL: func.func private @__normc_bnb_body
// CHECK-NOT: vector.reduction
// CHECK: math.sqrt
// CHECK: scf.for
// CHECK:   vector.load
// CHECK:   vector.store
func.func @bnb(%dy: tensor<4x16x32xf32>, %x: tensor<4x16x32xf32>, %m: tensor<16xf32>, %v: tensor<16xf32>) -> tensor<4x16x32xf32> {
  %dx = norm.normalize_backward %dy, %x mean(%m) var(%v) reduce [0, 2] center eps(1.0e-05, inside) {grad_input}
      : (tensor<4x16x32xf32>, tensor<4x16x32xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<4x16x32xf32>
  return %dx : tensor<4x16x32xf32>
}

// -----

// Chunks hold at least 16 rows, or fewer long rows of at least 2^18 elements
// together: 8 rows of 65536 make 2 chunks (both threads of a 2-core machine
// get one) where 16 rows per chunk would leave one; 64 rows of 768 make 4.

// CHECK-LABEL: func.func private @__normc_long_rows_workcount
// CHECK-NEXT: %[[TWO:[a-z0-9_]+]] = arith.constant 2 : i64
// CHECK-NEXT: return %[[TWO]]
// CHECK-LABEL: func.func private @__normc_short_rows_workcount
// CHECK-NEXT: %[[FOUR:[a-z0-9_]+]] = arith.constant 4 : i64
// CHECK-NEXT: return %[[FOUR]]
func.func @long_rows(%dy: tensor<8x65536xf32>, %x: tensor<8x65536xf32>, %g: tensor<65536xf32>, %r: tensor<8xf32>)
    -> (tensor<8x65536xf32>, tensor<65536xf32>) {
  %dx, %dg = norm.normalize_backward %dy, %x gamma(%g) rstd(%r) reduce [1] eps(1.0e-05, inside) affine [1] {grad_input, grad_weight}
      : (tensor<8x65536xf32>, tensor<8x65536xf32>, tensor<65536xf32>, tensor<8xf32>) -> (tensor<8x65536xf32>, tensor<65536xf32>)
  return %dx, %dg : tensor<8x65536xf32>, tensor<65536xf32>
}
func.func @short_rows(%dy: tensor<64x768xf32>, %x: tensor<64x768xf32>, %g: tensor<768xf32>, %r: tensor<64xf32>)
    -> (tensor<64x768xf32>, tensor<768xf32>) {
  %dx, %dg = norm.normalize_backward %dy, %x gamma(%g) rstd(%r) reduce [1] eps(1.0e-05, inside) affine [1] {grad_input, grad_weight}
      : (tensor<64x768xf32>, tensor<64x768xf32>, tensor<768xf32>, tensor<64xf32>) -> (tensor<64x768xf32>, tensor<768xf32>)
  return %dx, %dg : tensor<64x768xf32>, tensor<768xf32>
}

// -----

// Where gamma does not vary along the reduction (BatchNorm, InstanceNorm),
// every element of a work item adds to the same dgamma/dbeta elements: pass
// B sums them in vector accumulators carried by its loops and adds them to
// the chunk's slice once per item, instead of a read-modify-write of the
// workspace per vector. Row mode (NCHW) reduces the sums across the vector
// first; lane mode (NHWC: one channel per lane) adds them as they are.

// CHECK-LABEL: func.func private @__normc_bn_nchw_body
// CHECK-SAME: (%{{.*}}: memref<4x16x32xf32>, %{{.*}}: memref<4x16x32xf32>, %{{.*}}: memref<16xf32>, %{{.*}}: memref<16xf32>, %{{.*}}: memref<16xf32>, %[[DX:[a-z0-9]+]]: memref<4x16x32xf32>, %{{.*}}: memref<16xf32>, %{{.*}}: memref<16xf32>, %[[WS:[a-z0-9]+]]: memref<?xf64>
// CHECK: math.sqrt
// CHECK: %[[SUMS:.*]]:2 = scf.for {{.*}} -> (vector<16xf64>, vector<16xf64>)
// CHECK:   scf.for {{.*}} -> (vector<16xf64>, vector<16xf64>)
// CHECK-NOT: %[[WS]]
// CHECK:     vector.store %{{.*}}, %[[DX]]
// CHECK-NOT: %[[WS]]
// CHECK:     scf.yield %{{.*}}, %{{.*}} : vector<16xf64>, vector<16xf64>
// CHECK: vector.reduction <add>, %[[SUMS]]#0
// CHECK: memref.load %[[WS]]
// CHECK: memref.store %{{.*}}, %[[WS]]
// CHECK: vector.reduction <add>, %[[SUMS]]#1
// CHECK: memref.load %[[WS]]
// CHECK: memref.store %{{.*}}, %[[WS]]
func.func @bn_nchw(%dy: tensor<4x16x32xf32>, %x: tensor<4x16x32xf32>, %g: tensor<16xf32>, %m: tensor<16xf32>, %r: tensor<16xf32>)
    -> (tensor<4x16x32xf32>, tensor<16xf32>, tensor<16xf32>) {
  %dx, %dg, %db = norm.normalize_backward %dy, %x gamma(%g) mean(%m) rstd(%r) reduce [0, 2] center eps(1.0e-05, inside) affine [1] {grad_input, grad_weight, grad_bias}
      : (tensor<4x16x32xf32>, tensor<4x16x32xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>) -> (tensor<4x16x32xf32>, tensor<16xf32>, tensor<16xf32>)
  return %dx, %dg, %db : tensor<4x16x32xf32>, tensor<16xf32>, tensor<16xf32>
}

// CHECK-LABEL: func.func private @__normc_bn_nhwc_body
// CHECK-SAME: (%{{.*}}: memref<4x32x16xf32>, %{{.*}}: memref<4x32x16xf32>, %{{.*}}: memref<16xf32>, %{{.*}}: memref<16xf32>, %{{.*}}: memref<16xf32>, %[[DX:[a-z0-9]+]]: memref<4x32x16xf32>, %{{.*}}: memref<16xf32>, %{{.*}}: memref<16xf32>, %[[WS:[a-z0-9]+]]: memref<?xf64>
// CHECK: %[[DXV:.*]] = memref.collapse_shape %[[DX]]
// Pass A keeps one lane per channel: no halves.
// CHECK-NOT: vector.extract_strided_slice
// CHECK: math.sqrt
// CHECK: %[[SUMS:.*]]:2 = scf.for {{.*}} -> (vector<16xf64>, vector<16xf64>)
// CHECK:   scf.for {{.*}} -> (vector<16xf64>, vector<16xf64>)
// CHECK-NOT: %[[WS]]
// CHECK:     vector.store %{{.*}}, %[[DXV]]
// CHECK-NOT: %[[WS]]
// CHECK:     scf.yield %{{.*}}, %{{.*}} : vector<16xf64>, vector<16xf64>
// CHECK: %[[OLD:.*]] = vector.load %[[WS]]
// CHECK: %[[NEW:.*]] = arith.addf %[[OLD]], %[[SUMS]]#0 : vector<16xf64>
// CHECK: vector.store %[[NEW]], %[[WS]]
// CHECK: %[[OLD1:.*]] = vector.load %[[WS]]
// CHECK: %[[NEW1:.*]] = arith.addf %[[OLD1]], %[[SUMS]]#1 : vector<16xf64>
// CHECK: vector.store %[[NEW1]], %[[WS]]
func.func @bn_nhwc(%dy: tensor<4x32x16xf32>, %x: tensor<4x32x16xf32>, %g: tensor<16xf32>, %m: tensor<16xf32>, %r: tensor<16xf32>)
    -> (tensor<4x32x16xf32>, tensor<16xf32>, tensor<16xf32>) {
  %dx, %dg, %db = norm.normalize_backward %dy, %x gamma(%g) mean(%m) rstd(%r) reduce [0, 1] center eps(1.0e-05, inside) affine [2] {grad_input, grad_weight, grad_bias}
      : (tensor<4x32x16xf32>, tensor<4x32x16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>) -> (tensor<4x32x16xf32>, tensor<16xf32>, tensor<16xf32>)
  return %dx, %dg, %db : tensor<4x32x16xf32>, tensor<16xf32>, tensor<16xf32>
}
