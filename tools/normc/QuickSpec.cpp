//===- QuickSpec.cpp - a spec from command-line flags ---------------------===//
//
// The quick form writes the same text a user would write in a spec file, so
// `--emit=mlir` shows exactly what gets compiled and the verifier checks it
// like any other spec.
//
//===----------------------------------------------------------------------===//

#include "QuickSpec.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/raw_ostream.h"
#include <cstdio>

using namespace normc;

namespace {

using Shape = llvm::SmallVector<std::string>;

std::string tensor(const Shape &shape, llvm::StringRef element) {
  std::string text = "tensor<";
  for (const std::string &size : shape)
    text += size + "x";
  return text + element.str() + ">";
}

/// Full precision, always with an exponent so MLIR parses it as a float.
std::string formatDouble(double value) {
  char buffer[64];
  snprintf(buffer, sizeof(buffer), "%.17e", value);
  return buffer;
}

bool parseShape(llvm::StringRef text, Shape &shape, std::string &error) {
  if (text.empty()) {
    error = "--shape is required with --op (e.g. --shape=?x4096)";
    return false;
  }
  llvm::SmallVector<llvm::StringRef> parts;
  text.split(parts, 'x');
  for (llvm::StringRef part : parts) {
    int64_t size;
    if (part == "?" || (!part.getAsInteger(10, size) && size >= 0)) {
      shape.push_back(part.str());
      continue;
    }
    error = "invalid --shape '" + text.str() +
            "': expected sizes or '?' separated by 'x', e.g. ?x4096";
    return false;
  }
  return true;
}

} // namespace

bool normc::buildQuickSpec(const QuickSpecOptions &options, std::string &spec,
                           std::string &error) {
  static const char *ops[] = {"layer_norm", "rms_norm", "batch_norm",
                              "instance_norm", "group_norm"};
  if (!llvm::is_contained(ops, options.op)) {
    error = "unknown --op '" + options.op +
            "' (expected layer_norm, rms_norm, batch_norm, instance_norm or "
            "group_norm)";
    return false;
  }
  static const char *dtypes[] = {"f32", "f16", "bf16", "f64"};
  if (!llvm::is_contained(dtypes, options.dtype)) {
    error = "unknown --dtype '" + options.dtype +
            "' (expected f32, f16, bf16 or f64)";
    return false;
  }
  if (options.layout != "nchw" && options.layout != "nhwc") {
    error = "unknown --layout '" + options.layout + "' (expected nchw or nhwc)";
    return false;
  }
  Shape x;
  if (!parseShape(options.shape, x, error))
    return false;
  int64_t rank = x.size();
  const std::string &op = options.op;
  bool channelOp =
      op == "batch_norm" || op == "instance_norm" || op == "group_norm";
  int64_t minRank = op == "instance_norm" ? 3 : channelOp ? 2 : 1;
  if (rank < minRank) {
    error = "--shape for " + op + " needs at least " + std::to_string(minRank) +
            " dims";
    return false;
  }
  if (op == "group_norm" && options.groups <= 0) {
    error = "group_norm needs --groups=G (a positive number of groups)";
    return false;
  }
  if (op != "group_norm" && options.groups != 0) {
    error = "--groups only applies to group_norm";
    return false;
  }
  if (options.training && op != "batch_norm") {
    error = "--training only applies to batch_norm";
    return false;
  }
  int64_t channel = options.layout == "nhwc" ? rank - 1 : 1;
  std::string element = options.dtype;
  std::string stats = options.dtype == "f64" ? "f64" : "f32";
  bool affine = !options.noAffine;

  // Operand and result shapes, by the named op's rules.
  Shape gamma, statShape;
  if (op == "layer_norm" || op == "rms_norm") {
    int64_t n = options.normalizedNdim;
    if (n < 1 || n > rank) {
      error = "--normalized-ndim must be in [1, " + std::to_string(rank) + "]";
      return false;
    }
    gamma.assign(x.end() - n, x.end());
    statShape.assign(x.begin(), x.end() - n);
  } else {
    gamma = {x[channel]};
    if (op == "batch_norm")
      statShape = {x[channel]};
    else if (op == "instance_norm")
      statShape = {x[0], x[channel]};
    else
      statShape = {x[0], std::to_string(options.groups)};
  }

  struct Value {
    std::string name, type;
  };
  llvm::SmallVector<Value> args = {{"x", tensor(x, element)}};
  if (affine) {
    args.push_back({"weight", tensor(gamma, element)});
    if (op != "rms_norm")
      args.push_back({"bias", tensor(gamma, element)});
  }
  bool running = op == "batch_norm";
  if (running) {
    args.push_back({"running_mean", tensor(statShape, stats)});
    args.push_back({"running_var", tensor(statShape, stats)});
  }
  llvm::SmallVector<Value> results = {{"y", tensor(x, element)}};
  bool computed = op != "batch_norm" || options.training;
  if (computed && op != "rms_norm")
    results.push_back({"mean", tensor(statShape, stats)});
  if (computed)
    results.push_back({"rstd", tensor(statShape, stats)});
  if (running && options.training) {
    results.push_back({"running_mean_out", tensor(statShape, stats)});
    results.push_back({"running_var_out", tensor(statShape, stats)});
  }

  llvm::SmallVector<std::string> attrs;
  if (options.eps)
    attrs.push_back("eps = " + formatDouble(*options.eps) + " : f64");
  if (options.epsOutside)
    attrs.push_back("eps_outside");
  if ((op == "layer_norm" || op == "rms_norm") && options.normalizedNdim != 1)
    attrs.push_back("normalized_ndim = " +
                    std::to_string(options.normalizedNdim) + " : i64");
  if (channelOp && channel != 1)
    attrs.push_back("channel_dim = " + std::to_string(channel) + " : i64");
  if (op == "group_norm")
    attrs.push_back("num_groups = " + std::to_string(options.groups) +
                    " : i64");
  if (options.training) {
    attrs.push_back("training");
    if (options.momentum != 0.1)
      attrs.push_back("momentum = " + formatDouble(options.momentum) +
                      " : f64");
  }

  auto join = [](auto &&range, auto fn) {
    std::string text;
    for (auto [i, item] : llvm::enumerate(range))
      text += (i ? ", " : "") + fn(item);
    return text;
  };
  std::string argList =
      join(args, [](const Value &v) { return "%" + v.name + ": " + v.type; });
  std::string argTypes = join(args, [](const Value &v) { return v.type; });
  std::string resultTypes =
      join(results, [](const Value &v) { return v.type; });
  std::string resultNames =
      join(results, [](const Value &v) { return "%" + v.name; });
  std::string operands = "%x";
  if (affine) {
    operands += " weight(%weight)";
    if (op != "rms_norm")
      operands += " bias(%bias)";
  }
  if (running)
    operands += " running(%running_mean, %running_var)";

  llvm::raw_string_ostream os(spec);
  os << "// Generated by normc --op=" << op << " --shape=" << options.shape
     << " --dtype=" << options.dtype << "\n";
  os << "func.func @" << options.name << "(" << argList << ")\n    -> ("
     << resultTypes << ")"
     << (options.backward ? " attributes {norm.backward}" : "") << " {\n";
  os << "  " << resultNames << " = norm." << op << " " << operands;
  if (!attrs.empty())
    os << " {" << llvm::join(attrs, ", ") << "}";
  os << "\n      : (" << argTypes << ") -> (" << resultTypes << ")\n";
  os << "  return " << resultNames << " : " << resultTypes << "\n}\n";
  return true;
}
