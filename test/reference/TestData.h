//===- TestData.h - Deterministic test inputs -------------------*- C++ -*-===//
//
// Seeded generators of test inputs. Results depend only on the seed and the
// arguments, bit for bit, on every platform: the engine is std::mt19937_64
// (whose output sequence the C++ standard fixes), and the distributions are
// implemented here with exact integer/double arithmetic instead of the
// <random> distributions, whose algorithms differ between standard
// libraries. No libm call is involved either (the "normal" variates are
// Irwin-Hall sums, not Box-Muller), so libm versions cannot change a bit.
//
// Every generator rounds its output to the requested dtype, so the doubles
// handed to the reference are exactly the values the kernel sees.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_TEST_REFERENCE_TESTDATA_H
#define NORMC_TEST_REFERENCE_TESTDATA_H

#include "DTypes.h"
#include "NormReference.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace normc::ref {

/// Portable random source.
class Rng {
public:
  explicit Rng(uint64_t seed) : engine(seed) {}

  uint64_t nextBits() { return engine(); }
  /// Uniform in [0, 1), a multiple of 2^-53.
  double uniform01();
  /// Uniform in [lo, hi).
  double uniform(double lo, double hi);
  /// Approximately standard normal: the sum of 12 uniforms minus 6 (mean 0,
  /// variance 1, bounded by +-6, so it never produces outliers that would
  /// break a tolerance by chance).
  double normalish();
  /// +1.0 or -1.0 with equal probability.
  double sign();

private:
  std::mt19937_64 engine;
};

/// What the elements of one reduced set (one stats entry) look like.
enum class Pattern {
  /// normalish(): mean 0, std 1.
  Normal,
  /// Mean 1e4, std 1e-3: catches E[x^2] - E[x]^2 variance formulas.
  LargeMean,
  /// One value repeated (variance exactly 0 after rounding).
  Constant,
  /// |x| uniform in [0.5, 1.0] x the dtype's max finite, random sign.
  NearMax,
  /// Mean normalish(), std 1e-3 (variance 1e-6 < the usual eps of 1e-5).
  TinyVariance,
};

const char *patternName(Pattern pattern);

/// Tunable constants of the patterns (defaults as documented above).
struct PatternParams {
  double largeMean = 1e4;
  double largeMeanStd = 1e-3;
  double tinyStd = 1e-3;
  double nearMaxLo = 0.5;
  double nearMaxHi = 1.0;
};

/// `count` values normalish() * stddev + mean, rounded to `dtype`.
std::vector<double> randomNormal(int64_t count, uint64_t seed,
                                 DType dtype = DType::F64, double mean = 0.0,
                                 double stddev = 1.0);
/// `count` values uniform in [lo, hi), rounded to `dtype`.
std::vector<double> randomUniform(int64_t count, uint64_t seed, double lo,
                                  double hi, DType dtype = DType::F64);

/// x for `desc`, where stats entry s (the set of elements it reduces) follows
/// patterns[s % patterns.size()]; pass one pattern to use it everywhere, or
/// numel(statsShape(desc)) of them to choose each entry. Each entry draws its
/// own location (the constant of Constant, the mean of TinyVariance) before
/// any element is drawn. Returns an empty vector for an invalid desc or an
/// empty pattern list.
std::vector<double>
generateInput(const NormDesc &desc, DType dtype,
              const std::vector<Pattern> &patterns, uint64_t seed,
              const PatternParams &params = PatternParams());

} // namespace normc::ref

#endif // NORMC_TEST_REFERENCE_TESTDATA_H
