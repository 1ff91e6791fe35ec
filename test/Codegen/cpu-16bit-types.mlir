// RUN: norm-opt %s -split-input-file --norm-form-kernels=vector-length=16 --canonicalize --cse | FileCheck %s

// bf16 data lives in i16 memrefs: loads widen by a 16-bit shift, the store
// rounds to nearest even with integer ops (bits + 0x7FFF + lsb) >> 16, so no
// compiler-rt helper is needed. A forward that reads only bf16 arrays needs
// no NaN select: every NaN it computes carries a bf16 payload or the
// preferred NaN's, zero in the low half, which the rounding add cannot carry
// out of.

// CHECK-LABEL: func.func private @__normc_rms_bf16_body
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: memref<?x64xi16>, %[[W:[a-z0-9_]+]]: memref<64xi16>, %[[Y:[a-z0-9_]+]]: memref<?x64xi16>, %[[R:[a-z0-9_]+]]: memref<?xf32>,
// CHECK-DAG: arith.constant dense<32767> : vector<16xi32>
// CHECK: vector.load %[[X]]{{.*}} : memref<?x64xi16>, vector<16xi16>
// CHECK: arith.extui %{{.*}} : vector<16xi16> to vector<16xi32>
// CHECK: arith.shli
// CHECK: arith.bitcast %{{.*}} : vector<16xi32> to vector<16xf32>
// CHECK-NOT: arith.cmpf uno
// CHECK: arith.shrui
// CHECK: arith.trunci %{{.*}} : vector<16xi32> to vector<16xi16>
// CHECK: vector.store %{{.*}}, %[[Y]]{{.*}} : memref<?x64xi16>, vector<16xi16>
func.func @rms_bf16(%x: tensor<?x64xbf16>, %w: tensor<64xbf16>) -> (tensor<?x64xbf16>, tensor<?xf32>) {
  %y, %r = norm.rms_norm %x weight(%w) {eps = 1.0e-06 : f64} : (tensor<?x64xbf16>, tensor<64xbf16>) -> (tensor<?x64xbf16>, tensor<?xf32>)
  return %y, %r : tensor<?x64xbf16>, tensor<?xf32>
}

// -----

// A bf16 dx also depends on the saved f32 statistics, whose NaNs may have
// any payload: rounding could carry one into inf or wrap it to zero, so a
// NaN keeps its high half with the quiet bit set, chosen before the one
// narrowing.

// CHECK-LABEL: func.func private @__normc_dx_bf16_body
// CHECK: %[[NAN:[a-z0-9_]+]] = arith.cmpf uno
// CHECK: %[[QUIET:[a-z0-9_]+]] = arith.ori %{{.*}}, %{{.*}} : vector<8xi32>
// CHECK: arith.select %[[NAN]], %[[QUIET]], %{{.*}} : vector<8xi1>, vector<8xi32>
// CHECK: arith.shrui
// CHECK: arith.trunci %{{.*}} : vector<8xi32> to vector<8xi16>
func.func @dx_bf16(%dy: tensor<?x64xbf16>, %x: tensor<?x64xbf16>, %m: tensor<?xf32>, %r: tensor<?xf32>) -> tensor<?x64xbf16> {
  %dx = norm.normalize_backward %dy, %x mean(%m) rstd(%r) reduce [1] center eps(1.0e-05, inside) {grad_input}
      : (tensor<?x64xbf16>, tensor<?x64xbf16>, tensor<?xf32>, tensor<?xf32>) -> tensor<?x64xbf16>
  return %dx : tensor<?x64xbf16>
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

// 16-bit dgamma/dbeta (sums in f64, which can sit just beside a 16-bit
// tie) are rounded once: f64 -> f32 rounded to odd on the f64 bits (if any
// of the 29 bits f32 drops is set, they are cleared and the lowest kept bit
// set, so the conversion is exact and odd), then to nearest even as above.
// Rounding to nearest twice could land on a tie the sum was above or below.

// CHECK-LABEL: func.func private @__normc_dbeta_bf16_finalizebody
// CHECK-SAME: %[[DB:[a-z0-9_]+]]: memref<64xi16>, %{{.*}}: memref<?xf64>)
// CHECK-DAG: %[[DROPPED:.*]] = arith.constant dense<536870911> : vector<8xi64>
// CHECK-DAG: %[[KEPT:.*]] = arith.constant dense<-536870912> : vector<8xi64>
// CHECK-DAG: %[[LOWEST:.*]] = arith.constant dense<536870912> : vector<8xi64>
// CHECK: %[[BITS:.*]] = arith.bitcast %{{.*}} : vector<8xf64> to vector<8xi64>
// CHECK: %[[LOW:.*]] = arith.andi %[[BITS]], %[[DROPPED]] : vector<8xi64>
// CHECK: %[[STICKY:.*]] = arith.cmpi ne, %[[LOW]], %{{.*}} : vector<8xi64>
// CHECK: %[[HIGH:.*]] = arith.andi %[[BITS]], %[[KEPT]] : vector<8xi64>
// CHECK: %[[ODD:.*]] = arith.ori %[[HIGH]], %[[LOWEST]] : vector<8xi64>
// CHECK: %[[CHOSEN:.*]] = arith.select %[[STICKY]], %[[ODD]], %[[BITS]] : vector<8xi1>, vector<8xi64>
// CHECK: %[[EXACT:.*]] = arith.bitcast %[[CHOSEN]] : vector<8xi64> to vector<8xf64>
// CHECK: arith.truncf %[[EXACT]] : vector<8xf64> to vector<8xf32>
// CHECK: vector.store %{{.*}}, %[[DB]]{{.*}} : memref<64xi16>, vector<8xi16>
func.func @dbeta_bf16(%dy: tensor<?x64xbf16>, %x: tensor<?x64xbf16>, %m: tensor<?xf32>, %r: tensor<?xf32>) -> tensor<64xbf16> {
  %db = norm.normalize_backward %dy, %x mean(%m) rstd(%r) reduce [1] center eps(1.0e-05, inside) affine [1] {grad_bias}
      : (tensor<?x64xbf16>, tensor<?x64xbf16>, tensor<?xf32>, tensor<?xf32>) -> tensor<64xbf16>
  return %db : tensor<64xbf16>
}
