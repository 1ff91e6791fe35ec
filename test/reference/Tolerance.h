//===- Tolerance.h - torch.testing.assert_close comparisons -----*- C++ -*-===//
//
// Elementwise closeness as torch.testing.assert_close defines it:
//   |actual - expected| <= atol + rtol * |expected|
// where non-finite values are only close to themselves: +inf to +inf, -inf
// to -inf, and NaN to NaN when equalNan (the default here; torch's default
// is equal_nan=False, but a reference that predicts NaN should accept NaN).
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_TEST_REFERENCE_TOLERANCE_H
#define NORMC_TEST_REFERENCE_TOLERANCE_H

#include "DTypes.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace normc::ref {

struct Tolerance {
  double rtol = 0.0;
  double atol = 0.0;
};

/// torch.testing's defaults: f32 (1.3e-6, 1e-5), f16 (1e-3, 1e-5),
/// bf16 (1.6e-2, 1e-5), f64 (1e-7, 1e-7).
Tolerance defaultTolerance(DType dtype);

bool isClose(double actual, double expected, const Tolerance &tol,
             bool equalNan = true);

struct CompareReport {
  bool ok = true;
  int64_t count = 0;
  int64_t numMismatches = 0;
  /// Greatest |actual - expected| over pairs where both are finite.
  double maxAbsError = 0.0;
  /// Greatest |actual - expected| / |expected| over the same pairs (inf when
  /// expected is 0 and actual is not).
  double maxRelError = 0.0;
  /// The mismatch furthest outside its tolerance (any non-finite mismatch
  /// first), or the element closest to its bound when everything matches;
  /// -1 when there is no element.
  int64_t worstIndex = -1;
  double worstActual = 0.0;
  double worstExpected = 0.0;
  /// One line for a test failure message.
  std::string message;
};

CompareReport compareClose(const double *actual, const double *expected,
                           size_t count, const Tolerance &tol,
                           bool equalNan = true);
/// Sizes must match; a size mismatch is reported as a failure.
CompareReport compareClose(const std::vector<double> &actual,
                           const std::vector<double> &expected,
                           const Tolerance &tol, bool equalNan = true);
/// Compares a raw buffer of `count` elements of `dtype` (as a kernel wrote
/// it) with expected values, using the dtype's default tolerance.
CompareReport compareBuffer(DType dtype, const void *actual, size_t count,
                            const std::vector<double> &expected);
CompareReport compareBuffer(DType dtype, const void *actual, size_t count,
                            const std::vector<double> &expected,
                            const Tolerance &tol, bool equalNan = true);

} // namespace normc::ref

#endif // NORMC_TEST_REFERENCE_TOLERANCE_H
