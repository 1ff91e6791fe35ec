//===- NormReference.h - float64 reference of normalizations ----*- C++ -*-===//
//
// An independent float64 implementation of LayerNorm, RMSNorm, BatchNorm
// (training, inference, running statistics), InstanceNorm and GroupNorm,
// forward and backward, used to check the kernels the compiler generates.
//
// Every normalization is one NormDesc: x is a row-major tensor, some dims are
// reduced, and each "stats entry" (one element of the statistics tensor)
// owns the set of x elements that share its non-reduced coordinates. The
// statistics shape is the non-reduced dims of x in order, except that the
// GroupNorm channel dim contributes numGroups instead of C.
//
// Sums run in long double, and the variance is two-pass (mean first, then
// the mean of squared deviations), so the reference stays accurate on rows
// such as mean 1e4 / std 1e-3 where E[x^2]-E[x]^2 cancels catastrophically.
//
// Nothing here throws: the library is built with -fno-exceptions. Invalid
// descriptions or inputs come back as a non-empty `error` string.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_TEST_REFERENCE_NORMREFERENCE_H
#define NORMC_TEST_REFERENCE_NORMREFERENCE_H

#include <cstdint>
#include <string>
#include <vector>

namespace normc::ref {

struct NormDesc {
  /// Shape of x, row-major contiguous.
  std::vector<int64_t> shape;
  /// Dims of x that are reduced (sorted, unique).
  std::vector<int64_t> reductionDims;
  /// Subtract the mean (LayerNorm, BatchNorm, ...) or not (RMSNorm).
  bool center = true;
  double eps = 1e-5;
  /// false: r = 1/sqrt(var + eps); true: r = 1/(sqrt(var) + eps).
  bool epsOutside = false;
  /// Dims of x that gamma/beta index (sorted, unique); gamma's shape is the
  /// shape of x at these dims. Empty means a single scalar gamma/beta.
  std::vector<int64_t> affineDims;
  bool hasGamma = false;
  bool hasBeta = false;
  /// GroupNorm: this dim (not in reductionDims) is split into
  /// [numGroups, C/numGroups]; the inner part is reduced, the group kept.
  int64_t groupDim = -1;
  int64_t numGroups = 1;
  /// BatchNorm inference: mean/var are inputs, nothing is reduced.
  bool givenStats = false;
  /// BatchNorm training: also update running mean/var.
  bool updateRunning = false;
  double momentum = 0.1;
};

//===----------------------------------------------------------------------===//
// Shapes and index maps
//===----------------------------------------------------------------------===//

/// Product of the dims (1 for a rank-0 shape).
int64_t numel(const std::vector<int64_t> &shape);
/// Empty when `desc` is well formed, otherwise what is wrong with it.
std::string validate(const NormDesc &desc);

// The helpers below validate `desc` first and return an empty vector (or 0)
// for an invalid one.

/// Shape of mean/rstd/var (and of the given/running statistics).
std::vector<int64_t> statsShape(const NormDesc &desc);
/// Shape of gamma/beta/dgamma/dbeta.
std::vector<int64_t> gammaShape(const NormDesc &desc);
/// M: how many elements of x each stats entry reduces.
int64_t reducedCount(const NormDesc &desc);
/// For every flat index of x, the flat index of its stats entry.
std::vector<int64_t> statsIndexMap(const NormDesc &desc);
/// For every flat index of x, the flat index of its gamma/beta element.
std::vector<int64_t> affineIndexMap(const NormDesc &desc);

//===----------------------------------------------------------------------===//
// Ready-made descriptions of the usual layers
//===----------------------------------------------------------------------===//

/// LayerNorm over the trailing `numNormalizedDims` dims, affine on them too.
NormDesc layerNormDesc(const std::vector<int64_t> &shape,
                       int64_t numNormalizedDims, bool affine = true,
                       double eps = 1e-5);
/// RMSNorm over the trailing `numNormalizedDims` dims (gamma only).
NormDesc rmsNormDesc(const std::vector<int64_t> &shape,
                     int64_t numNormalizedDims, bool affine = true,
                     double eps = 1e-6);
/// BatchNorm: reduces every dim except `channelDim` (1 for NCHW, rank-1 for
/// NHWC). `training` false means given (running) statistics.
NormDesc batchNormDesc(const std::vector<int64_t> &shape, int64_t channelDim,
                       bool training, bool affine = true, double eps = 1e-5,
                       bool updateRunning = false, double momentum = 0.1);
/// InstanceNorm: reduces every dim except the batch dim 0 and `channelDim`.
NormDesc instanceNormDesc(const std::vector<int64_t> &shape, int64_t channelDim,
                          bool affine = false, double eps = 1e-5);
/// GroupNorm: like InstanceNorm, with channels grouped by `numGroups`.
NormDesc groupNormDesc(const std::vector<int64_t> &shape, int64_t channelDim,
                       int64_t numGroups, bool affine = true,
                       double eps = 1e-5);

//===----------------------------------------------------------------------===//
// Forward
//===----------------------------------------------------------------------===//

/// Inputs of the forward; absent ones are null. Which must be present:
///   x always; gamma iff desc.hasGamma; beta iff desc.hasBeta;
///   givenVar (and givenMean when desc.center) iff desc.givenStats;
///   runningMean and runningVar iff desc.updateRunning.
struct ForwardInputs {
  const std::vector<double> *x = nullptr;
  const std::vector<double> *gamma = nullptr;
  const std::vector<double> *beta = nullptr;
  const std::vector<double> *givenMean = nullptr;
  const std::vector<double> *givenVar = nullptr;
  const std::vector<double> *runningMean = nullptr;
  const std::vector<double> *runningVar = nullptr;
};

/// The inputs `desc` takes, pointing into these buffers: gamma and beta
/// when it has them; `mean`/`var` as the given statistics (desc.givenStats)
/// or as the running ones to update (desc.updateRunning).
ForwardInputs forwardInputs(const NormDesc &desc, const std::vector<double> &x,
                            const std::vector<double> &gamma,
                            const std::vector<double> &beta,
                            const std::vector<double> &mean,
                            const std::vector<double> &var);

struct ForwardResult {
  /// Empty on success.
  std::string error;
  /// Same shape as x.
  std::vector<double> y;
  /// Stats shape. mean is 0 when !center; var is the biased variance (the
  /// mean square when !center) or the given var; rstd is r.
  std::vector<double> mean;
  std::vector<double> var;
  std::vector<double> rstd;
  /// Updated running statistics (only with desc.updateRunning).
  std::vector<double> runningMean;
  std::vector<double> runningVar;

  bool ok() const { return error.empty(); }
};

ForwardResult forward(const NormDesc &desc, const ForwardInputs &inputs);
ForwardResult forward(const NormDesc &desc, const std::vector<double> &x,
                      const std::vector<double> *gamma = nullptr,
                      const std::vector<double> *beta = nullptr,
                      const std::vector<double> *givenMean = nullptr,
                      const std::vector<double> *givenVar = nullptr,
                      const std::vector<double> *runningMean = nullptr,
                      const std::vector<double> *runningVar = nullptr);

/// r from a variance, as the forward computes it.
double rstdFromVar(double var, double eps, bool epsOutside);

//===----------------------------------------------------------------------===//
// Backward
//===----------------------------------------------------------------------===//

/// Inputs of the backward; absent ones are null.
///   dy, x always; gamma iff desc.hasGamma;
///   mean when desc.center (saved mean, or given mean with givenStats);
///   rstd and/or var (at least one). r is taken from rstd when present,
///   else computed from var. With epsOutside, the dx term that needs
///   1/sqrt(var) uses var when present, else recovers sqrt(var) = 1/r - eps
///   from rstd (which loses accuracy when var << eps^2).
struct BackwardInputs {
  const std::vector<double> *dy = nullptr;
  const std::vector<double> *x = nullptr;
  const std::vector<double> *gamma = nullptr;
  const std::vector<double> *mean = nullptr;
  const std::vector<double> *rstd = nullptr;
  const std::vector<double> *var = nullptr;
};

/// The inputs of the backward of `desc`, pointing into these buffers: gamma
/// when it has one; the given statistics (desc.givenStats, mean only when
/// centered) or the exact forward statistics of `exact` (mean when
/// centered, rstd, var).
BackwardInputs
backwardInputs(const NormDesc &desc, const std::vector<double> &dy,
               const std::vector<double> &x, const std::vector<double> &gamma,
               const ForwardResult &exact, const std::vector<double> &givenMean,
               const std::vector<double> &givenVar);

/// Which gradients to compute. dgamma needs desc.hasGamma and dbeta needs
/// desc.hasBeta; they are silently skipped otherwise.
struct BackwardOutputs {
  bool dx = true;
  bool dgamma = true;
  bool dbeta = true;
};

struct BackwardResult {
  std::string error;
  std::vector<double> dx;     // shape of x, empty if not computed
  std::vector<double> dgamma; // gammaShape, empty if not computed
  std::vector<double> dbeta;  // gammaShape, empty if not computed

  bool ok() const { return error.empty(); }
};

BackwardResult backward(const NormDesc &desc, const BackwardInputs &inputs,
                        BackwardOutputs wanted = BackwardOutputs());

//===----------------------------------------------------------------------===//
// Finite differences (to validate the analytic backward on small sizes)
//===----------------------------------------------------------------------===//

/// Numerical gradients of L = sum(dy * y) with respect to x, gamma and beta,
/// by a fourth-order central difference with absolute step h, recomputing the
/// whole forward (statistics included, or the given ones with givenStats) for
/// every perturbation. Running statistics in `inputs` are ignored. dgamma/dbeta
/// are empty without gamma/beta. The loss is accumulated in long double, so
/// h = 1e-3 gives ~1e-12 agreement on O(1) data. Cost: 4 forwards per
/// element of x, gamma and beta; meant for small tensors.
struct FiniteDiffResult {
  std::string error;
  std::vector<double> dx;
  std::vector<double> dgamma;
  std::vector<double> dbeta;

  bool ok() const { return error.empty(); }
};

FiniteDiffResult finiteDifference(const NormDesc &desc,
                                  const ForwardInputs &inputs,
                                  const std::vector<double> &dy,
                                  double h = 1e-4);

/// Convenience wrappers; return an empty vector on invalid input (call
/// finiteDifference() to get the reason).
std::vector<double>
finiteDifferenceDx(const NormDesc &desc, const std::vector<double> &x,
                   const std::vector<double> *gamma,
                   const std::vector<double> *beta,
                   const std::vector<double> &dy, double h = 1e-4,
                   const std::vector<double> *givenMean = nullptr,
                   const std::vector<double> *givenVar = nullptr);
std::vector<double>
finiteDifferenceDgamma(const NormDesc &desc, const std::vector<double> &x,
                       const std::vector<double> *gamma,
                       const std::vector<double> *beta,
                       const std::vector<double> &dy, double h = 1e-4,
                       const std::vector<double> *givenMean = nullptr,
                       const std::vector<double> *givenVar = nullptr);
std::vector<double>
finiteDifferenceDbeta(const NormDesc &desc, const std::vector<double> &x,
                      const std::vector<double> *gamma,
                      const std::vector<double> *beta,
                      const std::vector<double> &dy, double h = 1e-4,
                      const std::vector<double> *givenMean = nullptr,
                      const std::vector<double> *givenVar = nullptr);

} // namespace normc::ref

#endif // NORMC_TEST_REFERENCE_NORMREFERENCE_H
