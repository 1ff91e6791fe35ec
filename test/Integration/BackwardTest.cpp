//===- BackwardTest.cpp - derived backward kernels vs float64 gradients ---===//
//
// Every configuration of TestConfigs is compiled with `norm.backward`, so
// normc derives `<name>_backward` from the forward description. Each is run
// on the test plan's sizes with random and adversarial inputs and compared
// with the float64 analytic gradient computed from exact statistics (the
// true gradient of the forward), and on small sizes with float64 central
// finite differences of the forward. The saved statistics given to the
// kernel are the f32 values a forward kernel stores.
//
// Determinism: work items are chunks fixed by the sizes, each summing its
// dgamma/dbeta partials in a fixed order, and the finalize step adds them in
// chunk order. So results are bitwise identical run to run and for any
// split of the work across threads; the Determinism tests check both.
//
//===----------------------------------------------------------------------===//

#include "KernelBundle.h"
#include "TestConfigs.h"

#include "DTypes.h"
#include "NormReference.h"
#include "TestData.h"
#include "Tolerance.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>

using namespace normc::ref;
using namespace normc::test;

namespace {

KernelBundle *bundle = nullptr;
WorstErrors worst;

std::string fullSpec() {
  std::string spec;
  for (const Config &c : allConfigs())
    spec += specFor(c, /*backward=*/true);
  return spec;
}

class BackwardBundle : public ::testing::Environment {
public:
  void SetUp() override {
    bundle = new KernelBundle(NORMC_BACKWARD_TEST_BUNDLE);
  }
  void TearDown() override {
    worst.print("backward: worst errors against the float64 gradient (after "
                "rounding to the output type):");
    delete bundle;
  }
};

/// Inputs of one backward case and the buffers of its kernel call.
struct Case {
  Config config;
  std::vector<int64_t> shape;
  NormDesc desc;
  DType stat;
  std::vector<double> x, gamma, beta, dy, runMean, runVar;
  ForwardResult forward; // exact statistics

  Case(const Config &c, const std::vector<int64_t> &s, uint64_t seed,
       bool adversarial)
      : config(c), shape(s), desc(descFor(c, s)),
        stat(c.dtype == DType::F64 ? DType::F64 : DType::F32) {
    std::vector<Pattern> patterns = {Pattern::Normal};
    if (adversarial && c.op != Op::BatchNormInfer)
      patterns = {Pattern::Normal, Pattern::LargeMean, Pattern::Constant,
                  Pattern::NearMax, Pattern::TinyVariance};
    // f64 kernels are checked at f64's tolerance (rtol 1e-7): on sets with a
    // large mean or a tiny spread dx is a small difference of large terms,
    // and the reference's own statistics (rounded to double) are then not
    // accurate enough to judge it. Those patterns are covered in f32/16-bit.
    if (adversarial && c.dtype == DType::F64 && c.op != Op::BatchNormInfer)
      patterns = {Pattern::Normal, Pattern::Constant, Pattern::NearMax};
    x = generateInput(desc, c.dtype, patterns, seed);
    int64_t numStats = numel(statsShape(desc));
    int64_t numAffine = numel(gammaShape(desc));
    gamma = randomNormal(numAffine, seed + 1, c.dtype, 1.0, 0.5);
    beta = randomNormal(numAffine, seed + 2, c.dtype, 0.0, 1.0);
    dy = randomNormal(numel(shape), seed + 3, c.dtype);
    runMean = randomNormal(numStats, seed + 4, stat);
    runVar = randomUniform(numStats, seed + 5, 0.25, 4.0, stat);
    ForwardInputs in = forwardInputs();
    forward = normc::ref::forward(desc, in);
  }

  ForwardInputs forwardInputs() const {
    return normc::ref::forwardInputs(desc, x, gamma, beta, runMean, runVar);
  }

  /// The true gradient: float64, from exact statistics.
  BackwardResult expected() const {
    BackwardInputs in = normc::ref::backwardInputs(desc, dy, x, gamma, forward,
                                                   runMean, runVar);
    BackwardOutputs wanted;
    wanted.dgamma = desc.hasGamma;
    wanted.dbeta = desc.hasBeta;
    return backward(desc, in, wanted);
  }
};

/// The kernel's buffers in argument order: dy, x, [gamma], [mean], rstd or
/// var, then dx, [dgamma], [dbeta] (runAll adds the workspace).
struct KernelCall {
  std::vector<AlignedBytes> buffers;
  size_t firstOutput = 0;

  explicit KernelCall(const Case &k) {
    const Config &c = k.config;
    buffers.push_back(toAligned(storeAs(c.dtype, k.dy)));
    buffers.push_back(toAligned(storeAs(c.dtype, k.x)));
    if (k.desc.hasGamma)
      buffers.push_back(toAligned(storeAs(c.dtype, k.gamma)));
    if (c.op == Op::BatchNormInfer) {
      buffers.push_back(toAligned(storeAs(k.stat, k.runMean)));
      buffers.push_back(toAligned(storeAs(k.stat, k.runVar)));
    } else {
      // What a forward kernel saved: the statistics rounded to f32.
      if (k.desc.center)
        buffers.push_back(toAligned(storeAs(k.stat, k.forward.mean)));
      buffers.push_back(toAligned(storeAs(k.stat, k.forward.rstd)));
    }
    firstOutput = buffers.size();
    size_t bytes = dtypeSize(c.dtype);
    buffers.emplace_back(k.x.size() * bytes, 0xA5);
    if (k.desc.hasGamma)
      buffers.emplace_back(k.gamma.size() * bytes, 0xA5);
    if (k.desc.hasBeta)
      buffers.emplace_back(k.gamma.size() * bytes, 0xA5);
  }

  /// Runs the whole call with every step split into `splits` ranges on as
  /// many threads.
  int32_t run(const KernelEntry &kernel, const std::vector<int64_t> &dims,
              int splits = 1) {
    std::vector<void *> pointers;
    for (auto &b : buffers)
      pointers.push_back(b.data());
    return runAll(kernel, pointers, dims, splits);
  }
};

KernelEntry backwardKernel(const Config &c) {
  return bundle->kernel(c.name() + "_backward");
}

void compareGradients(const Case &k, KernelCall &call,
                      const std::vector<double> &dx,
                      const std::vector<double> &dgamma,
                      const std::vector<double> &dbeta, const char *against,
                      bool record) {
  const Config &c = k.config;
  struct Out {
    const std::vector<double> *expected;
    const char *what;
  };
  std::vector<Out> outs = {{&dx, "dx"}};
  if (k.desc.hasGamma)
    outs.push_back({&dgamma, "dgamma"});
  if (k.desc.hasBeta)
    outs.push_back({&dbeta, "dbeta"});
  for (size_t i = 0; i < outs.size(); ++i) {
    std::vector<double> expected = roundToDType(*outs[i].expected, c.dtype);
    CompareReport report =
        compareBuffer(c.dtype, call.buffers[call.firstOutput + i].data(),
                      expected.size(), expected);
    EXPECT_TRUE(report.ok) << outs[i].what << " vs " << against << ": "
                           << report.message;
    if (record)
      worst.add(std::string(outs[i].what) + " " + dtypeName(c.dtype), c.dtype,
                report);
  }
}

class Backward : public ::testing::TestWithParam<Config> {};

TEST_P(Backward, MatchesFloat64Gradient) {
  const Config &c = GetParam();
  ASSERT_TRUE(bundle && bundle->ok()) << (bundle ? bundle->error() : "");
  KernelEntry kernel = backwardKernel(c);
  ASSERT_TRUE(kernel.packed && kernel.work && kernel.finalize &&
              kernel.workspace);
  uint64_t seed = 100;
  for (const std::vector<int64_t> &shape : shapesFor(c)) {
    SCOPED_TRACE(c.name() + " shape " + shapeText(shape));
    Case k(c, shape, seed += 10, /*adversarial=*/true);
    ASSERT_TRUE(k.forward.ok()) << k.forward.error;
    BackwardResult expected = k.expected();
    ASSERT_TRUE(expected.ok()) << expected.error;
    KernelCall call(k);
    std::vector<int64_t> dims = dynamicDims(c, shape);
    ASSERT_EQ(call.run(kernel, dims), 0);
    compareGradients(k, call, expected.dx, expected.dgamma, expected.dbeta,
                     "analytic", /*record=*/true);
  }
}

/// Small sizes against central finite differences of the float64 forward.
TEST_P(Backward, MatchesFiniteDifferences) {
  const Config &c = GetParam();
  ASSERT_TRUE(bundle && bundle->ok()) << (bundle ? bundle->error() : "");
  // Central differences cost M forward evaluations per statistic of M
  // elements; long static rows are covered by MatchesFloat64Gradient.
  if (!c.isChannelOp() && c.staticInner > 64)
    GTEST_SKIP() << "rows of " << c.staticInner
                 << ": too long for finite differences";
  KernelEntry kernel = backwardKernel(c);
  std::vector<std::vector<int64_t>> shapes =
      c.isChannelOp() ? std::vector<std::vector<int64_t>>{{2, kChannels, 3},
                                                          {3, kChannels, 5}}
                      : std::vector<std::vector<int64_t>>{{3, 5}, {2, 17}};
  for (auto &s : shapes) {
    if (c.isChannelOp() && c.channelsLast)
      std::swap(s[1], s[2]);
    s = withStaticInner(c, s);
  }
  for (const std::vector<int64_t> &shape : shapes) {
    SCOPED_TRACE(c.name() + " shape " + shapeText(shape));
    Case k(c, shape, 7, /*adversarial=*/false);
    FiniteDiffResult fd = finiteDifference(k.desc, k.forwardInputs(), k.dy);
    ASSERT_TRUE(fd.ok()) << fd.error;
    KernelCall call(k);
    std::vector<int64_t> dims = dynamicDims(c, shape);
    ASSERT_EQ(call.run(kernel, dims), 0);
    compareGradients(k, call, fd.dx, fd.dgamma, fd.dbeta, "finite differences",
                     /*record=*/false);
  }
}

/// Same inputs twice, and the work split over 1, 2 and 3 threads: the
/// gradients are bitwise identical.
TEST_P(Backward, DeterministicAcrossRunsAndThreads) {
  const Config &c = GetParam();
  ASSERT_TRUE(bundle && bundle->ok()) << (bundle ? bundle->error() : "");
  KernelEntry kernel = backwardKernel(c);
  std::vector<int64_t> shape = withStaticInner(
      c, c.isChannelOp()
             ? (c.channelsLast ? std::vector<int64_t>{16, 331, kChannels}
                               : std::vector<int64_t>{16, kChannels, 331})
             : std::vector<int64_t>{300, 1151});
  Case k(c, shape, 3, /*adversarial=*/false);
  std::vector<int64_t> dims = dynamicDims(c, shape);
  std::vector<AlignedBytes> first;
  for (int splits : {1, 1, 2, 3}) {
    KernelCall call(k);
    ASSERT_EQ(call.run(kernel, dims, splits), 0);
    std::vector<AlignedBytes> outputs(call.buffers.begin() + call.firstOutput,
                                      call.buffers.end());
    if (first.empty()) {
      first = outputs;
      continue;
    }
    for (size_t i = 0; i < outputs.size(); ++i)
      EXPECT_EQ(
          0, std::memcmp(first[i].data(), outputs[i].data(), outputs[i].size()))
          << "output " << i << " differs with " << splits << " threads";
  }
}

INSTANTIATE_TEST_SUITE_P(AllNorms, Backward, ::testing::ValuesIn(allConfigs()),
                         [](const ::testing::TestParamInfo<Config> &info) {
                           return info.param.name();
                         });

/// Sizes that disagree with the kernel and null pointers are errors, not
/// crashes; an empty batch still writes zero dgamma/dbeta.
TEST(BackwardBadInput, RejectedWithCodes) {
  ASSERT_TRUE(bundle && bundle->ok());
  Config c{Op::LayerNorm, DType::F32, true, false, false};
  KernelEntry kernel = backwardKernel(c);
  std::vector<int64_t> bad = {-1, 8};
  std::vector<void *> nulls(9, nullptr);
  EXPECT_EQ(kernel.packed(nulls.data(), bad.data(), 0, 1), 2);
  EXPECT_EQ(kernel.finalize(nulls.data(), bad.data()), 2);
  std::vector<int64_t> shape = {4, 8};
  EXPECT_EQ(kernel.packed(nulls.data(), shape.data(), 0, 4), 1);
  // The prepass of long rows checks alike: sizes first, then pointers.
  ASSERT_TRUE(kernel.prepass && kernel.prepassWork);
  EXPECT_EQ(kernel.prepass(nulls.data(), bad.data(), 0, 1), 2);
  EXPECT_EQ(kernel.prepassWork(shape.data()), 0);
  EXPECT_EQ(kernel.prepass(nulls.data(), shape.data(), 0, 1), 0);
  std::vector<int64_t> longRows = {2, 65536};
  EXPECT_EQ(kernel.prepassWork(longRows.data()), 2 * 8);
  EXPECT_EQ(kernel.prepass(nulls.data(), longRows.data(), 0, 16), 1);
  EXPECT_EQ(kernel.packed(nulls.data(), longRows.data(), 0, 16), 1);
  // An empty batch has no work, and its finalize writes zero dgamma and
  // dbeta: with rows of 8, and with rows long enough to be split however
  // many there are.
  std::vector<double> scratch(1);
  for (int64_t length : {8, 262144}) {
    SCOPED_TRACE("rows of " + std::to_string(length));
    std::vector<int64_t> empty = {0, length};
    EXPECT_EQ(kernel.work(empty.data()), 0);
    EXPECT_EQ(kernel.prepassWork(empty.data()), 0);
    Case k(c, {1, length}, 1, false);
    KernelCall call(k);
    std::vector<void *> pointers;
    for (auto &b : call.buffers) {
      std::fill(b.begin(), b.end(), 0xFF);
      pointers.push_back(b.data());
    }
    pointers.push_back(scratch.data());
    EXPECT_EQ(kernel.finalize(pointers.data(), empty.data()), 0);
    for (size_t slot : {call.firstOutput + 1, call.firstOutput + 2}) {
      const float *sums =
          reinterpret_cast<const float *>(call.buffers[slot].data());
      for (int64_t i = 0; i < length; ++i)
        ASSERT_EQ(sums[i], 0.0f) << "output " << slot << " element " << i;
    }
  }
}

/// 16-bit dgamma/dbeta are rounded once from their f64 sums, not to f32 and
/// then again: dbeta is a sum of dy, exact in f64, so dy columns can put it
/// just above a 16-bit tie that f32 cannot hold. 1 + 2^-8 + 2^-30 is
/// 1 + 2^-7 in bf16 (1 + 2^-8, the f32 rounding, would tie to 1), and
/// 1 + 2^-11 + 2^-24 is 1 + 2^-10 in f16.
TEST(BackwardRounding, SixteenBitSumsRoundedOnce) {
  ASSERT_TRUE(bundle && bundle->ok());
  struct Probe {
    DType dtype;
    uint16_t dy[3]; // one column of dy, three rows: exact sum in f64
    uint16_t sum;   // the correctly rounded sum
    uint16_t twice; // what rounding through f32 gives
  };
  const Probe probes[] = {
      {DType::BF16, {0x3F80, 0x3B80, 0x3080}, 0x3F81, 0x3F80},
      {DType::F16, {0x3C00, 0x1000, 0x0001}, 0x3C01, 0x3C00},
  };
  for (const Probe &p : probes) {
    SCOPED_TRACE(dtypeName(p.dtype));
    Config c{Op::LayerNorm, p.dtype, true, false, false};
    KernelEntry kernel = backwardKernel(c);
    ASSERT_TRUE(kernel.packed);
    Case k(c, {3, 8}, 7, false);
    KernelCall call(k);
    auto *dy = reinterpret_cast<uint16_t *>(call.buffers[0].data());
    for (int row = 0; row < 3; ++row)
      dy[row * 8] = p.dy[row];
    ASSERT_EQ(call.run(kernel, dynamicDims(c, {3, 8})), 0);
    const auto *dbeta = reinterpret_cast<const uint16_t *>(
        call.buffers[call.firstOutput + 2].data());
    EXPECT_EQ(dbeta[0], p.sum) << "rounded twice gives " << p.twice;
  }
}

} // namespace

int main(int argc, char **argv) {
  if (normc::test::handleWriteSpec(argc, argv, fullSpec()))
    return 0;
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new BackwardBundle);
  return RUN_ALL_TESTS();
}
