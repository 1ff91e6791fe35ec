// RUN: norm-opt %s -split-input-file --norm-form-kernels=vector-length=16 --canonicalize --cse | FileCheck %s
// RUN: norm-opt %s -split-input-file --norm-form-kernels="vector-length=16 split-long-rows=false" --canonicalize --cse | FileCheck %s --check-prefix=OFF
// RUN: norm-opt %s -split-input-file --norm-derive-backward --norm-form-kernels=vector-length=16 --canonicalize --cse | FileCheck %s --check-prefix=BWD

// BatchNorm's statistics reduce the batch (N*H*W): with few channel groups
// there are few work items, and all other threads would idle. Fewer than 8
// items of at least 65536 elements per statistic are split along the
// outermost reduced dim (docs/cpu.md, "Large batches split"): a prepass
// writes each chunk's per-channel mean offset and sum of squares, the main
// step combines a channel group's chunks and normalizes one chunk per
// item. Chunks hold 32768 elements per item: 2048 positions of a 16-lane
// vector of channels here. Channels-last, the rows (vectors of channels)
// share every position: 40 channels are 3 rows here, and a work item is a
// chunk of every row, visited a tile of 32 positions at a time and every
// row within a tile, so that a position's channels are read together.

// CHECK-LABEL: module attributes {normc.kernels = [{
// CHECK-SAME: name = "bn_nhwc"
// CHECK-SAME: prepass = true, workspace = true
// OFF-LABEL: module attributes {normc.kernels = [{
// OFF-SAME: prepass = false, workspace = false

// CHECK-LABEL: func.func private @__normc_bn_nhwc_body
// CHECK-SAME: %[[X:[a-z0-9_]+]]: memref<?x40xf32>, %[[RM:[a-z0-9_]+]]: memref<40xf32>, %[[RV:[a-z0-9_]+]]: memref<40xf32>, %[[Y:[a-z0-9_]+]]: memref<?x40xf32>, %[[MEAN:[a-z0-9_]+]]: memref<40xf32>, %[[RSTD:[a-z0-9_]+]]: memref<40xf32>, %[[RMO:[a-z0-9_]+]]: memref<40xf32>, %[[RVO:[a-z0-9_]+]]: memref<40xf32>, %[[WS:[a-z0-9_]+]]: memref<?xf64>, %[[BEGIN:[a-z0-9_]+]]: index, %[[END:[a-z0-9_]+]]: index)
// CHECK-DAG: %[[CHUNK:.*]] = arith.constant 2048 : index
// CHECK-DAG: %[[MIN:.*]] = arith.constant 65536 : index
// Three rows of 16 channels (fewer than 8, known): the batch size decides.
// CHECK-DAG: %[[N:.*]] = memref.dim %[[X]], %c0 : memref<?x40xf32>
// CHECK:     %[[LARGE:.*]] = arith.cmpi uge, %[[N]], %[[MIN]] : index
// CHECK:     %[[CHUNKS:.*]] = arith.ceildivui %[[N]], %[[CHUNK]] : index
// CHECK:     scf.if %[[LARGE]] {
// The last chunk first: the prepass has just read it.
// CHECK:       %[[LAST:.*]] = arith.subi %[[CHUNKS]], %c1 : index
// CHECK:       scf.for %[[STEP:.*]] = %[[BEGIN]] to %[[END]] step %c1 {
// CHECK:         %[[C:.*]] = arith.subi %[[LAST]], %[[STEP]] : index
// Only the item of the first chunk stores the statistics and the running
// statistics.
// CHECK:         %[[FIRST:.*]] = arith.cmpi eq, %[[C]], %c0 : index
// Per row: the offsets first (one vector of partials per chunk), then the
// squares about the combined offset.
// CHECK:         %[[SUM:.*]] = scf.for %{{.*}} = %c0 to %[[CHUNKS]] {{.*}} -> (vector<16xf64>) {
// CHECK:           vector.load %[[WS]][%{{.*}}] : memref<?xf64>, vector<16xf64>
// CHECK:           math.fma {{.*}} : vector<16xf64>
// CHECK:         %[[OFFSET:.*]] = arith.divf %[[SUM]]
// CHECK:         scf.for %{{.*}} = %c0 to %[[CHUNKS]] {{.*}} -> (vector<16xf64>) {
// CHECK:           arith.subf %{{.*}}, %[[OFFSET]] : vector<16xf64>
// CHECK:         scf.if %[[FIRST]] {
// CHECK:           vector.store %{{.*}}, %[[MEAN]][%c0]
// CHECK:           vector.store %{{.*}}, %[[RSTD]][%c0]
// CHECK:           vector.store %{{.*}}, %[[RMO]][%c0]
// CHECK:           vector.store %{{.*}}, %[[RVO]][%c0]
// CHECK:         }
// CHECK:         scf.if %[[FIRST]] {
// CHECK:           vector.store %{{.*}}, %[[MEAN]][%c16]
// The third row holds channels 32-39: masked.
// CHECK:         scf.if %[[FIRST]] {
// CHECK:           vector.maskedstore %[[MEAN]][%c32]
// Then the chunk's tiles, every row in each.
// CHECK:         %[[START:.*]] = arith.muli %[[C]], %[[CHUNK]] : index
// CHECK:         scf.for %[[T:.*]] = %[[START]] to %{{.*}} step %c32 {
// CHECK:           scf.for %[[P:.*]] = %[[T]] to %{{.*}} step %c1 {
// CHECK:             vector.store %{{.*}}, %[[Y]][%[[P]], %c0]
// CHECK:           scf.for %[[P:.*]] = %[[T]] to %{{.*}} step %c1 {
// CHECK:             vector.store %{{.*}}, %[[Y]][%[[P]], %c16]
// CHECK:           scf.for %[[P:.*]] = %[[T]] to %{{.*}} step %c1 {
// CHECK:             vector.maskedstore %[[Y]][%[[P]], %c32]
// CHECK:     } else {
// CHECK:       scf.for %{{.*}} = %[[BEGIN]] to %[[END]] step %c1 {

// The prepass: one item per chunk of 2048 positions. Each row sums two
// partial vectors of 16 f64 over the chunk's positions only, shifted by
// its first position (position 0) for every chunk, carried across the
// tiles, and stores them at its slot (row * chunks + chunk, 32 f64 each).
// CHECK-LABEL: func.func private @__normc_bn_nhwc_prepassbody
// CHECK-SAME: %[[PX:[a-z0-9_]+]]: memref<?x40xf32>, {{.*}}, %[[PWS:[a-z0-9_]+]]: memref<?xf64>, %[[PBEGIN:[a-z0-9_]+]]: index, %[[PEND:[a-z0-9_]+]]: index)
// CHECK:     %[[PCHUNKS:.*]] = arith.ceildivui %{{.*}}, %c2048 : index
// CHECK:     scf.for %[[PC:.*]] = %[[PBEGIN]] to %[[PEND]] step %c1 {
// CHECK:       %[[PSTART:.*]] = arith.muli %[[PC]], %c2048 : index
// CHECK:       vector.load %[[PX]][%c0, %c0]
// CHECK:       vector.load %[[PX]][%c0, %c16]
// CHECK:       vector.maskedload %[[PX]][%c0, %c32]
// CHECK:       scf.for %{{.*}} = %[[PSTART]] to %{{.*}} step %c32 iter_args({{.*}}) -> (vector<16xf64>, vector<16xf64>, vector<16xf64>, vector<16xf64>, vector<16xf64>, vector<16xf64>) {
// CHECK:       %[[AT:.*]] = arith.muli %[[PC]], %c32 : index
// CHECK:       vector.store %{{.*}}, %[[PWS]][%[[AT]]] : memref<?xf64>, vector<16xf64>
// CHECK:       vector.store %{{.*}}, %[[PWS]][%{{.*}}] : memref<?xf64>, vector<16xf64>
// CHECK:       %[[SLOT1:.*]] = arith.addi %[[PCHUNKS]], %[[PC]] : index
// CHECK:       %[[AT1:.*]] = arith.muli %[[SLOT1]], %c32 : index
// CHECK:       vector.store %{{.*}}, %[[PWS]][%[[AT1]]] : memref<?xf64>, vector<16xf64>

// The workspace: 2 x 16 f64 per row and chunk.
// CHECK-LABEL: func.func private @__normc_bn_nhwc_wscount
// CHECK:     %[[WCHUNKS:.*]] = arith.ceildivui %{{.*}}, %c2048 : index
// CHECK:     %[[SLOTS:.*]] = arith.muli %[[WCHUNKS]], %c3 : index
// CHECK:     %[[USED:.*]] = arith.select %{{.*}}, %[[SLOTS]], %c0 : index
// CHECK:     arith.muli %[[USED]], %c32 : index
// OFF-NOT: __normc_bn_nhwc_prepassbody
func.func @bn_nhwc(%x: tensor<?x40xf32>, %rm: tensor<40xf32>, %rv: tensor<40xf32>)
    -> (tensor<?x40xf32>, tensor<40xf32>, tensor<40xf32>, tensor<40xf32>, tensor<40xf32>) {
  %y, %m, %r, %nm, %nv = norm.batch_norm %x running(%rm, %rv) {training, channel_dim = 1 : i64}
      : (tensor<?x40xf32>, tensor<40xf32>, tensor<40xf32>)
      -> (tensor<?x40xf32>, tensor<40xf32>, tensor<40xf32>, tensor<40xf32>, tensor<40xf32>)
  return %y, %m, %r, %nm, %nv : tensor<?x40xf32>, tensor<40xf32>, tensor<40xf32>, tensor<40xf32>, tensor<40xf32>
}

// -----

// NCHW with 3 channels: row mode, the batch N is split (the H*W rows of a
// channel stay whole). A chunk is 32768 / (H*W) images, at least one; the
// partials are scalars. Both counts are dynamic: the rule is decided per
// call from the elements per statistic.

// CHECK-LABEL: func.func private @__normc_bn_nchw_body
// CHECK-SAME: %[[X:[a-z0-9_]+]]: memref<?x3x?xi16>, {{.*}}, %[[WS:[a-z0-9_]+]]: memref<?xf64>, %[[BEGIN:[a-z0-9_]+]]: index, %[[END:[a-z0-9_]+]]: index)
// CHECK-DAG: %[[N:.*]] = memref.dim %[[X]], %c0 : memref<?x3x?xi16>
// CHECK-DAG: %[[HW:.*]] = memref.dim %[[X]], %c2 : memref<?x3x?xi16>
// CHECK:     %[[LARGE:.*]] = arith.cmpi uge, %{{.*}}, %c65536 : index
// CHECK:     %[[PER:.*]] = arith.divui %c32768, %[[HW]] : index
// CHECK:     %[[LEN:.*]] = arith.maxui %[[PER]], %c1 : index
// CHECK:     %[[CHUNKS:.*]] = arith.ceildivui %[[N]], %[[LEN]] : index
// CHECK:     scf.if %[[LARGE]] {
// CHECK:         scf.for %{{.*}} = %c0 to %[[CHUNKS]] {{.*}} -> (f64) {
// CHECK:           memref.load %[[WS]]
// CHECK:         scf.if
// CHECK:           memref.store
// CHECK:           memref.store
// CHECK:     } else {
func.func @bn_nchw(%x: tensor<?x3x?xbf16>) -> (tensor<?x3x?xbf16>, tensor<3xf32>, tensor<3xf32>) {
  %y, %mean, %rstd = norm.batch_norm %x {training, channel_dim = 1 : i64} : (tensor<?x3x?xbf16>) -> (tensor<?x3x?xbf16>, tensor<3xf32>, tensor<3xf32>)
  return %y, %mean, %rstd : tensor<?x3x?xbf16>, tensor<3xf32>, tensor<3xf32>
}

// -----

// The backward splits the batch the same way, but its work items are
// chunks of every row (its rows are vectors of 8 f64 statistics here: 5 of
// them for 40 channels): each item is a chunk of 4096 positions, visited a
// tile of 32 positions at a time and every row within a tile, so that the
// 160 bytes of a position are read together instead of 32 bytes of them by
// each of 5 items streaming the whole batch (docs/cpu.md). The prepass sums
// pass A per chunk and row, four vectors of 8 f64 carried across the
// tiles; each main item adds every row's sums in chunk order, then runs
// pass B on its chunk, the last chunk first (the prepass has just read
// it). Each chunk has a partial slice of its own (40 x 2 f64, cleared
// first), which the finalize step adds in chunk order.

// BWD-LABEL: module attributes {normc.kernels = [{{.*}}name = "bn_train"
// BWD-SAME: prepass = true, workspace = true
// BWD-SAME: finalize = true
// BWD-SAME: name = "bn_train_backward"
// BWD-SAME: prepass = true, workspace = true
// BWD-LABEL: func.func private @__normc_bn_train_backward_body
// BWD-SAME: %[[WS:[a-z0-9_]+]]: memref<?xf64>, %[[BEGIN:[a-z0-9_]+]]: index, %[[END:[a-z0-9_]+]]: index)
// BWD:     %[[LARGE:.*]] = arith.cmpi uge, %[[N:.*]], %c65536 : index
// BWD:     %[[CHUNKS:.*]] = arith.ceildivui %[[N]], %c4096 : index
// BWD:     scf.if %[[LARGE]] {
// BWD:       %[[LAST:.*]] = arith.subi %[[CHUNKS]], %c1 : index
// BWD:       scf.for %[[STEP:.*]] = %[[BEGIN]] to %[[END]] step %c1 {
// BWD:         %[[CHUNK:.*]] = arith.subi %[[LAST]], %[[STEP]] : index
// BWD:         %[[SLICE:.*]] = arith.muli %[[CHUNK]], %c80 : index
// BWD:         %[[SLICEEND:.*]] = arith.addi %[[SLICE]], %c80 : index
// BWD:         scf.for %[[I:.*]] = %[[SLICE]] to %[[SLICEEND]] step %c1 {
// BWD:           memref.store %{{.*}}, %[[WS]][%[[I]]] : memref<?xf64>
// Every row's sums of pass A, its chunks' in chunk order.
// BWD-COUNT-5: scf.for %{{.*}} = %c0 to %[[CHUNKS]] step %c1 iter_args({{.*}}) -> (vector<8xf64>, vector<8xf64>, vector<8xf64>, vector<8xf64>) {
// The tiles carry every row's dgamma and dbeta sums; each row runs its
// vectors of the tile.
// BWD:         scf.for %{{.*}} step %c32 iter_args({{.*}}) -> (vector<8xf64>, vector<8xf64>, vector<8xf64>, vector<8xf64>, vector<8xf64>, vector<8xf64>, vector<8xf64>, vector<8xf64>, vector<8xf64>, vector<8xf64>) {
// BWD-COUNT-5:   scf.for %{{.*}} step %c32 iter_args(%{{[^,]*}}, %{{[^,]*}}) -> (vector<8xf64>, vector<8xf64>) {
// BWD-COUNT-10:  vector.store %{{.*}}, %[[WS]][%{{.*}}] : memref<?xf64>, vector<8xf64>
// BWD:     } else {
// BWD-LABEL: func.func private @__normc_bn_train_backward_prepassbody
// BWD:       scf.for %{{.*}} step %c32 iter_args({{.*}}) -> ({{(vector<8xf64>, )+}}vector<8xf64>) {
// BWD-COUNT-5: scf.for %{{.*}} step %c32 iter_args(%{{[^,]*}}, %{{[^,]*}}, %{{[^,]*}}, %{{[^,]*}}) -> (vector<8xf64>, vector<8xf64>, vector<8xf64>, vector<8xf64>) {
// BWD-COUNT-20: vector.store %{{.*}} : memref<?xf64>, vector<8xf64>
// One slice per chunk: the finalize adds as many slices as there are chunks.
// BWD-LABEL: func.func private @__normc_bn_train_backward_finalizebody
// BWD:       %[[FCHUNKS:.*]] = arith.ceildivui %{{.*}}, %c4096 : index
// BWD:       arith.select %{{.*}}, %[[FCHUNKS]], %{{.*}} : index
func.func @bn_train(%x: tensor<?x40xf32>, %w: tensor<40xf32>, %b: tensor<40xf32>)
    -> (tensor<?x40xf32>, tensor<40xf32>, tensor<40xf32>) attributes {norm.backward} {
  %y, %m, %r = norm.batch_norm %x weight(%w) bias(%b) {training, channel_dim = 1 : i64}
      : (tensor<?x40xf32>, tensor<40xf32>, tensor<40xf32>)
      -> (tensor<?x40xf32>, tensor<40xf32>, tensor<40xf32>)
  return %y, %m, %r : tensor<?x40xf32>, tensor<40xf32>, tensor<40xf32>
}

// -----

// Known sizes decide the rule at compile time: 32x56x56 positions of 64
// channels (4 rows) always split, with no per-call choice: 49 chunks per
// row, 49 items (chunks of every row) in each step, 196 x 2 x 16 f64 of
// workspace.

// CHECK-LABEL: func.func private @__normc_bn_static_body
// CHECK-NOT:   scf.if %{{.*}} {
// CHECK:       scf.for %{{.*}} = %c0 to %c49 step %c1 iter_args
// CHECK-LABEL: func.func private @__normc_bn_static_prepasscount
// CHECK:       %[[N:.*]] = arith.constant 49 : i64
// CHECK:       return %[[N]]
// CHECK-LABEL: func.func private @__normc_bn_static_wscount
// CHECK:       %[[W:.*]] = arith.constant 6272 : i64
// CHECK:       return %[[W]]
// CHECK-LABEL: func.func private @__normc_bn_static_workcount
// CHECK:       %[[I:.*]] = arith.constant 49 : i64
// CHECK:       return %[[I]]
func.func @bn_static(%x: tensor<100352x64xf32>, %w: tensor<64xf32>, %b: tensor<64xf32>) -> tensor<100352x64xf32> {
  %y, %mean, %rstd = norm.batch_norm %x weight(%w) bias(%b) {training, channel_dim = 1 : i64} : (tensor<100352x64xf32>, tensor<64xf32>, tensor<64xf32>) -> (tensor<100352x64xf32>, tensor<64xf32>, tensor<64xf32>)
  return %y : tensor<100352x64xf32>
}

// -----

// Kernels that never split their batch keep the plain ABI: 8 channel
// groups or more (NHWC with 128 channels; NCHW with 64, dynamic batch),
// fewer than 65536 elements per statistic, given statistics (inference),
// and f64 data.

// CHECK-LABEL: module attributes {normc.kernels = [{
// CHECK-SAME: name = "many_groups"
// CHECK-SAME: prepass = false, workspace = false
// CHECK-SAME: name = "many_channels"
// CHECK-SAME: prepass = false, workspace = false
// CHECK-SAME: name = "small_batch"
// CHECK-SAME: prepass = false, workspace = false
// CHECK-SAME: name = "inference"
// CHECK-SAME: prepass = false, workspace = false
// CHECK-SAME: name = "f64_batch"
// CHECK-SAME: prepass = false, workspace = false
// CHECK-NOT: prepassbody
func.func @many_groups(%x: tensor<?x128xf32>) -> tensor<?x128xf32> {
  %y, %mean, %rstd = norm.batch_norm %x {training, channel_dim = 1 : i64} : (tensor<?x128xf32>) -> (tensor<?x128xf32>, tensor<128xf32>, tensor<128xf32>)
  return %y : tensor<?x128xf32>
}
func.func @many_channels(%x: tensor<?x64x?xf32>) -> tensor<?x64x?xf32> {
  %y, %mean, %rstd = norm.batch_norm %x {training, channel_dim = 1 : i64} : (tensor<?x64x?xf32>) -> (tensor<?x64x?xf32>, tensor<64xf32>, tensor<64xf32>)
  return %y : tensor<?x64x?xf32>
}
func.func @small_batch(%x: tensor<4x16x16x3xf32>) -> tensor<4x16x16x3xf32> {
  %y, %mean, %rstd = norm.batch_norm %x {training, channel_dim = 3 : i64} : (tensor<4x16x16x3xf32>) -> (tensor<4x16x16x3xf32>, tensor<3xf32>, tensor<3xf32>)
  return %y : tensor<4x16x16x3xf32>
}
func.func @inference(%x: tensor<?x3xf32>, %m: tensor<3xf32>, %v: tensor<3xf32>) -> tensor<?x3xf32> {
  %y = norm.batch_norm %x running(%m, %v) {channel_dim = 1 : i64} : (tensor<?x3xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<?x3xf32>
  return %y : tensor<?x3xf32>
}
func.func @f64_batch(%x: tensor<?x3xf64>) -> tensor<?x3xf64> {
  %y, %mean, %rstd = norm.batch_norm %x {training, channel_dim = 1 : i64} : (tensor<?x3xf64>) -> (tensor<?x3xf64>, tensor<3xf64>, tensor<3xf64>)
  return %y : tensor<?x3xf64>
}
