//===- Tolerance.cpp - torch.testing.assert_close comparisons -------------===//

#include "Tolerance.h"

#include <cmath>
#include <cstdio>
#include <limits>

namespace normc::ref {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

bool bothFinite(double a, double b) {
  return std::isfinite(a) && std::isfinite(b);
}

/// How far `actual` is from `expected` in units of the allowed error: <= 1
/// is close. Non-finite mismatches are infinitely far.
double violation(double actual, double expected, const Tolerance &tol,
                 bool equalNan) {
  if (!bothFinite(actual, expected))
    return isClose(actual, expected, tol, equalNan) ? 0.0 : kInf;
  const double diff = std::fabs(actual - expected);
  const double bound = tol.atol + tol.rtol * std::fabs(expected);
  if (bound > 0)
    return diff / bound;
  return diff > 0 ? kInf : 0.0;
}

std::string format(const char *fmt, double a, double b, double c, double d) {
  char buffer[256];
  std::snprintf(buffer, sizeof(buffer), fmt, a, b, c, d);
  return buffer;
}

std::string describe(const CompareReport &report, const Tolerance &tol) {
  std::string text;
  if (report.ok)
    text = "all " + std::to_string(report.count) + " elements close";
  else
    text = "mismatched elements: " + std::to_string(report.numMismatches) +
           " / " + std::to_string(report.count);
  text += format("; greatest absolute difference %.6g, greatest relative "
                 "difference %.6g (rtol=%g, atol=%g)",
                 report.maxAbsError, report.maxRelError, tol.rtol, tol.atol);
  if (report.worstIndex >= 0)
    text += "; worst at index " + std::to_string(report.worstIndex) +
            format(": actual %.17g, expected %.17g", report.worstActual,
                   report.worstExpected, 0, 0);
  return text;
}

} // namespace

Tolerance defaultTolerance(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return {1.3e-6, 1e-5};
  case DType::F16:
    return {1e-3, 1e-5};
  case DType::BF16:
    return {1.6e-2, 1e-5};
  case DType::F64:
    return {1e-7, 1e-7};
  }
  return {};
}

bool isClose(double actual, double expected, const Tolerance &tol,
             bool equalNan) {
  if (std::isnan(actual) || std::isnan(expected))
    return equalNan && std::isnan(actual) && std::isnan(expected);
  // Handles infinities: inf - inf would be NaN, and inf <= atol + rtol * inf
  // would accept any finite actual.
  if (!bothFinite(actual, expected))
    return actual == expected;
  return std::fabs(actual - expected) <=
         tol.atol + tol.rtol * std::fabs(expected);
}

CompareReport compareClose(const double *actual, const double *expected,
                           size_t count, const Tolerance &tol, bool equalNan) {
  CompareReport report;
  report.count = static_cast<int64_t>(count);
  double worst = -1.0;
  for (size_t i = 0; i < count; ++i) {
    const double a = actual[i], e = expected[i];
    if (!isClose(a, e, tol, equalNan)) {
      report.ok = false;
      ++report.numMismatches;
    }
    if (bothFinite(a, e)) {
      const double diff = std::fabs(a - e);
      report.maxAbsError = std::fmax(report.maxAbsError, diff);
      const double rel = e != 0 ? diff / std::fabs(e) : (diff > 0 ? kInf : 0);
      report.maxRelError = std::fmax(report.maxRelError, rel);
    }
    const double v = violation(a, e, tol, equalNan);
    if (v > worst) {
      worst = v;
      report.worstIndex = static_cast<int64_t>(i);
      report.worstActual = a;
      report.worstExpected = e;
    }
  }
  report.message = describe(report, tol);
  return report;
}

CompareReport compareClose(const std::vector<double> &actual,
                           const std::vector<double> &expected,
                           const Tolerance &tol, bool equalNan) {
  if (actual.size() != expected.size()) {
    CompareReport report;
    report.ok = false;
    report.count = static_cast<int64_t>(expected.size());
    report.message = "size mismatch: actual has " +
                     std::to_string(actual.size()) + " elements, expected " +
                     std::to_string(expected.size());
    return report;
  }
  return compareClose(actual.data(), expected.data(), actual.size(), tol,
                      equalNan);
}

CompareReport compareBuffer(DType dtype, const void *actual, size_t count,
                            const std::vector<double> &expected) {
  return compareBuffer(dtype, actual, count, expected, defaultTolerance(dtype));
}

CompareReport compareBuffer(DType dtype, const void *actual, size_t count,
                            const std::vector<double> &expected,
                            const Tolerance &tol, bool equalNan) {
  CompareReport report =
      compareClose(loadFrom(dtype, actual, count), expected, tol, equalNan);
  report.message = std::string(dtypeName(dtype)) + ": " + report.message;
  return report;
}

} // namespace normc::ref
