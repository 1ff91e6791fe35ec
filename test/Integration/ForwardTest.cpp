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
