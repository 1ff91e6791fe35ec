//===- ForwardTest.cpp - generated forward kernels vs a float64 reference
//--===//
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
#include "TestConfigs.h"

#include "DTypes.h"
#include "NormReference.h"
#include "TestData.h"
#include "Tolerance.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <map>
#include <string>
#include <vector>

using namespace normc::ref;
using normc::test::KernelBundle;
using namespace normc::test;

namespace {

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
  void SetUp() override {
    bundle = new KernelBundle(NORMC_FORWARD_TEST_BUNDLE);
  }
  void TearDown() override {
    worst.print("forward: worst errors against the float64 reference (after "
                "rounding to the output type):");
    delete bundle;
  }
};

class Forward : public ::testing::TestWithParam<Config> {};

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
    std::vector<double> gamma =
        randomNormal(numAffine, seed++, c.dtype, 1.0, 0.5);
    std::vector<double> beta =
        randomNormal(numAffine, seed++, c.dtype, 0.0, 1.0);
    std::vector<double> runMean = randomNormal(numStats, seed++, stat);
    std::vector<double> runVar =
        randomUniform(numStats, seed++, 0.25, 4.0, stat);

    ForwardInputs in =
        normc::ref::forwardInputs(desc, x, gamma, beta, runMean, runVar);
    ForwardResult ref = forward(desc, in);
    ASSERT_TRUE(ref.ok()) << ref.error;

    // Buffers in the kernel's argument order: spec inputs, then results.
    std::vector<AlignedBytes> buffers;
    buffers.push_back(toAligned(storeAs(c.dtype, x)));
    if (c.affine) {
      buffers.push_back(toAligned(storeAs(c.dtype, gamma)));
      if (c.op != Op::RMSNorm)
        buffers.push_back(toAligned(storeAs(c.dtype, beta)));
    }
    if (c.op == Op::BatchNormTrain || c.op == Op::BatchNormInfer) {
      buffers.push_back(toAligned(storeAs(stat, runMean)));
      buffers.push_back(toAligned(storeAs(stat, runVar)));
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

    std::vector<int64_t> dims = dynamicDims(c, shape);
    ASSERT_GT(kernel.work(dims.data()), 0);
    ASSERT_EQ(runAll(kernel, pointers, dims), 0);
    // Kernels with a prepass (long rows): the same bytes when both steps are
    // split over threads.
    if (kernel.prepass && kernel.prepassWork(dims.data()) > 0) {
      std::vector<AlignedBytes> split = buffers;
      std::vector<void *> splitPointers;
      for (size_t i = 0; i < split.size(); ++i) {
        if (i >= firstOut)
          std::fill(split[i].begin(), split[i].end(), 0xA5);
        splitPointers.push_back(split[i].data());
      }
      ASSERT_EQ(runAll(kernel, splitPointers, dims, /*splits=*/3), 0);
      for (size_t i = firstOut; i < buffers.size(); ++i)
        EXPECT_TRUE(split[i] == buffers[i])
            << outs[i - firstOut].what << " differs when split over threads";
    }

    for (size_t i = 0; i < outs.size(); ++i) {
      const Out &o = outs[i];
      std::vector<double> expected = roundToDType(*o.expected, o.dtype);
      CompareReport report = compareBuffer(
          o.dtype, buffers[firstOut + i].data(), o.expected->size(), expected);
      EXPECT_TRUE(report.ok) << o.what << ": " << report.message;
      worst.add(std::string(o.what == std::string("y") ? "y " : "stats ") +
                    dtypeName(o.dtype),
                o.dtype, report);
    }
  }
}

/// bf16 outputs skip the NaN select when rounding (the kernel's NaNs have
/// zero low halves, see LoopEmitter::nanPayloadsHighHalf): a NaN input of
/// any bf16 pattern, quiet or signaling, with the all-ones payload, either
/// sign, must still give NaN outputs, never inf or zero. NaNs go into x
/// (where x is NaN, y is) and, for affine row ops, into gamma's last entry
/// (that column of every row is NaN).
class ForwardBf16NaN : public ::testing::TestWithParam<Config> {};

TEST_P(ForwardBf16NaN, NaNInputsGiveNaN) {
  const Config &c = GetParam();
  ASSERT_TRUE(bundle && bundle->ok()) << (bundle ? bundle->error() : "");
  auto kernel = bundle->kernel(c.name());
  ASSERT_TRUE(kernel.packed && kernel.work) << "missing kernel " << c.name();
  const uint16_t nans[] = {0x7fff, 0xffff, 0x7f81, 0xff81, 0x7fc0, 0xffc1};
  // A plan shape of a few thousand elements.
  std::vector<int64_t> shape;
  for (const std::vector<int64_t> &s : shapesFor(c))
    if (numel(s) >= 64 && numel(s) <= (1 << 16) &&
        (shape.empty() || numel(s) > numel(shape)))
      shape = s;
  ASSERT_FALSE(shape.empty());
  SCOPED_TRACE(c.name() + " shape " + shapeText(shape));
  NormDesc desc = descFor(c, shape);
  ASSERT_EQ(validate(desc), "");
  int64_t n = numel(shape);
  int64_t numStats = numel(statsShape(desc));
  int64_t numAffine = numel(gammaShape(desc));
  std::vector<uint16_t> x(n), gamma(numAffine), beta(numAffine);
  std::vector<double> xs = randomNormal(n, 7, DType::BF16);
  for (int64_t i = 0; i < n; ++i)
    x[i] = doubleToBFloat16Bits(xs[i]);
  for (int64_t i = 0; i < numAffine; ++i) {
    gamma[i] = doubleToBFloat16Bits(1.0 + 0.125 * (i % 5));
    beta[i] = doubleToBFloat16Bits(0.25 * (i % 3));
  }
  std::vector<int64_t> nanAt;
  for (size_t k = 0; k < std::size(nans); ++k) {
    int64_t at = (int64_t)(k * (n - 1) / (std::size(nans) - 1));
    x[at] = nans[k];
    nanAt.push_back(at);
  }
  bool nanGamma = c.affine && !c.isChannelOp();
  if (nanGamma)
    gamma[numAffine - 1] = 0xffff;

  std::vector<AlignedBytes> buffers;
  auto bytesOf = [](const std::vector<uint16_t> &v) {
    AlignedBytes bytes(v.size() * 2 + 1, 0);
    std::memcpy(bytes.data(), v.data(), v.size() * 2);
    return bytes;
  };
  buffers.push_back(bytesOf(x));
  if (c.affine) {
    buffers.push_back(bytesOf(gamma));
    if (c.hasBias())
      buffers.push_back(bytesOf(beta));
  }
  if (c.op == Op::BatchNormTrain)
    for (int k = 0; k < 2; ++k)
      buffers.push_back(
          toAligned(storeAs(DType::F32, std::vector<double>(numStats, 1.0))));
  size_t yIndex = buffers.size();
  buffers.emplace_back(n * 2 + 1, 0xA5);
  int results = c.op == Op::RMSNorm ? 1 : 2;
  if (c.op == Op::BatchNormTrain)
    results += 2;
  for (int k = 0; k < results; ++k)
    buffers.emplace_back(numStats * 4 + 1, 0xA5);
  std::vector<void *> pointers;
  for (auto &b : buffers)
    pointers.push_back(b.data());
  std::vector<int64_t> dims = dynamicDims(c, shape);
  ASSERT_EQ(runAll(kernel, pointers, dims), 0);

  auto yBits = [&](int64_t i) {
    uint16_t bits;
    std::memcpy(&bits, buffers[yIndex].data() + 2 * i, 2);
    return bits;
  };
  auto isNaN = [](uint16_t bits) {
    return (bits & 0x7f80) == 0x7f80 && (bits & 0x7f) != 0;
  };
  for (size_t k = 0; k < nanAt.size(); ++k)
    EXPECT_TRUE(isNaN(yBits(nanAt[k])))
        << "x = 0x" << std::hex << nans[k] << " at " << std::dec << nanAt[k]
        << " gave y = 0x" << std::hex << yBits(nanAt[k]);
  if (nanGamma) {
    for (int64_t i = numAffine - 1; i < n; i += numAffine)
      EXPECT_TRUE(isNaN(yBits(i)))
          << "gamma NaN 0xffff: y[" << i << "] = 0x" << std::hex << yBits(i);
  }
}

INSTANTIATE_TEST_SUITE_P(AllNorms, Forward, ::testing::ValuesIn(allConfigs()),
                         [](const ::testing::TestParamInfo<Config> &info) {
                           return info.param.name();
                         });

/// bf16 kernels that compute their statistics.
std::vector<Config> bf16Configs() {
  std::vector<Config> configs;
  for (const Config &c : allConfigs())
    if (c.dtype == DType::BF16 && c.op != Op::BatchNormInfer)
      configs.push_back(c);
  return configs;
}

INSTANTIATE_TEST_SUITE_P(Bf16Norms, ForwardBf16NaN,
                         ::testing::ValuesIn(bf16Configs()),
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
