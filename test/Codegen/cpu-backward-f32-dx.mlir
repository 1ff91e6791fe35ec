// RUN: norm-opt %s -split-input-file --norm-form-kernels=vector-length=16 --canonicalize --cse | FileCheck %s

// 16-bit backward rows: pass A also keeps two running f32 maxima (max |g|
// and max |x - mean'|, x86 max as cmpf ogt + select), reduced once per row;
// they bound the error of an f32 dx (at most 2^-18 = 3.81e-6, with every
// f32 factor below 2^100). Where the bound holds, pass B computes dx with
// f32 fmas and rounds it to bf16 without a NaN select (its results are
// finite); otherwise it runs the f64 pass B. The dgamma/dbeta partials are
// f64 in both.

// CHECK-LABEL: func.func private @__normc_ln_bf16_body
// CHECK-DAG: %[[BOUND:.*]] = arith.constant 3.814697265625E-6 : f64
// CHECK-DAG: %[[HUGE:.*]] = arith.constant 1.2676506002282294E+30 : f64
// CHECK: scf.for {{.*}} -> (vector<4xf64>, vector<4xf64>, vector<4xf64>, vector<4xf64>, vector<4xf32>, vector<4xf32>)
// CHECK:   arith.cmpf ogt, %{{.*}} : vector<4xf32>
// CHECK:   arith.select %{{.*}} : vector<4xi1>, vector<4xf32>
// CHECK: vector.reduction <maximumf>, %{{.*}} : vector<4xf32> into f32
// CHECK: vector.reduction <maximumf>, %{{.*}} : vector<4xf32> into f32
// CHECK: arith.cmpf ole, %{{.*}}, %[[BOUND]] : f64
// CHECK: arith.cmpf ole, %{{.*}}, %[[HUGE]] : f64
// CHECK: arith.andi %{{.*}} : i1
// The streaming-store choice, then the precision's:
// CHECK: scf.if %{{.*}} {
// CHECK-NEXT: scf.if %{{.*}} {
// CHECK:   scf.for
// CHECK:     math.fma %{{.*}} : vector<8xf32>
// CHECK:     math.fma %{{.*}} : vector<8xf32>
// CHECK-NOT: arith.cmpf uno
// CHECK:     vector.store %{{.*}} : memref<?x64xi16>, vector<8xi16>
// CHECK: } else {
// CHECK:   scf.for
// CHECK:     math.fma %{{.*}} : vector<8xf64>
// CHECK:     arith.truncf %{{.*}} : vector<8xf64> to vector<8xf32>
// CHECK:     arith.cmpf uno
// CHECK:     vector.store %{{.*}} : memref<?x64xi16>, vector<8xi16>
func.func @ln_bf16(%dy: tensor<?x64xbf16>, %x: tensor<?x64xbf16>, %m: tensor<?xf32>, %r: tensor<?xf32>) -> tensor<?x64xbf16> {
  %dx = norm.normalize_backward %dy, %x mean(%m) rstd(%r) reduce [1] center eps(1.0e-05, inside) {grad_input}
      : (tensor<?x64xbf16>, tensor<?x64xbf16>, tensor<?xf32>, tensor<?xf32>) -> tensor<?x64xbf16>
  return %dx : tensor<?x64xbf16>
}

// -----

// f32 data keeps the f64 pass B alone: its loads convert as they go, and an
// f32 dx measured no faster.

// CHECK-LABEL: func.func private @__normc_rms_f32_body
// CHECK-NOT: 3.814697265625E-6
// CHECK-NOT: math.fma %{{.*}} : vector<8xf32>
// CHECK-LABEL: func.func private @__normc_rms_f32_finalizebody
func.func @rms_f32(%dy: tensor<?x64xf32>, %x: tensor<?x64xf32>, %g: tensor<64xf32>, %r: tensor<?xf32>)
    -> (tensor<?x64xf32>, tensor<64xf32>) {
  %dx, %dg = norm.normalize_backward %dy, %x gamma(%g) rstd(%r) reduce [1] eps(1.0e-05, inside) affine [1] {grad_input, grad_weight}
      : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>, tensor<?xf32>) -> (tensor<?x64xf32>, tensor<64xf32>)
  return %dx, %dg : tensor<?x64xf32>, tensor<64xf32>
}

// -----

// Lane modes (channels-last BatchNorm) keep f64 too.

// CHECK-LABEL: func.func private @__normc_bn_nhwc_bf16_body
// CHECK-NOT: 3.814697265625E-6
// CHECK-LABEL: func.func private @__normc_bn_nhwc_bf16_finalizebody
func.func @bn_nhwc_bf16(%dy: tensor<4x32x16xbf16>, %x: tensor<4x32x16xbf16>, %g: tensor<16xbf16>, %m: tensor<16xf32>, %r: tensor<16xf32>)
    -> (tensor<4x32x16xbf16>, tensor<16xbf16>, tensor<16xbf16>) {
  %dx, %dg, %db = norm.normalize_backward %dy, %x gamma(%g) mean(%m) rstd(%r) reduce [0, 1] center eps(1.0e-05, inside) affine [2] {grad_input, grad_weight, grad_bias}
      : (tensor<4x32x16xbf16>, tensor<4x32x16xbf16>, tensor<16xbf16>, tensor<16xf32>, tensor<16xf32>) -> (tensor<4x32x16xbf16>, tensor<16xbf16>, tensor<16xbf16>)
  return %dx, %dg, %db : tensor<4x32x16xbf16>, tensor<16xbf16>, tensor<16xbf16>
}
