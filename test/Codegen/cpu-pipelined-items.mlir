// RUN: norm-opt %s -split-input-file --norm-form-kernels="vector-length=16 streaming-store-min-bytes=-1" --canonicalize --cse | FileCheck %s
// RUN: norm-opt %s -split-input-file --norm-form-kernels="vector-length=16 streaming-store-min-bytes=-1 pipeline-items=false" --canonicalize --cse | FileCheck %s --check-prefix=OFF

// Centered f32 rows of up to 64 KiB are pipelined: the statistics of row
// i + 1 are summed in the loop that writes row i, so that every row is read
// from memory once, while the previous row's output is computed and stored.
// A prologue sums the first row of the call; the last row is written alone.
// The statistics take one pass of shifted f64 sums, d = x - x0 and d^2,
// each vector folded into accumulators of half its width.

// CHECK-LABEL: func.func private @__normc_ln_body
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: memref<?x64xf32>, %{{[a-z0-9_]+}}: memref<64xf32>, %{{[a-z0-9_]+}}: memref<64xf32>, %[[Y:[a-z0-9_]+]]: memref<?x64xf32>, %[[MEAN:[a-z0-9_]+]]: memref<?xf32>, %{{[a-z0-9_]+}}: memref<?xf32>, %[[BEGIN:[a-z0-9_]+]]: index, %[[END:[a-z0-9_]+]]: index)
// The prologue reads the first row only when there is one.
// CHECK:     %[[ANY:[a-z0-9_]+]] = arith.cmpi ult, %[[BEGIN]], %[[END]] : index
// CHECK:     scf.if %[[ANY]] {
// CHECK:       %[[FIRSTX0:[a-z0-9_]+]] = memref.load %[[X]][%[[BEGIN]], %{{.*}}]
// CHECK:       scf.for {{.*}} -> (vector<8xf64>, vector<8xf64>) {
// CHECK:         vector.load %[[X]][%[[BEGIN]], %{{.*}}] : memref<?x64xf32>, vector<16xf32>
// CHECK:         %[[D:[a-z0-9_]+]] = arith.subf {{.*}} : vector<16xf64>
// CHECK:         %[[LOW:[a-z0-9_]+]] = vector.extract_strided_slice %[[D]] {offsets = [0], sizes = [8], strides = [1]}
// CHECK:         %[[HIGH:[a-z0-9_]+]] = vector.extract_strided_slice %[[D]] {offsets = [8], sizes = [8], strides = [1]}
// CHECK:         %[[SQ:[a-z0-9_]+]] = math.fma %[[LOW]], %[[LOW]], %{{.*}} : vector<8xf64>
// CHECK:         math.fma %[[HIGH]], %[[HIGH]], %[[SQ]] : vector<8xf64>
// CHECK:         arith.addf %[[LOW]], %[[HIGH]] : vector<8xf64>
// CHECK:       }
// Carried from row to row: x0, the mean's offset from it, the sum of
// squares; the variance from one pass: sum(d^2) - sum(d) * offset.
// CHECK:       arith.maximumf
// CHECK:       scf.for %[[ROW:[a-z0-9_]+]] = %[[BEGIN]] to %[[END]] step %{{.*}} iter_args({{.*}}) -> (f32, f64, f64) {
// CHECK:         memref.store %{{.*}}, %[[MEAN]][%[[ROW]]]
// CHECK:         %[[NEXT:[a-z0-9_]+]] = arith.addi %[[ROW]], %{{.*}} : index
// CHECK:         %[[HASNEXT:[a-z0-9_]+]] = arith.cmpi ult, %[[NEXT]], %[[END]] : index
// CHECK:         scf.if %[[HASNEXT]] -> (f32, f64, f64) {
// The row after next is prefetched (or the next one again at the end).
// CHECK:           %[[AFTER:[a-z0-9_]+]] = arith.addi %[[ROW]], %{{.*}} : index
// CHECK:           %[[INSIDE:[a-z0-9_]+]] = arith.cmpi ult, %[[AFTER]], %[[END]] : index
// CHECK:           %[[AHEAD:[a-z0-9_]+]] = arith.select %[[INSIDE]], %[[AFTER]], %[[NEXT]] : index
// CHECK:           %[[NEXTX0:[a-z0-9_]+]] = memref.load %[[X]][%[[NEXT]], %{{.*}}]
// One loop: row i's output, row i + 1's sums.
// CHECK:           scf.for %[[J:[a-z0-9_]+]] = {{.*}} -> (vector<8xf64>, vector<8xf64>) {
// CHECK-NEXT:        memref.prefetch %[[X]][%[[AHEAD]], %[[J]]], read, locality<2>, data
// CHECK-NEXT:        vector.load %[[X]][%[[ROW]], %[[J]]]
// CHECK:             vector.store %{{.*}}, %[[Y]][%[[ROW]], %[[J]]]
// CHECK-NEXT:        vector.load %[[X]][%[[NEXT]], %[[J]]]
// CHECK:             math.fma {{.*}} : vector<8xf64>
// CHECK:             scf.yield
// CHECK-NEXT:      }
// CHECK:           scf.yield %[[NEXTX0]], %{{.*}}, %{{.*}} : f32, f64, f64
// The last row: its output alone, nothing to prefetch.
// CHECK:         } else {
// CHECK-NOT:       memref.prefetch
// CHECK:           scf.for
// CHECK:             vector.store %{{.*}}, %[[Y]][%[[ROW]], %{{.*}}]
// CHECK:           }
// CHECK:         }
// CHECK:       }
// CHECK:     }
// No unpipelined loop: the rows' size is known to fit.
// CHECK-NOT: scf.for
// CHECK:     return

// OFF-LABEL: func.func private @__normc_ln_body
// OFF-NOT: -> (f32, f64, f64)
// OFF-NOT: vector<8xf64>
// OFF: return
func.func @ln(%x: tensor<?x64xf32>, %w: tensor<64xf32>, %b: tensor<64xf32>)
    -> (tensor<?x64xf32>, tensor<?xf32>, tensor<?xf32>) {
  %y, %mean, %rstd = norm.layer_norm %x weight(%w) bias(%b)
      : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?xf32>, tensor<?xf32>)
  return %y, %mean, %rstd : tensor<?x64xf32>, tensor<?xf32>, tensor<?xf32>
}

// -----

// A row length known only at run time: rows of at most 64 KiB take the
// pipeline, longer ones the unpipelined loop (after the split of very long
// rows, cpu-split-rows.mlir).

// CHECK-LABEL: func.func private @__normc_dyn_body
// CHECK-DAG: %[[LIMIT:[a-z0-9_]+]] = arith.constant 65536 : index
// CHECK:     %[[FITS:[a-z0-9_]+]] = arith.cmpi ule, %{{.*}}, %[[LIMIT]] : index
// CHECK:     } else {
// CHECK-NEXT:  scf.if %[[FITS]] {
// CHECK:         scf.for {{.*}} -> (f32, f64, f64) {
// CHECK:       } else {
// CHECK:         scf.for
// CHECK:     return
func.func @dyn(%x: tensor<?x?xf32>) -> tensor<?x?xf32> {
  %y, %m, %r = norm.layer_norm %x : (tensor<?x?xf32>) -> (tensor<?x?xf32>, tensor<?xf32>, tensor<?xf32>)
  return %y : tensor<?x?xf32>
}

// -----

// Not pipelined: RMSNorm (one compute-only pass unpipelined, not two: no
// measurable gain), 16-bit data (bound by its arithmetic, not by memory),
// f64 data (two passes), rows longer than 64 KiB, given statistics (one
// pass already), and lane mode (items are not rows).

// CHECK-LABEL: func.func private @__normc_rms_body
// CHECK-NOT: -> (f32, f64, f64)
// CHECK: return
func.func @rms(%x: tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?xf32>) {
  %y, %r = norm.rms_norm %x : (tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?xf32>)
  return %y, %r : tensor<?x64xf32>, tensor<?xf32>
}

// CHECK-LABEL: func.func private @__normc_bf16_body
// CHECK-NOT: -> (f32, f64, f64)
// CHECK: return
func.func @bf16(%x: tensor<?x64xbf16>) -> tensor<?x64xbf16> {
  %y, %m, %r = norm.layer_norm %x : (tensor<?x64xbf16>) -> (tensor<?x64xbf16>, tensor<?xf32>, tensor<?xf32>)
  return %y : tensor<?x64xbf16>
}

// CHECK-LABEL: func.func private @__normc_f64_body
// CHECK-NOT: -> (f64, f64, f64)
// CHECK: return
func.func @f64(%x: tensor<?x64xf64>) -> tensor<?x64xf64> {
  %y, %m, %r = norm.layer_norm %x : (tensor<?x64xf64>) -> (tensor<?x64xf64>, tensor<?xf64>, tensor<?xf64>)
  return %y : tensor<?x64xf64>
}

// CHECK-LABEL: func.func private @__normc_long_rows_body
// CHECK-NOT: -> (f32, f64, f64)
// CHECK: return
func.func @long_rows(%x: tensor<?x32768xf32>) -> tensor<?x32768xf32> {
  %y, %m, %r = norm.layer_norm %x : (tensor<?x32768xf32>) -> (tensor<?x32768xf32>, tensor<?xf32>, tensor<?xf32>)
  return %y : tensor<?x32768xf32>
}

// CHECK-LABEL: func.func private @__normc_bn_inference_body
// CHECK-NOT: -> (f32, f64, f64)
// CHECK: return
func.func @bn_inference(%x: tensor<?x8x5x5xf32>, %rm: tensor<8xf32>, %rv: tensor<8xf32>) -> tensor<?x8x5x5xf32> {
  %y = norm.batch_norm %x running(%rm, %rv) : (tensor<?x8x5x5xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x8x5x5xf32>
  return %y : tensor<?x8x5x5xf32>
}

// CHECK-LABEL: func.func private @__normc_bn_nhwc_body
// CHECK-NOT: -> (f32, f64, f64)
// CHECK: return
func.func @bn_nhwc(%x: tensor<?x5x5x64xf32>) -> tensor<?x5x5x64xf32> {
  %y, %m, %r = norm.batch_norm %x {training, channel_dim = 3 : i64}
      : (tensor<?x5x5x64xf32>) -> (tensor<?x5x5x64xf32>, tensor<64xf32>, tensor<64xf32>)
  return %y : tensor<?x5x5x64xf32>
}
