//===- Manifest.cpp - Bundle manifest schema ------------------------------===//
//
// Required fields missing or of the wrong type are errors; unknown fields are
// ignored so that newer compilers can add information without breaking older
// runtimes of the same ABI version.
//
//===----------------------------------------------------------------------===//

#include "Manifest.h"

#include "Error.h"
#include "Json.h"

#include <cstring>
#include <limits>

namespace normc {
namespace {

using json::Kind;
using json::Value;

template <typename E> struct EnumName {
  const char *name;
  E value;
};

const EnumName<normc_io> kIoNames[] = {
    {"in", NORMC_IO_IN}, {"out", NORMC_IO_OUT}, {"inout", NORMC_IO_INOUT}};
const EnumName<normc_dtype> kDtypeNames[] = {{"f32", NORMC_DTYPE_F32},
                                             {"f16", NORMC_DTYPE_F16},
                                             {"bf16", NORMC_DTYPE_BF16},
                                             {"f64", NORMC_DTYPE_F64}};
const EnumName<normc_kernel_kind> kKindNames[] = {
    {"forward", NORMC_KIND_FORWARD}, {"backward", NORMC_KIND_BACKWARD}};
const EnumName<normc_op> kOpNames[] = {
    {"layer_norm", NORMC_OP_LAYER_NORM},
    {"rms_norm", NORMC_OP_RMS_NORM},
    {"batch_norm", NORMC_OP_BATCH_NORM},
    {"instance_norm", NORMC_OP_INSTANCE_NORM},
    {"group_norm", NORMC_OP_GROUP_NORM},
    {"normalize", NORMC_OP_NORMALIZE}};

class ManifestParser {
public:
  ManifestParser(std::string_view text, std::string &error)
      : text(text), error(error) {}

  bool parse(Manifest &out) {
    json::Value root;
    json::ParseError parseError;
    if (!json::parse(text, root, parseError))
      return fail(format("invalid JSON at byte %zu: %s", parseError.offset,
                         parseError.message.c_str()));
    if (!expectKind(root, Kind::Object, "manifest"))
      return false;

    const Value *abi = require(root, "abi_version", "manifest");
    if (!abi || !expectKind(*abi, Kind::Number, "abi_version"))
      return false;
    if (!abi->isInteger || abi->integer < 0 ||
        abi->integer > std::numeric_limits<uint32_t>::max())
      return failAt(*abi,
                    "abi_version: expected a non-negative 32-bit integer");
    out.abiVersion = static_cast<uint32_t>(abi->integer);

    if (const Value *generator = root.find("generator")) {
      if (!expectKind(*generator, Kind::String, "generator"))
        return false;
      out.generator = generator->string;
    }

    // Before the kernels, whose "gpu" objects need it, wherever it appears.
    if (const Value *archs = root.find("gpu_archs"))
      if (!parseGpuArchs(*archs, out.gpuArchs))
        return false;

    const Value *kernels = require(root, "kernels", "manifest");
    if (!kernels || !expectKind(*kernels, Kind::Array, "kernels"))
      return false;
    out.kernels.resize(kernels->items.size());
    for (size_t i = 0; i < kernels->items.size(); ++i) {
      std::string path = format("kernels[%zu]", i);
      if (!parseKernel(kernels->items[i], path, out, out.kernels[i]))
        return false;
      for (size_t j = 0; j < i; ++j)
        if (out.kernels[j].name == out.kernels[i].name)
          return failAt(*kernels->items[i].find("name"),
                        format("%s: duplicate kernel name '%s' (also "
                               "kernels[%zu])",
                               path.c_str(), out.kernels[i].name.c_str(), j));
    }
    return true;
  }

private:
  std::string_view text;
  std::string &error;

  bool fail(std::string message) {
    error = std::move(message);
    return false;
  }

  bool failAt(const Value &value, const std::string &message) {
    return fail(format("%s at byte %zu", message.c_str(), value.begin));
  }

  bool expectKind(const Value &value, Kind kind, const std::string &path) {
    if (value.kind == kind)
      return true;
    return failAt(value,
                  format("%s: expected %s, got %s", path.c_str(),
                         json::kindName(kind), json::kindName(value.kind)));
  }

  const Value *require(const Value &object, const char *key,
                       const std::string &path) {
    if (const Value *value = object.find(key))
      return value;
    failAt(object, format("%s: missing required field '%s' in the object",
                          path.c_str(), key));
    return nullptr;
  }

  bool requireString(const Value &object, const char *key,
                     const std::string &path, std::string &out,
                     const Value **where = nullptr) {
    const Value *value = require(object, key, path);
    std::string fieldPath = path + "." + key;
    if (!value || !expectKind(*value, Kind::String, fieldPath))
      return false;
    if (value->string.empty())
      return failAt(*value, fieldPath + ": must not be empty");
    out = value->string;
    if (where)
      *where = value;
    return true;
  }

  template <typename E, size_t N>
  bool requireEnum(const Value &object, const char *key,
                   const std::string &path, const EnumName<E> (&names)[N],
                   E &out) {
    const Value *value = require(object, key, path);
    std::string fieldPath = path + "." + key;
    if (!value || !expectKind(*value, Kind::String, fieldPath))
      return false;
    std::string expected;
    for (size_t i = 0; i < N; ++i) {
      if (value->string == names[i].name) {
        out = names[i].value;
        return true;
      }
      expected += (i == 0 ? "" : i + 1 == N ? " or " : ", ");
      expected += names[i].name;
    }
    return failAt(*value, format("%s: unknown value '%s' (expected %s)",
                                 fieldPath.c_str(), value->string.c_str(),
                                 expected.c_str()));
  }

  bool parseGpuArchs(const Value &archs, std::vector<std::string> &out) {
    if (!expectKind(archs, Kind::Array, "gpu_archs"))
      return false;
    for (size_t i = 0; i < archs.items.size(); ++i) {
      const Value &arch = archs.items[i];
      std::string archPath = format("gpu_archs[%zu]", i);
      if (!expectKind(arch, Kind::String, archPath))
        return false;
      if (smArchNumber(arch.string) < 0)
        return failAt(arch, format("%s: '%s' is not a GPU arch name of the "
                                   "form sm_<major><minor> (e.g. sm_80)",
                                   archPath.c_str(), arch.string.c_str()));
      for (size_t j = 0; j < out.size(); ++j)
        if (out[j] == arch.string)
          return failAt(arch, format("%s: duplicate arch '%s' (also "
                                     "gpu_archs[%zu])",
                                     archPath.c_str(), arch.string.c_str(), j));
      out.push_back(arch.string);
    }
    return true;
  }

  bool parseGpu(const Value &value, const std::string &path,
                const Manifest &manifest, GpuSpec &out) {
    if (!expectKind(value, Kind::Object, path))
      return false;
    // PTX is per bundle; a kernel's GPU functions live in the PTX of every
    // arch the manifest lists, so a kernel with GPU code needs some arch.
    if (manifest.gpuArchs.empty())
      return failAt(value, path + ": the kernel has GPU code but the "
                                  "manifest's 'gpu_archs' is absent or empty");
    if (!requireString(value, "plan", path, out.plan))
      return false;
    const Value *functions = require(value, "functions", path);
    std::string functionsPath = path + ".functions";
    if (!functions || !expectKind(*functions, Kind::Array, functionsPath))
      return false;
    if (functions->items.empty())
      return failAt(*functions, functionsPath + ": must not be empty");
    for (size_t i = 0; i < functions->items.size(); ++i) {
      const Value &function = functions->items[i];
      std::string functionPath = format("%s[%zu]", functionsPath.c_str(), i);
      if (!expectKind(function, Kind::String, functionPath))
        return false;
      if (function.string.empty())
        return failAt(function, functionPath + ": must not be empty");
      out.functions.push_back(function.string);
    }
    return true;
  }

  bool parseKernel(const Value &value, const std::string &path,
                   const Manifest &manifest, KernelSpec &out) {
    if (!expectKind(value, Kind::Object, path))
      return false;
    if (!requireString(value, "name", path, out.name) ||
        !requireEnum(value, "kind", path, kKindNames, out.kind) ||
        !requireEnum(value, "op", path, kOpNames, out.op) ||
        !requireString(value, "entry", path, out.entry) ||
        !requireString(value, "work", path, out.work))
      return false;
    // The finalize step and the prepass both use the workspace, and a
    // workspace is only there for one of them.
    bool hasWorkspace = value.find("workspace") != nullptr;
    bool hasFinalize = value.find("finalize") != nullptr;
    const Value *prepass = value.find("prepass");
    if (hasFinalize && !hasWorkspace)
      return failAt(value, path + ": 'finalize' requires 'workspace'");
    if (prepass && !hasWorkspace)
      return failAt(value, path + ": 'prepass' requires 'workspace'");
    if (hasWorkspace && !hasFinalize && !prepass)
      return failAt(value,
                    path + ": 'workspace' requires 'finalize' or 'prepass'");
    if (hasWorkspace && !requireString(value, "workspace", path, out.workspace))
      return false;
    if (hasFinalize && !requireString(value, "finalize", path, out.finalize))
      return false;
    if (prepass) {
      std::string prepassPath = path + ".prepass";
      if (!expectKind(*prepass, Kind::Object, prepassPath) ||
          !requireString(*prepass, "entry", prepassPath, out.prepassEntry) ||
          !requireString(*prepass, "work", prepassPath, out.prepassWork))
        return false;
    }
    if (const Value *gpu = value.find("gpu")) {
      out.hasGpu = true;
      if (!parseGpu(*gpu, path + ".gpu", manifest, out.gpu))
        return false;
    }

    out.attrsJson = "{}";
    if (const Value *attrs = value.find("attrs")) {
      if (!expectKind(*attrs, Kind::Object, path + ".attrs"))
        return false;
      out.attrsJson =
          std::string(text.substr(attrs->begin, attrs->end - attrs->begin));
    }

    const Value *dims = require(value, "dims", path);
    if (!dims || !expectKind(*dims, Kind::Array, path + ".dims"))
      return false;
    for (size_t i = 0; i < dims->items.size(); ++i) {
      const Value &dim = dims->items[i];
      std::string dimPath = format("%s.dims[%zu]", path.c_str(), i);
      if (!expectKind(dim, Kind::String, dimPath))
        return false;
      if (dim.string.empty())
        return failAt(dim, dimPath + ": must not be empty");
      for (const std::string &previous : out.dims)
        if (previous == dim.string)
          return failAt(dim, format("%s: duplicate dim symbol '%s'",
                                    dimPath.c_str(), dim.string.c_str()));
      out.dims.push_back(dim.string);
    }

    const Value *args = require(value, "args", path);
    if (!args || !expectKind(*args, Kind::Array, path + ".args"))
      return false;
    out.args.resize(args->items.size());
    for (size_t i = 0; i < args->items.size(); ++i) {
      std::string argPath = format("%s.args[%zu]", path.c_str(), i);
      if (!parseArg(args->items[i], argPath, out, out.args[i]))
        return false;
      for (size_t j = 0; j < i; ++j)
        if (out.args[j].name == out.args[i].name)
          return failAt(*args->items[i].find("name"),
                        format("%s: duplicate arg name '%s'", argPath.c_str(),
                               out.args[i].name.c_str()));
    }

    // Resolve in-place references once all names are known.
    for (size_t i = 0; i < args->items.size(); ++i)
      if (!resolveInplace(args->items[i],
                          format("%s.args[%zu]", path.c_str(), i), out,
                          out.args[i]))
        return false;

    // Every symbol must be bound by some argument, otherwise the runtime
    // could not compute the dims array passed to the kernel.
    for (size_t d = 0; d < out.dims.size(); ++d) {
      bool used = false;
      for (const ArgSpec &arg : out.args)
        for (const normc_dim &dim : arg.shape)
          used |= dim.symbol == static_cast<int32_t>(d);
      if (!used)
        return failAt(dims->items[d],
                      format("%s.dims[%zu]: dim symbol '%s' is not used by "
                             "any arg shape",
                             path.c_str(), d, out.dims[d].c_str()));
    }
    return true;
  }

  bool parseArg(const Value &value, const std::string &path,
                const KernelSpec &kernel, ArgSpec &out) {
    if (!expectKind(value, Kind::Object, path))
      return false;
    if (!requireString(value, "name", path, out.name) ||
        !requireEnum(value, "io", path, kIoNames, out.io) ||
        !requireEnum(value, "dtype", path, kDtypeNames, out.dtype))
      return false;
    const Value *shape = require(value, "shape", path);
    if (!shape || !expectKind(*shape, Kind::Array, path + ".shape"))
      return false;
    for (size_t i = 0; i < shape->items.size(); ++i) {
      const Value &entry = shape->items[i];
      std::string entryPath = format("%s.shape[%zu]", path.c_str(), i);
      normc_dim dim;
      if (entry.kind == Kind::Number) {
        if (!entry.isInteger || entry.integer < 0)
          return failAt(entry, entryPath + ": expected a non-negative integer "
                                           "or a dim symbol");
        dim.size = entry.integer;
        dim.symbol = -1;
      } else if (entry.kind == Kind::String) {
        dim.size = -1;
        dim.symbol = -1;
        for (size_t d = 0; d < kernel.dims.size(); ++d)
          if (kernel.dims[d] == entry.string)
            dim.symbol = static_cast<int32_t>(d);
        if (dim.symbol < 0)
          return failAt(entry, format("%s: '%s' is not one of the kernel's "
                                      "dims",
                                      entryPath.c_str(), entry.string.c_str()));
      } else {
        return failAt(entry,
                      format("%s: expected integer or string, got %s",
                             entryPath.c_str(), json::kindName(entry.kind)));
      }
      out.shape.push_back(dim);
    }
    return true;
  }

  bool resolveInplace(const Value &value, const std::string &path,
                      const KernelSpec &kernel, ArgSpec &arg) {
    const Value *inplace = value.find("inplace");
    if (!inplace)
      return true;
    std::string fieldPath = path + ".inplace";
    if (!expectKind(*inplace, Kind::String, fieldPath))
      return false;
    if (arg.io == NORMC_IO_IN)
      return failAt(*inplace, fieldPath + ": only outputs may be in-place");
    for (size_t i = 0; i < kernel.args.size(); ++i) {
      const ArgSpec &target = kernel.args[i];
      if (target.name != inplace->string)
        continue;
      if (target.io != NORMC_IO_IN)
        return failAt(*inplace, format("%s: '%s' is not an input",
                                       fieldPath.c_str(), target.name.c_str()));
      // An exact alias needs identical layouts, otherwise the kernel would
      // read and write overlapping but differently shaped memory.
      bool sameShape = target.shape.size() == arg.shape.size();
      for (size_t d = 0; sameShape && d < arg.shape.size(); ++d)
        sameShape = target.shape[d].size == arg.shape[d].size &&
                    target.shape[d].symbol == arg.shape[d].symbol;
      if (target.dtype != arg.dtype || !sameShape)
        return failAt(*inplace,
                      format("%s: '%s' must have the same dtype and shape as "
                             "'%s' to be aliased",
                             fieldPath.c_str(), target.name.c_str(),
                             arg.name.c_str()));
      arg.inplace = static_cast<int32_t>(i);
      return true;
    }
    return failAt(*inplace, format("%s: no arg named '%s'", fieldPath.c_str(),
                                   inplace->string.c_str()));
  }
};

} // namespace

int smArchNumber(std::string_view arch) {
  // Two digits up to Hopper, three from Blackwell on (sm_100, sm_120). Arch
  // variants such as sm_90a are not accepted: their PTX only runs on exactly
  // that arch, which the "highest arch <= device" selection cannot express.
  constexpr std::string_view prefix = "sm_";
  if (arch.size() < prefix.size() + 2 || arch.size() > prefix.size() + 3 ||
      arch.substr(0, prefix.size()) != prefix || arch[prefix.size()] == '0')
    return -1;
  int number = 0;
  for (char c : arch.substr(prefix.size())) {
    if (c < '0' || c > '9')
      return -1;
    number = number * 10 + (c - '0');
  }
  return number;
}

bool parseManifest(std::string_view text, Manifest &out, std::string &error) {
  out = Manifest();
  return ManifestParser(text, error).parse(out);
}

} // namespace normc
