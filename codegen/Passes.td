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
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect", "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect", "::mlir::func::FuncDialect",
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
