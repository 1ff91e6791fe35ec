// RUN: norm-opt %s -split-input-file --norm-form-kernels=vector-length=32 --canonicalize --cse | FileCheck %s
// RUN: norm-opt %s -split-input-file --norm-derive-backward --norm-form-kernels=vector-length=32 --canonicalize --cse | FileCheck %s --check-prefix=BWD
// RUN: norm-opt %s -split-input-file --norm-form-kernels="vector-length=32 split-long-rows=false" --canonicalize --cse | FileCheck %s --check-prefix=OFF

// Rows of 64K elements or more are reduced in chunks of 8192 (docs/cpu.md,
// "Long rows split within a row"): a prepass writes each chunk's mean
// offset and sum of squares to the workspace; the main step combines a
// row's chunks once per call and writes one chunk per work item. Sizes
// known only at run time keep both schedules and choose once per call:
// split when rows hold at least 65536 elements and there are fewer than 8
// of them, or when they hold more than 262144.

// CHECK-LABEL: module attributes {normc.kernels = [{
// CHECK-SAME: finalize = false
// CHECK-SAME: name = "ln"
// CHECK-SAME: prepass = true, workspace = true
// OFF-LABEL: module attributes {normc.kernels = [{
// OFF-SAME: prepass = false, workspace = false

// CHECK-LABEL: func.func private @__normc_ln_body
// CHECK-SAME: %[[WS:[a-z0-9_]+]]: memref<?xf64>, %[[BEGIN:[a-z0-9_]+]]: index, %[[END:[a-z0-9_]+]]: index)
// CHECK-DAG: %[[CHUNK:.*]] = arith.constant 8192 : index
// CHECK-DAG: %[[MIN:.*]] = arith.constant 65536 : index
// CHECK-DAG: %[[FEW:.*]] = arith.constant 8 : index
// CHECK-DAG: %[[ALWAYS:.*]] = arith.constant 262144 : index
// CHECK-DAG: %[[ROWS:.*]] = memref.dim %{{.*}}, %c0 : memref<?x?xi16>
// CHECK-DAG: %[[LEN:.*]] = memref.dim %{{.*}}, %c1 : memref<?x?xi16>
// CHECK:     %[[LONG:.*]] = arith.cmpi uge, %[[LEN]], %[[MIN]] : index
// CHECK:     %[[FEWROWS:.*]] = arith.cmpi ult, %[[ROWS]], %[[FEW]] : index
// CHECK:     %[[VERYLONG:.*]] = arith.cmpi ugt, %[[LEN]], %[[ALWAYS]] : index
// CHECK:     %[[EITHER:.*]] = arith.ori %[[FEWROWS]], %[[VERYLONG]] : i1
// CHECK:     %[[SPLIT:.*]] = arith.andi %[[LONG]], %[[EITHER]] : i1
// CHECK:     %[[CHUNKS:.*]] = arith.ceildivui %[[LEN]], %[[CHUNK]] : index
// CHECK:     scf.if %[[SPLIT]] {
// The rows that items [begin, end) touch, each combined once per call.
// CHECK:       %[[FIRSTROW:.*]] = arith.divui %[[BEGIN]], %[[CHUNKS]] : index
// CHECK:       %[[ENDROW:.*]] = arith.ceildivui %[[END]], %[[CHUNKS]] : index
// CHECK:       scf.for %[[ROW:.*]] = %[[FIRSTROW]] to %[[ENDROW]]
// Offsets first, then the squares about the combined offset.
// CHECK:         %[[SUM:.*]] = scf.for %{{.*}} = %c0 to %[[CHUNKS]] {{.*}} -> (f64) {
// CHECK:           memref.load %[[WS]]
// CHECK:           math.fma
// CHECK:         %[[OFFSET:.*]] = arith.divf %[[SUM]]
// CHECK:         scf.for %{{.*}} = %c0 to %[[CHUNKS]] {{.*}} -> (f64) {
// CHECK:           arith.subf %{{.*}}, %[[OFFSET]] : f64
// Only the item of the row's first chunk stores the statistics.
// CHECK:         %[[FIRST:.*]] = arith.cmpi eq, %[[CHUNKBEGIN:.*]], %c0 : index
// CHECK:         scf.if %[[FIRST]] {
// CHECK:           memref.store %{{.*}}[%[[ROW]]] : memref<?xf32>
// CHECK:           memref.store %{{.*}}[%[[ROW]]] : memref<?xf32>
// CHECK:         }
// CHECK:         scf.for %[[C:.*]] = %[[CHUNKBEGIN]] to %{{.*}} step %c1 {
// CHECK:           %[[START:.*]] = arith.muli %[[C]], %[[CHUNK]] : index
// CHECK:           scf.for %[[J:.*]] = %[[START]] to %{{.*}} step %c32 {
// CHECK:             vector.load %{{.*}}[%[[ROW]], %[[J]]] : memref<?x?xi16>, vector<32xi16>
// CHECK:     } else {
// CHECK:       scf.for %{{.*}} = %[[BEGIN]] to %[[END]] step %c1 {

// The prepass: one item per chunk, two f64 partials each.
// CHECK-LABEL: func.func private @__normc_ln_prepassbody
// CHECK-SAME: %[[PWS:[a-z0-9_]+]]: memref<?xf64>, %[[PBEGIN:[a-z0-9_]+]]: index, %[[PEND:[a-z0-9_]+]]: index)
// CHECK:     %[[PCHUNKS:.*]] = arith.ceildivui %{{.*}}, %c8192 : index
// CHECK:     scf.for %[[ITEM:.*]] = %[[PBEGIN]] to %[[PEND]] step %c1 {
// CHECK:       %[[PROW:.*]] = arith.divui %[[ITEM]], %[[PCHUNKS]] : index
// CHECK:       %[[PCHUNK:.*]] = arith.remui %[[ITEM]], %[[PCHUNKS]] : index
// CHECK:       %[[PSTART:.*]] = arith.muli %[[PCHUNK]], %c8192 : index
// The shift is the row's first element, for every chunk.
// CHECK:       memref.load %{{.*}}[%[[PROW]], %c0] : memref<?x?xi16>
// CHECK:       scf.for %{{.*}} = %[[PSTART]] to
// CHECK:       %[[AT:.*]] = arith.muli %[[ITEM]], %c2 : index
// CHECK:       memref.store %{{.*}}, %[[PWS]][%[[AT]]] : memref<?xf64>
// CHECK:       %[[NEXT:.*]] = arith.addi %[[AT]], %c1 : index
// CHECK:       memref.store %{{.*}}, %[[PWS]][%[[NEXT]]] : memref<?xf64>

// CHECK-LABEL: func.func private @__normc_ln_prepasscount
// CHECK-LABEL: func.func private @__normc_ln_wscount
// CHECK-LABEL: func.func private @__normc_ln_workcount
// CHECK:     arith.muli %{{.*}}, %{{.*}} : index
// CHECK:     arith.select

// OFF-NOT: __normc_ln_prepassbody
func.func @ln(%x: tensor<?x?xbf16>, %w: tensor<?xbf16>, %b: tensor<?xbf16>)
    -> (tensor<?x?xbf16>, tensor<?xf32>, tensor<?xf32>) {
  %y, %mean, %rstd = norm.layer_norm %x weight(%w) bias(%b)
      : (tensor<?x?xbf16>, tensor<?xbf16>, tensor<?xbf16>) -> (tensor<?x?xbf16>, tensor<?xf32>, tensor<?xf32>)
  return %y, %mean, %rstd : tensor<?x?xbf16>, tensor<?xf32>, tensor<?xf32>
}

// -----

// Two rows of 65536, known at compile time: always split, no per-call
// choice; chunks divide the rows, so no masked tails. 8 chunks per row, 16
// items in each step.

// CHECK-LABEL: module attributes {normc.kernels = [{
// CHECK-SAME: prepass = true, workspace = true
// CHECK-LABEL: func.func private @__normc_rms_body
// CHECK-NOT:   scf.if %{{.*}} {
// CHECK:       scf.for %{{.*}} = %c0 to %c8 step %c1 iter_args
// CHECK-NOT:   vector.maskedload
// CHECK-LABEL: func.func private @__normc_rms_prepassbody
// CHECK-NOT:   vector.maskedload
// CHECK-LABEL: func.func private @__normc_rms_prepasscount
// CHECK:       %[[N:.*]] = arith.constant 16 : i64
// CHECK:       return %[[N]]
// CHECK-LABEL: func.func private @__normc_rms_workcount
// CHECK:       %[[W:.*]] = arith.constant 16 : i64
// CHECK:       return %[[W]]
// OFF-LABEL: module attributes {normc.kernels = [{
// OFF-SAME: prepass = false, workspace = false
func.func @rms(%x: tensor<2x65536xf32>, %w: tensor<65536xf32>) -> (tensor<2x65536xf32>, tensor<2xf32>) {
  %y, %rstd = norm.rms_norm %x weight(%w) : (tensor<2x65536xf32>, tensor<65536xf32>) -> (tensor<2x65536xf32>, tensor<2xf32>)
  return %y, %rstd : tensor<2x65536xf32>, tensor<2xf32>
}

// -----

// Kernels whose rows are never split keep the plain ABI: 64 rows of 65536
// (enough rows for the threads, each row fits in L2), rows of 4096, f64
// data (its sums may be rescaled per row), BatchNorm in training (a
// statistic is not one contiguous row, and 64 channels are enough work
// items not to split the batch either: cpu-split-batch.mlir) and in
// inference (given statistics: nothing to reduce).

// CHECK-LABEL: module attributes {normc.kernels = [{
// CHECK-SAME: name = "many_rows"
// CHECK-SAME: prepass = false, workspace = false
// CHECK-SAME: name = "short_rows"
// CHECK-SAME: prepass = false, workspace = false
// CHECK-SAME: name = "f64_rows"
// CHECK-SAME: prepass = false, workspace = false
// CHECK-SAME: name = "batch_norm"
// CHECK-SAME: prepass = false, workspace = false
// CHECK-SAME: name = "given_stats"
// CHECK-SAME: prepass = false, workspace = false
// CHECK-NOT: prepassbody
// CHECK: // -----
func.func @many_rows(%x: tensor<64x65536xf32>) -> tensor<64x65536xf32> {
  %y, %mean, %rstd = norm.layer_norm %x : (tensor<64x65536xf32>) -> (tensor<64x65536xf32>, tensor<64xf32>, tensor<64xf32>)
  return %y : tensor<64x65536xf32>
}
func.func @short_rows(%x: tensor<?x4096xf32>) -> tensor<?x4096xf32> {
  %y, %mean, %rstd = norm.layer_norm %x : (tensor<?x4096xf32>) -> (tensor<?x4096xf32>, tensor<?xf32>, tensor<?xf32>)
  return %y : tensor<?x4096xf32>
}
func.func @f64_rows(%x: tensor<?x?xf64>) -> tensor<?x?xf64> {
  %y, %rstd = norm.rms_norm %x : (tensor<?x?xf64>) -> (tensor<?x?xf64>, tensor<?xf64>)
  return %y : tensor<?x?xf64>
}
func.func @batch_norm(%x: tensor<?x64x?xf32>) -> tensor<?x64x?xf32> {
  %y, %mean, %rstd = norm.batch_norm %x {training, channel_dim = 1 : i64} : (tensor<?x64x?xf32>) -> (tensor<?x64x?xf32>, tensor<64xf32>, tensor<64xf32>)
  return %y : tensor<?x64x?xf32>
}
func.func @given_stats(%x: tensor<2x3x?xf32>, %m: tensor<3xf32>, %v: tensor<3xf32>) -> tensor<2x3x?xf32> {
  %y = norm.batch_norm %x running(%m, %v) {channel_dim = 1 : i64} : (tensor<2x3x?xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<2x3x?xf32>
  return %y : tensor<2x3x?xf32>
}

// -----

// The backward splits few long rows too, and rows of 2^18 elements or more
// whatever their number (unsplit, chunks of statistics would then hold one
// row each and each a dgamma/dbeta slice of gamma's size). Its two passes
// read a long row twice anyway: there is no read to save, only threads to
// use and slices to share. The prepass sums pass A per row chunk; each main
// item is a column chunk (8192 elements, longer where a row would have more
// than 128) run for every row in order: it adds the row's chunk sums, then
// runs pass B on its columns, the first row storing its partials in the one
// slice, the others adding to them. An empty batch takes the unsplit path.

// BWD-LABEL: module attributes {normc.kernels = [{{.*}}name = "long_rows"
// BWD-SAME: prepass = true, workspace = true
// BWD-SAME: finalize = true
// BWD-SAME: name = "long_rows_backward"
// BWD-SAME: prepass = true, workspace = true
// BWD-LABEL: func.func private @__normc_long_rows_backward_body
// BWD-SAME: (%{{.*}}: memref<?x?xf32>, %{{.*}}: memref<?x?xf32>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?x?xf32>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf32>, %[[WS:[a-z0-9_]+]]: memref<?xf64>, %[[BEGIN:[a-z0-9_]+]]: index, %[[END:[a-z0-9_]+]]: index)
// BWD-DAG: %[[FEW:.*]] = arith.constant 8 : index
// BWD-DAG: %[[MIN:.*]] = arith.constant 65536 : index
// BWD-DAG: %[[ALWAYS:.*]] = arith.constant 262144 : index
// BWD-DAG: %[[CHUNK:.*]] = arith.constant 8192 : index
// BWD-DAG: %[[MAXCHUNKS:.*]] = arith.constant 128 : index
// BWD-DAG: %[[ROWS:.*]] = memref.dim %{{.*}}, %c0
// BWD-DAG: %[[LEN:.*]] = memref.dim %{{.*}}, %c1
// BWD:     %[[LONG:.*]] = arith.cmpi uge, %[[LEN]], %[[MIN]] : index
// BWD:     %[[FEWROWS:.*]] = arith.cmpi ult, %[[ROWS]], %[[FEW]] : index
// BWD:     %[[FEWLONG:.*]] = arith.andi %[[LONG]], %[[FEWROWS]] : i1
// BWD:     %[[ANY:.*]] = arith.cmpi ne, %[[ROWS]], %c0 : index
// BWD:     %[[VERYLONG:.*]] = arith.cmpi uge, %[[LEN]], %[[ALWAYS]] : index
// BWD:     %[[EITHER:.*]] = arith.ori %[[FEWLONG]], %[[VERYLONG]] : i1
// BWD:     %[[SPLIT:.*]] = arith.andi %[[EITHER]], %[[ANY]] : i1
// BWD:     %[[BASE:.*]] = arith.ceildivui %[[LEN]], %[[CHUNK]] : index
// BWD:     %[[SCALE:.*]] = arith.ceildivui %[[BASE]], %[[MAXCHUNKS]] : index
// BWD:     %[[CHUNKLEN:.*]] = arith.muli %[[SCALE]], %[[CHUNK]] : index
// BWD:     %[[CHUNKS:.*]] = arith.ceildivui %[[LEN]], %[[CHUNKLEN]] : index
// BWD:     scf.if %[[SPLIT]] {
// BWD:       scf.for %[[C:.*]] = %[[BEGIN]] to %[[END]] step %c1 {
// Row 0: its chunk sums, then pass B storing the partials.
// BWD:         scf.for %{{.*}} = %c0 to %[[CHUNKS]] step %c1 iter_args({{.*}}) -> (f64, f64, f64, f64) {
// BWD-COUNT-4:   memref.load %[[WS]]
// BWD:         %[[FIRST:.*]] = arith.muli %[[C]], %[[CHUNKLEN]] : index
// BWD:         scf.for %{{.*}} = %[[FIRST]] to %{{.*}} step %c16 {
// BWD-NOT:       vector.load %[[WS]]
// BWD:           vector.store %{{.*}}, %[[WS]][%{{.*}}] : memref<?xf64>, vector<16xf64>
// BWD-NOT:       vector.load %[[WS]]
// BWD:           vector.store %{{.*}}, %[[WS]][%{{.*}}] : memref<?xf64>, vector<16xf64>
// BWD-NOT:       vector.load %[[WS]]
// The other rows in order, adding to the partials.
// BWD:         scf.for %[[ROW:.*]] = %c1 to %[[ROWS]] step %c1 {
// BWD:           scf.for %{{.*}} = %c0 to %[[CHUNKS]] step %c1 iter_args({{.*}}) -> (f64, f64, f64, f64) {
// BWD-COUNT-4:     memref.load %[[WS]]
// BWD:           scf.for %{{.*}} = %[[FIRST]] to %{{.*}} step %c16 {
// BWD:             vector.load %[[WS]]
// BWD:             vector.store %{{.*}}, %[[WS]]
// BWD:             vector.load %[[WS]]
// BWD:             vector.store %{{.*}}, %[[WS]]
// BWD:     } else {
// Whole chunks of rows add to their slice.
// BWD:           vector.load %[[WS]]
// BWD-LABEL: func.func private @__normc_long_rows_backward_prepassbody
// BWD:       scf.for %[[ITEM:.*]] = %{{.*}} to %{{.*}} step %c1 {
// BWD:         %[[AT:.*]] = arith.muli %[[ITEM]], %c4 : index
// BWD-COUNT-4: memref.store %{{.*}}, %{{.*}}[%{{.*}}] : memref<?xf64>
// BWD-LABEL: func.func private @__normc_long_rows_backward_prepasscount
// The finalize adds one slice when split.
// BWD-LABEL: func.func private @__normc_long_rows_backward_finalizebody
// BWD:       arith.select %{{.*}}, %c1, %{{.*}} : index
func.func @long_rows(%x: tensor<?x?xf32>, %w: tensor<?xf32>, %b: tensor<?xf32>)
    -> (tensor<?x?xf32>, tensor<?xf32>, tensor<?xf32>) attributes {norm.backward} {
  %y, %mean, %rstd = norm.layer_norm %x weight(%w) bias(%b)
      : (tensor<?x?xf32>, tensor<?xf32>, tensor<?xf32>) -> (tensor<?x?xf32>, tensor<?xf32>, tensor<?xf32>)
  return %y, %mean, %rstd : tensor<?x?xf32>, tensor<?xf32>, tensor<?xf32>
}

// -----

// Weights that do not vary along the row (InstanceNorm: one per channel)
// would have every chunk of a row add to the same dgamma element: such
// backward kernels keep whole rows. Many rows shorter than 2^18 known at
// compile time, too; many rows of 2^18 elements or more split (their
// prepass count folds to 16 rows x 37 chunks).

// BWD-LABEL: module attributes {normc.kernels = [{{.*}}name = "instance_norm"
// BWD-SAME: prepass = true, workspace = true
// BWD-SAME: name = "instance_norm_backward"
// BWD-SAME: prepass = false, workspace = true
// BWD-SAME: name = "many_long_rows"
// BWD-SAME: prepass = false, workspace = false
// BWD-SAME: name = "many_long_rows_backward"
// BWD-SAME: prepass = false, workspace = true
// BWD-SAME: name = "many_very_long_rows"
// BWD-SAME: name = "many_very_long_rows_backward"
// BWD-SAME: prepass = true, workspace = true
// BWD-NOT: @__normc_instance_norm_backward_prepassbody
// BWD-NOT: @__normc_many_long_rows_backward_prepassbody
// BWD-LABEL: func.func private @__normc_many_very_long_rows_backward_prepasscount
// BWD-NEXT: %[[ITEMS:.*]] = arith.constant 592 : i64
// BWD-NEXT: return %[[ITEMS]]
func.func @instance_norm(%x: tensor<?x3x?xf32>, %w: tensor<3xf32>, %b: tensor<3xf32>)
    -> (tensor<?x3x?xf32>, tensor<?x3xf32>, tensor<?x3xf32>) attributes {norm.backward} {
  %y, %mean, %rstd = norm.instance_norm %x weight(%w) bias(%b) {channel_dim = 1 : i64}
      : (tensor<?x3x?xf32>, tensor<3xf32>, tensor<3xf32>) -> (tensor<?x3x?xf32>, tensor<?x3xf32>, tensor<?x3xf32>)
  return %y, %mean, %rstd : tensor<?x3x?xf32>, tensor<?x3xf32>, tensor<?x3xf32>
}
func.func @many_long_rows(%x: tensor<16x200000xf32>) -> tensor<16x200000xf32>
    attributes {norm.backward = ["dx"]} {
  %y, %mean, %rstd = norm.layer_norm %x : (tensor<16x200000xf32>) -> (tensor<16x200000xf32>, tensor<16xf32>, tensor<16xf32>)
  return %y : tensor<16x200000xf32>
}
func.func @many_very_long_rows(%x: tensor<16x300000xf32>) -> tensor<16x300000xf32>
    attributes {norm.backward = ["dx"]} {
  %y, %mean, %rstd = norm.layer_norm %x : (tensor<16x300000xf32>) -> (tensor<16x300000xf32>, tensor<16xf32>, tensor<16xf32>)
  return %y : tensor<16x300000xf32>
}
