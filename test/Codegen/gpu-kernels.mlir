// RUN: norm-opt %s -split-input-file --norm-derive-backward --norm-form-gpu-kernels --canonicalize --cse | FileCheck %s

// LayerNorm, bf16 rows of 64: a warp per row (X = 32, 8 rows per block).
// The spec keeps its function and lists its GPU functions in plan order.

// CHECK-LABEL: func.func @__normc_ln_gpu_plan
// CHECK-SAME: (%{{.*}}: !llvm.ptr, %[[PLAN:.*]]: !llvm.ptr) -> i32 attributes {normc.gpu_plan}
// The fused launch: function 0, grid (ceil(rows / 8), 1, 1), block (32, 8, 1).
// CHECK: scf.if
// CHECK: llvm.store %c32_i32
// CHECK: llvm.store %c8_i32
// CHECK: return
// CHECK-LABEL: func.func @ln(
// CHECK-SAME: normc.gpu_functions = ["ln_gpu_fused", "ln_gpu_partials", "ln_gpu_apply"]
// CHECK: gpu.module @normc_gpu
// Parameters: one flat memref per ABI argument, the f64 workspace, the dims;
// shared memory holds four f64 values per warp.
// CHECK-LABEL: gpu.func @ln_gpu_fused
// CHECK-SAME: (%[[X:.*]]: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %[[Y:.*]]: memref<?xbf16>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf64>, %{{.*}}: i64)
// CHECK-SAME: workgroup(%{{.*}} : memref<128xf64, #gpu.address_space<workgroup>>) kernel
// Statistics: 128-bit loads when aligned, single elements otherwise.
// CHECK: vector.load %[[X]][%{{.*}}] {alignment = 16 : i64} : memref<?xbf16>, vector<8xbf16>
// CHECK: arith.extf %{{.*}} : vector<8xbf16> to vector<8xf32>
// Statistics accumulate in f64 (Welford on x - x0).
// CHECK: arith.extf %{{.*}} : vector<8xf32> to vector<8xf64>
// CHECK: vector.load %[[X]][%{{.*}}] {alignment = 2 : i64} : memref<?xbf16>, vector<1xbf16>
// A shuffle tree in each warp, then the warps' results through shared memory.
// CHECK: gpu.shuffle down %{{.*}}, %c16_i32, %c32_i32 : f64
// CHECK: gpu.shuffle down %{{.*}}, %c1_i32, %c32_i32 : f64
// CHECK: gpu.barrier
// CHECK: gpu.barrier
// Correctly rounded square root, without libdevice.
// CHECK: llvm.inline_asm "sqrt.rn.f64 $0, $1;", "=d,d"
// The output: 128-bit stores of bf16 rounded once.
// CHECK: arith.truncf %{{.*}} : vector<8xf32> to vector<8xbf16>
// CHECK: vector.store %{{.*}}, %[[Y]][%{{.*}}] {alignment = 16 : i64}
// CHECK: gpu.return
// CHECK-LABEL: gpu.func @ln_gpu_partials
// Each of the K blocks of a statistic stores its (count, mean, M2, shift).
// CHECK: memref.store %{{.*}}, %{{.*}} : memref<?xf64>
// CHECK-LABEL: gpu.func @ln_gpu_apply
// CHECK: memref.load %{{.*}} : memref<?xf64>
func.func @ln(%x: tensor<?x64xbf16>, %w: tensor<64xbf16>, %b: tensor<64xbf16>)
    -> (tensor<?x64xbf16>, tensor<?xf32>, tensor<?xf32>) {
  %y, %mean, %rstd = norm.layer_norm %x weight(%w) bias(%b) {eps = 1.0e-05 : f64}
      : (tensor<?x64xbf16>, tensor<64xbf16>, tensor<64xbf16>)
      -> (tensor<?x64xbf16>, tensor<?xf32>, tensor<?xf32>)
  return %y, %mean, %rstd : tensor<?x64xbf16>, tensor<?xf32>, tensor<?xf32>
}

// -----

// BatchNorm inference: given statistics make it elementwise, one fused
// kernel, no reduction, no shuffles.

// CHECK-LABEL: func.func @bn_infer(
// CHECK-SAME: normc.gpu_functions = ["bn_infer_gpu_fused"]
// CHECK-LABEL: gpu.func @bn_infer_gpu_fused
// CHECK-NOT: gpu.shuffle
// CHECK: gpu.return
func.func @bn_infer(%x: tensor<?x16x7x7xf32>, %rm: tensor<16xf32>, %rv: tensor<16xf32>)
    -> tensor<?x16x7x7xf32> {
  %y = norm.batch_norm %x running(%rm, %rv)
      : (tensor<?x16x7x7xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<?x16x7x7xf32>
  return %y : tensor<?x16x7x7xf32>
}

// -----

// BatchNorm channels-last [N, C]: the reduced dim is strided (the kept
// channel is innermost), so there is no 128-bit path: single elements only.

// CHECK-LABEL: gpu.func @bn_nhwc_gpu_fused
// CHECK-NOT: vector<4xf32>
// CHECK: vector.load %{{.*}} {alignment = 4 : i64} : memref<?xf32>, vector<1xf32>
// CHECK: gpu.return
func.func @bn_nhwc(%x: tensor<?x40xf32>, %rm: tensor<40xf32>, %rv: tensor<40xf32>)
    -> (tensor<?x40xf32>, tensor<40xf32>, tensor<40xf32>, tensor<40xf32>, tensor<40xf32>) {
  %y, %m, %r, %nm, %nv = norm.batch_norm %x running(%rm, %rv) {training, channel_dim = 1 : i64}
      : (tensor<?x40xf32>, tensor<40xf32>, tensor<40xf32>)
      -> (tensor<?x40xf32>, tensor<40xf32>, tensor<40xf32>, tensor<40xf32>, tensor<40xf32>)
  return %y, %m, %r, %nm, %nv
      : tensor<?x40xf32>, tensor<40xf32>, tensor<40xf32>, tensor<40xf32>, tensor<40xf32>
}

// -----

// A derived backward with dgamma/dbeta: the rows kernels (dx, and the
// x-hat correction of the rounded saved mean) and the affine kernels
// (per-chunk f64 partials, then their sum in chunk order).

// CHECK-LABEL: func.func @ln_backward(
// CHECK-SAME: normc.gpu_functions = ["ln_backward_gpu_fused", "ln_backward_gpu_partials", "ln_backward_gpu_apply", "ln_backward_gpu_affine_partials", "ln_backward_gpu_affine_finalize"]
// CHECK-LABEL: gpu.func @ln_backward_gpu_affine_partials
// CHECK: scf.for {{.*}} -> (f64, f64)
// CHECK: memref.store %{{.*}} : memref<?xf64>
// CHECK-LABEL: gpu.func @ln_backward_gpu_affine_finalize
// CHECK: scf.for {{.*}} -> (f64, f64)
// CHECK: arith.truncf %{{.*}} : f64 to f32
func.func @ln(%x: tensor<?x32xf32>, %w: tensor<32xf32>, %b: tensor<32xf32>)
    -> (tensor<?x32xf32>, tensor<?xf32>, tensor<?xf32>) attributes {norm.backward} {
  %y, %mean, %rstd = norm.layer_norm %x weight(%w) bias(%b)
      : (tensor<?x32xf32>, tensor<32xf32>, tensor<32xf32>)
      -> (tensor<?x32xf32>, tensor<?xf32>, tensor<?xf32>)
  return %y, %mean, %rstd : tensor<?x32xf32>, tensor<?xf32>, tensor<?xf32>
}

// -----

// Static rows that 32..1024 threads cover with a few whole 128-bit vectors
// each (256 f32 = 64 threads x 1 vector): the backward also gets the fused
// kernel that keeps dy, x and gamma in registers, computes dx and
// accumulates dgamma/dbeta (f64) over its rows.

// CHECK-LABEL: func.func @ln256_backward(
// CHECK-SAME: "ln256_backward_gpu_affine_finalize", "ln256_backward_gpu_fused_affine"]
// CHECK-LABEL: gpu.func @ln256_backward_gpu_fused_affine
// Every thread runs the same number of row iterations (barriers inside).
// CHECK: scf.for {{.*}} -> (vector<4xf64>, vector<4xf64>)
// CHECK: vector.load {{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK: gpu.shuffle down
// CHECK: vector.store {{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK: memref.store {{.*}} : memref<?xf64>
func.func @ln256(%x: tensor<?x256xf32>, %w: tensor<256xf32>, %b: tensor<256xf32>)
    -> (tensor<?x256xf32>, tensor<?xf32>, tensor<?xf32>) attributes {norm.backward} {
  %y, %mean, %rstd = norm.layer_norm %x weight(%w) bias(%b)
      : (tensor<?x256xf32>, tensor<256xf32>, tensor<256xf32>)
      -> (tensor<?x256xf32>, tensor<?xf32>, tensor<?xf32>)
  return %y, %mean, %rstd : tensor<?x256xf32>, tensor<?xf32>, tensor<?xf32>
}
