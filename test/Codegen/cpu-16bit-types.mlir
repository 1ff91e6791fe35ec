// RUN: norm-opt %s -split-input-file --norm-form-kernels=vector-length=16 --canonicalize --cse | FileCheck %s

// bf16 data lives in i16 memrefs: loads widen by a 16-bit shift, the store
// rounds to nearest even with integer ops (bits + 0x7FFF + lsb) >> 16 and
// keeps NaNs quiet, so no compiler-rt helper is needed.

// CHECK-LABEL: func.func private @__normc_rms_bf16_body
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: memref<?x64xi16>, %[[W:[a-z0-9_]+]]: memref<64xi16>, %[[Y:[a-z0-9_]+]]: memref<?x64xi16>, %[[R:[a-z0-9_]+]]: memref<?xf32>,
// CHECK-DAG: arith.constant dense<32767> : vector<16xi32>
// CHECK: vector.load %[[X]]{{.*}} : memref<?x64xi16>, vector<16xi16>
// CHECK: arith.extui %{{.*}} : vector<16xi16> to vector<16xi32>
// CHECK: arith.shli
// CHECK: arith.bitcast %{{.*}} : vector<16xi32> to vector<16xf32>
// CHECK: %[[NAN:[a-z0-9_]+]] = arith.cmpf uno
// NaN: the high half with the quiet bit set, chosen before the one narrowing.
// CHECK: %[[QUIET:[a-z0-9_]+]] = arith.ori %{{.*}}, %{{.*}} : vector<16xi32>
// CHECK: arith.select %[[NAN]], %[[QUIET]], %{{.*}} : vector<16xi1>, vector<16xi32>
// CHECK: arith.shrui
// CHECK: arith.trunci %{{.*}} : vector<16xi32> to vector<16xi16>
// CHECK: vector.store %{{.*}}, %[[Y]]{{.*}} : memref<?x64xi16>, vector<16xi16>
func.func @rms_bf16(%x: tensor<?x64xbf16>, %w: tensor<64xbf16>) -> (tensor<?x64xbf16>, tensor<?xf32>) {
  %y, %r = norm.rms_norm %x weight(%w) {eps = 1.0e-06 : f64} : (tensor<?x64xbf16>, tensor<64xbf16>) -> (tensor<?x64xbf16>, tensor<?xf32>)
  return %y, %r : tensor<?x64xbf16>, tensor<?xf32>
}

// -----

// f16 uses the hardware conversions (F16C): bitcast to f16, then extf/truncf.

// CHECK-LABEL: func.func private @__normc_ln_f16_body
// CHECK: arith.bitcast %{{.*}} : vector<16xi16> to vector<16xf16>
// CHECK: arith.extf %{{.*}} : vector<16xf16> to vector<16xf32>
// CHECK: arith.truncf %{{.*}} : vector<16xf32> to vector<16xf16>
// CHECK: arith.bitcast %{{.*}} : vector<16xf16> to vector<16xi16>
func.func @ln_f16(%x: tensor<?x32xf16>) -> (tensor<?x32xf16>, tensor<?xf32>, tensor<?xf32>) {
  %y, %m, %r = norm.layer_norm %x : (tensor<?x32xf16>) -> (tensor<?x32xf16>, tensor<?xf32>, tensor<?xf32>)
  return %y, %m, %r : tensor<?x32xf16>, tensor<?xf32>, tensor<?xf32>
}

// -----

// 16-bit results computed in f64 (the backward's dx, dgamma, dbeta) are
// rounded once: f64 -> f32 rounded to odd (the nearest f32, moved one step
// towards the value when it is inexact and even), then to nearest even as
// above. Rounding to nearest twice could land on a bf16 tie that the f64
// value was above (or below).

// CHECK-LABEL: func.func private @__normc_dx_bf16_body
// CHECK-SAME: (%{{.*}}: memref<?x64xi16>, %{{.*}}: memref<?x64xi16>, %{{.*}}: memref<?xf32>, %[[DX:[a-z0-9_]+]]: memref<?x64xi16>, %{{.*}}: memref<?xf64>,
// CHECK: %[[NEAR:.*]] = arith.truncf %[[V:.*]] : vector<8xf64> to vector<8xf32>
// CHECK: %[[BACK:.*]] = arith.extf %[[NEAR]] : vector<8xf32> to vector<8xf64>
// CHECK: %[[INEXACT:.*]] = arith.cmpf one, %[[BACK]], %[[V]] : vector<8xf64>
// CHECK: %[[BITS:.*]] = arith.bitcast %[[NEAR]] : vector<8xf32> to vector<8xi32>
// CHECK: %[[LOW:.*]] = arith.andi %[[BITS]], %{{.*}} : vector<8xi32>
// CHECK: %[[EVEN:.*]] = arith.cmpi eq, %[[LOW]], %{{.*}} : vector<8xi32>
// CHECK: %[[ABSV:.*]] = math.absf %[[V]] : vector<8xf64>
// CHECK: %[[ABSB:.*]] = math.absf %[[BACK]] : vector<8xf64>
// CHECK: %[[AWAY:.*]] = arith.cmpf ogt, %[[ABSB]], %[[ABSV]] : vector<8xf64>
// CHECK: %[[STEP:.*]] = arith.select %[[AWAY]], %{{.*}}, %{{.*}} : vector<8xi1>, vector<8xi32>
// CHECK: %[[ADJUST:.*]] = arith.andi %[[INEXACT]], %[[EVEN]] : vector<8xi1>
// CHECK: %[[MOVED:.*]] = arith.addi %[[BITS]], %[[STEP]] : vector<8xi32>
// CHECK: %[[ODD:.*]] = arith.select %[[ADJUST]], %[[MOVED]], %[[BITS]] : vector<8xi1>, vector<8xi32>
// CHECK: arith.addi %[[ODD]], %{{.*}} : vector<8xi32>
// CHECK: vector.store %{{.*}}, %[[DX]]{{.*}} : memref<?x64xi16>, vector<8xi16>
func.func @dx_bf16(%dy: tensor<?x64xbf16>, %x: tensor<?x64xbf16>, %r: tensor<?xf32>) -> tensor<?x64xbf16> {
  %dx = norm.normalize_backward %dy, %x rstd(%r) reduce [1] eps(1.0e-05, inside) {grad_input}
      : (tensor<?x64xbf16>, tensor<?x64xbf16>, tensor<?xf32>) -> tensor<?x64xbf16>
  return %dx : tensor<?x64xbf16>
}
