// RUN: norm-opt %s --norm-form-gpu-kernels --norm-emulate-gpu-kernels --canonicalize | FileCheck %s

// Host copies of the GPU kernels for the emulator (test/gpu-emulator): the
// same body, with ids, barriers and shuffles read or called through the
// per-thread context (the last argument), the workgroup buffer as a plain
// memref, and sqrt.rn as math.sqrt.

// CHECK-LABEL: func.func @__normc_emu_rms_gpu_fused
// CHECK-SAME: %{{.*}}: memref<128xf64>, %[[CTX:.*]]: !llvm.ptr) attributes {normc.gpu_plan}
// CHECK-NOT: gpu.thread_id
// CHECK: llvm.load %{{.*}} : !llvm.ptr -> i64
// CHECK: llvm.call %{{.*}}(%[[CTX]], %{{.*}}, %{{.*}}) : !llvm.ptr, (!llvm.ptr, f64, i32) -> f64
// CHECK: llvm.call %{{.*}}(%[[CTX]]) : !llvm.ptr, (!llvm.ptr) -> ()
// CHECK: math.sqrt
// CHECK-NOT: llvm.inline_asm
// CHECK: return
func.func @rms(%x: tensor<?x128xf32>, %w: tensor<128xf32>) -> (tensor<?x128xf32>, tensor<?xf32>) {
  %y, %rstd = norm.rms_norm %x weight(%w) {eps = 1.0e-06 : f64}
      : (tensor<?x128xf32>, tensor<128xf32>) -> (tensor<?x128xf32>, tensor<?xf32>)
  return %y, %rstd : tensor<?x128xf32>, tensor<?xf32>
}
