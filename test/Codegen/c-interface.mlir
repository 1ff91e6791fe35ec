// RUN: norm-opt %s --norm-lower-to-llvm="vector-length=16 manifest=true" | FileCheck %s
// RUN: norm-opt %s --norm-lower-to-llvm="vector-length=16 manifest=true" | FileCheck %s --check-prefix=LONG

// After the LLVM conversion each kernel has three C entry points around its
// internal body: the direct one (typed pointers, then the dynamic dims), the
// packed one used by the runtime (argument and dims arrays, a range of work
// items) and the work-item count. Sizes are checked first, then pointers.

// CHECK-DAG: llvm.func internal @__normc_ln_body(
// CHECK-DAG: llvm.func internal @__normc_ln_workcount(%{{.*}}: i64) -> i64
// CHECK-DAG: llvm.func internal @__normc_ln_check(%{{.*}}: i64) -> i32

// CHECK-LABEL: llvm.func @__normc_ln_work(%{{.*}}: !llvm.ptr) -> i64
// CHECK: llvm.load %{{.*}} : !llvm.ptr -> i64
// CHECK: llvm.call @__normc_ln_workcount

// CHECK-LABEL: llvm.func @__normc_ln_packed(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: i64, %{{.*}}: i64) -> i32
// CHECK: %[[CODE:.*]] = llvm.call @__normc_ln_check
// CHECK: llvm.cond_br %{{.*}}, ^[[EXIT:bb[0-9]+]](%[[CODE]] : i32)
// CHECK: llvm.call @__normc_ln_workcount
// CHECK: llvm.intr.smax
// CHECK: llvm.intr.smin
// Null pointers are only an error when there is work to do.
// CHECK: llvm.icmp "eq" %{{.*}}, %{{.*}} : !llvm.ptr
// CHECK: llvm.call @__normc_ln_body
// CHECK: llvm.return

// CHECK-LABEL: llvm.func @ln(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: i64) -> i32
// CHECK: llvm.call @__normc_ln_packed

// The manifest names the kernel, its entry points, dims and arguments.
// CHECK: llvm.mlir.global external constant @normc_manifest("{\22abi_version\22: 3,
// CHECK-SAME: \22name\22: \22ln\22, \22kind\22: \22forward\22, \22op\22: \22layer_norm\22
// CHECK-SAME: \22entry\22: \22__normc_ln_packed\22, \22work\22: \22__normc_ln_work\22, \22dims\22: [\22d0\22]
// CHECK-SAME: {\22name\22: \22x\22, \22io\22: \22in\22, \22dtype\22: \22f32\22, \22shape\22: [\22d0\22, 64]}
// CHECK-SAME: {\22name\22: \22y\22, \22io\22: \22out\22, \22dtype\22: \22f32\22, \22shape\22: [\22d0\22, 64], \22inplace\22: \22x\22}
// CHECK: llvm.mlir.global external constant @normc_abi_version(3 : i32)
func.func @ln(%x: tensor<?x64xf32>, %w: tensor<64xf32>, %b: tensor<64xf32>)
    -> (tensor<?x64xf32>, tensor<?xf32>, tensor<?xf32>) {
  %y, %mean, %rstd = norm.layer_norm %x weight(%w) bias(%b)
      : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?xf32>, tensor<?xf32>)
  return %y, %mean, %rstd : tensor<?x64xf32>, tensor<?xf32>, tensor<?xf32>
}

// A kernel that may split long rows (docs/cpu.md) has a workspace and a
// prepass with entry points of their own; its direct entry allocates the
// workspace, runs every prepass item, then every work item, and frees it,
// skipping the work items when the prepass fails.

// LONG-LABEL: llvm.func @__normc_long_workspace(%{{.*}}: !llvm.ptr) -> i64
// LONG: llvm.call @__normc_long_wscount
// LONG-LABEL: llvm.func @__normc_long_prepass_work(%{{.*}}: !llvm.ptr) -> i64
// LONG: llvm.call @__normc_long_prepasscount
// LONG-LABEL: llvm.func @__normc_long_prepass(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: i64, %{{.*}}: i64) -> i32
// LONG: llvm.call @__normc_long_check
// LONG: llvm.call @__normc_long_prepasscount
// LONG: llvm.call @__normc_long_prepassbody
// LONG-LABEL: llvm.func @long(
// LONG: %[[SCRATCH:.*]] = llvm.call @malloc
// LONG: %[[PRE:.*]] = llvm.call @__normc_long_prepass(
// LONG: llvm.icmp "eq" %[[PRE]]
// LONG: llvm.call @__normc_long_packed(
// LONG: llvm.call @free(%[[SCRATCH]])
// LONG: \22name\22: \22long\22
// LONG-SAME: \22workspace\22: \22__normc_long_workspace\22, \22prepass\22: {\22entry\22: \22__normc_long_prepass\22, \22work\22: \22__normc_long_prepass_work\22}
func.func @long(%x: tensor<?x?xf32>) -> (tensor<?x?xf32>, tensor<?xf32>) {
  %y, %rstd = norm.rms_norm %x : (tensor<?x?xf32>) -> (tensor<?x?xf32>, tensor<?xf32>)
  return %y, %rstd : tensor<?x?xf32>, tensor<?xf32>
}
