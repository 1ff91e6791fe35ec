//===- TestData.cpp - Deterministic test inputs ---------------------------===//

#include "TestData.h"

namespace normc::ref {

double Rng::uniform01() {
  // The top 53 bits make an exact double in [0, 1).
  constexpr double kTwoToMinus53 = 1.0 / 9007199254740992.0;
  return static_cast<double>(nextBits() >> 11) * kTwoToMinus53;
}

double Rng::uniform(double lo, double hi) {
  return lo + (hi - lo) * uniform01();
}

double Rng::normalish() {
  // Irwin-Hall: each uniform has variance 1/12, so twelve of them sum to
  // variance 1 around a mean of 6. Only + and - are used: bit-reproducible.
  double sum = 0.0;
  for (int i = 0; i < 12; ++i)
    sum += uniform01();
  return sum - 6.0;
}

double Rng::sign() { return (nextBits() >> 63) ? -1.0 : 1.0; }

const char *patternName(Pattern pattern) {
  switch (pattern) {
  case Pattern::Normal:
    return "normal";
  case Pattern::LargeMean:
    return "large-mean";
  case Pattern::Constant:
    return "constant";
  case Pattern::NearMax:
    return "near-max";
  case Pattern::TinyVariance:
    return "tiny-variance";
  }
  return "?";
}

std::vector<double> randomNormal(int64_t count, uint64_t seed, DType dtype,
                                 double mean, double stddev) {
  Rng rng(seed);
  std::vector<double> values(static_cast<size_t>(count));
  for (double &v : values)
    v = roundToDType(mean + stddev * rng.normalish(), dtype);
  return values;
}

std::vector<double> randomUniform(int64_t count, uint64_t seed, double lo,
                                  double hi, DType dtype) {
  Rng rng(seed);
  std::vector<double> values(static_cast<size_t>(count));
  for (double &v : values)
    v = roundToDType(rng.uniform(lo, hi), dtype);
  return values;
}

namespace {

/// Per-entry location drawn up front, so that an entry's elements look the
/// same whatever order the elements are visited in.
double drawLocation(Pattern pattern, Rng &rng) {
  switch (pattern) {
  case Pattern::Constant:
  case Pattern::TinyVariance:
    return rng.normalish();
  case Pattern::Normal:
  case Pattern::LargeMean:
  case Pattern::NearMax:
    return 0.0;
  }
  return 0.0;
}

double drawElement(Pattern pattern, double location, DType dtype,
                   const PatternParams &params, Rng &rng) {
  switch (pattern) {
  case Pattern::Normal:
    return rng.normalish();
  case Pattern::LargeMean:
    return params.largeMean + params.largeMeanStd * rng.normalish();
  case Pattern::Constant:
    return location;
  case Pattern::NearMax: {
    const double magnitude = rng.uniform(params.nearMaxLo, params.nearMaxHi);
    // Multiply last: scaling the fraction keeps the product finite even for
    // f64, whose max cannot be exceeded by an intermediate.
    return rng.sign() * magnitude * dtypeMaxFinite(dtype);
  }
  case Pattern::TinyVariance:
    return location + params.tinyStd * rng.normalish();
  }
  return 0.0;
}

} // namespace

std::vector<double> generateInput(const NormDesc &desc, DType dtype,
                                  const std::vector<Pattern> &patterns,
                                  uint64_t seed, const PatternParams &params) {
  if (!validate(desc).empty() || patterns.empty())
    return {};
  const std::vector<int64_t> statsIndex = statsIndexMap(desc);
  const size_t numStats = static_cast<size_t>(numel(statsShape(desc)));

  Rng rng(seed);
  std::vector<Pattern> entryPattern(numStats);
  std::vector<double> location(numStats);
  for (size_t s = 0; s < numStats; ++s) {
    entryPattern[s] = patterns[s % patterns.size()];
    location[s] = drawLocation(entryPattern[s], rng);
  }

  std::vector<double> x(statsIndex.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const size_t s = static_cast<size_t>(statsIndex[i]);
    x[i] = roundToDType(
        drawElement(entryPattern[s], location[s], dtype, params, rng), dtype);
  }
  return x;
}

} // namespace normc::ref
