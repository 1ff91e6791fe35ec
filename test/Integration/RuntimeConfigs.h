//===- RuntimeConfigs.h - kernels of the runtime integration tests --------===//
//
// The kernels that runtime_forward_test and runtime_backward_test compile
// and run through libnormc_runtime: every named norm on [rows, cols] or on
// 4-D channel layouts ([N, C, H, W] or [N, H, W, C]) with a static C, so
// that the manifests mix static and dynamic dims. How their specs are
// written, their float64 reference descriptions and argument shapes, and
// the test's view of one kernel argument.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_TEST_INTEGRATION_RUNTIMECONFIGS_H
#define NORMC_TEST_INTEGRATION_RUNTIMECONFIGS_H

#include "TestConfigs.h"

#include "normc/runtime.h"

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace normc::test {

/// Which gradients a backward spec asks for (`norm.backward = [...]`).
enum class Grads { All, DxOnly, ParamsOnly };

struct RuntimeConfig {
  Op op;
  DType dtype;
  bool channelsLast; // channel ops: NHWC instead of NCHW
  bool affine;
  Grads grads = Grads::All;

  bool isChannelOp() const { return op != Op::LayerNorm && op != Op::RMSNorm; }
  int64_t channelDim() const { return channelsLast ? 3 : 1; }
  bool hasBeta() const { return affine && op != Op::RMSNorm; }
  bool center() const { return op != Op::RMSNorm; }
  bool wantDx() const { return grads != Grads::ParamsOnly; }
  bool wantDgamma() const { return affine && grads != Grads::DxOnly; }
  bool wantDbeta() const { return hasBeta() && grads != Grads::DxOnly; }
  /// The forward kernel (and spec function); unique per configuration.
  std::string name() const;
  /// The backward kernel derived from the spec function.
  std::string backwardName() const { return name() + "_backward"; }
  /// x of a channel op with `nhw` = {N, H, W}, in this layout.
  std::vector<int64_t> channelShape(const std::vector<int64_t> &nhw) const;
};

/// gtest prints parameters in test names and failures: the name, not the
/// struct's bytes (which include padding).
void PrintTo(const RuntimeConfig &c, std::ostream *os);

/// Every named norm (BatchNorm in training and inference) x {f32, f16,
/// bf16} x layout (NCHW, NHWC for the channel ops), with weight and bias.
std::vector<RuntimeConfig> affineRuntimeConfigs();

/// The spec function of `c`; with `backward`, marked for backward
/// derivation of the gradients `c.grads` names.
std::string specFor(const RuntimeConfig &c, bool backward);
/// The spec of every configuration in `configs`.
std::string specFor(const std::vector<RuntimeConfig> &configs, bool backward);

/// The reference description of `c` for an input of `shape`.
ref::NormDesc descFor(const RuntimeConfig &c,
                      const std::vector<int64_t> &shape);

/// Shapes of gamma/beta and of the statistics for x of `shape`, written
/// out per op (the reference refuses zero-size shapes).
void argShapes(const RuntimeConfig &c, const std::vector<int64_t> &shape,
               std::vector<int64_t> &affine, std::vector<int64_t> &stats);

normc_dtype runtimeDType(DType d);

/// One kernel argument as the test knows it (independently of the manifest).
struct Arg {
  std::string name;
  bool output;
  DType dtype;
  std::vector<int64_t> shape;
  /// Inputs: the values passed. Outputs: the float64 reference values.
  std::vector<double> values;
};

/// Buffers and descriptors of one normc_run call. Outputs are pre-filled
/// with a fill byte and every buffer is followed by guard bytes of it.
struct Call {
  std::vector<std::vector<uint8_t>> buffers;
  std::vector<normc_tensor> tensors;

  /// `nullEmpty`: zero-element tensors get a NULL data pointer (allowed).
  explicit Call(const std::vector<Arg> &args, bool nullEmpty = false);
  Call(const Call &) = delete;

  normc_status run(normc_context *ctx, const normc_kernel *k) {
    return normc_run(ctx, k, tensors.data(), tensors.size());
  }
  static size_t bytes(const Arg &arg);
  /// The bytes of argument i (without its guard).
  std::vector<uint8_t> outputBytes(const std::vector<Arg> &args,
                                   size_t i) const;
  /// No byte past any argument was written.
  bool guardsIntact(const std::vector<Arg> &args) const;
  /// No byte of any output was written.
  bool outputsUntouched(const std::vector<Arg> &args) const;
};

} // namespace normc::test

#endif // NORMC_TEST_INTEGRATION_RUNTIMECONFIGS_H
