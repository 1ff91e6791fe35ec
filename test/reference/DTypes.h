//===- DTypes.h - Element types of the reference library --------*- C++ -*-===//
//
// Element types used by the kernels under test, and exact conversions between
// them and double. The reference computes everything in float64; these
// helpers put the reference's inputs into the precision the kernel sees and
// read kernel outputs back.
//
// Conversions to f16/bf16 round to nearest, ties to even, straight from
// double: going double -> float -> half would round twice, and double rounding
// is not innocuous for arbitrary doubles (1 + 2^-11 + 2^-30 would become 1 in
// half instead of 1 + 2^-10). NaN stays NaN (quiet, sign and top payload bits
// kept), infinities stay infinities, overflow goes to infinity, and subnormals
// of the target format are produced and read back exactly.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_TEST_REFERENCE_DTYPES_H
#define NORMC_TEST_REFERENCE_DTYPES_H

#include <cstddef>
#include <cstdint>
#include <vector>

namespace normc::ref {

enum class DType { F32, F16, BF16, F64 };

/// "f32", "f16", "bf16", "f64".
const char *dtypeName(DType dtype);
/// Storage size of one element in bytes.
size_t dtypeSize(DType dtype);
/// Largest finite value of the type.
double dtypeMaxFinite(DType dtype);
/// Smallest positive normal value of the type.
double dtypeMinNormal(DType dtype);
/// Distance from 1.0 to the next representable value.
double dtypeEpsilon(DType dtype);

/// IEEE binary16 bits <-> float/double.
uint16_t doubleToHalfBits(double value);
uint16_t floatToHalfBits(float value);
double halfBitsToDouble(uint16_t bits);
float halfBitsToFloat(uint16_t bits);

/// bfloat16 bits (the top half of a binary32) <-> float/double.
uint16_t doubleToBFloat16Bits(double value);
uint16_t floatToBFloat16Bits(float value);
double bfloat16BitsToDouble(uint16_t bits);
float bfloat16BitsToFloat(uint16_t bits);

/// The value of `dtype` nearest to `value` (RNE), as a double.
double roundToDType(double value, DType dtype);
std::vector<double> roundToDType(const std::vector<double> &values,
                                 DType dtype);

/// Writes `values` rounded to `dtype` into `dst` (host byte order); `dst`
/// must hold values.size() * dtypeSize(dtype) bytes.
void storeAs(DType dtype, const std::vector<double> &values, void *dst);
/// Same, into a freshly allocated byte buffer.
std::vector<uint8_t> storeAs(DType dtype, const std::vector<double> &values);
/// Reads `count` elements of `dtype` from `src` (host byte order).
std::vector<double> loadFrom(DType dtype, const void *src, size_t count);

} // namespace normc::ref

#endif // NORMC_TEST_REFERENCE_DTYPES_H
