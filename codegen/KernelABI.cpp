//===- KernelABI.cpp - the C ABI of a generated kernel --------------------===//

#include "codegen/KernelABI.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::norm;

DictionaryAttr KernelABI::toAttr(MLIRContext *context) const {
  Builder b(context);
  SmallVector<Attribute> argAttrs;
  for (const KernelArg &arg : args) {
    SmallVector<NamedAttribute> fields = {
        b.getNamedAttr("name", b.getStringAttr(arg.name)),
        b.getNamedAttr("io", b.getStringAttr(arg.isOutput ? "out" : "in")),
        b.getNamedAttr("dtype", b.getStringAttr(arg.dtype)),
        b.getNamedAttr("shape", b.getDenseI64ArrayAttr(arg.shape))};
    if (!arg.inplace.empty())
      fields.push_back(b.getNamedAttr("inplace", b.getStringAttr(arg.inplace)));
    argAttrs.push_back(b.getDictionaryAttr(fields));
  }
  return b.getDictionaryAttr({
      b.getNamedAttr("name", b.getStringAttr(name)),
      b.getNamedAttr("kind", b.getStringAttr(kind)),
      b.getNamedAttr("op", b.getStringAttr(op)),
      b.getNamedAttr("attrs", b.getStringAttr(attrsJson)),
      b.getNamedAttr("num_dims", b.getI64IntegerAttr(numDims)),
      b.getNamedAttr("args", b.getArrayAttr(argAttrs)),
      b.getNamedAttr("workspace", b.getBoolAttr(hasWorkspace)),
      b.getNamedAttr("finalize", b.getBoolAttr(hasFinalize)),
      b.getNamedAttr("prepass", b.getBoolAttr(hasPrepass)),
      b.getNamedAttr(
          "gpu_functions",
          b.getStrArrayAttr(llvm::to_vector_of<StringRef>(gpuFunctions))),
  });
}

FailureOr<KernelABI> KernelABI::fromAttr(DictionaryAttr attr) {
  KernelABI abi;
  auto str = [](DictionaryAttr dict,
                StringRef key) -> std::optional<std::string> {
    if (auto value = dict.getAs<StringAttr>(key))
      return value.str();
    return std::nullopt;
  };
  auto name = str(attr, "name"), kind = str(attr, "kind"), op = str(attr, "op"),
       attrs = str(attr, "attrs");
  auto numDims = attr.getAs<IntegerAttr>("num_dims");
  auto args = attr.getAs<ArrayAttr>("args");
  if (!name || !kind || !op || !attrs || !numDims || !args)
    return failure();
  abi.name = *name;
  abi.kind = *kind;
  abi.op = *op;
  abi.attrsJson = *attrs;
  abi.numDims = numDims.getInt();
  if (auto workspace = attr.getAs<BoolAttr>("workspace"))
    abi.hasWorkspace = workspace.getValue();
  if (auto finalize = attr.getAs<BoolAttr>("finalize"))
    abi.hasFinalize = finalize.getValue();
  if (auto prepass = attr.getAs<BoolAttr>("prepass"))
    abi.hasPrepass = prepass.getValue();
  // Both steps use the workspace.
  if ((abi.hasFinalize || abi.hasPrepass) != abi.hasWorkspace)
    return failure();
  if (auto functions = attr.getAs<ArrayAttr>("gpu_functions"))
    for (Attribute function : functions) {
      auto name = dyn_cast<StringAttr>(function);
      if (!name)
        return failure();
      abi.gpuFunctions.push_back(name.str());
    }
  for (Attribute a : args) {
    auto dict = dyn_cast<DictionaryAttr>(a);
    if (!dict)
      return failure();
    KernelArg arg;
    auto argName = str(dict, "name"), io = str(dict, "io"),
         dtype = str(dict, "dtype");
    auto shape = dict.getAs<DenseI64ArrayAttr>("shape");
    if (!argName || !io || !dtype || !shape)
      return failure();
    arg.name = *argName;
    arg.isOutput = *io == "out";
    arg.dtype = *dtype;
    arg.shape = llvm::to_vector(shape.asArrayRef());
    arg.inplace = str(dict, "inplace").value_or("");
    abi.args.push_back(arg);
  }
  return abi;
}

FailureOr<std::vector<KernelABI>> norm::getModuleKernels(ModuleOp module) {
  std::vector<KernelABI> kernels;
  auto list = module->getAttrOfType<ArrayAttr>(kKernelsAttrName);
  if (!list)
    return kernels;
  for (Attribute attr : list) {
    auto dict = dyn_cast<DictionaryAttr>(attr);
    if (!dict)
      return failure();
    FailureOr<KernelABI> abi = KernelABI::fromAttr(dict);
    if (failed(abi))
      return failure();
    kernels.push_back(*abi);
  }
  return kernels;
}

static std::string jsonString(StringRef text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string norm::writeManifest(ArrayRef<KernelABI> kernels,
                                ArrayRef<std::string> gpuArchs) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "{\"abi_version\": " << kBundleAbiVersion
     << ", \"generator\": \"normc 0.1.0\"";
  if (!gpuArchs.empty()) {
    os << ", \"gpu_archs\": [";
    llvm::interleaveComma(
        gpuArchs, os, [&](const std::string &arch) { os << jsonString(arch); });
    os << "]";
  }
  os << ", \"kernels\": [";
  llvm::interleaveComma(kernels, os, [&](const KernelABI &k) {
    os << "\n  {\"name\": " << jsonString(k.name)
       << ", \"kind\": " << jsonString(k.kind)
       << ", \"op\": " << jsonString(k.op) << ", \"attrs\": " << k.attrsJson
       << ", \"entry\": " << jsonString(k.packedSymbol())
       << ", \"work\": " << jsonString(k.workSymbol());
    if (k.hasWorkspace)
      os << ", \"workspace\": " << jsonString(k.workspaceSymbol());
    if (k.hasFinalize)
      os << ", \"finalize\": " << jsonString(k.finalizeSymbol());
    if (k.hasPrepass)
      os << ", \"prepass\": {\"entry\": " << jsonString(k.prepassSymbol())
         << ", \"work\": " << jsonString(k.prepassWorkSymbol()) << "}";
    if (!gpuArchs.empty() && !k.gpuFunctions.empty()) {
      os << ", \"gpu\": {\"plan\": " << jsonString(k.gpuPlanSymbol())
         << ", \"functions\": [";
      llvm::interleaveComma(k.gpuFunctions, os, [&](const std::string &name) {
        os << jsonString(name);
      });
      os << "]}";
    }
    os << ", \"dims\": [";
    for (unsigned d = 0; d < k.numDims; ++d)
      os << (d ? ", " : "") << "\"d" << d << "\"";
    os << "], \"args\": [";
    llvm::interleaveComma(k.args, os, [&](const KernelArg &arg) {
      os << "\n    {\"name\": " << jsonString(arg.name) << ", \"io\": \""
         << (arg.isOutput ? "out" : "in") << "\", \"dtype\": \"" << arg.dtype
         << "\", \"shape\": [";
      llvm::interleaveComma(arg.shape, os, [&](int64_t size) {
        if (size >= 0)
          os << size;
        else
          os << "\"d" << (-size - 1) << "\"";
      });
      os << "]";
      if (!arg.inplace.empty())
        os << ", \"inplace\": " << jsonString(arg.inplace);
      os << "}";
    });
    os << "]}";
  });
  os << "]}\n";
  return text;
}

static StringRef cType(StringRef dtype) {
  if (dtype == "f32")
    return "float";
  if (dtype == "f64")
    return "double";
  if (dtype == "f16")
    return "normc_f16";
  return "normc_bf16";
}

static std::string formatShape(ArrayRef<int64_t> shape) {
  std::string text = "[";
  for (auto [i, size] : llvm::enumerate(shape)) {
    if (i)
      text += ", ";
    text += size >= 0 ? std::to_string(size) : "d" + std::to_string(-size - 1);
  }
  return text + "]";
}

std::string norm::writeHeader(ArrayRef<KernelABI> kernels, StringRef guard,
                              StringRef source) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "/* Generated by normc 0.1.0 from " << source
     << ". Do not edit.\n"
        " * ABI: docs/abi.md. Tensors are dense row-major arrays; f16/bf16\n"
        " * values are passed as their 16-bit patterns. Every function "
        "returns\n"
        " * NORMC_OK, NORMC_ERR_NULL_POINTER (a null pointer for a non-empty\n"
        " * tensor) or NORMC_ERR_BAD_SHAPE (a negative size, an empty\n"
        " * reduction, or channels not divisible by the groups). */\n"
     << "#ifndef " << guard << "\n#define " << guard << "\n\n"
     << "#include <stdint.h>\n\n"
     << "#ifndef NORMC_KERNEL_TYPES\n#define NORMC_KERNEL_TYPES\n"
     << "typedef uint16_t normc_f16;  /* IEEE binary16 bits */\n"
     << "typedef uint16_t normc_bf16; /* bfloat16 bits */\n"
     << "enum { NORMC_OK = " << kKernelOk
     << ", NORMC_ERR_NULL_POINTER = " << kKernelNullPointer
     << ", NORMC_ERR_BAD_SHAPE = " << kKernelBadShape
     << ", NORMC_ERR_OUT_OF_MEMORY = " << kKernelOutOfMemory
     << " };\n#endif\n\n"
     << "#ifdef __cplusplus\nextern \"C\" {\n#endif\n";
  for (const KernelABI &k : kernels) {
    os << "\n/* " << k.name << ": " << k.op << " (" << k.kind << ")\n";
    for (const KernelArg &arg : k.args) {
      os << " *   " << llvm::left_justify(arg.name, 14)
         << (arg.isOutput ? "out " : "in  ") << llvm::left_justify(arg.dtype, 5)
         << formatShape(arg.shape);
      if (!arg.inplace.empty())
        os << "  (may be the same buffer as " << arg.inplace << ")";
      os << "\n";
    }
    os << " * Single-threaded; for parallel callers, " << k.packedSymbol()
       << "\n * runs work items [begin, end) of " << k.workSymbol()
       << "(dims).";
    if (k.hasWorkspace)
      os << "\n * It takes a scratch buffer of " << k.workspaceSymbol()
         << "(dims) bytes\n * as args[" << k.args.size() << "].";
    if (k.hasPrepass)
      os << "\n * Before any work item, every item [0, "
         << k.prepassWorkSymbol() << "(dims))\n * of " << k.prepassSymbol()
         << " must have run (there may be none).";
    if (k.hasFinalize)
      os << "\n * " << k.finalizeSymbol()
         << " runs once after every work item.";
    if (k.hasWorkspace)
      os << "\n * The direct entry allocates the buffer itself (malloc).";
    os << " */\n";
    std::string params;
    llvm::raw_string_ostream ps(params);
    for (const KernelArg &arg : k.args)
      ps << (arg.isOutput ? "" : "const ") << cType(arg.dtype) << " *"
         << arg.name << ", ";
    for (unsigned d = 0; d < k.numDims; ++d)
      ps << "int64_t d" << d << ", ";
    params.resize(params.size() - 2);
    os << "int32_t " << k.name << "(" << params << ");\n";
    os << "int32_t " << k.packedSymbol()
       << "(void *const *args, const int64_t *dims, int64_t begin, "
          "int64_t end);\n";
    os << "int64_t " << k.workSymbol() << "(const int64_t *dims);\n";
    if (k.hasWorkspace)
      os << "int64_t " << k.workspaceSymbol() << "(const int64_t *dims);\n";
    if (k.hasPrepass) {
      os << "int32_t " << k.prepassSymbol()
         << "(void *const *args, const int64_t *dims, int64_t begin, "
            "int64_t end);\n";
      os << "int64_t " << k.prepassWorkSymbol() << "(const int64_t *dims);\n";
    }
    if (k.hasFinalize)
      os << "int32_t " << k.finalizeSymbol()
         << "(void *const *args, const int64_t *dims);\n";
  }
  os << "\n#ifdef __cplusplus\n}\n#endif\n\n#endif /* " << guard << " */\n";
  return text;
}
