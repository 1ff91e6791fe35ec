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
