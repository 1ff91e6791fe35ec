//===- DTypesTest.cpp - f16/bf16 conversions ------------------------------===//

#include "DTypes.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>

using namespace normc::ref;

namespace {

const double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

TEST(DTypes, SizesNamesAndLimits) {
  EXPECT_EQ(dtypeSize(DType::F16), 2u);
  EXPECT_EQ(dtypeSize(DType::BF16), 2u);
  EXPECT_EQ(dtypeSize(DType::F32), 4u);
  EXPECT_EQ(dtypeSize(DType::F64), 8u);
  EXPECT_STREQ(dtypeName(DType::BF16), "bf16");
  EXPECT_EQ(dtypeMaxFinite(DType::F16), halfBitsToDouble(0x7BFF));
  EXPECT_EQ(dtypeMaxFinite(DType::BF16), bfloat16BitsToDouble(0x7F7F));
  EXPECT_EQ(dtypeMaxFinite(DType::F32), FLT_MAX);
  EXPECT_EQ(dtypeMinNormal(DType::F16), halfBitsToDouble(0x0400));
  EXPECT_EQ(dtypeMinNormal(DType::BF16), bfloat16BitsToDouble(0x0080));
  EXPECT_EQ(dtypeEpsilon(DType::F16), halfBitsToDouble(0x3C01) - 1.0);
  EXPECT_EQ(dtypeEpsilon(DType::BF16), bfloat16BitsToDouble(0x3F81) - 1.0);
}

TEST(DTypes, HalfKnownValues) {
  EXPECT_EQ(doubleToHalfBits(1.0), 0x3C00);
  EXPECT_EQ(doubleToHalfBits(-2.0), 0xC000);
  EXPECT_EQ(doubleToHalfBits(0.0), 0x0000);
  EXPECT_EQ(doubleToHalfBits(-0.0), 0x8000);
  EXPECT_EQ(doubleToHalfBits(65504.0), 0x7BFF);
  EXPECT_EQ(doubleToHalfBits(kInf), 0x7C00);
  EXPECT_EQ(doubleToHalfBits(-kInf), 0xFC00);
  EXPECT_EQ(doubleToHalfBits(std::ldexp(1.0, -14)), 0x0400); // min normal
  EXPECT_EQ(doubleToHalfBits(std::ldexp(1.0, -24)), 0x0001); // min subnormal
  EXPECT_EQ(halfBitsToDouble(0x0001), std::ldexp(1.0, -24));
  EXPECT_EQ(halfBitsToDouble(0x03FF), std::ldexp(1023.0, -24));
  EXPECT_EQ(halfBitsToFloat(0x3555), 0.333251953125f);
  EXPECT_EQ(floatToHalfBits(0.333251953125f), 0x3555);
}

TEST(DTypes, HalfOverflowAndUnderflow) {
  // 65520 is halfway between 65504 and 2^16: ties to even goes up, to inf.
  EXPECT_EQ(doubleToHalfBits(65520.0), 0x7C00);
  EXPECT_EQ(doubleToHalfBits(std::nextafter(65520.0, 0.0)), 0x7BFF);
  EXPECT_EQ(doubleToHalfBits(-1e300), 0xFC00);
  // Half the smallest subnormal ties to even (0); anything above rounds up.
  EXPECT_EQ(doubleToHalfBits(std::ldexp(1.0, -25)), 0x0000);
  EXPECT_EQ(doubleToHalfBits(std::nextafter(std::ldexp(1.0, -25), 1.0)),
            0x0001);
  EXPECT_EQ(doubleToHalfBits(-std::ldexp(1.0, -26)), 0x8000);
  EXPECT_EQ(doubleToHalfBits(std::ldexp(3.0, -25)), 0x0002); // 1.5 -> 2
  EXPECT_EQ(doubleToHalfBits(std::ldexp(5.0, -25)), 0x0002); // 2.5 -> 2
  // The largest subnormal rounding up becomes the smallest normal.
  EXPECT_EQ(doubleToHalfBits(std::ldexp(2047.0, -25)), 0x0400);
  EXPECT_EQ(doubleToHalfBits(DBL_TRUE_MIN), 0x0000);
}

TEST(DTypes, HalfTiesToEven) {
  const double ulp = std::ldexp(1.0, -10);
  EXPECT_EQ(doubleToHalfBits(1.0 + ulp / 2), 0x3C00);     // tie, keep even
  EXPECT_EQ(doubleToHalfBits(1.0 + 3 * ulp / 2), 0x3C02); // tie, round up
  EXPECT_EQ(doubleToHalfBits(-(1.0 + 3 * ulp / 2)), 0xBC02);
  // Just above a tie: a double -> float -> half path would round this to
  // the tie first and then to even (0x3C00); the direct rounding must not.
  EXPECT_EQ(doubleToHalfBits(1.0 + ulp / 2 + std::ldexp(1.0, -30)), 0x3C01);
}

TEST(DTypes, HalfNaN) {
  const uint16_t bits = doubleToHalfBits(kNaN);
  EXPECT_EQ(bits & 0x7C00, 0x7C00);
  EXPECT_NE(bits & 0x03FF, 0);
  EXPECT_EQ(bits & 0x8000, 0);
  EXPECT_EQ(doubleToHalfBits(-kNaN) & 0x8000, 0x8000);
  EXPECT_TRUE(std::isnan(halfBitsToDouble(0x7C01)));
  EXPECT_TRUE(std::isnan(halfBitsToDouble(0xFE00)));
  EXPECT_TRUE(std::isnan(roundToDType(kNaN, DType::F16)));
  // A signaling NaN whose payload lives only in the low double bits must not
  // turn into an infinity.
  const uint16_t low = doubleToHalfBits(std::nan("1"));
  EXPECT_TRUE(std::isnan(halfBitsToDouble(low)));
}

TEST(DTypes, BFloat16KnownValues) {
  EXPECT_EQ(doubleToBFloat16Bits(1.0), 0x3F80);
  EXPECT_EQ(doubleToBFloat16Bits(-1.0), 0xBF80);
  EXPECT_EQ(doubleToBFloat16Bits(-0.0), 0x8000);
  EXPECT_EQ(doubleToBFloat16Bits(kInf), 0x7F80);
  EXPECT_EQ(doubleToBFloat16Bits(dtypeMaxFinite(DType::BF16)), 0x7F7F);
  // FLT_MAX is above the bf16 max by more than half an ulp.
  EXPECT_EQ(floatToBFloat16Bits(FLT_MAX), 0x7F80);
  EXPECT_EQ(doubleToBFloat16Bits(std::ldexp(1.0, -133)), 0x0001);
  EXPECT_EQ(bfloat16BitsToFloat(0x4049), 3.140625f);
  EXPECT_EQ(floatToBFloat16Bits(3.14159265f), 0x4049);
  const uint16_t nan =
      floatToBFloat16Bits(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7FC0, 0x7FC0);
  EXPECT_TRUE(std::isnan(bfloat16BitsToFloat(0x7F81)));
}

TEST(DTypes, BFloat16TiesToEven) {
  const double ulp = std::ldexp(1.0, -7);
  EXPECT_EQ(doubleToBFloat16Bits(1.0 + ulp / 2), 0x3F80);
  EXPECT_EQ(doubleToBFloat16Bits(1.0 + 3 * ulp / 2), 0x3F82);
  EXPECT_EQ(doubleToBFloat16Bits(std::nextafter(1.0 + ulp / 2, 2.0)), 0x3F81);
  EXPECT_EQ(doubleToBFloat16Bits(std::nextafter(1.0 + 3 * ulp / 2, 0.0)),
            0x3F81);
}

/// For every pattern: exact round trip through double and float, and, for
/// every adjacent pair of finite values, the midpoint ties to even while the
/// doubles right next to it go to the nearer value.
void checkExhaustive(uint16_t (*toBits)(double), double (*toDouble)(uint16_t),
                     uint16_t (*floatToBits)(float),
                     float (*bitsToFloat)(uint16_t)) {
  for (uint32_t b = 0; b <= 0xFFFF; ++b) {
    const uint16_t bits = static_cast<uint16_t>(b);
    const double value = toDouble(bits);
    if (std::isnan(value)) {
      EXPECT_TRUE(std::isnan(toDouble(toBits(value)))) << b;
      EXPECT_TRUE(std::isnan(bitsToFloat(bits))) << b;
      continue;
    }
    ASSERT_EQ(toBits(value), bits) << b;
    ASSERT_EQ(floatToBits(bitsToFloat(bits)), bits) << b;
    ASSERT_EQ(static_cast<double>(bitsToFloat(bits)), value) << b;

    // Positive finite patterns below the max: check the gap above them.
    const double next = toDouble(static_cast<uint16_t>(bits + 1));
    if ((bits & 0x8000) || !std::isfinite(next))
      continue;
    const double mid = value + (next - value) / 2; // exact in double
    const uint16_t even = (bits & 1) ? static_cast<uint16_t>(bits + 1) : bits;
    ASSERT_EQ(toBits(mid), even) << b;
    ASSERT_EQ(toBits(-mid), even | 0x8000) << b;
    ASSERT_EQ(toBits(std::nextafter(mid, 0.0)), bits) << b;
    ASSERT_EQ(toBits(std::nextafter(mid, kInf)), bits + 1) << b;
  }
}

TEST(DTypes, HalfExhaustive) {
  checkExhaustive(doubleToHalfBits, halfBitsToDouble, floatToHalfBits,
                  halfBitsToFloat);
}

TEST(DTypes, BFloat16Exhaustive) {
  checkExhaustive(doubleToBFloat16Bits, bfloat16BitsToDouble,
                  floatToBFloat16Bits, bfloat16BitsToFloat);
}

TEST(DTypes, RoundToDType) {
  const double third = 1.0 / 3.0;
  EXPECT_EQ(roundToDType(third, DType::F64), third);
  EXPECT_EQ(roundToDType(third, DType::F32),
            static_cast<double>(static_cast<float>(third)));
  EXPECT_EQ(roundToDType(third, DType::F16), 0.333251953125);
  EXPECT_EQ(roundToDType(third, DType::BF16), 0.333984375);
  EXPECT_EQ(roundToDType(1e39, DType::F32), kInf);
  EXPECT_EQ(roundToDType(1e5, DType::F16), kInf);
  EXPECT_EQ(roundToDType(1e5, DType::BF16), 99840.0);
}

TEST(DTypes, StoreAndLoadRoundTrip) {
  const std::vector<double> values = {0.0,  -0.0,    1.0 / 3.0, -2.5,
                                      1e-6, 65504.0, 1e5,       kInf};
  for (DType dtype : {DType::F32, DType::F16, DType::BF16, DType::F64}) {
    const std::vector<uint8_t> bytes = storeAs(dtype, values);
    ASSERT_EQ(bytes.size(), values.size() * dtypeSize(dtype));
    const std::vector<double> loaded =
        loadFrom(dtype, bytes.data(), values.size());
    const std::vector<double> expected = roundToDType(values, dtype);
    for (size_t i = 0; i < values.size(); ++i) {
      EXPECT_EQ(loaded[i], expected[i]) << dtypeName(dtype) << " " << i;
      EXPECT_EQ(std::signbit(loaded[i]), std::signbit(expected[i]));
    }
    // Storing an already rounded vector is lossless.
    EXPECT_EQ(loadFrom(dtype, storeAs(dtype, loaded).data(), loaded.size()),
              loaded);
  }
  const std::vector<uint8_t> half = storeAs(DType::F16, {1.0});
  ASSERT_EQ(half.size(), 2u);
  uint16_t bits;
  std::memcpy(&bits, half.data(), 2);
  EXPECT_EQ(bits, 0x3C00);
}

} // namespace
