//===- TestDataTest.cpp - deterministic generators ------------------------===//

#include "TestData.h"
#include "NormReference.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace normc::ref;

namespace {

using Vec = std::vector<double>;

TEST(TestData, EngineIsTheStandardOne) {
  // [rand.predef]: the 10000th output of a default-constructed mt19937_64.
  Rng rng(5489u);
  uint64_t value = 0;
  for (int i = 0; i < 10000; ++i)
    value = rng.nextBits();
  EXPECT_EQ(value, 9981545732273789042ull);
}

TEST(TestData, PinnedValues) {
  // Golden values: any change here breaks reproducibility of every test
  // that uses the generators.
  Rng rng(42);
  EXPECT_EQ(rng.uniform01(), 0.75515553295453897);
  EXPECT_EQ(rng.normalish(), -0.64225081002885709);
  const Vec x = randomNormal(3, 7, DType::BF16);
  EXPECT_EQ(x, Vec({0.96875, -0.045166015625, -0.875}));
}

TEST(TestData, SameSeedSameData) {
  EXPECT_EQ(randomNormal(100, 1), randomNormal(100, 1));
  EXPECT_NE(randomNormal(100, 1), randomNormal(100, 2));
  EXPECT_EQ(randomUniform(50, 3, -1, 1), randomUniform(50, 3, -1, 1));
}

TEST(TestData, Distributions) {
  const int n = 200000;
  const Vec normal = randomNormal(n, 11);
  double mean = 0, sq = 0, maxAbs = 0;
  for (double v : normal) {
    mean += v / n;
    sq += v * v / n;
    maxAbs = std::fmax(maxAbs, std::fabs(v));
  }
  EXPECT_NEAR(mean, 0.0, 0.01);
  EXPECT_NEAR(sq, 1.0, 0.01);
  EXPECT_LE(maxAbs, 6.0);

  for (double v : randomUniform(10000, 4, 2.0, 3.0)) {
    EXPECT_GE(v, 2.0);
    EXPECT_LT(v, 3.0);
  }
}

TEST(TestData, OutputIsRepresentableInDType) {
  const NormDesc ln = layerNormDesc({4, 64}, 1);
  for (DType dtype : {DType::F16, DType::BF16, DType::F32}) {
    for (double v : randomNormal(64, 1, dtype))
      EXPECT_EQ(roundToDType(v, dtype), v);
    const Vec x = generateInput(ln, dtype,
                                {Pattern::Normal, Pattern::LargeMean,
                                 Pattern::NearMax, Pattern::TinyVariance},
                                5);
    for (double v : x) {
      EXPECT_EQ(roundToDType(v, dtype), v);
      EXPECT_TRUE(std::isfinite(v));
    }
  }
}

TEST(TestData, PatternsPerStatsEntry) {
  // GroupNorm NHWC: the sets are strided, so this checks that patterns
  // follow the stats layout, not contiguous chunks of x.
  const NormDesc gn = groupNormDesc({2, 4, 4, 6}, 3, 3, false);
  const std::vector<Pattern> patterns = {Pattern::Normal, Pattern::LargeMean,
                                         Pattern::Constant, Pattern::NearMax,
                                         Pattern::TinyVariance};
  const Vec x = generateInput(gn, DType::F32, patterns, 9);
  ASSERT_EQ(x.size(), 2u * 4 * 4 * 6);
  const ForwardResult r = forward(gn, x);
  ASSERT_TRUE(r.ok()) << r.error;
  const std::vector<int64_t> index = statsIndexMap(gn);
  const double maxF32 = dtypeMaxFinite(DType::F32);

  for (size_t s = 0; s < 6; ++s) {
    const Pattern p = patterns[s % patterns.size()];
    SCOPED_TRACE(patternName(p));
    const double stddev = std::sqrt(r.var[s]);
    switch (p) {
    case Pattern::Normal:
      EXPECT_LT(std::fabs(r.mean[s]), 1.0);
      EXPECT_GT(stddev, 0.5);
      EXPECT_LT(stddev, 1.5);
      break;
    case Pattern::LargeMean:
      EXPECT_NEAR(r.mean[s], 1e4, 1e-2);
      // f32 spacing at 1e4 is ~1e-3, so the spread is coarse but nonzero.
      EXPECT_GT(stddev, 1e-4);
      EXPECT_LT(stddev, 5e-3);
      break;
    case Pattern::Constant:
      EXPECT_EQ(r.var[s], 0.0);
      break;
    case Pattern::NearMax: {
      bool sawNegative = false, sawPositive = false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (static_cast<size_t>(index[i]) != s)
          continue;
        EXPECT_GE(std::fabs(x[i]), 0.5 * maxF32);
        EXPECT_LE(std::fabs(x[i]), maxF32);
        sawNegative |= x[i] < 0;
        sawPositive |= x[i] > 0;
      }
      EXPECT_TRUE(sawNegative && sawPositive);
      break;
    }
    case Pattern::TinyVariance:
      EXPECT_GT(stddev, 1e-4);
      EXPECT_LT(stddev, 1e-2);
      break;
    }
  }
}

TEST(TestData, NearMaxForEveryDType) {
  const NormDesc ln = layerNormDesc({1, 32}, 1);
  for (DType dtype : {DType::F16, DType::BF16, DType::F32, DType::F64}) {
    const Vec x = generateInput(ln, dtype, {Pattern::NearMax}, 1);
    for (double v : x) {
      EXPECT_TRUE(std::isfinite(v)) << dtypeName(dtype);
      EXPECT_GE(std::fabs(v), 0.5 * dtypeMaxFinite(dtype));
    }
  }
}

TEST(TestData, ConstantSurvivesRounding) {
  const NormDesc bn = batchNormDesc({8, 3, 5}, 1, true, false);
  const Vec x = generateInput(bn, DType::BF16, {Pattern::Constant}, 3);
  const ForwardResult r = forward(bn, x);
  ASSERT_TRUE(r.ok());
  for (double v : r.var)
    EXPECT_EQ(v, 0.0);
}

TEST(TestData, InvalidArguments) {
  NormDesc bad = layerNormDesc({2, 3}, 1);
  bad.reductionDims = {5};
  EXPECT_TRUE(generateInput(bad, DType::F32, {Pattern::Normal}, 1).empty());
  EXPECT_TRUE(
      generateInput(layerNormDesc({2, 3}, 1), DType::F32, {}, 1).empty());
}

} // namespace
