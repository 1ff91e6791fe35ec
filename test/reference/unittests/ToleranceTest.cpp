//===- ToleranceTest.cpp - assert_close semantics -------------------------===//

#include "Tolerance.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

using namespace normc::ref;

namespace {

const double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

TEST(Tolerance, Defaults) {
  EXPECT_EQ(defaultTolerance(DType::F32).rtol, 1.3e-6);
  EXPECT_EQ(defaultTolerance(DType::F32).atol, 1e-5);
  EXPECT_EQ(defaultTolerance(DType::F16).rtol, 1e-3);
  EXPECT_EQ(defaultTolerance(DType::F16).atol, 1e-5);
  EXPECT_EQ(defaultTolerance(DType::BF16).rtol, 1.6e-2);
  EXPECT_EQ(defaultTolerance(DType::BF16).atol, 1e-5);
  EXPECT_EQ(defaultTolerance(DType::F64).rtol, 1e-7);
  EXPECT_EQ(defaultTolerance(DType::F64).atol, 1e-7);
}

TEST(Tolerance, FiniteBound) {
  // Exactly representable bound: |a - e| = 0.25 = atol + rtol * |e|.
  const Tolerance tol{0.125, 0.125};
  EXPECT_TRUE(isClose(1.25, 1.0, tol));
  EXPECT_TRUE(isClose(0.75, 1.0, tol));
  EXPECT_FALSE(isClose(std::nextafter(1.25, 2.0), 1.0, tol));
  // The bound scales with |expected|, not |actual|.
  EXPECT_TRUE(isClose(7.0, 8.0, Tolerance{0.125, 0.0}));  // 1 <= 1
  EXPECT_FALSE(isClose(8.0, 7.0, Tolerance{0.125, 0.0})); // 1 > 0.875
  EXPECT_TRUE(isClose(-7.0, -8.0, Tolerance{0.125, 0.0}));
  EXPECT_TRUE(isClose(0.0, 0.0, Tolerance{0.0, 0.0}));
  EXPECT_FALSE(isClose(1e-300, 0.0, Tolerance{1.0, 0.0}));
}

TEST(Tolerance, NonFinite) {
  const Tolerance loose{1e9, 1e9};
  EXPECT_TRUE(isClose(kNaN, kNaN, loose));
  EXPECT_FALSE(isClose(kNaN, kNaN, loose, /*equalNan=*/false));
  EXPECT_FALSE(isClose(kNaN, 1.0, loose));
  EXPECT_FALSE(isClose(1.0, kNaN, loose));
  EXPECT_TRUE(isClose(kInf, kInf, loose));
  EXPECT_TRUE(isClose(-kInf, -kInf, loose));
  EXPECT_FALSE(isClose(kInf, -kInf, loose));
  EXPECT_FALSE(isClose(1e308, kInf, loose)); // rtol * inf must not accept
  EXPECT_FALSE(isClose(kInf, 1e308, loose));
  EXPECT_FALSE(isClose(kNaN, kInf, loose));
}

TEST(Tolerance, ReportOnMatch) {
  const std::vector<double> expected = {1.0, 2.0, -4.0};
  const std::vector<double> actual = {1.0, 2.0 + 1e-6, -4.0};
  const CompareReport r =
      compareClose(actual, expected, defaultTolerance(DType::F32));
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.count, 3);
  EXPECT_EQ(r.numMismatches, 0);
  EXPECT_NEAR(r.maxAbsError, 1e-6, 1e-15);
  EXPECT_NEAR(r.maxRelError, 5e-7, 1e-15);
  EXPECT_EQ(r.worstIndex, 1);
  EXPECT_NE(r.message.find("all 3 elements close"), std::string::npos)
      << r.message;
}

TEST(Tolerance, ReportOnMismatch) {
  const std::vector<double> expected = {1.0, 2.0, 0.0, 3.0, kInf, kNaN};
  const std::vector<double> actual = {1.0, 2.1, 1e-3, 3.0, kInf, kNaN};
  const CompareReport r = compareClose(actual, expected, Tolerance{1e-3, 0});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.count, 6);
  EXPECT_EQ(r.numMismatches, 2);
  EXPECT_NEAR(r.maxAbsError, 0.1, 1e-12);
  EXPECT_EQ(r.maxRelError, kInf); // 1e-3 vs expected 0
  EXPECT_EQ(r.worstIndex, 2);     // infinitely outside a zero bound
  EXPECT_EQ(r.worstActual, 1e-3);
  EXPECT_EQ(r.worstExpected, 0.0);
  EXPECT_NE(r.message.find("mismatched elements: 2 / 6"), std::string::npos)
      << r.message;
  EXPECT_NE(r.message.find("index 2"), std::string::npos) << r.message;
}

TEST(Tolerance, WorstPrefersNonFiniteMismatch) {
  const std::vector<double> expected = {1.0, 1.0, 1.0};
  const std::vector<double> actual = {5.0, kNaN, 1.0};
  const CompareReport r = compareClose(actual, expected, Tolerance{0, 0});
  EXPECT_EQ(r.numMismatches, 2);
  EXPECT_EQ(r.worstIndex, 0); // both infinitely far; the first one wins
  const CompareReport r2 = compareClose(actual, expected, Tolerance{0, 10.0});
  EXPECT_EQ(r2.numMismatches, 1);
  EXPECT_EQ(r2.worstIndex, 1);
  EXPECT_EQ(r2.maxAbsError, 4.0); // the NaN is not part of the maxima
}

TEST(Tolerance, SizeMismatch) {
  const CompareReport r = compareClose({1.0}, {1.0, 2.0}, Tolerance{});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("size mismatch"), std::string::npos);
}

TEST(Tolerance, CompareBufferUsesDtype) {
  const std::vector<double> expected = {1.0, 1.0 / 3.0, -7.5};
  const std::vector<uint8_t> f16 = storeAs(DType::F16, expected);
  // Rounding to f16 is within f16's default tolerance but not f32's.
  const CompareReport ok =
      compareBuffer(DType::F16, f16.data(), expected.size(), expected);
  EXPECT_TRUE(ok.ok) << ok.message;
  EXPECT_EQ(ok.message.rfind("f16: ", 0), 0u);
  const CompareReport strict =
      compareBuffer(DType::F16, f16.data(), expected.size(), expected,
                    defaultTolerance(DType::F32));
  EXPECT_FALSE(strict.ok);
  EXPECT_EQ(strict.worstIndex, 1);
}

TEST(Tolerance, EmptyBuffers) {
  const CompareReport r = compareClose({}, {}, Tolerance{});
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.worstIndex, -1);
}

} // namespace
