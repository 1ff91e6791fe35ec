//===- Passes.td - normc code generation passes ------------*- tablegen -*-===//

#ifndef NORMC_CODEGEN_PASSES_TD
#define NORMC_CODEGEN_PASSES_TD

include "mlir/Pass/PassBase.td"

def NormFormKernels : Pass<"norm-form-kernels", "::mlir::ModuleOp"> {
  let summary = "Turn each spec function into a kernel on memrefs";
  let description = [{
    Each `func.func` of a spec holds one norm op whose operands are function
    arguments and whose results are returned. It becomes:

    * `@__normc_<name>_body(memrefs..., %begin, %end)`: the loops of the
      normalization (codegen/NormalizeToLoops) for work items [begin, end);
      inputs first, then one output buffer per returned result;
    * `@__normc_<name>_workcount(i64 dims...) -> i64` and
      `@__normc_<name>_check(i64 dims...) -> i32` over the dynamic dims of
      the normalized input.

    The kernel's C ABI (argument names, element types, shapes in terms of
    the dynamic dims) is recorded in the module attribute `normc.kernels`.
  }];
  let options = [
    Option<"vectorLength", "vector-length", "int64_t", /*default=*/"64",
           "Lanes of one f32 accumulator vector (a multiple of the native "
           "vector width)">,
    Option<"streamingStoreMinBytes", "streaming-store-min-bytes", "int64_t",
           /*default=*/"8388608",
           "Outputs (y, dx) of at least this many bytes are written with "
           "streaming (non-temporal, x86) stores when aligned; 0 always, "
           "-1 never">,
    Option<"prefetchNextItem", "prefetch-next-item", "bool",
           /*default=*/"true",
           "The last pass over a work item that fits in cache prefetches "
           "the next item, so that memory streams while it computes">,
    Option<"pipelineItems", "pipeline-items", "bool", /*default=*/"true",
           "Rows that fit in cache (up to 64 KiB) take their statistics "
           "from one pass of shifted f64 sums that runs in the output pass "
           "of the previous row, so that every row streams from memory "
           "once, in one loop with the previous row's output">,
    Option<"onePassMinBytes", "one-pass-min-bytes", "int64_t",
           /*default=*/"524288",
           "Work items of at least this many bytes (f32/f16/bf16 data) not "
           "pipelined take their statistics from one pass of shifted f64 "
           "sums instead of two passes; 0 always, -1 never">,
    Option<"splitLongRows", "split-long-rows", "bool", /*default=*/"true",
           "Reduce rows of 64K elements or more in chunks (a prepass of "
           "partial sums, then one work item per chunk) when there are few "
           "of them, or (centered forward) when they do not fit in cache; "
           "likewise the batch of fewer than 8 work items of statistics "
           "over 64K elements or more (BatchNorm)">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect", "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect", "::mlir::func::FuncDialect",
    "::mlir::LLVM::LLVMDialect",
  ];
}

def NormFormGpuKernels : Pass<"norm-form-gpu-kernels", "::mlir::ModuleOp"> {
  let summary = "Add GPU kernels and a host launch plan for each spec function";
  let description = [{
    Runs on specs (before `norm-form-kernels`, which consumes them). For
    each spec function `K` it adds to the `gpu.module @normc_gpu`:

    * `K_gpu_fused`: a row of X threads per statistic reduces its elements
      (a shuffle tree, then the warps' results in order) and normalizes them
      (or computes dx);
    * `K_gpu_partials` + `K_gpu_apply`: the same split over K blocks per
      statistic, for few statistics with long reductions (BatchNorm);
    * backward with dgamma/dbeta: `K_gpu_affine_partials` +
      `K_gpu_affine_finalize`, per-chunk f64 sums added in chunk order;

    and to the host module `@__normc_K_gpu_plan(!llvm.ptr dims, !llvm.ptr
    plan) -> i32`, which checks the sizes and fills the launch plan of
    docs/gpu.md. The schedule is one function of the sizes used by both
    sides. The spec function gets `normc.gpu_functions`, the PTX entry
    names in the plan's function-index order.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::gpu::GPUDialect",
    "::mlir::memref::MemRefDialect", "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect", "::mlir::func::FuncDialect",
    "::mlir::LLVM::LLVMDialect",
  ];
}

def NormEmulateGpuKernels
    : Pass<"norm-emulate-gpu-kernels", "::mlir::ModuleOp"> {
  let summary = "Copy the GPU kernels into the host module, for emulation";
  let description = [{
    For testing without a GPU: every `gpu.func` of the module's gpu.modules
    gets a host copy `@__normc_emu_<name>(params..., shared memref,
    !llvm.ptr context)` in which thread/block ids, barriers and warp
    shuffles go through the emulator's per-thread context and the inline
    PTX sqrt becomes math.sqrt. After the LLVM lowering,
    norm-emit-c-interface adds `__normc_emu_<name>_launch(void **params,
    void *context)` taking cuLaunchKernel's parameter array. See
    test/gpu-emulator.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::math::MathDialect",
    "::mlir::func::FuncDialect", "::mlir::LLVM::LLVMDialect",
  ];
}

def NormEmitCInterface : Pass<"norm-emit-c-interface", "::mlir::ModuleOp"> {
  let summary = "Add the C entry points of every kernel (LLVM dialect)";
  let description = [{
    Runs after the conversion to the LLVM dialect. For every kernel recorded
    in `normc.kernels` it adds `<name>(pointers..., int64 dims...)`,
    `__normc_<name>_packed(void **args, int64_t *dims, begin, end)` and
    `__normc_<name>_work(int64_t *dims)`, which check sizes and pointers
    and call the internal body; with `manifest`, also the bundle symbols
    `normc_manifest` and `normc_abi_version`.
  }];
  let options = [
    Option<"manifest", "manifest", "bool", /*default=*/"false",
           "Embed the bundle manifest">,
  ];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

#endif // NORMC_CODEGEN_PASSES_TD
