//===- TestConfigs.h - the norm configurations of the integration tests ---===//
//
// One description of every kernel the integration tests compile (op,
// dtype, affine, eps placement, layout), how its spec is written (dynamic
// shapes, or a static innermost dim, independently of normc's quick form),
// its float64 reference description and the sizes it runs on.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_TEST_INTEGRATION_TESTCONFIGS_H
#define NORMC_TEST_INTEGRATION_TESTCONFIGS_H

#include "DTypes.h"
#include "NormReference.h"
#include "Tolerance.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace normc::test {

using ref::DType;

enum class Op {
  LayerNorm,
  RMSNorm,
  BatchNormTrain,
  BatchNormInfer,
  InstanceNorm,
  GroupNorm
};

/// The op's part of kernel names: "layer_norm", "bn_train", ...
const char *opTag(Op op);

struct Config {
  Op op;
  DType dtype;
  bool affine;
  bool epsOutside;
  bool channelsLast; // channel ops: [N, S, C] instead of [N, C, S]
  /// Nonzero: the innermost dim of x (the channels of a channels-last op,
  /// the row of LayerNorm/RMSNorm) is static with this size. The code
  /// generator picks some loop structures from static sizes only.
  int64_t staticInner = 0;

  bool isChannelOp() const { return op != Op::LayerNorm && op != Op::RMSNorm; }
  bool hasBias() const { return affine && op != Op::RMSNorm; }
  int64_t channels() const;
  std::string name() const;
};

constexpr int64_t kGroups = 4;
constexpr int64_t kChannels = 8;
constexpr double kEps = 1e-5;
constexpr double kMomentum = 0.1;

/// The tensor types of one norm call: x (and y), gamma/beta, statistics.
struct NormCallTypes {
  std::string x, vec, stat;
};

/// Spec text of a function `name` that calls one named norm op (with
/// gamma/beta if `affine`, running statistics for BatchNorm) and returns
/// all its results. `opAttrs`: the entries of the op's attribute
/// dictionary; `funcAttrs`: those of the function's (none if empty).
std::string normFunctionText(const std::string &name, Op op, bool affine,
                             const NormCallTypes &types,
                             const std::vector<std::string> &opAttrs,
                             const std::string &funcAttrs);
/// The op's attributes: eps = 1e-5 (outside the root if `epsOutside`),
/// `channel_dim` unless negative, num_groups = kGroups for GroupNorm,
/// `training` for BatchNorm training.
std::vector<std::string> normOpAttrs(Op op, bool epsOutside,
                                     int64_t channelDim);

/// The spec function of `c` (named c.name()); with `backward`, it asks for
/// its backward kernel too (`<name>_backward`).
std::string specFor(const Config &c, bool backward = false);
/// The reference description of `c` for an input of `shape`.
ref::NormDesc descFor(const Config &c, const std::vector<int64_t> &shape);
/// Every configuration: each op x {f32, f16, bf16} x affine x eps placement
/// x layout, plus f64 ones and some with a static innermost dim.
std::vector<Config> allConfigs();
/// The test plan's sizes: rows of {1, 3, 17, 1151, 4096, 65537} x batch
/// {1, 7, 64}; channel ops as [N, C, S] or [N, S, C] below 4M elements,
/// C = 8 unless static (plus NCHW BatchNorm on 3 channels, and NHWC
/// BatchNorm on 64K positions or more of static channels beyond one
/// vector, whose batches are split); rows of [8, 262147] and [1, 1048593]
/// (split into chunks);
/// static rows in batches of 1 to 4096.
std::vector<std::vector<int64_t>> shapesFor(const Config &c);
/// `shape` with its innermost dim set to c.staticInner, if any.
std::vector<int64_t> withStaticInner(const Config &c,
                                     std::vector<int64_t> shape);
/// The kernel's dims argument for x of `shape`: its dynamic sizes.
std::vector<int64_t> dynamicDims(const Config &c,
                                 const std::vector<int64_t> &shape);
std::string shapeText(const std::vector<int64_t> &shape);

/// Worst error seen per output kind, printed at the end for the record:
/// the largest |actual - expected| and the largest fraction of the allowed
/// error (|actual - expected| / (atol + rtol * |expected|)) used.
struct WorstErrors {
  std::map<std::string, std::pair<double, double>> byKind;
  void add(const std::string &what, DType dtype,
           const ref::CompareReport &report);
  void print(const char *title) const;
};

} // namespace normc::test

#endif // NORMC_TEST_INTEGRATION_TESTCONFIGS_H
