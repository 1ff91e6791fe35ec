// RUN: norm-opt %s -split-input-file --norm-form-kernels=vector-length=16 --canonicalize --cse | FileCheck %s

// GroupNorm NHWC, 32 channels in 8 groups of 4: the canonical layout
// [N, H*W, G, C/G] ends in a short reduced dim, so [G, C/G] is viewed as one
// contiguous dim of 32 channels in segments of 4 (segmented lane mode). A
// work item is a sample and a chunk of 16 / 4 = 4 groups. Rows of H*W are
// read as contiguous vectors of 16 channels into per-lane f64 sums, each
// segment of 4 lanes is then added into its group's statistic (shuffles,
// once per item), and the statistics are spread back over their lanes for
// the next pass. 8 groups fill both chunks: no masks.

// CHECK-LABEL: func.func private @__normc_gn_nhwc_body
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: memref<?x5x5x32xf32>, %[[W:[a-z0-9_]+]]: memref<32xf32>, %[[B:[a-z0-9_]+]]: memref<32xf32>, %[[Y:[a-z0-9_]+]]: memref<?x5x5x32xf32>, %[[MEAN:[a-z0-9_]+]]: memref<?x8xf32>, %[[RSTD:[a-z0-9_]+]]: memref<?x8xf32>,
// CHECK-DAG: %[[XC:[a-z0-9_]+]] = memref.collapse_shape %[[X]] {{\[\[}}0], [1, 2], [3]] : memref<?x5x5x32xf32> into memref<?x25x32xf32>
// CHECK-DAG: %[[YC:[a-z0-9_]+]] = memref.collapse_shape %[[Y]] {{\[\[}}0], [1, 2], [3]] : memref<?x5x5x32xf32> into memref<?x25x32xf32>
// CHECK: scf.for %[[ITEM:[a-z0-9_]+]] =
// CHECK:   %[[CHUNK:[a-z0-9_]+]] = arith.remui %[[ITEM]], %c2
// CHECK:   %[[N:[a-z0-9_]+]] = arith.divui %[[ITEM]], %c2
// CHECK:   %[[G0:[a-z0-9_]+]] = arith.muli %[[CHUNK]], %c4
// CHECK:   %[[C0:[a-z0-9_]+]] = arith.muli %[[CHUNK]], %c16
// CHECK-NOT: vector.create_mask
// The shift of each group: its first element, lane 4*j of the first row.
// CHECK:   %[[FIRST:[a-z0-9_]+]] = vector.load %[[XC]][%[[N]], %c0, %[[C0]]] : memref<?x25x32xf32>, vector<16xf32>
// CHECK:   %[[X0:[a-z0-9_]+]] = vector.shuffle %[[FIRST]], %[[FIRST]] [0, 4, 8, 12] : vector<16xf32>, vector<16xf32>
// CHECK:   %[[X0W:[a-z0-9_]+]] = arith.extf %[[X0]] : vector<4xf32> to vector<4xf64>
// Pass 1: per-lane sums of x over the rows (unshifted: see cpu-row-mode).
// CHECK:   %[[SUM:[a-z0-9_]+]] = scf.for %[[ROW:[a-z0-9_]+]] = %c0 to %c25 {{.*}} -> (vector<16xf64>) {
// CHECK:     vector.load %[[XC]][%[[N]], %[[ROW]], %[[C0]]] : memref<?x25x32xf32>, vector<16xf32>
// CHECK-NOT: arith.subf
// CHECK:     arith.addf
// CHECK:   }
// Per group: lanes 4j, 4j+1, 4j+2, 4j+3 in that order.
// CHECK-NOT: vector.reduction
// CHECK:   %[[T:[a-z0-9_]+]] = arith.addf %[[SUM]]
// CHECK:   %[[P0:[a-z0-9_]+]] = vector.shuffle %[[T]], %[[T]] [0, 4, 8, 12] : vector<16xf64>, vector<16xf64>
// CHECK:   %[[P1:[a-z0-9_]+]] = vector.shuffle %[[T]], %[[T]] [1, 5, 9, 13]
// CHECK:   %[[S01:[a-z0-9_]+]] = arith.addf %[[P0]], %[[P1]] : vector<4xf64>
// CHECK:   %[[P2:[a-z0-9_]+]] = vector.shuffle %[[T]], %[[T]] [2, 6, 10, 14]
// CHECK:   %[[S012:[a-z0-9_]+]] = arith.addf %[[S01]], %[[P2]] : vector<4xf64>
// CHECK:   %[[P3:[a-z0-9_]+]] = vector.shuffle %[[T]], %[[T]] [3, 7, 11, 15]
// CHECK:   %[[S:[a-z0-9_]+]] = arith.addf %[[S012]], %[[P3]] : vector<4xf64>
// CHECK:   %[[MEAN0:[a-z0-9_]+]] = arith.divf %[[S]], %{{.*}} : vector<4xf64>
// CHECK:   %[[D:[a-z0-9_]+]] = arith.subf %[[MEAN0]], %[[X0W]] : vector<4xf64>
// CHECK:   %[[D32:[a-z0-9_]+]] = arith.truncf %[[D]] : vector<4xf64> to vector<4xf32>
// Pass 2: squared deviations from the group's mean in f32 (the shift and
// the mean's offset spread in f32), reduced the same way in f64.
// CHECK:   %[[DL32:[a-z0-9_]+]] = vector.shuffle %[[D32]], %[[D32]] [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3] : vector<4xf32>
// CHECK:   scf.for {{.*}} -> (vector<16xf32>) {
// CHECK:     vector.load %[[XC]]
// CHECK:     arith.subf
// CHECK:     arith.subf %{{.*}}, %[[DL32]] : vector<16xf32>
// CHECK:     math.fma
// CHECK:   }
// CHECK:   arith.extf %{{.*}} : vector<16xf32> to vector<16xf64>
// CHECK-NOT: vector.reduction <add>
// CHECK-COUNT-4: vector.shuffle %{{.*}} : vector<16xf64>, vector<16xf64>
// CHECK:   math.sqrt %{{.*}} : vector<4xf64>
// One statistic per group: 4 groups stored at once.
// CHECK:   vector.store %{{.*}}, %[[MEAN]][%[[N]], %[[G0]]] : memref<?x8xf32>, vector<4xf32>
// CHECK:   vector.store %{{.*}}, %[[RSTD]][%[[N]], %[[G0]]] : memref<?x8xf32>, vector<4xf32>
// Pass 3: contiguous channels of x and y; gamma and beta are the same for
// every row of the item, loaded once. 8 groups fill both chunks, so the
// vectors are whole and may stream (a large batch, decided per call).
// CHECK:   vector.load %[[W]][%[[C0]]] : memref<32xf32>, vector<16xf32>
// CHECK:   vector.load %[[B]][%[[C0]]] : memref<32xf32>, vector<16xf32>
// CHECK:   scf.for %[[ROW3:[a-z0-9_]+]] = %c0 to %c25
// CHECK:     vector.load %[[XC]][%[[N]], %[[ROW3]], %[[C0]]] : memref<?x25x32xf32>, vector<16xf32>
// CHECK-NOT: vector.load
// CHECK:     vector.store %{{.*}}, %[[YC]][%[[N]], %[[ROW3]], %[[C0]]] {alignment = 64 : i64, nontemporal = true} : memref<?x25x32xf32>, vector<16xf32>
// CHECK:   } else {
// CHECK:     vector.store %{{.*}}, %[[YC]][%[[N]], %[[ROW3]], %[[C0]]] : memref<?x25x32xf32>, vector<16xf32>
// CHECK: return

// Two chunks per sample.
// CHECK-LABEL: func.func private @__normc_gn_nhwc_workcount
// CHECK: arith.muli %{{.*}}, %c2 : index
func.func @gn_nhwc(%x: tensor<?x5x5x32xf32>, %w: tensor<32xf32>, %b: tensor<32xf32>)
    -> (tensor<?x5x5x32xf32>, tensor<?x8xf32>, tensor<?x8xf32>) {
  %y, %m, %r = norm.group_norm %x weight(%w) bias(%b) {num_groups = 8 : i64, channel_dim = 3 : i64}
      : (tensor<?x5x5x32xf32>, tensor<32xf32>, tensor<32xf32>) -> (tensor<?x5x5x32xf32>, tensor<?x8xf32>, tensor<?x8xf32>)
  return %y, %m, %r : tensor<?x5x5x32xf32>, tensor<?x8xf32>, tensor<?x8xf32>
}

// -----

// Segments of 3 channels (24 channels, 8 groups): a vector holds 5 groups
// (15 lanes), so the second chunk has 3 groups; the masks cover the item's
// groups and their 3 lanes each.

// CHECK-LABEL: func.func private @__normc_gn_tail_body
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: memref<?x7x24xi16>, %[[W:[a-z0-9_]+]]: memref<24xi16>, %[[B:[a-z0-9_]+]]: memref<24xi16>, %[[Y:[a-z0-9_]+]]: memref<?x7x24xi16>, %[[MEAN:[a-z0-9_]+]]: memref<?x8xf32>,
// CHECK: scf.for %[[ITEM:[a-z0-9_]+]] =
// CHECK:   %[[G0:[a-z0-9_]+]] = arith.muli %{{.*}}, %c5 : index
// CHECK:   %[[C0:[a-z0-9_]+]] = arith.muli %{{.*}}, %c15 : index
// CHECK:   %[[LEFT:[a-z0-9_]+]] = arith.subi %c8, %[[G0]]
// CHECK:   %[[GROUPS:[a-z0-9_]+]] = arith.minui %[[LEFT]], %c5
// CHECK:   %[[GMASK:[a-z0-9_]+]] = vector.create_mask %[[GROUPS]] : vector<5xi1>
// CHECK:   %[[LANES:[a-z0-9_]+]] = arith.muli %[[GROUPS]], %c3
// CHECK:   %[[MASK:[a-z0-9_]+]] = vector.create_mask %[[LANES]] : vector<16xi1>
// CHECK:   vector.maskedload %[[X]][%{{.*}}, %c0, %[[C0]]], %[[MASK]]
// CHECK:   vector.shuffle %{{.*}} [0, 3, 6, 9, 12] : vector<16xf32>, vector<16xf32>
// Lane 15 is in no segment: it repeats the last group.
// CHECK:   vector.shuffle %{{.*}} [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 4] : vector<5xf64>, vector<5xf64>
// CHECK:   scf.for {{.*}} -> (vector<16xf64>) {
// CHECK:     vector.maskedload %[[X]][{{.*}}], %[[MASK]]
// CHECK:   vector.shuffle %{{.*}} [0, 3, 6, 9, 12] : vector<16xf64>, vector<16xf64>
// CHECK:   vector.shuffle %{{.*}} [1, 4, 7, 10, 13] : vector<16xf64>, vector<16xf64>
// CHECK:   vector.shuffle %{{.*}} [2, 5, 8, 11, 14] : vector<16xf64>, vector<16xf64>
// CHECK:   vector.maskedstore %[[MEAN]][%{{.*}}, %[[G0]]], %[[GMASK]], %{{.*}} : memref<?x8xf32>, vector<5xi1>, vector<5xf32>
// CHECK:   vector.maskedload %[[W]][%[[C0]]], %[[MASK]]
// CHECK:   vector.maskedload %[[B]][%[[C0]]], %[[MASK]]
// CHECK:   scf.for
// CHECK:     vector.maskedstore %[[Y]][%{{.*}}, %{{.*}}, %[[C0]]], %[[MASK]]
func.func @gn_tail(%x: tensor<?x7x24xbf16>, %w: tensor<24xbf16>, %b: tensor<24xbf16>)
    -> (tensor<?x7x24xbf16>, tensor<?x8xf32>, tensor<?x8xf32>) {
  %y, %m, %r = norm.group_norm %x weight(%w) bias(%b) {num_groups = 8 : i64, channel_dim = 2 : i64}
      : (tensor<?x7x24xbf16>, tensor<24xbf16>, tensor<24xbf16>) -> (tensor<?x7x24xbf16>, tensor<?x8xf32>, tensor<?x8xf32>)
  return %y, %m, %r : tensor<?x7x24xbf16>, tensor<?x8xf32>, tensor<?x8xf32>
}

// -----

// Backward of GroupNorm NHWC: f64 vectors of 8 lanes hold 2 groups of 4
// channels. Pass A keeps four per-lane sums over the rows and reduces them
// per segment; pass B writes dx and adds per-channel dgamma/dbeta partials
// with contiguous vector read-modify-writes of the workspace.

// CHECK-LABEL: func.func private @__normc_gnb_body
// CHECK-SAME: (%[[DY:[a-z0-9_]+]]: memref<?x9x32xf32>, %[[X:[a-z0-9_]+]]: memref<?x9x32xf32>, %[[G:[a-z0-9_]+]]: memref<32xf32>, %[[M:[a-z0-9_]+]]: memref<?x8xf32>, %[[R:[a-z0-9_]+]]: memref<?x8xf32>, %[[DX:[a-z0-9_]+]]: memref<?x9x32xf32>, %{{.*}}: memref<32xf32>, %{{.*}}: memref<32xf32>, %[[WS:[a-z0-9_]+]]: memref<?xf64>,
// CHECK: scf.for %[[ITEM:[a-z0-9_]+]] =
// CHECK:   %[[G0:[a-z0-9_]+]] = arith.muli %{{.*}}, %c2 : index
// CHECK:   %[[C0:[a-z0-9_]+]] = arith.muli %{{.*}}, %c8 : index
// CHECK:   vector.load %[[R]][%{{.*}}, %[[G0]]] : memref<?x8xf32>, vector<2xf32>
// CHECK:   vector.load %[[M]][%{{.*}}, %[[G0]]] : memref<?x8xf32>, vector<2xf32>
// CHECK:   vector.load %[[G]][%[[C0]]] : memref<32xf32>, vector<8xf32>
// CHECK:   scf.for {{.*}} -> (vector<8xf64>, vector<8xf64>, vector<8xf64>, vector<8xf64>) {
// CHECK:     vector.load %[[X]][%{{.*}}, %{{.*}}, %[[C0]]] : memref<?x9x32xf32>, vector<8xf32>
// CHECK:     vector.load %[[DY]][%{{.*}}, %{{.*}}, %[[C0]]] : memref<?x9x32xf32>, vector<8xf32>
// CHECK-NOT: vector.load %[[G]]
// CHECK:   }
// CHECK-NOT: vector.reduction
// CHECK-COUNT-16: vector.shuffle %{{.*}} : vector<8xf64>, vector<8xf64>
// CHECK:   math.sqrt %{{.*}} : vector<2xf64>
// CHECK:   scf.for
// CHECK:     vector.store %{{.*}}, %[[DX]][%{{.*}}, %{{.*}}, %[[C0]]] : memref<?x9x32xf32>, vector<8xf32>
// CHECK:     vector.load %[[WS]]
// CHECK:     vector.store %{{.*}}, %[[WS]]
// CHECK:     vector.load %[[WS]]
// CHECK:     vector.store %{{.*}}, %[[WS]]
func.func @gnb(%dy: tensor<?x9x32xf32>, %x: tensor<?x9x32xf32>, %g: tensor<32xf32>, %m: tensor<?x8xf32>, %r: tensor<?x8xf32>)
    -> (tensor<?x9x32xf32>, tensor<32xf32>, tensor<32xf32>) {
  %dx, %dg, %db = norm.normalize_backward %dy, %x gamma(%g) mean(%m) rstd(%r) reduce [1] center eps(1.0e-05, inside) affine [2] groups 8 along 2 {grad_input, grad_weight, grad_bias}
      : (tensor<?x9x32xf32>, tensor<?x9x32xf32>, tensor<32xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> (tensor<?x9x32xf32>, tensor<32xf32>, tensor<32xf32>)
  return %dx, %dg, %db : tensor<?x9x32xf32>, tensor<32xf32>, tensor<32xf32>
}

// -----

// The same structure without groups: LayerNorm over rows of 3 without
// weights is [rows (kept), 3 (reduced)], viewed as one dim in segments of
// 3; a work item is a chunk of 5 rows.

// CHECK-LABEL: func.func private @__normc_ln3_body
// CHECK: %[[XC:[a-z0-9_]+]] = memref.collapse_shape %{{.*}} {{\[\[}}0, 1]] : memref<?x3xf32> into memref<?xf32>
// CHECK: scf.for
// CHECK:   vector.create_mask %{{.*}} : vector<5xi1>
// CHECK:   vector.maskedload %[[XC]]
// CHECK:   vector.shuffle %{{.*}} [0, 3, 6, 9, 12] : vector<16xf64>, vector<16xf64>
// CHECK-NOT: vector.reduction <add>

// CHECK-LABEL: func.func private @__normc_ln3_workcount
// CHECK: arith.ceildivui %{{.*}}, %c5 : index
func.func @ln3(%x: tensor<?x3xf32>) -> (tensor<?x3xf32>, tensor<?xf32>, tensor<?xf32>) {
  %y, %m, %r = norm.layer_norm %x : (tensor<?x3xf32>) -> (tensor<?x3xf32>, tensor<?xf32>, tensor<?xf32>)
  return %y, %m, %r : tensor<?x3xf32>, tensor<?xf32>, tensor<?xf32>
}

// -----

// Row mode stays where a segment would not leave room for two statistics
// per vector (16 channels per group, 16 lanes) and where the channels are
// dynamic (segments must be static).

// CHECK-LABEL: func.func private @__normc_gn_wide_body
// CHECK-NOT: vector.shuffle
// CHECK: vector.reduction <add>
// CHECK-NOT: vector.shuffle
// CHECK: return
func.func @gn_wide(%x: tensor<?x7x32xf32>) -> (tensor<?x7x32xf32>, tensor<?x2xf32>, tensor<?x2xf32>) {
  %y, %m, %r = norm.group_norm %x {num_groups = 2 : i64, channel_dim = 2 : i64}
      : (tensor<?x7x32xf32>) -> (tensor<?x7x32xf32>, tensor<?x2xf32>, tensor<?x2xf32>)
  return %y, %m, %r : tensor<?x7x32xf32>, tensor<?x2xf32>, tensor<?x2xf32>
}

// -----

// CHECK-LABEL: func.func private @__normc_gn_dynamic_body
// CHECK-NOT: vector.shuffle
// CHECK: vector.reduction <add>
// CHECK-NOT: vector.shuffle
// CHECK: return
func.func @gn_dynamic(%x: tensor<?x7x?xf32>) -> (tensor<?x7x?xf32>, tensor<?x8xf32>, tensor<?x8xf32>) {
  %y, %m, %r = norm.group_norm %x {num_groups = 8 : i64, channel_dim = 2 : i64}
      : (tensor<?x7x?xf32>) -> (tensor<?x7x?xf32>, tensor<?x8xf32>, tensor<?x8xf32>)
  return %y, %m, %r : tensor<?x7x?xf32>, tensor<?x8xf32>, tensor<?x8xf32>
}
