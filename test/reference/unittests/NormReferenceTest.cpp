//===- NormReferenceTest.cpp - the float64 reference itself ---------------===//

#include "NormReference.h"
#include "TestData.h"
#include "Tolerance.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>

using namespace normc::ref;

namespace {

using Vec = std::vector<double>;
using Shape = std::vector<int64_t>;

/// Per stats entry mean and biased variance of `values`, computed here the
/// straightforward way, to check properties of y.
struct SetMoments {
  Vec mean, var;
};

SetMoments momentsPerSet(const NormDesc &desc, const Vec &values) {
  const std::vector<int64_t> index = statsIndexMap(desc);
  const size_t numStats = static_cast<size_t>(numel(statsShape(desc)));
  const double m = static_cast<double>(reducedCount(desc));
  SetMoments out{Vec(numStats, 0.0), Vec(numStats, 0.0)};
  for (size_t i = 0; i < values.size(); ++i)
    out.mean[index[i]] += values[i] / m;
  for (size_t i = 0; i < values.size(); ++i) {
    const double d = values[i] - out.mean[index[i]];
    out.var[index[i]] += d * d / m;
  }
  return out;
}

//===----------------------------------------------------------------------===//
// Shapes, index maps, validation
//===----------------------------------------------------------------------===//

TEST(NormShapes, StatsAndGammaShapes) {
  NormDesc ln = layerNormDesc({2, 5, 8}, 1);
  EXPECT_EQ(statsShape(ln), Shape({2, 5}));
  EXPECT_EQ(gammaShape(ln), Shape({8}));
  EXPECT_EQ(reducedCount(ln), 8);

  NormDesc bnNchw = batchNormDesc({4, 3, 5, 6}, 1, true);
  EXPECT_EQ(bnNchw.reductionDims, Shape({0, 2, 3}));
  EXPECT_EQ(statsShape(bnNchw), Shape({3}));
  EXPECT_EQ(gammaShape(bnNchw), Shape({3}));
  EXPECT_EQ(reducedCount(bnNchw), 4 * 5 * 6);

  NormDesc bnNhwc = batchNormDesc({4, 5, 6, 3}, 3, true);
  EXPECT_EQ(bnNhwc.reductionDims, Shape({0, 1, 2}));
  EXPECT_EQ(statsShape(bnNhwc), Shape({3}));

  NormDesc in = instanceNormDesc({4, 3, 5, 6}, 1);
  EXPECT_EQ(statsShape(in), Shape({4, 3}));
  EXPECT_EQ(reducedCount(in), 30);

  NormDesc gnNchw = groupNormDesc({4, 6, 5, 7}, 1, 3);
  EXPECT_EQ(statsShape(gnNchw), Shape({4, 3}));
  EXPECT_EQ(gammaShape(gnNchw), Shape({6}));
  EXPECT_EQ(reducedCount(gnNchw), 2 * 5 * 7);

  NormDesc gnNhwc = groupNormDesc({4, 5, 7, 6}, 3, 2);
  EXPECT_EQ(gnNhwc.reductionDims, Shape({1, 2}));
  EXPECT_EQ(statsShape(gnNhwc), Shape({4, 2}));
  EXPECT_EQ(reducedCount(gnNhwc), 3 * 5 * 7);
}

TEST(NormShapes, GroupIndexMap) {
  // NHWC [N=2, H=1, W=2, C=6], 2 groups of 3 channels: channel c of image n
  // belongs to stats entry n * 2 + c / 3.
  const NormDesc gn = groupNormDesc({2, 1, 2, 6}, 3, 2);
  const std::vector<int64_t> expected = {0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1,
                                         2, 2, 2, 3, 3, 3, 2, 2, 2, 3, 3, 3};
  EXPECT_EQ(statsIndexMap(gn), expected);
  const std::vector<int64_t> affine = {0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5,
                                       0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5};
  EXPECT_EQ(affineIndexMap(gn), affine);
}

TEST(NormShapes, Validation) {
  EXPECT_EQ(validate(layerNormDesc({2, 3}, 1)), "");
  NormDesc d = layerNormDesc({2, 3}, 1);
  d.reductionDims = {2};
  EXPECT_NE(validate(d).find("out of range"), std::string::npos);
  d.reductionDims = {1, 0};
  EXPECT_NE(validate(d).find("sorted"), std::string::npos);
  EXPECT_TRUE(statsShape(d).empty()); // helpers refuse invalid descs
  EXPECT_EQ(reducedCount(d), 0);

  NormDesc gn = groupNormDesc({2, 6, 4}, 1, 4);
  EXPECT_NE(validate(gn).find("does not divide"), std::string::npos);
  gn = groupNormDesc({2, 6, 4}, 1, 3);
  gn.reductionDims = {1, 2};
  EXPECT_NE(validate(gn).find("groupDim"), std::string::npos);

  NormDesc bn = batchNormDesc({2, 3}, 1, false);
  bn.updateRunning = true;
  EXPECT_NE(validate(bn).find("exclusive"), std::string::npos);
  bn = batchNormDesc({1, 3}, 1, true, true, 1e-5, /*updateRunning=*/true);
  EXPECT_NE(validate(bn).find("more than one"), std::string::npos);

  NormDesc shape0 = layerNormDesc({2, 0}, 1);
  EXPECT_FALSE(validate(shape0).empty());
}

TEST(NormShapes, InputChecks) {
  const NormDesc ln = layerNormDesc({2, 3}, 1, /*affine=*/true);
  const Vec x(6, 1.0), gamma(3, 1.0), beta(3, 0.0), shortX(5, 1.0);
  EXPECT_NE(forward(ln, x).error.find("gamma is required"), std::string::npos);
  EXPECT_NE(forward(ln, shortX, &gamma, &beta).error.find("x has 5"),
            std::string::npos);
  const NormDesc plain = layerNormDesc({2, 3}, 1, /*affine=*/false);
  EXPECT_NE(forward(plain, x, &gamma).error.find("not expected"),
            std::string::npos);
  EXPECT_TRUE(forward(ln, x, &gamma, &beta).ok());

  BackwardInputs in;
  in.dy = &x;
  in.x = &x;
  in.gamma = &gamma;
  const Vec mean(2, 0.0);
  in.mean = &mean;
  EXPECT_NE(backward(ln, in).error.find("rstd or var"), std::string::npos);
}

//===----------------------------------------------------------------------===//
// Forward
//===----------------------------------------------------------------------===//

TEST(NormForward, LayerNormByHand) {
  const NormDesc ln = layerNormDesc({1, 4}, 1, /*affine=*/true, /*eps=*/0.0);
  const Vec x = {1, 2, 3, 4}, gamma = {1, 2, 3, 4}, beta = {0, 0, 0, 1};
  const ForwardResult r = forward(ln, x, &gamma, &beta);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_DOUBLE_EQ(r.mean[0], 2.5);
  EXPECT_DOUBLE_EQ(r.var[0], 1.25); // biased
  const double rstd = 1.0 / std::sqrt(1.25);
  EXPECT_DOUBLE_EQ(r.rstd[0], rstd);
  const Vec expected = {-1.5 * rstd, -0.5 * 2 * rstd, 0.5 * 3 * rstd,
                        1.5 * 4 * rstd + 1};
  for (size_t i = 0; i < 4; ++i)
    EXPECT_DOUBLE_EQ(r.y[i], expected[i]) << i;
}

TEST(NormForward, RmsNormByHand) {
  const NormDesc rms = rmsNormDesc({2, 2}, 1, /*affine=*/true, /*eps=*/1e-6);
  const Vec x = {3, 4, -1, 1}, gamma = {2, 0.5};
  const ForwardResult r = forward(rms, x, &gamma);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.mean, Vec({0, 0}));
  EXPECT_DOUBLE_EQ(r.var[0], 12.5); // mean square, not variance
  EXPECT_DOUBLE_EQ(r.var[1], 1.0);
  const double r0 = 1 / std::sqrt(12.5 + 1e-6), r1 = 1 / std::sqrt(1 + 1e-6);
  EXPECT_DOUBLE_EQ(r.y[0], 3 * r0 * 2);
  EXPECT_DOUBLE_EQ(r.y[1], 4 * r0 * 0.5);
  EXPECT_DOUBLE_EQ(r.y[2], -1 * r1 * 2);
  EXPECT_DOUBLE_EQ(r.y[3], 1 * r1 * 0.5);
}

TEST(NormForward, EpsOutside) {
  NormDesc ln = layerNormDesc({1, 2}, 1, /*affine=*/false, /*eps=*/0.5);
  ln.epsOutside = true;
  const ForwardResult r = forward(ln, Vec{-2, 2});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_DOUBLE_EQ(r.var[0], 4.0);
  EXPECT_DOUBLE_EQ(r.rstd[0], 1 / 2.5);
  EXPECT_DOUBLE_EQ(r.y[1], 2 / 2.5);
  EXPECT_DOUBLE_EQ(rstdFromVar(4.0, 0.5, true), 0.4);
  EXPECT_DOUBLE_EQ(rstdFromVar(4.0, 0.0, false), 0.5);
}

/// The layouts the property and gradient tests run over.
enum class Layer {
  LayerNorm,
  LayerNorm2D,
  RmsNorm,
  BatchNormNCHW,
  BatchNormNHWC,
  BatchNormInference,
  InstanceNorm,
  GroupNormNCHW,
  GroupNormNHWC,
};

const char *layerName(Layer layer) {
  switch (layer) {
  case Layer::LayerNorm:
    return "LayerNorm";
  case Layer::LayerNorm2D:
    return "LayerNorm2D";
  case Layer::RmsNorm:
    return "RmsNorm";
  case Layer::BatchNormNCHW:
    return "BatchNormNCHW";
  case Layer::BatchNormNHWC:
    return "BatchNormNHWC";
  case Layer::BatchNormInference:
    return "BatchNormInference";
  case Layer::InstanceNorm:
    return "InstanceNorm";
  case Layer::GroupNormNCHW:
    return "GroupNormNCHW";
  case Layer::GroupNormNHWC:
    return "GroupNormNHWC";
  }
  return "?";
}

NormDesc makeDesc(Layer layer, bool affine, double eps, bool epsOutside) {
  NormDesc desc;
  switch (layer) {
  case Layer::LayerNorm:
    desc = layerNormDesc({2, 3, 8}, 1, affine, eps);
    break;
  case Layer::LayerNorm2D:
    desc = layerNormDesc({3, 4, 3}, 2, affine, eps);
    break;
  case Layer::RmsNorm:
    desc = rmsNormDesc({2, 3, 8}, 1, affine, eps);
    break;
  case Layer::BatchNormNCHW:
    desc = batchNormDesc({3, 4, 2, 3}, 1, true, affine, eps);
    break;
  case Layer::BatchNormNHWC:
    desc = batchNormDesc({3, 2, 3, 4}, 3, true, affine, eps);
    break;
  case Layer::BatchNormInference:
    desc = batchNormDesc({3, 4, 2, 3}, 1, false, affine, eps);
    break;
  case Layer::InstanceNorm:
    desc = instanceNormDesc({2, 3, 2, 4}, 1, affine, eps);
    break;
  case Layer::GroupNormNCHW:
    desc = groupNormDesc({2, 6, 2, 3}, 1, 3, affine, eps);
    break;
  case Layer::GroupNormNHWC:
    desc = groupNormDesc({2, 2, 3, 6}, 3, 2, affine, eps);
    break;
  }
  desc.epsOutside = epsOutside;
  return desc;
}

/// Inputs for a desc, owning their storage.
struct Data {
  Vec x, gamma, beta, givenMean, givenVar, dy;

  ForwardInputs forwardInputs(const NormDesc &desc) const {
    ForwardInputs in;
    in.x = &x;
    in.gamma = desc.hasGamma ? &gamma : nullptr;
    in.beta = desc.hasBeta ? &beta : nullptr;
    in.givenMean = desc.givenStats ? &givenMean : nullptr;
    in.givenVar = desc.givenStats ? &givenVar : nullptr;
    return in;
  }
};

Data makeData(const NormDesc &desc, uint64_t seed) {
  const int64_t n = numel(desc.shape);
  const int64_t numAffine = numel(gammaShape(desc));
  const int64_t numStats = numel(statsShape(desc));
  Data data;
  // Shifted and scaled so that the mean and variance are not trivial.
  data.x = randomNormal(n, seed, DType::F64, 0.3, 1.7);
  data.gamma = randomUniform(numAffine, seed + 1, 0.5, 1.5);
  data.beta = randomNormal(numAffine, seed + 2);
  data.givenMean = randomNormal(numStats, seed + 3, DType::F64, 0.0, 0.5);
  data.givenVar = randomUniform(numStats, seed + 4, 0.5, 2.0);
  data.dy = randomNormal(n, seed + 5);
  return data;
}

class NormProperties
    : public ::testing::TestWithParam<std::tuple<Layer, bool>> {};

// (Given statistics do not normalize x, so BatchNormInference is not here.)
// Without affine, every set of y has mean 0 (when centering) and variance
// v / (v + eps), or v / (sqrt(v) + eps)^2 with eps outside.
TEST_P(NormProperties, NormalizedMoments) {
  const auto [layer, epsOutside] = GetParam();
  const NormDesc desc = makeDesc(layer, /*affine=*/false, 0.1, epsOutside);
  const Data data = makeData(desc, 7);
  const ForwardResult r = forward(desc, data.forwardInputs(desc));
  ASSERT_TRUE(r.ok()) << r.error;

  const SetMoments xm = momentsPerSet(desc, data.x);
  const SetMoments ym = momentsPerSet(desc, r.y);
  for (size_t s = 0; s < xm.mean.size(); ++s) {
    if (desc.center) {
      EXPECT_NEAR(r.mean[s], xm.mean[s], 1e-14);
      EXPECT_NEAR(r.var[s], xm.var[s], 1e-13);
      EXPECT_NEAR(ym.mean[s], 0.0, 1e-14);
    } else {
      EXPECT_EQ(r.mean[s], 0.0);
    }
    const double v = r.var[s];
    const double denom =
        epsOutside ? std::pow(std::sqrt(v) + desc.eps, 2) : v + desc.eps;
    // E[y^2] = v / denom; for centered sets that is also var(y).
    const double meanSquare = ym.var[s] + ym.mean[s] * ym.mean[s];
    EXPECT_NEAR(meanSquare, v / denom, 1e-13) << s;
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllLayouts, NormProperties,
    ::testing::Combine(::testing::Values(Layer::LayerNorm, Layer::LayerNorm2D,
                                         Layer::RmsNorm, Layer::BatchNormNCHW,
                                         Layer::BatchNormNHWC,
                                         Layer::InstanceNorm,
                                         Layer::GroupNormNCHW,
                                         Layer::GroupNormNHWC),
                       ::testing::Bool()),
    [](const auto &info) {
      return std::string(layerName(std::get<0>(info.param))) +
             (std::get<1>(info.param) ? "_EpsOutside" : "_EpsInside");
    });

TEST(NormForward, AffineIsAppliedPerChannel) {
  const NormDesc plain = makeDesc(Layer::GroupNormNHWC, false, 1e-5, false);
  const NormDesc affine = makeDesc(Layer::GroupNormNHWC, true, 1e-5, false);
  const Data data = makeData(affine, 3);
  const ForwardResult p = forward(plain, data.x);
  const ForwardResult a = forward(affine, data.forwardInputs(affine));
  ASSERT_TRUE(p.ok() && a.ok());
  const std::vector<int64_t> channel = affineIndexMap(affine);
  for (size_t i = 0; i < data.x.size(); ++i)
    EXPECT_NEAR(a.y[i], p.y[i] * data.gamma[channel[i]] + data.beta[channel[i]],
                1e-14);
}

TEST(NormForward, GivenStatistics) {
  const NormDesc desc = makeDesc(Layer::BatchNormInference, true, 1e-3, false);
  const Data data = makeData(desc, 11);
  const ForwardResult r = forward(desc, data.forwardInputs(desc));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.mean, data.givenMean);
  EXPECT_EQ(r.var, data.givenVar);
  const std::vector<int64_t> c = statsIndexMap(desc);
  for (size_t i = 0; i < data.x.size(); ++i) {
    const double expected = (data.x[i] - data.givenMean[c[i]]) /
                                std::sqrt(data.givenVar[c[i]] + 1e-3) *
                                data.gamma[c[i]] +
                            data.beta[c[i]];
    EXPECT_NEAR(r.y[i], expected, 1e-14) << i;
  }
}

TEST(NormForward, RunningStatistics) {
  const NormDesc desc =
      batchNormDesc({4, 2, 3}, 1, true, false, 1e-5, true, /*momentum=*/0.25);
  const Vec x = randomNormal(24, 5);
  const Vec runningMean = {0.5, -1.0}, runningVar = {2.0, 0.25};
  ForwardInputs in;
  in.x = &x;
  in.runningMean = &runningMean;
  in.runningVar = &runningVar;
  const ForwardResult r = forward(desc, in);
  ASSERT_TRUE(r.ok()) << r.error;
  const SetMoments m = momentsPerSet(desc, x);
  const double count = 12.0; // N * L per channel
  for (size_t c = 0; c < 2; ++c) {
    EXPECT_NEAR(r.runningMean[c], 0.75 * runningMean[c] + 0.25 * m.mean[c],
                1e-15);
    EXPECT_NEAR(r.runningVar[c],
                0.75 * runningVar[c] + 0.25 * m.var[c] * count / (count - 1),
                1e-15);
  }
  // Without updateRunning nothing is produced.
  EXPECT_TRUE(
      forward(batchNormDesc({4, 2, 3}, 1, true, false), x).runningMean.empty());
}

/// NHWC -> NCHW copy of a [N, H, W, C] tensor.
Vec nhwcToNchw(const Vec &x, int64_t n, int64_t h, int64_t w, int64_t c) {
  Vec out(x.size());
  for (int64_t in = 0; in < n; ++in)
    for (int64_t ih = 0; ih < h; ++ih)
      for (int64_t iw = 0; iw < w; ++iw)
        for (int64_t ic = 0; ic < c; ++ic)
          out[((in * c + ic) * h + ih) * w + iw] =
              x[((in * h + ih) * w + iw) * c + ic];
  return out;
}

void expectSameValues(const Vec &a, const Vec &b) {
  const CompareReport r = compareClose(a, b, Tolerance{1e-14, 1e-14});
  EXPECT_TRUE(r.ok) << r.message;
}

// The same data in NHWC and NCHW must give the same statistics and the same
// (transposed) output: checks the strided NHWC index maps against the
// contiguous NCHW ones.
TEST(NormForward, NhwcAgreesWithNchw) {
  const int64_t n = 2, h = 3, w = 2, c = 6;
  const Vec nhwc = randomNormal(n * h * w * c, 17, DType::F64, 1.0, 2.0);
  const Vec nchw = nhwcToNchw(nhwc, n, h, w, c);
  const Vec gamma = randomUniform(c, 18, 0.5, 1.5), beta = randomNormal(c, 19);
  const std::pair<NormDesc, NormDesc> pairs[] = {
      {batchNormDesc({n, h, w, c}, 3, true),
       batchNormDesc({n, c, h, w}, 1, true)},
      {groupNormDesc({n, h, w, c}, 3, 3), groupNormDesc({n, c, h, w}, 1, 3)},
      {instanceNormDesc({n, h, w, c}, 3, true),
       instanceNormDesc({n, c, h, w}, 1, true)},
  };
  for (const auto &[descNhwc, descNchw] : pairs) {
    const ForwardResult a = forward(descNhwc, nhwc, &gamma, &beta);
    const ForwardResult b = forward(descNchw, nchw, &gamma, &beta);
    ASSERT_TRUE(a.ok() && b.ok()) << a.error << b.error;
    expectSameValues(a.mean, b.mean);
    expectSameValues(a.rstd, b.rstd);
    expectSameValues(nhwcToNchw(a.y, n, h, w, c), b.y);
  }
}

// GroupNorm on NCHW is a LayerNorm of the same memory seen as
// [N, G, C/G * H * W].
TEST(NormForward, GroupNormIsLayerNormOfReshape) {
  const NormDesc gn = groupNormDesc({2, 6, 3, 2}, 1, 3, false);
  const NormDesc ln = layerNormDesc({2, 3, 12}, 1, false);
  const Vec x = randomNormal(72, 23);
  const ForwardResult a = forward(gn, x), b = forward(ln, x);
  ASSERT_TRUE(a.ok() && b.ok());
  expectSameValues(a.y, b.y);
  expectSameValues(a.mean, b.mean);
  expectSameValues(a.rstd, b.rstd);
}

TEST(NormForward, LargeMeanRowsKeepTheirVariance) {
  // Mean 1e4, std 1e-3: E[x^2] - E[x]^2 in double would lose all digits.
  const NormDesc ln = layerNormDesc({4, 256}, 1, false);
  const Vec x = generateInput(ln, DType::F64, {Pattern::LargeMean}, 21);
  Vec centered(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    centered[i] = x[i] - 1e4; // exact: Sterbenz
  const SetMoments dm = momentsPerSet(ln, centered);
  const ForwardResult r = forward(ln, x);
  ASSERT_TRUE(r.ok());
  for (size_t s = 0; s < 4; ++s) {
    EXPECT_NEAR(r.var[s], dm.var[s], 1e-9 * dm.var[s]);
    EXPECT_NEAR(r.mean[s], 1e4 + dm.mean[s], 1e-12);
  }
}

TEST(NormForward, ConstantRowsHaveZeroVariance) {
  // 4096 elements per row: more than long double can sum exactly without
  // the shift to the first element.
  const NormDesc ln = layerNormDesc({3, 4096}, 1, true, 1e-5);
  const Vec x = generateInput(ln, DType::F64, {Pattern::Constant}, 4);
  const Vec gamma(4096, 2.0), beta(4096, 0.5);
  const ForwardResult r = forward(ln, x, &gamma, &beta);
  ASSERT_TRUE(r.ok());
  for (size_t s = 0; s < 3; ++s) {
    EXPECT_EQ(r.var[s], 0.0);
    EXPECT_EQ(r.mean[s], x[s * 4096]);
    EXPECT_DOUBLE_EQ(r.rstd[s], 1 / std::sqrt(1e-5));
  }
  for (double y : r.y)
    EXPECT_EQ(y, 0.5);
}

//===----------------------------------------------------------------------===//
// Backward against finite differences
//===----------------------------------------------------------------------===//

struct GradCase {
  Layer layer;
  bool affine;
  bool epsOutside;
  double eps;
};

// Readable parameters in test output instead of a byte dump.
void PrintTo(const GradCase &c, std::ostream *os) {
  *os << layerName(c.layer) << (c.affine ? " affine" : "")
      << (c.epsOutside ? " eps-outside " : " eps-inside ") << c.eps;
}

class NormGradients : public ::testing::TestWithParam<GradCase> {};

void expectClose(const Vec &analytic, const Vec &numeric, const char *what) {
  // Fourth-order differences with h = 1e-3 agree to ~1e-12 here.
  const CompareReport r =
      compareClose(analytic, numeric, Tolerance{1e-9, 1e-10});
  EXPECT_TRUE(r.ok) << what << ": " << r.message;
}

TEST_P(NormGradients, AnalyticMatchesFiniteDifferences) {
  const GradCase c = GetParam();
  const NormDesc desc = makeDesc(c.layer, c.affine, c.eps, c.epsOutside);
  const Data data = makeData(desc, 100 + static_cast<int>(c.layer));
  const ForwardResult fwd = forward(desc, data.forwardInputs(desc));
  ASSERT_TRUE(fwd.ok()) << fwd.error;

  BackwardInputs in;
  in.dy = &data.dy;
  in.x = &data.x;
  in.gamma = desc.hasGamma ? &data.gamma : nullptr;
  in.mean = desc.center ? &fwd.mean : nullptr;
  in.rstd = &fwd.rstd;
  const BackwardResult bwd = backward(desc, in);
  ASSERT_TRUE(bwd.ok()) << bwd.error;

  const FiniteDiffResult fd =
      finiteDifference(desc, data.forwardInputs(desc), data.dy, 1e-3);
  ASSERT_TRUE(fd.ok()) << fd.error;
  expectClose(bwd.dx, fd.dx, "dx");
  EXPECT_EQ(bwd.dgamma.size(), fd.dgamma.size());
  EXPECT_EQ(bwd.dbeta.size(), fd.dbeta.size());
  if (desc.hasGamma)
    expectClose(bwd.dgamma, fd.dgamma, "dgamma");
  if (desc.hasBeta)
    expectClose(bwd.dbeta, fd.dbeta, "dbeta");

  // The saved variance instead of rstd gives the same gradients.
  in.rstd = nullptr;
  in.var = &fwd.var;
  const BackwardResult fromVar = backward(desc, in);
  ASSERT_TRUE(fromVar.ok()) << fromVar.error;
  expectClose(fromVar.dx, bwd.dx, "dx from var");
}

std::vector<GradCase> gradCases() {
  std::vector<GradCase> cases;
  for (Layer layer :
       {Layer::LayerNorm, Layer::LayerNorm2D, Layer::RmsNorm,
        Layer::BatchNormNCHW, Layer::BatchNormNHWC, Layer::BatchNormInference,
        Layer::InstanceNorm, Layer::GroupNormNCHW, Layer::GroupNormNHWC})
    for (bool affine : {false, true})
      for (bool epsOutside : {false, true})
        // A large eps makes eps-inside and eps-outside clearly different.
        for (double eps : {1e-5, 0.25})
          cases.push_back({layer, affine, epsOutside, eps});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllLayouts, NormGradients,
                         ::testing::ValuesIn(gradCases()),
                         [](const ::testing::TestParamInfo<GradCase> &info) {
                           const GradCase &c = info.param;
                           return std::string(layerName(c.layer)) +
                                  (c.affine ? "_Affine" : "_NoAffine") +
                                  (c.epsOutside ? "_EpsOutside"
                                                : "_EpsInside") +
                                  (c.eps > 1e-3 ? "_LargeEps" : "_SmallEps");
                         });

TEST(NormBackward, GivenStatsIsElementwise) {
  const NormDesc desc = makeDesc(Layer::BatchNormInference, true, 1e-5, false);
  const Data data = makeData(desc, 9);
  BackwardInputs in;
  in.dy = &data.dy;
  in.x = &data.x;
  in.gamma = &data.gamma;
  in.mean = &data.givenMean;
  in.var = &data.givenVar;
  const BackwardResult r = backward(desc, in);
  ASSERT_TRUE(r.ok()) << r.error;
  const std::vector<int64_t> c = statsIndexMap(desc);
  for (size_t i = 0; i < data.x.size(); ++i)
    EXPECT_NEAR(r.dx[i],
                data.dy[i] * data.gamma[c[i]] /
                    std::sqrt(data.givenVar[c[i]] + 1e-5),
                1e-14);
}

TEST(NormBackward, OnlyRequestedOutputs) {
  const NormDesc desc = makeDesc(Layer::LayerNorm, true, 1e-5, false);
  const Data data = makeData(desc, 2);
  const ForwardResult fwd = forward(desc, data.forwardInputs(desc));
  BackwardInputs in;
  in.dy = &data.dy;
  in.x = &data.x;
  in.gamma = &data.gamma;
  in.mean = &fwd.mean;
  in.rstd = &fwd.rstd;
  BackwardOutputs wanted;
  wanted.dx = false;
  wanted.dbeta = false;
  const BackwardResult r = backward(desc, in, wanted);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.dx.empty());
  EXPECT_EQ(r.dgamma.size(), 8u);
  EXPECT_TRUE(r.dbeta.empty());
  // dbeta of LayerNorm sums dy over every row.
  const BackwardResult all = backward(desc, in);
  for (size_t h = 0; h < 8; ++h) {
    double sum = 0;
    for (size_t row = 0; row < 6; ++row)
      sum += data.dy[row * 8 + h];
    EXPECT_NEAR(all.dbeta[h], sum, 1e-14);
  }
}

// With eps outside and a constant set, sqrt(v) = 0 and the k term is defined
// as 0. The forward is not differentiable in v there, but it is in x: check
// against a small-step difference.
TEST(NormBackward, EpsOutsideConstantSet) {
  NormDesc desc = layerNormDesc({2, 6}, 1, true, 0.25);
  desc.epsOutside = true;
  const Vec x = generateInput(desc, DType::F64, {Pattern::Constant}, 8);
  const Vec gamma = randomUniform(6, 1, 0.5, 1.5), beta = randomNormal(6, 2);
  const Vec dy = randomNormal(12, 3);
  const ForwardResult fwd = forward(desc, x, &gamma, &beta);
  ASSERT_TRUE(fwd.ok());
  ASSERT_EQ(fwd.var[0], 0.0);

  BackwardInputs in;
  in.dy = &dy;
  in.x = &x;
  in.gamma = &gamma;
  in.mean = &fwd.mean;
  in.rstd = &fwd.rstd;
  const BackwardResult bwd = backward(desc, in);
  ASSERT_TRUE(bwd.ok());
  for (double v : bwd.dx)
    EXPECT_TRUE(std::isfinite(v));
  const Vec fd = finiteDifferenceDx(desc, x, &gamma, &beta, dy, 1e-7);
  ASSERT_EQ(fd.size(), x.size());
  const CompareReport r = compareClose(bwd.dx, fd, Tolerance{1e-4, 1e-5});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(NormBackward, FiniteDifferenceWrappers) {
  const NormDesc desc = makeDesc(Layer::BatchNormInference, true, 1e-5, false);
  const Data data = makeData(desc, 12);
  const Vec dgamma =
      finiteDifferenceDgamma(desc, data.x, &data.gamma, &data.beta, data.dy,
                             1e-3, &data.givenMean, &data.givenVar);
  const Vec dbeta =
      finiteDifferenceDbeta(desc, data.x, &data.gamma, &data.beta, data.dy,
                            1e-3, &data.givenMean, &data.givenVar);
  EXPECT_EQ(dgamma.size(), 4u);
  EXPECT_EQ(dbeta.size(), 4u);
  // Missing given statistics: the wrapper returns nothing.
  EXPECT_TRUE(finiteDifferenceDx(desc, data.x, &data.gamma, &data.beta, data.dy)
                  .empty());
}

} // namespace
