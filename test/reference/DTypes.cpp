//===- DTypes.cpp - Element types of the reference library ----------------===//

#include "DTypes.h"

#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>

namespace normc::ref {

namespace {

/// A binary floating-point format narrower than float: 1 sign bit, ExpBits
/// exponent bits with bias 2^(ExpBits-1)-1, MantBits stored fraction bits.
struct SmallFormat {
  int expBits;
  int mantBits;
};

constexpr SmallFormat kHalf{5, 10};
constexpr SmallFormat kBFloat16{8, 7};

constexpr int kDoubleFracBits = 52;

uint64_t bitsOf(double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

double doubleFromBits(uint64_t bits) {
  double value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

int bias(SmallFormat fmt) { return (1 << (fmt.expBits - 1)) - 1; }

uint32_t expAllOnes(SmallFormat fmt) {
  return ((1u << fmt.expBits) - 1) << fmt.mantBits;
}

/// NaN of `fmt` with the top fraction bits of the double NaN, made quiet so
/// that dropping the low payload bits can never turn it into an infinity.
uint32_t narrowNaN(uint32_t sign, uint64_t doubleFrac, SmallFormat fmt) {
  uint32_t payload =
      static_cast<uint32_t>(doubleFrac >> (kDoubleFracBits - fmt.mantBits));
  payload |= 1u << (fmt.mantBits - 1);
  return sign | expAllOnes(fmt) | payload;
}

/// Rounds `value` to the nearest value of `fmt`, ties to even, and returns its
/// bit pattern.
///
/// The double is sig * 2^(exp - 52) with an integer significand `sig`. The
/// target's spacing at that magnitude is 2^(targetExp - mantBits), where
/// targetExp is the exponent clamped below at the format's minimum normal
/// exponent (the clamp is what yields subnormals). Dividing sig by the spacing
/// is a right shift, and the shifted-out bits decide the rounding exactly, so
/// there is no intermediate rounding anywhere.
uint32_t roundDoubleToSmall(double value, SmallFormat fmt) {
  const uint64_t bits = bitsOf(value);
  const uint32_t sign = static_cast<uint32_t>(bits >> 63)
                        << (fmt.expBits + fmt.mantBits);
  const int rawExp = static_cast<int>((bits >> kDoubleFracBits) & 0x7ff);
  const uint64_t frac = bits & ((uint64_t{1} << kDoubleFracBits) - 1);

  if (rawExp == 0x7ff)
    return frac == 0 ? sign | expAllOnes(fmt) : narrowNaN(sign, frac, fmt);

  // Double subnormals are far below the smallest f16/bf16 subnormal; treating
  // their exponent as -1022 only makes the shift larger, which still yields 0.
  const uint64_t sig =
      rawExp == 0 ? frac : frac | (uint64_t{1} << kDoubleFracBits);
  const int exp = rawExp == 0 ? -1022 : rawExp - 1023;
  if (sig == 0)
    return sign;

  const int minExp = 1 - bias(fmt);
  int targetExp = exp < minExp ? minExp : exp;
  const int shift = kDoubleFracBits - fmt.mantBits + (targetExp - exp);
  // sig < 2^53, so beyond 54 bits of shift the value is below a quarter of
  // the smallest subnormal and rounds to (signed) zero.
  if (shift > 54)
    return sign;

  uint64_t n = sig >> shift;
  const uint64_t rem = sig & ((uint64_t{1} << shift) - 1);
  const uint64_t halfway = uint64_t{1} << (shift - 1);
  if (rem > halfway || (rem == halfway && (n & 1)))
    ++n;

  const uint64_t implicitBit = uint64_t{1} << fmt.mantBits;
  // Rounding up 1.11..1 carries into the next binade: n == 2 * implicitBit.
  if (n >= 2 * implicitBit) {
    n >>= 1;
    ++targetExp;
  }
  // Below the implicit bit only happens at targetExp == minExp: a subnormal
  // (or zero), whose exponent field is 0. A subnormal that rounds up to
  // implicitBit falls through and is encoded as the smallest normal.
  if (n < implicitBit)
    return sign | static_cast<uint32_t>(n);

  const int biasedExp = targetExp + bias(fmt);
  if (biasedExp >= (1 << fmt.expBits) - 1)
    return sign | expAllOnes(fmt);
  return sign | (static_cast<uint32_t>(biasedExp) << fmt.mantBits) |
         static_cast<uint32_t>(n - implicitBit);
}

/// Exact value of a `fmt` bit pattern.
double smallToDouble(uint32_t bits, SmallFormat fmt) {
  const int totalBits = 1 + fmt.expBits + fmt.mantBits;
  const bool negative = (bits >> (totalBits - 1)) & 1;
  const uint32_t expField = (bits >> fmt.mantBits) & ((1u << fmt.expBits) - 1);
  const uint32_t mant = bits & ((1u << fmt.mantBits) - 1);

  if (expField == (1u << fmt.expBits) - 1) {
    if (mant == 0)
      return negative ? -std::numeric_limits<double>::infinity()
                      : std::numeric_limits<double>::infinity();
    // Rebuild the NaN bit by bit so that sign and payload survive.
    const uint64_t nanBits =
        (uint64_t{negative} << 63) | (uint64_t{0x7ff} << kDoubleFracBits) |
        (uint64_t{mant} << (kDoubleFracBits - fmt.mantBits));
    return doubleFromBits(nanBits);
  }

  const int minExp = 1 - bias(fmt);
  double magnitude;
  if (expField == 0)
    magnitude = std::ldexp(static_cast<double>(mant), minExp - fmt.mantBits);
  else
    magnitude =
        std::ldexp(static_cast<double>(mant | (1u << fmt.mantBits)),
                   static_cast<int>(expField) - bias(fmt) - fmt.mantBits);
  return negative ? -magnitude : magnitude;
}

} // namespace

const char *dtypeName(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return "f32";
  case DType::F16:
    return "f16";
  case DType::BF16:
    return "bf16";
  case DType::F64:
    return "f64";
  }
  return "?";
}

size_t dtypeSize(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return 4;
  case DType::F16:
  case DType::BF16:
    return 2;
  case DType::F64:
    return 8;
  }
  return 0;
}

double dtypeMaxFinite(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return FLT_MAX;
  case DType::F16:
    return 65504.0;
  case DType::BF16:
    return std::ldexp(2.0 - std::ldexp(1.0, -7), 127);
  case DType::F64:
    return DBL_MAX;
  }
  return 0;
}

double dtypeMinNormal(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return FLT_MIN;
  case DType::F16:
    return std::ldexp(1.0, -14);
  case DType::BF16:
    return std::ldexp(1.0, -126);
  case DType::F64:
    return DBL_MIN;
  }
  return 0;
}

double dtypeEpsilon(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return FLT_EPSILON;
  case DType::F16:
    return std::ldexp(1.0, -10);
  case DType::BF16:
    return std::ldexp(1.0, -7);
  case DType::F64:
    return DBL_EPSILON;
  }
  return 0;
}

uint16_t doubleToHalfBits(double value) {
  return static_cast<uint16_t>(roundDoubleToSmall(value, kHalf));
}

// float -> double is exact, so this is a single rounding too.
uint16_t floatToHalfBits(float value) {
  return doubleToHalfBits(static_cast<double>(value));
}

double halfBitsToDouble(uint16_t bits) { return smallToDouble(bits, kHalf); }

// Every half value is a float, so the narrowing here is exact.
float halfBitsToFloat(uint16_t bits) {
  return static_cast<float>(halfBitsToDouble(bits));
}

uint16_t doubleToBFloat16Bits(double value) {
  return static_cast<uint16_t>(roundDoubleToSmall(value, kBFloat16));
}

uint16_t floatToBFloat16Bits(float value) {
  return doubleToBFloat16Bits(static_cast<double>(value));
}

double bfloat16BitsToDouble(uint16_t bits) {
  return smallToDouble(bits, kBFloat16);
}

// bf16 is by definition the upper half of a binary32.
float bfloat16BitsToFloat(uint16_t bits) {
  const uint32_t floatBits = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &floatBits, sizeof(value));
  return value;
}

double roundToDType(double value, DType dtype) {
  switch (dtype) {
  case DType::F32:
    // The hardware conversion is RNE in the default floating-point
    // environment and overflows to infinity.
    return static_cast<double>(static_cast<float>(value));
  case DType::F16:
    return halfBitsToDouble(doubleToHalfBits(value));
  case DType::BF16:
    return bfloat16BitsToDouble(doubleToBFloat16Bits(value));
  case DType::F64:
    return value;
  }
  return value;
}

std::vector<double> roundToDType(const std::vector<double> &values,
                                 DType dtype) {
  std::vector<double> rounded(values.size());
  for (size_t i = 0; i < values.size(); ++i)
    rounded[i] = roundToDType(values[i], dtype);
  return rounded;
}

void storeAs(DType dtype, const std::vector<double> &values, void *dst) {
  auto *out = static_cast<uint8_t *>(dst);
  const size_t size = dtypeSize(dtype);
  for (size_t i = 0; i < values.size(); ++i, out += size) {
    switch (dtype) {
    case DType::F32: {
      const float v = static_cast<float>(values[i]);
      std::memcpy(out, &v, size);
      break;
    }
    case DType::F16: {
      const uint16_t v = doubleToHalfBits(values[i]);
      std::memcpy(out, &v, size);
      break;
    }
    case DType::BF16: {
      const uint16_t v = doubleToBFloat16Bits(values[i]);
      std::memcpy(out, &v, size);
      break;
    }
    case DType::F64:
      std::memcpy(out, &values[i], size);
      break;
    }
  }
}

std::vector<uint8_t> storeAs(DType dtype, const std::vector<double> &values) {
  std::vector<uint8_t> bytes(values.size() * dtypeSize(dtype));
  storeAs(dtype, values, bytes.data());
  return bytes;
}

std::vector<double> loadFrom(DType dtype, const void *src, size_t count) {
  std::vector<double> values(count);
  const auto *in = static_cast<const uint8_t *>(src);
  const size_t size = dtypeSize(dtype);
  for (size_t i = 0; i < count; ++i, in += size) {
    switch (dtype) {
    case DType::F32: {
      float v;
      std::memcpy(&v, in, size);
      values[i] = v;
      break;
    }
    case DType::F16: {
      uint16_t v;
      std::memcpy(&v, in, size);
      values[i] = halfBitsToDouble(v);
      break;
    }
    case DType::BF16: {
      uint16_t v;
      std::memcpy(&v, in, size);
      values[i] = bfloat16BitsToDouble(v);
      break;
    }
    case DType::F64:
      std::memcpy(&values[i], in, size);
      break;
    }
  }
  return values;
}

} // namespace normc::ref
