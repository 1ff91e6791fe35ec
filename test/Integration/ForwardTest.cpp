//===- ForwardTest.cpp - generated forward kernels vs a float64 reference --===//
//
// Writes one spec with a kernel per (op, layout, dtype, affine, eps
// placement), compiles it with normc into a bundle, and runs every kernel on
// random and adversarial data (large mean, constant, near-max and
// tiny-variance sets) for the sizes of the test plan. Outputs are compared
// with the float64 reference (test/reference) under torch.testing's default
// tolerances for the output's storage type, after rounding the reference to
// that type (the best a kernel can return).
//
//===----------------------------------------------------------------------===//

#include "KernelBundle.h"

#include "DTypes.h"
#include "NormReference.h"
#include "TestData.h"
#include "Tolerance.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

using namespace normc::ref;
using normc::test::KernelBundle;

namespace {

enum class Op { LayerNorm, RMSNorm, BatchNormTrain, BatchNormInfer,
                InstanceNorm, GroupNorm };

struct Config {
  Op op;
  DType dtype;
  bool affine;
  bool epsOutside;
  bool channelsLast; // channel ops: [N, S, C] instead of [N, C, S]

  bool isChannelOp() const {
    return op != Op::LayerNorm && op != Op::RMSNorm;
  }
  std::string name() const {
    static const char *ops[] = {"layer_norm", "rms_norm", "bn_train",
                                "bn_infer", "instance_norm", "group_norm"};
    std::string n = ops[(int)op];
    if (isChannelOp())
      n += channelsLast ? "_nsc" : "_ncs";
    n += std::string("_") + dtypeName(dtype);
    n += affine ? "_affine" : "_plain";
    n += epsOutside ? "_epsout" : "_epsin";
    return n;
  }
};

constexpr int64_t kGroups = 4;
constexpr double kEps = 1e-5;
constexpr double kMomentum = 0.1;

std::string tensorType(int rank, const char *element) {
  std::string t = "tensor<";
  for (int i = 0; i < rank; ++i)
    t += "?x";
  return t + element + ">";
}

/// The spec text of one kernel, written independently of normc's quick form.
std::string specFor(const Config &c) {
  const char *e = dtypeName(c.dtype);
  const char *s = c.dtype == DType::F64 ? "f64" : "f32";
  int rank = c.isChannelOp() ? 3 : 2;
  std::string x = tensorType(rank, e), vec = tensorType(1, e);
  std::string stat;
  if (c.op == Op::LayerNorm || c.op == Op::RMSNorm)
    stat = tensorType(1, s);
  else if (c.op == Op::BatchNormTrain || c.op == Op::BatchNormInfer)
    stat = tensorType(1, s);
  else if (c.op == Op::InstanceNorm)
    stat = tensorType(2, s);
  else
    stat = std::string("tensor<?x") + std::to_string(kGroups) + "x" + s + ">";

  std::vector<std::pair<std::string, std::string>> args = {{"x", x}};
  std::string operands = "%x";
  if (c.affine) {
    args.push_back({"w", vec});
    operands += " weight(%w)";
    if (c.op != Op::RMSNorm) {
      args.push_back({"b", vec});
      operands += " bias(%b)";
    }
  }
  bool running = c.op == Op::BatchNormTrain || c.op == Op::BatchNormInfer;
  if (running) {
    args.push_back({"rm", stat});
    args.push_back({"rv", stat});
    operands += " running(%rm, %rv)";
  }
  std::vector<std::string> results = {x};
  if (c.op != Op::BatchNormInfer) {
    if (c.op != Op::RMSNorm)
      results.push_back(stat);
    results.push_back(stat);
  }
  if (c.op == Op::BatchNormTrain) {
    results.push_back(stat);
    results.push_back(stat);
  }
  std::vector<std::string> attrs = {"eps = 1.0e-05 : f64"};
  if (c.epsOutside)
    attrs.push_back("eps_outside");
  if (c.isChannelOp() && c.channelsLast)
    attrs.push_back("channel_dim = 2 : i64");
  if (c.op == Op::GroupNorm)
    attrs.push_back("num_groups = " + std::to_string(kGroups) + " : i64");
  if (c.op == Op::BatchNormTrain)
    attrs.push_back("training");

  auto join = [](const std::vector<std::string> &v) {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i)
      out += (i ? ", " : "") + v[i];
    return out;
  };
  std::vector<std::string> argDecls, argTypes, resultNames;
  for (auto &[n, t] : args) {
    argDecls.push_back("%" + n + ": " + t);
    argTypes.push_back(t);
  }
  for (size_t i = 0; i < results.size(); ++i)
    resultNames.push_back("%r" + std::to_string(i));
  static const char *named[] = {"layer_norm", "rms_norm", "batch_norm",
                                "batch_norm", "instance_norm", "group_norm"};
  std::string text = "func.func @" + c.name() + "(" + join(argDecls) +
                     ") -> (" + join(results) + ") {\n";
  text += "  " + join(resultNames) + " = norm." + named[(int)c.op] + " " +
          operands + " {" + join(attrs) + "} : (" + join(argTypes) + ") -> (" +
          join(results) + ")\n";
  text += "  return " + join(resultNames) + " : " + join(results) + "\n}\n";
  return text;
}

NormDesc descFor(const Config &c, const std::vector<int64_t> &shape) {
  int64_t channel = c.channelsLast ? 2 : 1;
  NormDesc d;
  switch (c.op) {
  case Op::LayerNorm:
    d = layerNormDesc(shape, 1, c.affine, kEps);
    break;
  case Op::RMSNorm:
    d = rmsNormDesc(shape, 1, c.affine, kEps);
    break;
  case Op::BatchNormTrain:
    d = batchNormDesc(shape, channel, /*training=*/true, c.affine, kEps,
                      /*updateRunning=*/true, kMomentum);
    break;
  case Op::BatchNormInfer:
    d = batchNormDesc(shape, channel, /*training=*/false, c.affine, kEps);
    break;
  case Op::InstanceNorm:
    d = instanceNormDesc(shape, channel, c.affine, kEps);
    break;
  case Op::GroupNorm:
    d = groupNormDesc(shape, channel, kGroups, c.affine, kEps);
    break;
  }
  d.epsOutside = c.epsOutside;
  return d;
}

std::vector<Config> allConfigs() {
  std::vector<Config> configs;
  for (Op op : {Op::LayerNorm, Op::RMSNorm, Op::BatchNormTrain,
                Op::BatchNormInfer, Op::InstanceNorm, Op::GroupNorm})
    for (DType dtype : {DType::F32, DType::F16, DType::BF16})
      for (bool affine : {true, false})
        for (bool epsOutside : {false, true})
          for (bool channelsLast : {false, true}) {
            bool channelOp = op != Op::LayerNorm && op != Op::RMSNorm;
            if (!channelOp && channelsLast)
              continue;
            configs.push_back({op, dtype, affine, epsOutside, channelsLast});
          }
  // f64 storage: statistics and output in f64.
  configs.push_back({Op::LayerNorm, DType::F64, true, false, false});
  configs.push_back({Op::GroupNorm, DType::F64, true, true, true});
  return configs;
}

/// Worst error seen per output dtype, printed at the end for the record:
/// the largest |actual - expected| and the largest fraction of the allowed
/// error (|actual - expected| / (atol + rtol * |expected|)) used.
struct WorstErrors {
  std::map<std::string, std::pair<double, double>> byDtype;
  void add(const std::string &what, DType dtype, const CompareReport &r) {
    auto &[abs, used] = byDtype[what];
    abs = std::max(abs, r.maxAbsError);
    if (r.worstIndex < 0)
      return;
    Tolerance tol = defaultTolerance(dtype);
    double error = std::fabs(r.worstActual - r.worstExpected);
    if (std::isfinite(error))
      used = std::max(used, error / (tol.atol + tol.rtol *
                                                    std::fabs(r.worstExpected)));
  }
};
WorstErrors worst;

KernelBundle *bundle = nullptr;

std::string fullSpec() {
  std::string spec;
  for (const Config &c : allConfigs())
    spec += specFor(c);
  return spec;
}

/// The bundle is compiled at build time from fullSpec() (see CMakeLists).
class ForwardBundle : public ::testing::Environment {
public:
  void SetUp() override { bundle = new KernelBundle(NORMC_FORWARD_TEST_BUNDLE); }
  void TearDown() override {
    std::printf("worst errors against the float64 reference (after rounding "
                "to the output type):\n");
    for (auto &[what, err] : worst.byDtype)
      std::printf("  %-10s max abs error %.3g, %.2f of the tolerance\n",
                  what.c_str(), err.first, err.second);
    delete bundle;
  }
};

class Forward : public ::testing::TestWithParam<Config> {};

std::vector<std::vector<int64_t>> shapesFor(const Config &c) {
  static const int64_t extents[] = {1, 3, 17, 1151, 4096, 65537};
  static const int64_t batches[] = {1, 7, 64};
  constexpr int64_t kChannels = 8;
  std::vector<std::vector<int64_t>> shapes;
  for (int64_t batch : batches)
    for (int64_t extent : extents) {
      if (!c.isChannelOp()) {
        shapes.push_back({batch, extent});
        continue;
      }
      // Keep the channel-op cases under 4M elements.
      if (batch * kChannels * extent > (int64_t(1) << 22))
        continue;
      // Running statistics need two values per channel (as PyTorch).
      if (c.op == Op::BatchNormTrain && batch * extent < 2)
        continue;
      shapes.push_back(c.channelsLast
                           ? std::vector<int64_t>{batch, extent, kChannels}
                           : std::vector<int64_t>{batch, kChannels, extent});
    }
  return shapes;
}

std::string shapeText(const std::vector<int64_t> &shape) {
  std::string t;
  for (size_t i = 0; i < shape.size(); ++i)
    t += (i ? "x" : "") + std::to_string(shape[i]);
  return t;
}

TEST_P(Forward, MatchesFloat64Reference) {
  const Config &c = GetParam();
  ASSERT_TRUE(bundle && bundle->ok()) << (bundle ? bundle->error() : "");
  auto kernel = bundle->kernel(c.name());
  ASSERT_TRUE(kernel.packed && kernel.work) << "missing kernel " << c.name();
  DType stat = c.dtype == DType::F64 ? DType::F64 : DType::F32;
  uint64_t seed = 1;
  for (const std::vector<int64_t> &shape : shapesFor(c)) {
    SCOPED_TRACE(c.name() + " shape " + shapeText(shape));
    NormDesc desc = descFor(c, shape);
    ASSERT_EQ(validate(desc), "");
    std::vector<Pattern> patterns = {Pattern::Normal, Pattern::LargeMean,
                                     Pattern::Constant, Pattern::NearMax,
                                     Pattern::TinyVariance};
    // BatchNorm inference takes statistics, not data: keep x ordinary.
    if (c.op == Op::BatchNormInfer)
      patterns = {Pattern::Normal};
    std::vector<double> x = generateInput(desc, c.dtype, patterns, seed++);
    int64_t numStats = numel(statsShape(desc));
    int64_t numAffine = numel(gammaShape(desc));
    std::vector<double> gamma = randomNormal(numAffine, seed++, c.dtype, 1.0, 0.5);
    std::vector<double> beta = randomNormal(numAffine, seed++, c.dtype, 0.0, 1.0);
    std::vector<double> runMean = randomNormal(numStats, seed++, stat);
    std::vector<double> runVar = randomUniform(numStats, seed++, 0.25, 4.0, stat);

    ForwardInputs in;
    in.x = &x;
    if (desc.hasGamma)
      in.gamma = &gamma;
    if (desc.hasBeta)
      in.beta = &beta;
    if (c.op == Op::BatchNormInfer) {
      in.givenMean = &runMean;
      in.givenVar = &runVar;
    }
    if (c.op == Op::BatchNormTrain) {
      in.runningMean = &runMean;
      in.runningVar = &runVar;
    }
    ForwardResult ref = forward(desc, in);
    ASSERT_TRUE(ref.ok()) << ref.error;

    // Buffers in the kernel's argument order: spec inputs, then results.
    std::vector<std::vector<uint8_t>> buffers;
    buffers.push_back(storeAs(c.dtype, x));
    if (c.affine) {
      buffers.push_back(storeAs(c.dtype, gamma));
      if (c.op != Op::RMSNorm)
        buffers.push_back(storeAs(c.dtype, beta));
    }
    if (c.op == Op::BatchNormTrain || c.op == Op::BatchNormInfer) {
      buffers.push_back(storeAs(stat, runMean));
      buffers.push_back(storeAs(stat, runVar));
    }
    struct Out {
      DType dtype;
      const std::vector<double> *expected;
      const char *what;
    };
    std::vector<Out> outs = {{c.dtype, &ref.y, "y"}};
    if (c.op != Op::BatchNormInfer) {
      if (c.op != Op::RMSNorm)
        outs.push_back({stat, &ref.mean, "mean"});
      outs.push_back({stat, &ref.rstd, "rstd"});
    }
    if (c.op == Op::BatchNormTrain) {
      outs.push_back({stat, &ref.runningMean, "running_mean"});
      outs.push_back({stat, &ref.runningVar, "running_var"});
    }
    size_t firstOut = buffers.size();
    for (const Out &o : outs)
      buffers.emplace_back(o.expected->size() * dtypeSize(o.dtype) + 1, 0xA5);
    std::vector<void *> pointers;
    for (auto &b : buffers)
      pointers.push_back(b.data());

    const std::vector<int64_t> &dims = shape; // every dim is dynamic
    int64_t work = kernel.work(dims.data());
    ASSERT_GT(work, 0);
    ASSERT_EQ(kernel.packed(pointers.data(), dims.data(), 0, work), 0);

    for (size_t i = 0; i < outs.size(); ++i) {
      const Out &o = outs[i];
      std::vector<double> expected = roundToDType(*o.expected, o.dtype);
      CompareReport report =
          compareBuffer(o.dtype, buffers[firstOut + i].data(),
                        o.expected->size(), expected);
      EXPECT_TRUE(report.ok) << o.what << ": " << report.message;
      worst.add(std::string(o.what == std::string("y") ? "y " : "stats ") +
                    dtypeName(o.dtype),
                o.dtype, report);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllNorms, Forward, ::testing::ValuesIn(allConfigs()),
                         [](const ::testing::TestParamInfo<Config> &info) {
                           return info.param.name();
                         });

} // namespace

int main(int argc, char **argv) {
  if (normc::test::handleWriteSpec(argc, argv, fullSpec()))
    return 0;
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new ForwardBundle);
  return RUN_ALL_TESTS();
}
