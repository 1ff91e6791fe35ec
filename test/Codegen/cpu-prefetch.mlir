// RUN: norm-opt %s -split-input-file --norm-derive-backward --norm-form-kernels="vector-length=32 pipeline-items=false" --canonicalize --cse | FileCheck %s
// RUN: norm-opt %s -split-input-file --norm-derive-backward --norm-form-kernels="vector-length=32 prefetch-next-item=false" --canonicalize --cse | FileCheck %s --check-prefix=OFF

// Unpipelined items (the f32 forward below is pipelined by default, and
// then prefetches the row after next: cpu-pipelined-items.mlir).

// The first pass over a row reads it from memory; the later passes find it
// in cache and only compute, so the memory would sit idle while they run.
// The last pass therefore prefetches the same positions of the next row of
// the call (or of the current row again after the last one): one prefetch
// per 64-byte line, into L2.

// Forward, f32 rows of 4096 (16 KiB): vectors of 32 f32 are two lines.
// CHECK-LABEL: func.func private @__normc_ln_body
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: memref<?x4096xf32>, {{.*}}, %{{[a-z0-9_]+}}: index, %[[END:[a-z0-9_]+]]: index)
// CHECK-DAG: %[[C16:[a-z0-9_]+]] = arith.constant 16 : index
// CHECK:     scf.for %[[ITEM:[a-z0-9_]+]] = %{{.*}} to %[[END]]
// CHECK:       %[[NEXT:[a-z0-9_]+]] = arith.addi %[[ITEM]], %{{.*}} : index
// CHECK:       %[[INSIDE:[a-z0-9_]+]] = arith.cmpi ult, %[[NEXT]], %[[END]] : index
// CHECK:       %[[ROW:[a-z0-9_]+]] = arith.select %[[INSIDE]], %[[NEXT]], %[[ITEM]] : index
// Passes 1 and 2 do not prefetch.
// CHECK-NOT:   memref.prefetch
// CHECK:       scf.for %[[J:[a-z0-9_]+]] = %{{[a-z0-9_]+}} to %{{[a-z0-9_]+}} step %{{[a-z0-9_]+}} {
// CHECK-NEXT:    memref.prefetch %[[X]][%[[ROW]], %[[J]]], read, locality<2>, data
// CHECK-NEXT:    %[[J16:[a-z0-9_]+]] = arith.addi %[[J]], %[[C16]] : index
// CHECK-NEXT:    memref.prefetch %[[X]][%[[ROW]], %[[J16]]], read, locality<2>, data
// CHECK-NEXT:    vector.load %[[X]][%[[ITEM]], %[[J]]]

// Backward: pass B prefetches x and dy of the next row of the chunk (f64
// vectors of 16 lanes: 16 f32, one line each).
// CHECK-LABEL: func.func private @__normc_ln_backward_body
// CHECK:       scf.for %[[CHUNK:[a-z0-9_]+]] =
// CHECK:         scf.for %[[BITEM:[a-z0-9_]+]] = %{{[a-z0-9_]+}} to %[[LAST:[a-z0-9_]+]] step
// CHECK-NEXT:      %[[BNEXT:[a-z0-9_]+]] = arith.addi %[[BITEM]], %{{.*}} : index
// CHECK-NEXT:      %[[BIN:[a-z0-9_]+]] = arith.cmpi ult, %[[BNEXT]], %[[LAST]] : index
// CHECK-NEXT:      %[[BROW:[a-z0-9_]+]] = arith.select %[[BIN]], %[[BNEXT]], %[[BITEM]] : index
// CHECK-NOT:       memref.prefetch
// CHECK:           scf.for %[[BJ:[a-z0-9_]+]] = %{{[a-z0-9_]+}} to %{{[a-z0-9_]+}} step %{{[a-z0-9_]+}} {
// CHECK-NEXT:        memref.prefetch %{{[a-z0-9_]+}}[%[[BROW]], %[[BJ]]], read, locality<2>, data
// CHECK-NEXT:        memref.prefetch %{{[a-z0-9_]+}}[%[[BROW]], %[[BJ]]], read, locality<2>, data
// CHECK-NEXT:        vector.load %{{[a-z0-9_]+}}[%[[BITEM]], %[[BJ]]]

// OFF-LABEL: func.func private @__normc_ln_body
// OFF-NOT: memref.prefetch
// OFF-LABEL: func.func private @__normc_ln_backward_body
// OFF-NOT: memref.prefetch
// OFF: return
func.func @ln(%x: tensor<?x4096xf32>, %w: tensor<4096xf32>, %b: tensor<4096xf32>)
    -> (tensor<?x4096xf32>, tensor<?xf32>, tensor<?xf32>) attributes {norm.backward = ["dx"]} {
  %y, %mean, %rstd = norm.layer_norm %x weight(%w) bias(%b)
      : (tensor<?x4096xf32>, tensor<4096xf32>, tensor<4096xf32>) -> (tensor<?x4096xf32>, tensor<?xf32>, tensor<?xf32>)
  return %y, %mean, %rstd : tensor<?x4096xf32>, tensor<?xf32>, tensor<?xf32>
}

// -----

// Row length known only at run time: rows of at most 64 KiB prefetch their
// successor, longer ones prefetch their own lines (L1 hits) instead: the
// current and the next row would no longer fit in L2 together.

// CHECK-LABEL: func.func private @__normc_dyn_body
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: memref<?x?xi16>,
// CHECK-DAG: %[[LIMIT:[a-z0-9_]+]] = arith.constant 65536 : index
// CHECK:     %[[FITS:[a-z0-9_]+]] = arith.cmpi ule, %{{.*}}, %[[LIMIT]] : index
// Rows of 64K elements or more are split (cpu-split-rows.mlir): that branch
// comes first and streams its chunks without prefetching. The item loop
// runs from the body's arguments begin to end.
// CHECK:     scf.for %[[ITEM:[a-z0-9_]+]] = %arg{{[0-9]+}} to %[[END:arg[0-9]+]] step
// CHECK:       %[[NEXT:[a-z0-9_]+]] = arith.addi %[[ITEM]]
// CHECK:       %[[INSIDE:[a-z0-9_]+]] = arith.cmpi ult, %[[NEXT]], %[[END]]
// CHECK:       %[[USE:[a-z0-9_]+]] = arith.andi %[[INSIDE]], %[[FITS]] : i1
// CHECK:       %[[ROW:[a-z0-9_]+]] = arith.select %[[USE]], %[[NEXT]], %[[ITEM]] : index
// 32 bf16 are one line.
// CHECK:       memref.prefetch %[[X]][%[[ROW]], %{{.*}}], read, locality<2>, data : memref<?x?xi16>
// CHECK-NOT:   memref.prefetch
// CHECK:       memref.prefetch %[[X]][%[[ROW]], %{{.*}}], read, locality<2>, data : memref<?x?xi16>
// CHECK-NOT:   memref.prefetch
// CHECK:       return
func.func @dyn(%x: tensor<?x?xbf16>) -> tensor<?x?xbf16> {
  %y, %r = norm.rms_norm %x : (tensor<?x?xbf16>) -> (tensor<?x?xbf16>, tensor<?xf32>)
  return %y : tensor<?x?xbf16>
}

// -----

// No prefetch where it cannot help: rows of 256 KiB (known at compile time),
// given statistics (a single pass, already reading from memory), and lane
// mode (BatchNorm over NHWC: one item is a slice of every row of the batch).

// CHECK-LABEL: func.func private @__normc_long_rows_body
// CHECK-NOT: memref.prefetch
// CHECK: return
func.func @long_rows(%x: tensor<?x65536xf32>) -> tensor<?x65536xf32> {
  %y, %m, %r = norm.layer_norm %x : (tensor<?x65536xf32>) -> (tensor<?x65536xf32>, tensor<?xf32>, tensor<?xf32>)
  return %y : tensor<?x65536xf32>
}

// CHECK-LABEL: func.func private @__normc_bn_inference_body
// CHECK-NOT: memref.prefetch
// CHECK: return
func.func @bn_inference(%x: tensor<?x64x56x56xf32>, %rm: tensor<64xf32>, %rv: tensor<64xf32>) -> tensor<?x64x56x56xf32> {
  %y = norm.batch_norm %x running(%rm, %rv) : (tensor<?x64x56x56xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64x56x56xf32>
  return %y : tensor<?x64x56x56xf32>
}

// CHECK-LABEL: func.func private @__normc_bn_nhwc_body
// CHECK-NOT: memref.prefetch
// CHECK: return
func.func @bn_nhwc(%x: tensor<?x56x56x64xf32>) -> tensor<?x56x56x64xf32> {
  %y, %m, %r = norm.batch_norm %x {training, channel_dim = 3 : i64}
      : (tensor<?x56x56x64xf32>) -> (tensor<?x56x56x64xf32>, tensor<64xf32>, tensor<64xf32>)
  return %y : tensor<?x56x56x64xf32>
}
