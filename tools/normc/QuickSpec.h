//===- QuickSpec.h - a spec from command-line flags -------------*- C++ -*-===//

#ifndef NORMC_TOOLS_QUICKSPEC_H
#define NORMC_TOOLS_QUICKSPEC_H

#include <cstdint>
#include <optional>
#include <string>

namespace normc {

/// What `normc --op=...` asks for.
struct QuickSpecOptions {
  std::string op; // layer_norm, rms_norm, batch_norm, instance_norm, group_norm
  std::string shape;  // e.g. "?x4096" or "8x64x56x56"
  std::string dtype;  // f32, f16, bf16, f64
  std::string name;   // kernel name
  std::string layout; // nchw (channel dim 1) or nhwc (last dim)
  std::optional<double> eps;
  bool epsOutside = false;
  bool noAffine = false;
  bool training = false;
  int64_t groups = 0;
  int64_t normalizedNdim = 1;
  double momentum = 0.1;
  bool backward = false;
};

/// Writes the spec (MLIR text in the norm dialect) for `options`, or returns
/// false with a one-line `error` naming the bad flag.
bool buildQuickSpec(const QuickSpecOptions &options, std::string &spec,
                    std::string &error);

} // namespace normc

#endif // NORMC_TOOLS_QUICKSPEC_H
