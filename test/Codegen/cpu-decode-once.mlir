// RUN: norm-opt %s -split-input-file --norm-derive-backward --norm-form-kernels=vector-length=16 --canonicalize --cse | FileCheck %s

// 16-bit data is decoded to f32 once. gamma and beta that vary along the
// row are decoded once per call into 64-byte-aligned stack buffers; a row
// (of a size known at compile time, up to 4096 elements) is decoded by the
// first pass over it into a third buffer that the later passes read,
// instead of decoding it in every pass.

// CHECK-LABEL: func.func private @__normc_ln_bf16_body
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: memref<?x4096xi16>, %[[W:[a-z0-9_]+]]: memref<4096xi16>, %[[B:[a-z0-9_]+]]: memref<4096xi16>,
// CHECK:     %[[WF:[a-z0-9_]+]] = memref.alloca() {alignment = 64 : i64} : memref<4096xf32>
// CHECK:     scf.for %[[J:[a-z0-9_]+]] =
// CHECK-NEXT:  %[[BITS:[a-z0-9_]+]] = vector.load %[[W]][%[[J]]] : memref<4096xi16>, vector<16xi16>
// CHECK-NEXT:  %[[WIDE:[a-z0-9_]+]] = arith.extui %[[BITS]] : vector<16xi16> to vector<16xi32>
// CHECK-NEXT:  %[[SHIFTED:[a-z0-9_]+]] = arith.shli %[[WIDE]]
// CHECK-NEXT:  %[[F:[a-z0-9_]+]] = arith.bitcast %[[SHIFTED]] : vector<16xi32> to vector<16xf32>
// CHECK-NEXT:  vector.store %[[F]], %[[WF]][%[[J]]] : memref<4096xf32>, vector<16xf32>
// CHECK:     %[[BF:[a-z0-9_]+]] = memref.alloca() {alignment = 64 : i64} : memref<4096xf32>
// CHECK:       vector.load %[[B]]
// CHECK:       vector.store %{{.*}}, %[[BF]]
// CHECK:     %[[ROW:[a-z0-9_]+]] = memref.alloca() {alignment = 64 : i64} : memref<4096xf32>
// CHECK:     scf.for %[[ITEM:[a-z0-9_]+]] =
// Pass 1 (the mean) decodes x and keeps the row.
// CHECK:         %[[XBITS:[a-z0-9_]+]] = vector.load %[[X]][%[[ITEM]], %[[J1:[a-z0-9_]+]]] : memref<?x4096xi16>, vector<16xi16>
// CHECK:         vector.store %{{.*}}, %[[ROW]][%[[J1]]] : memref<4096xf32>, vector<16xf32>
// Pass 2 (the variance, and its f64 redo) and pass 3 read the kept row and
// the decoded gamma and beta only.
// CHECK-NOT:     vector.load %[[X]]
// CHECK-NOT:     vector.load %[[W]]
// CHECK-NOT:     vector.load %[[B]]
// CHECK:         vector.load %[[ROW]][%{{.*}}] : memref<4096xf32>, vector<16xf32>
// CHECK-NOT:     vector.load %[[X]]
// CHECK-NOT:     vector.load %[[W]]
// CHECK-NOT:     vector.load %[[B]]
// Pass 3 prefetches the next row of x (its pass 1 decodes it) and reads
// the kept one.
// CHECK:         memref.prefetch %[[X]]
// CHECK-NEXT:    vector.load %[[ROW]][%{{.*}}] : memref<4096xf32>, vector<16xf32>
// CHECK:         vector.load %[[WF]][%{{.*}}] : memref<4096xf32>, vector<16xf32>
// CHECK-NEXT:    vector.load %[[BF]][%{{.*}}] : memref<4096xf32>, vector<16xf32>
// CHECK-NOT:     vector.load %[[X]]
// CHECK-NOT:     vector.load %[[W]]
// CHECK-NOT:     vector.load %[[B]]
// CHECK:     return

// The backward decodes gamma once per call too.
// CHECK-LABEL: func.func private @__normc_ln_bf16_backward_body
// CHECK:     %[[GF:[a-z0-9_]+]] = memref.alloca() {alignment = 64 : i64} : memref<4096xf32>
// CHECK:       vector.store %{{.*}}, %[[GF]]
// CHECK:       vector.load %[[GF]]
// CHECK-LABEL: func.func private @__normc_ln_bf16_backward_finalizebody
// CHECK-NOT: memref.alloca
// CHECK: return
func.func @ln_bf16(%x: tensor<?x4096xbf16>, %w: tensor<4096xbf16>, %b: tensor<4096xbf16>)
    -> (tensor<?x4096xbf16>, tensor<?xf32>, tensor<?xf32>) attributes {norm.backward} {
  %y, %mean, %rstd = norm.layer_norm %x weight(%w) bias(%b)
      : (tensor<?x4096xbf16>, tensor<4096xbf16>, tensor<4096xbf16>) -> (tensor<?x4096xbf16>, tensor<?xf32>, tensor<?xf32>)
  return %y, %mean, %rstd : tensor<?x4096xbf16>, tensor<?xf32>, tensor<?xf32>
}

// -----

// A length that is not a multiple of the vector: the last 4 of 100 f16 go
// through a masked load and store.

// CHECK-LABEL: func.func private @__normc_rms_odd_body
// CHECK-SAME: (%{{[a-z0-9_]+}}: memref<?x100xi16>, %[[W:[a-z0-9_]+]]: memref<100xi16>,
// CHECK-DAG: %[[C96:[a-z0-9_]+]] = arith.constant 96 : index
// CHECK:     %[[WF:[a-z0-9_]+]] = memref.alloca() {alignment = 64 : i64} : memref<100xf32>
// CHECK:     scf.for %{{.*}} = %{{.*}} to %[[C96]] step
// CHECK:       arith.extf %{{.*}} : vector<16xf16> to vector<16xf32>
// CHECK:     %[[MASK:[a-z0-9_]+]] = vector.constant_mask [4] : vector<16xi1>
// CHECK:     vector.maskedload %[[W]][%[[C96]]], %[[MASK]]
// CHECK:     vector.maskedstore %[[WF]][%[[C96]]], %[[MASK]]
func.func @rms_odd(%x: tensor<?x100xf16>, %w: tensor<100xf16>) -> (tensor<?x100xf16>, tensor<?xf32>) {
  %y, %r = norm.rms_norm %x weight(%w) : (tensor<?x100xf16>, tensor<100xf16>) -> (tensor<?x100xf16>, tensor<?xf32>)
  return %y, %r : tensor<?x100xf16>, tensor<?xf32>
}

// -----

// Not decoded once: f32 (nothing to decode), rows and gamma longer than
// 4096 elements (the buffers would take more than 48 KiB of stack), gamma
// per channel and channels reduced over several dims (BatchNorm NCHW: one
// gamma value per item, loaded once per item anyway).

// CHECK-LABEL: func.func private @__normc_ln_f32_body
// CHECK-NOT: memref.alloca
// CHECK: return
func.func @ln_f32(%x: tensor<?x4096xf32>, %w: tensor<4096xf32>) -> (tensor<?x4096xf32>, tensor<?xf32>, tensor<?xf32>) {
  %y, %m, %r = norm.layer_norm %x weight(%w) : (tensor<?x4096xf32>, tensor<4096xf32>) -> (tensor<?x4096xf32>, tensor<?xf32>, tensor<?xf32>)
  return %y, %m, %r : tensor<?x4096xf32>, tensor<?xf32>, tensor<?xf32>
}

// CHECK-LABEL: func.func private @__normc_ln_long_body
// CHECK-NOT: memref.alloca
// CHECK: return
func.func @ln_long(%x: tensor<?x8192xbf16>, %w: tensor<8192xbf16>) -> (tensor<?x8192xbf16>, tensor<?xf32>, tensor<?xf32>) {
  %y, %m, %r = norm.layer_norm %x weight(%w) : (tensor<?x8192xbf16>, tensor<8192xbf16>) -> (tensor<?x8192xbf16>, tensor<?xf32>, tensor<?xf32>)
  return %y, %m, %r : tensor<?x8192xbf16>, tensor<?xf32>, tensor<?xf32>
}

// CHECK-LABEL: func.func private @__normc_bn_body
// CHECK-NOT: memref.alloca
// CHECK: return
func.func @bn(%x: tensor<?x64x56x56xbf16>, %w: tensor<64xbf16>, %b: tensor<64xbf16>) -> (tensor<?x64x56x56xbf16>, tensor<64xf32>, tensor<64xf32>) {
  %y, %m, %r = norm.batch_norm %x weight(%w) bias(%b) {training}
      : (tensor<?x64x56x56xbf16>, tensor<64xbf16>, tensor<64xbf16>) -> (tensor<?x64x56x56xbf16>, tensor<64xf32>, tensor<64xf32>)
  return %y, %m, %r : tensor<?x64x56x56xbf16>, tensor<64xf32>, tensor<64xf32>
}

// -----

// Rows whose length is known only at run time keep decoding in each pass.

// CHECK-LABEL: func.func private @__normc_dynamic_rows_body
// CHECK-NOT: memref.alloca
// CHECK: return
func.func @dynamic_rows(%x: tensor<?x?xbf16>) -> (tensor<?x?xbf16>, tensor<?xf32>, tensor<?xf32>) {
  %y, %m, %r = norm.layer_norm %x : (tensor<?x?xbf16>) -> (tensor<?x?xbf16>, tensor<?xf32>, tensor<?xf32>)
  return %y, %m, %r : tensor<?x?xbf16>, tensor<?xf32>, tensor<?xf32>
}
