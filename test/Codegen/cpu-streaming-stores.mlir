// RUN: norm-opt %s -split-input-file --norm-derive-backward --norm-form-kernels="vector-length=16 pipeline-items=false" --canonicalize --cse | FileCheck %s
// RUN: norm-opt %s -split-input-file --norm-derive-backward --norm-form-kernels=vector-length=16 --canonicalize --cse | FileCheck %s --check-prefix=PIPELINED
// RUN: norm-opt %s -split-input-file --norm-derive-backward --norm-form-kernels="vector-length=16 streaming-store-min-bytes=-1" --canonicalize --cse | FileCheck %s --check-prefix=NEVER

// Outputs that are large (8 MiB by default) and aligned are written with
// streaming stores: no read-for-ownership of each destination line, and the
// output does not evict the rows being normalized. The choice is made once
// per call (size, base pointer and row length aligned to the vector's
// 64 bytes); pass 3 exists in both forms and a fence follows the last
// streaming store.

// CHECK-LABEL: func.func private @__normc_ln_body
// CHECK-SAME: (%{{[a-z0-9_]+}}: memref<?x4096xf32>, %{{[a-z0-9_]+}}: memref<4096xf32>, %{{[a-z0-9_]+}}: memref<4096xf32>, %[[Y:[a-z0-9_]+]]: memref<?x4096xf32>,
// CHECK-DAG: %[[MIN:[a-z0-9_]+]] = arith.constant 8388608 : index
// CHECK-DAG: %[[C64:[a-z0-9_]+]] = arith.constant 64 : index
// CHECK:     %[[LARGE:[a-z0-9_]+]] = arith.cmpi uge, %{{.*}}, %[[MIN]] : index
// CHECK:     %[[BASE:[a-z0-9_]+]] = memref.extract_aligned_pointer_as_index %[[Y]]
// CHECK:     %[[REM:[a-z0-9_]+]] = arith.remui %[[BASE]], %[[C64]]
// CHECK:     %[[ALIGNED:[a-z0-9_]+]] = arith.cmpi eq, %[[REM]]
// CHECK:     %[[STREAM:[a-z0-9_]+]] = arith.andi %[[LARGE]], %[[ALIGNED]] : i1
// CHECK:     scf.for
// CHECK:       scf.if %[[STREAM]] {
// CHECK:         scf.for
// CHECK:           vector.store %{{.*}}, %[[Y]][{{.*}}] {alignment = 64 : i64, nontemporal = true}
// CHECK:       } else {
// CHECK:         scf.for
// CHECK:           vector.store %{{.*}}, %[[Y]][{{.*}}] : memref<?x4096xf32>, vector<16xf32>
// CHECK:       }
// CHECK:     }
// CHECK:     scf.if %[[STREAM]] {
// CHECK-NEXT:  llvm.call_intrinsic "llvm.x86.sse.sfence"() : () -> ()
// CHECK-NEXT: }
// CHECK-NEXT: return

// dx of the backward: the same, with the f64 backward's vectors of 8 f32
// (32 bytes).
// CHECK-LABEL: func.func private @__normc_ln_backward_body
// CHECK:     memref.extract_aligned_pointer_as_index
// CHECK:           vector.store {{.*}} {alignment = 32 : i64, nontemporal = true} : memref<?x4096xf32>, vector<8xf32>
// CHECK:     llvm.call_intrinsic "llvm.x86.sse.sfence"

// Pipelined (cpu-pipelined-items.mlir), the loop that writes a row and sums
// the next exists in both forms, and so does the last row's.
// PIPELINED-LABEL: func.func private @__normc_ln_body
// PIPELINED:     %[[STREAM:[a-z0-9_]+]] = arith.andi
// PIPELINED:     scf.for {{.*}} -> (f32, f64, f64) {
// PIPELINED:       scf.if %[[STREAM]] -> (vector<8xf64>, vector<8xf64>) {
// PIPELINED:         vector.store {{.*}} {alignment = 64 : i64, nontemporal = true}
// PIPELINED:       } else {
// PIPELINED-NOT:     nontemporal
// PIPELINED:         vector.store
// PIPELINED:       scf.if %[[STREAM]] {
// PIPELINED:         vector.store {{.*}} {alignment = 64 : i64, nontemporal = true}
// PIPELINED:       } else {
// PIPELINED-NOT:     nontemporal
// PIPELINED:         vector.store
// PIPELINED:     scf.if %[[STREAM]] {
// PIPELINED-NEXT:  llvm.call_intrinsic "llvm.x86.sse.sfence"() : () -> ()

// NEVER-LABEL: func.func private @__normc_ln_body
// NEVER-NOT: nontemporal
// NEVER-NOT: sfence
// NEVER: return
func.func @ln(%x: tensor<?x4096xf32>, %w: tensor<4096xf32>, %b: tensor<4096xf32>)
    -> (tensor<?x4096xf32>, tensor<?xf32>, tensor<?xf32>) attributes {norm.backward = ["dx"]} {
  %y, %mean, %rstd = norm.layer_norm %x weight(%w) bias(%b)
      : (tensor<?x4096xf32>, tensor<4096xf32>, tensor<4096xf32>) -> (tensor<?x4096xf32>, tensor<?xf32>, tensor<?xf32>)
  return %y, %mean, %rstd : tensor<?x4096xf32>, tensor<?xf32>, tensor<?xf32>
}

// -----

// Rows of 100 f32 (400 bytes) leave most vectors unaligned, and 8x64 f32 is
// far below the size: both fold to plain stores at compile time.

// CHECK-LABEL: func.func private @__normc_odd_rows_body
// CHECK-NOT: nontemporal
// CHECK-NOT: sfence
// CHECK: return
func.func @odd_rows(%x: tensor<?x100xf32>) -> tensor<?x100xf32> {
  %y, %m, %r = norm.layer_norm %x : (tensor<?x100xf32>) -> (tensor<?x100xf32>, tensor<?xf32>, tensor<?xf32>)
  return %y : tensor<?x100xf32>
}

// CHECK-LABEL: func.func private @__normc_small_body
// CHECK-NOT: nontemporal
// CHECK-NOT: sfence
// CHECK: return
func.func @small(%x: tensor<8x64xf32>) -> tensor<8x64xf32> {
  %y, %r = norm.rms_norm %x : (tensor<8x64xf32>) -> (tensor<8x64xf32>, tensor<8xf32>)
  return %y : tensor<8x64xf32>
}

// -----

// Lane mode (InstanceNorm NHWC, 64 channels = 4 chunks of 16 lanes): the
// statistics fill every chunk, so the lane mask is a constant whole mask
// and pass 3 stores whole vectors, streaming when the output is large and
// aligned. Channels-last outputs are written through the cache otherwise
// (each position's line read for ownership first).

// CHECK-LABEL: func.func private @__normc_in_nhwc_body
// CHECK: %[[STREAM:[a-z0-9_]+]] = arith.andi
// CHECK: scf.if %[[STREAM]] {
// CHECK:   scf.for
// CHECK:     vector.store {{.*}} {alignment = 64 : i64, nontemporal = true} : memref<?x3136x64xf32>, vector<16xf32>
// CHECK: } else {
// CHECK:   scf.for
// CHECK-NOT: nontemporal
// CHECK:     vector.store {{.*}} : memref<?x3136x64xf32>, vector<16xf32>
// CHECK: llvm.x86.sse.sfence
// NEVER-LABEL: func.func private @__normc_in_nhwc_body
// NEVER-NOT: nontemporal
// NEVER: return
func.func @in_nhwc(%x: tensor<?x56x56x64xf32>) -> tensor<?x56x56x64xf32> {
  %y, %m, %r = norm.instance_norm %x {channel_dim = 3 : i64} : (tensor<?x56x56x64xf32>) -> (tensor<?x56x56x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  return %y : tensor<?x56x56x64xf32>
}
