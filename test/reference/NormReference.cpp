//===- NormReference.cpp - float64 reference of normalizations ------------===//
//
// Notation used in the comments below, for one stats entry s whose reduced
// set S has M elements:
//   mu = mean_S(x)                     (0 when !center)
//   v  = mean_S((x - mu)^2)            (biased; the mean square when !center)
//   r  = 1/sqrt(v + eps)               (eps inside)
//      = 1/(sqrt(v) + eps)             (eps outside)
//   xhat = (x - mu) * r,   y = xhat * gamma + beta
//
//===----------------------------------------------------------------------===//

#include "NormReference.h"

#include <algorithm>
#include <cmath>

namespace normc::ref {

namespace {

using Vec = std::vector<double>;

/// Everything the loops need once a description is known to be valid.
struct Layout {
  int64_t numElements = 0;
  int64_t numStats = 0;
  int64_t numAffine = 0;
  int64_t reduced = 0; // M
  std::vector<int64_t> statsIndex;
  std::vector<int64_t> affineIndex;
};

/// Statistics of every stats entry, kept in long double between the
/// reduction and the elementwise passes.
struct Stats {
  std::vector<long double> mean;
  std::vector<long double> var;
  std::vector<long double> rstd;
};

std::string str(int64_t v) { return std::to_string(v); }

bool contains(const std::vector<int64_t> &dims, int64_t dim) {
  return std::find(dims.begin(), dims.end(), dim) != dims.end();
}

/// Strides of a row-major contiguous shape.
std::vector<int64_t> rowMajorStrides(const std::vector<int64_t> &shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;)
    strides[i - 1] = strides[i] * shape[i];
  return strides;
}

std::string checkDimList(const std::vector<int64_t> &dims, size_t rank,
                         const char *what) {
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] < 0 || dims[i] >= static_cast<int64_t>(rank))
      return std::string(what) + " dim " + str(dims[i]) +
             " out of range for rank " + str(static_cast<int64_t>(rank));
    if (i > 0 && dims[i] <= dims[i - 1])
      return std::string(what) + " dims must be sorted and unique";
  }
  return "";
}

std::string checkGroups(const NormDesc &desc) {
  if (desc.groupDim == -1)
    return desc.numGroups == 1 ? "" : "numGroups != 1 without a groupDim";
  if (desc.groupDim < 0 ||
      desc.groupDim >= static_cast<int64_t>(desc.shape.size()))
    return "groupDim " + str(desc.groupDim) + " out of range";
  if (contains(desc.reductionDims, desc.groupDim))
    return "groupDim must not be a reduction dim";
  if (desc.numGroups < 1 || desc.shape[desc.groupDim] % desc.numGroups != 0)
    return "numGroups " + str(desc.numGroups) + " does not divide dim size " +
           str(desc.shape[desc.groupDim]);
  return "";
}

/// Maps every element of x to a flat index into a tensor made of some dims
/// of x: `strideOf[d]` is that tensor's stride for dim d (0 when dim d is
/// not part of it) and `divisorOf[d]` shrinks a dim (GroupNorm groups).
std::vector<int64_t> indexMap(const std::vector<int64_t> &shape,
                              const std::vector<int64_t> &strideOf,
                              const std::vector<int64_t> &divisorOf) {
  const size_t rank = shape.size();
  std::vector<int64_t> map(static_cast<size_t>(numel(shape)));
  std::vector<int64_t> coord(rank, 0);
  for (auto &entry : map) {
    int64_t index = 0;
    for (size_t d = 0; d < rank; ++d)
      index += coord[d] / divisorOf[d] * strideOf[d];
    entry = index;
    // Advance the row-major odometer.
    for (size_t d = rank; d-- > 0;) {
      if (++coord[d] < shape[d])
        break;
      coord[d] = 0;
    }
  }
  return map;
}

/// Empty when `v` is present with `expected` elements (or absent and not
/// required); otherwise the problem.
std::string checkInput(const Vec *v, bool required, int64_t expected,
                       const char *name) {
  if (!required)
    return v ? std::string(name) + " given but not expected by the desc" : "";
  if (!v)
    return std::string(name) + " is required";
  if (static_cast<int64_t>(v->size()) != expected)
    return std::string(name) + " has " + str(static_cast<int64_t>(v->size())) +
           " elements, expected " + str(expected);
  return "";
}

std::string firstError(std::initializer_list<std::string> errors) {
  for (const std::string &e : errors)
    if (!e.empty())
      return e;
  return "";
}

std::string checkForwardInputs(const NormDesc &desc, const Layout &layout,
                               const ForwardInputs &in) {
  return firstError({
      checkInput(in.x, true, layout.numElements, "x"),
      checkInput(in.gamma, desc.hasGamma, layout.numAffine, "gamma"),
      checkInput(in.beta, desc.hasBeta, layout.numAffine, "beta"),
      checkInput(in.givenMean, desc.givenStats && desc.center, layout.numStats,
                 "givenMean"),
      checkInput(in.givenVar, desc.givenStats, layout.numStats, "givenVar"),
      checkInput(in.runningMean, desc.updateRunning, layout.numStats,
                 "runningMean"),
      checkInput(in.runningVar, desc.updateRunning, layout.numStats,
                 "runningVar"),
  });
}

long double rstdOf(long double var, double eps, bool epsOutside) {
  return epsOutside ? 1.0L / (std::sqrt(var) + eps)
                    : 1.0L / std::sqrt(var + eps);
}

/// Mean of every reduced set, summed relative to the set's first element:
/// a constant set then has exactly its value as mean (and variance exactly
/// 0), and large-mean sets lose nothing to the magnitude of the sum.
std::vector<long double> shiftedMeans(const Layout &layout, const Vec &x) {
  const size_t numStats = static_cast<size_t>(layout.numStats);
  std::vector<long double> shift(numStats), sum(numStats, 0.0L);
  std::vector<bool> seen(numStats, false);
  for (size_t i = 0; i < x.size(); ++i) {
    const size_t s = static_cast<size_t>(layout.statsIndex[i]);
    if (!seen[s]) {
      seen[s] = true;
      shift[s] = x[i];
    }
    sum[s] += x[i] - shift[s];
  }
  for (size_t s = 0; s < numStats; ++s)
    sum[s] = shift[s] + sum[s] / layout.reduced;
  return sum;
}

/// Statistics from x (two-pass), or from the given mean/var.
Stats computeStats(const NormDesc &desc, const Layout &layout, const Vec &x,
                   const Vec *givenMean, const Vec *givenVar) {
  const size_t numStats = static_cast<size_t>(layout.numStats);
  Stats stats;
  stats.mean.assign(numStats, 0.0L);
  stats.var.assign(numStats, 0.0L);
  stats.rstd.resize(numStats);
  if (desc.givenStats) {
    for (size_t s = 0; s < numStats; ++s) {
      stats.mean[s] = desc.center ? (*givenMean)[s] : 0.0;
      stats.var[s] = (*givenVar)[s];
    }
  } else {
    const long double m = static_cast<long double>(layout.reduced);
    if (desc.center)
      stats.mean = shiftedMeans(layout, x);
    // Second pass around the exact-ish mean: no cancellation.
    for (size_t i = 0; i < x.size(); ++i) {
      const long double d = x[i] - stats.mean[layout.statsIndex[i]];
      stats.var[layout.statsIndex[i]] += d * d;
    }
    for (long double &v : stats.var)
      v /= m;
  }
  for (size_t s = 0; s < numStats; ++s)
    stats.rstd[s] = rstdOf(stats.var[s], desc.eps, desc.epsOutside);
  return stats;
}

/// y of element i, in long double.
long double outputAt(const Layout &layout, const Stats &stats, const Vec &x,
                     const Vec *gamma, const Vec *beta, size_t i) {
  const int64_t s = layout.statsIndex[i];
  const int64_t a = layout.affineIndex[i];
  long double y = (x[i] - stats.mean[s]) * stats.rstd[s];
  if (gamma)
    y *= (*gamma)[a];
  if (beta)
    y += (*beta)[a];
  return y;
}

template <typename T> Vec toDouble(const std::vector<T> &values) {
  return Vec(values.begin(), values.end());
}

/// PyTorch's running statistics update: the running variance tracks the
/// unbiased variance v * M / (M - 1).
void updateRunningStats(const NormDesc &desc, const Layout &layout,
                        const Stats &stats, const ForwardInputs &in,
                        ForwardResult &result) {
  const long double momentum = desc.momentum;
  const long double m = static_cast<long double>(layout.reduced);
  result.runningMean.resize(stats.mean.size());
  result.runningVar.resize(stats.var.size());
  for (size_t s = 0; s < stats.mean.size(); ++s) {
    const long double unbiased = stats.var[s] * m / (m - 1);
    result.runningMean[s] = static_cast<double>(
        (1 - momentum) * (*in.runningMean)[s] + momentum * stats.mean[s]);
    result.runningVar[s] = static_cast<double>(
        (1 - momentum) * (*in.runningVar)[s] + momentum * unbiased);
  }
}

} // namespace

//===----------------------------------------------------------------------===//
// Shapes and index maps
//===----------------------------------------------------------------------===//

int64_t numel(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

namespace {

// The unchecked versions of the public helpers, for descriptions already
// validated (the public ones validate first so that a bad desc cannot make
// them index out of bounds).

std::vector<int64_t> statsShapeOf(const NormDesc &desc) {
  std::vector<int64_t> shape;
  for (int64_t d = 0; d < static_cast<int64_t>(desc.shape.size()); ++d) {
    if (contains(desc.reductionDims, d))
      continue;
    shape.push_back(d == desc.groupDim ? desc.numGroups : desc.shape[d]);
  }
  return shape;
}

std::vector<int64_t> gammaShapeOf(const NormDesc &desc) {
  std::vector<int64_t> shape;
  for (int64_t d : desc.affineDims)
    shape.push_back(desc.shape[d]);
  return shape;
}

int64_t reducedCountOf(const NormDesc &desc) {
  int64_t m = 1;
  for (int64_t d : desc.reductionDims)
    m *= desc.shape[d];
  if (desc.groupDim >= 0)
    m *= desc.shape[desc.groupDim] / desc.numGroups;
  return m;
}

std::vector<int64_t> statsIndexMapOf(const NormDesc &desc) {
  const size_t rank = desc.shape.size();
  const std::vector<int64_t> statStrides = rowMajorStrides(statsShapeOf(desc));
  std::vector<int64_t> strideOf(rank, 0), divisorOf(rank, 1);
  size_t k = 0;
  for (size_t d = 0; d < rank; ++d) {
    if (contains(desc.reductionDims, static_cast<int64_t>(d)))
      continue;
    strideOf[d] = statStrides[k++];
    // Channel c of GroupNorm belongs to group c / (C / G).
    if (static_cast<int64_t>(d) == desc.groupDim)
      divisorOf[d] = desc.shape[d] / desc.numGroups;
  }
  return indexMap(desc.shape, strideOf, divisorOf);
}

std::vector<int64_t> affineIndexMapOf(const NormDesc &desc) {
  const size_t rank = desc.shape.size();
  const std::vector<int64_t> gammaStrides = rowMajorStrides(gammaShapeOf(desc));
  std::vector<int64_t> strideOf(rank, 0), divisorOf(rank, 1);
  for (size_t k = 0; k < desc.affineDims.size(); ++k)
    strideOf[desc.affineDims[k]] = gammaStrides[k];
  return indexMap(desc.shape, strideOf, divisorOf);
}

/// Only for validated descriptions.
Layout makeLayout(const NormDesc &desc) {
  Layout layout;
  layout.numElements = numel(desc.shape);
  layout.numStats = numel(statsShapeOf(desc));
  layout.numAffine = numel(gammaShapeOf(desc));
  layout.reduced = reducedCountOf(desc);
  layout.statsIndex = statsIndexMapOf(desc);
  layout.affineIndex = affineIndexMapOf(desc);
  return layout;
}

} // namespace

std::string validate(const NormDesc &desc) {
  for (int64_t d : desc.shape)
    if (d < 1)
      return "every dim of the shape must be >= 1";
  const size_t rank = desc.shape.size();
  std::string error = firstError({
      checkDimList(desc.reductionDims, rank, "reduction"),
      checkDimList(desc.affineDims, rank, "affine"),
      checkGroups(desc),
  });
  if (!error.empty())
    return error;
  if (!std::isfinite(desc.eps) || desc.eps < 0)
    return "eps must be finite and >= 0";
  if (desc.givenStats && desc.updateRunning)
    return "givenStats and updateRunning are exclusive";
  if (desc.updateRunning && !std::isfinite(desc.momentum))
    return "momentum must be finite";
  // The unbiased running variance divides by M - 1 (PyTorch refuses too).
  if (desc.updateRunning && reducedCountOf(desc) < 2)
    return "updateRunning needs more than one value per stats entry";
  return "";
}

std::vector<int64_t> statsShape(const NormDesc &desc) {
  return validate(desc).empty() ? statsShapeOf(desc) : std::vector<int64_t>();
}

std::vector<int64_t> gammaShape(const NormDesc &desc) {
  return validate(desc).empty() ? gammaShapeOf(desc) : std::vector<int64_t>();
}

int64_t reducedCount(const NormDesc &desc) {
  return validate(desc).empty() ? reducedCountOf(desc) : 0;
}

std::vector<int64_t> statsIndexMap(const NormDesc &desc) {
  return validate(desc).empty() ? statsIndexMapOf(desc)
                                : std::vector<int64_t>();
}

std::vector<int64_t> affineIndexMap(const NormDesc &desc) {
  return validate(desc).empty() ? affineIndexMapOf(desc)
                                : std::vector<int64_t>();
}

//===----------------------------------------------------------------------===//
// Ready-made descriptions
//===----------------------------------------------------------------------===//

namespace {

std::vector<int64_t> trailingDims(size_t rank, int64_t count) {
  std::vector<int64_t> dims;
  for (int64_t d = static_cast<int64_t>(rank) - count;
       d < static_cast<int64_t>(rank); ++d)
    dims.push_back(d);
  return dims;
}

std::vector<int64_t> allDimsExcept(size_t rank,
                                   const std::vector<int64_t> &kept) {
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < static_cast<int64_t>(rank); ++d)
    if (!contains(kept, d))
      dims.push_back(d);
  return dims;
}

} // namespace

NormDesc layerNormDesc(const std::vector<int64_t> &shape,
                       int64_t numNormalizedDims, bool affine, double eps) {
  NormDesc desc;
  desc.shape = shape;
  desc.reductionDims = trailingDims(shape.size(), numNormalizedDims);
  desc.affineDims = desc.reductionDims;
  desc.hasGamma = desc.hasBeta = affine;
  desc.eps = eps;
  return desc;
}

NormDesc rmsNormDesc(const std::vector<int64_t> &shape,
                     int64_t numNormalizedDims, bool affine, double eps) {
  NormDesc desc = layerNormDesc(shape, numNormalizedDims, affine, eps);
  desc.center = false;
  desc.hasBeta = false;
  return desc;
}

NormDesc batchNormDesc(const std::vector<int64_t> &shape, int64_t channelDim,
                       bool training, bool affine, double eps,
                       bool updateRunning, double momentum) {
  NormDesc desc;
  desc.shape = shape;
  desc.reductionDims = allDimsExcept(shape.size(), {channelDim});
  desc.affineDims = {channelDim};
  desc.hasGamma = desc.hasBeta = affine;
  desc.eps = eps;
  desc.givenStats = !training;
  desc.updateRunning = training && updateRunning;
  desc.momentum = momentum;
  return desc;
}

NormDesc instanceNormDesc(const std::vector<int64_t> &shape, int64_t channelDim,
                          bool affine, double eps) {
  NormDesc desc;
  desc.shape = shape;
  desc.reductionDims = allDimsExcept(shape.size(), {0, channelDim});
  desc.affineDims = {channelDim};
  desc.hasGamma = desc.hasBeta = affine;
  desc.eps = eps;
  return desc;
}

NormDesc groupNormDesc(const std::vector<int64_t> &shape, int64_t channelDim,
                       int64_t numGroups, bool affine, double eps) {
  NormDesc desc = instanceNormDesc(shape, channelDim, affine, eps);
  desc.groupDim = channelDim;
  desc.numGroups = numGroups;
  return desc;
}

//===----------------------------------------------------------------------===//
// Forward
//===----------------------------------------------------------------------===//

double rstdFromVar(double var, double eps, bool epsOutside) {
  return static_cast<double>(rstdOf(var, eps, epsOutside));
}

ForwardResult forward(const NormDesc &desc, const ForwardInputs &in) {
  ForwardResult result;
  result.error = validate(desc);
  if (!result.ok())
    return result;
  const Layout layout = makeLayout(desc);
  result.error = checkForwardInputs(desc, layout, in);
  if (!result.ok())
    return result;

  const Stats stats =
      computeStats(desc, layout, *in.x, in.givenMean, in.givenVar);
  result.y.resize(in.x->size());
  for (size_t i = 0; i < in.x->size(); ++i)
    result.y[i] = static_cast<double>(
        outputAt(layout, stats, *in.x, in.gamma, in.beta, i));
  result.mean = toDouble(stats.mean);
  result.var = toDouble(stats.var);
  result.rstd = toDouble(stats.rstd);
  if (desc.updateRunning)
    updateRunningStats(desc, layout, stats, in, result);
  return result;
}

ForwardResult forward(const NormDesc &desc, const std::vector<double> &x,
                      const std::vector<double> *gamma,
                      const std::vector<double> *beta,
                      const std::vector<double> *givenMean,
                      const std::vector<double> *givenVar,
                      const std::vector<double> *runningMean,
                      const std::vector<double> *runningVar) {
  ForwardInputs in;
  in.x = &x;
  in.gamma = gamma;
  in.beta = beta;
  in.givenMean = givenMean;
  in.givenVar = givenVar;
  in.runningMean = runningMean;
  in.runningVar = runningVar;
  return forward(desc, in);
}

//===----------------------------------------------------------------------===//
// Backward
//===----------------------------------------------------------------------===//
//
// Derivation, for one stats entry (sums and means over its set S, |S| = M),
// with L = sum_j dy_j * y_j and g_j = dy_j * gamma_j = dL/dxhat_j:
//
//   dL/dx_i = sum_j g_j * dxhat_j/dx_i
//   xhat_j  = (x_j - mu) * r(v)
//   dxhat_j/dx_i = (delta_ij - c/M) * r + (x_j - mu) * r'(v) * dv/dx_i
// where c = 1 when centering (dmu/dx_i = 1/M) and 0 otherwise.
//
//   dv/dx_i = 2/M * (x_i - mu) - 2 * dmu/dx_i * mean_S(x - mu)
//           = 2/M * (x_i - mu)
// since mean_S(x - mu) = 0 when centering and dmu/dx_i = 0 otherwise.
//
// Hence, using x - mu = xhat / r:
//   dL/dx_i = r * (g_i - c * mean(g))
//           + r'(v) * 2/M * (xhat_i / r) * sum_j g_j * xhat_j / r
//           = r * (g_i - c * mean(g)) - k * xhat_i * mean(g * xhat)
// with k = -2 r'(v) / r^2:
//   eps inside:  r = (v+eps)^-1/2, r' = -r^3/2          => k = r
//   eps outside: r = (sqrt(v)+eps)^-1, r' = -r^2/(2 sqrt(v))
//                                                       => k = 1/sqrt(v)
// For eps outside and v = 0 every xhat_j in the set is 0: the term vanishes
// (the one-sided limit of the forward agrees, as sqrt(v)/eps -> 0), so it is
// defined as 0.
//
// With given statistics mu and v do not depend on x: dL/dx_i = r * g_i.
//
// The affine parameters appear in y_j = xhat_j * gamma_a(j) + beta_a(j), so
// dgamma_a = sum over {j : a(j) = a} of dy_j * xhat_j and dbeta_a the same
// sum of dy_j: a sum over every dim of x that gamma does not index.
//
//===----------------------------------------------------------------------===//

namespace {

std::string checkBackwardInputs(const NormDesc &desc, const Layout &layout,
                                const BackwardInputs &in) {
  std::string error = firstError({
      checkInput(in.dy, true, layout.numElements, "dy"),
      checkInput(in.x, true, layout.numElements, "x"),
      checkInput(in.gamma, desc.hasGamma, layout.numAffine, "gamma"),
      checkInput(in.mean, desc.center, layout.numStats, "mean"),
  });
  if (!error.empty())
    return error;
  if (!in.rstd && !in.var)
    return "rstd or var is required";
  return firstError({
      in.rstd ? checkInput(in.rstd, true, layout.numStats, "rstd") : "",
      in.var ? checkInput(in.var, true, layout.numStats, "var") : "",
  });
}

/// r and k of every stats entry, from the saved statistics.
void backwardScales(const NormDesc &desc, const BackwardInputs &in,
                    size_t numStats, std::vector<long double> &r,
                    std::vector<long double> &k) {
  r.resize(numStats);
  k.resize(numStats);
  for (size_t s = 0; s < numStats; ++s) {
    r[s] = in.rstd ? (*in.rstd)[s]
                   : rstdOf((*in.var)[s], desc.eps, desc.epsOutside);
    if (!desc.epsOutside) {
      k[s] = r[s];
      continue;
    }
    const long double stddev =
        in.var ? std::sqrt(static_cast<long double>((*in.var)[s]))
               : 1.0L / r[s] - desc.eps;
    k[s] = stddev > 0 ? 1.0L / stddev : 0.0L;
  }
}

} // namespace

BackwardResult backward(const NormDesc &desc, const BackwardInputs &in,
                        BackwardOutputs wanted) {
  BackwardResult result;
  result.error = validate(desc);
  if (!result.ok())
    return result;
  const Layout layout = makeLayout(desc);
  result.error = checkBackwardInputs(desc, layout, in);
  if (!result.ok())
    return result;

  const Vec &x = *in.x;
  const Vec &dy = *in.dy;
  const size_t n = x.size();
  const size_t numStats = static_cast<size_t>(layout.numStats);
  std::vector<long double> r, k;
  backwardScales(desc, in, numStats, r, k);

  std::vector<long double> xhat(n), g(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t s = layout.statsIndex[i];
    const long double mu = desc.center ? (*in.mean)[s] : 0.0;
    xhat[i] = (x[i] - mu) * r[s];
    g[i] = in.gamma ? dy[i] * static_cast<long double>(
                                  (*in.gamma)[layout.affineIndex[i]])
                    : dy[i];
  }

  if (wanted.dx) {
    std::vector<long double> meanG(numStats, 0.0L), meanGXhat(numStats, 0.0L);
    if (!desc.givenStats) {
      for (size_t i = 0; i < n; ++i) {
        meanG[layout.statsIndex[i]] += g[i];
        meanGXhat[layout.statsIndex[i]] += g[i] * xhat[i];
      }
      for (size_t s = 0; s < numStats; ++s) {
        meanG[s] = desc.center ? meanG[s] / layout.reduced : 0.0L;
        meanGXhat[s] /= layout.reduced;
      }
    }
    // With given stats both means stay 0, leaving dx = r * g.
    result.dx.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const int64_t s = layout.statsIndex[i];
      result.dx[i] = static_cast<double>(r[s] * (g[i] - meanG[s]) -
                                         k[s] * xhat[i] * meanGXhat[s]);
    }
  }

  const bool wantGamma = wanted.dgamma && desc.hasGamma;
  const bool wantBeta = wanted.dbeta && desc.hasBeta;
  std::vector<long double> dgamma(layout.numAffine, 0.0L),
      dbeta(layout.numAffine, 0.0L);
  for (size_t i = 0; i < n; ++i) {
    dgamma[layout.affineIndex[i]] += dy[i] * xhat[i];
    dbeta[layout.affineIndex[i]] += dy[i];
  }
  if (wantGamma)
    result.dgamma = toDouble(dgamma);
  if (wantBeta)
    result.dbeta = toDouble(dbeta);
  return result;
}

//===----------------------------------------------------------------------===//
// Finite differences
//===----------------------------------------------------------------------===//

namespace {

/// L = sum(dy * y) with the forward recomputed from scratch.
long double lossOf(const NormDesc &desc, const Layout &layout,
                   const ForwardInputs &in, const Vec &dy) {
  const Stats stats =
      computeStats(desc, layout, *in.x, in.givenMean, in.givenVar);
  long double loss = 0.0L;
  for (size_t i = 0; i < dy.size(); ++i)
    loss += dy[i] * outputAt(layout, stats, *in.x, in.gamma, in.beta, i);
  return loss;
}

/// dL/dv for every element v of `values` (which `in` points to), by the
/// fourth-order stencil (-L(+2h) + 8L(+h) - 8L(-h) + L(-2h)) / 12h: its
/// truncation error is O(h^4), so h can stay large enough to keep rounding
/// noise small.
Vec differentiate(const NormDesc &desc, const Layout &layout,
                  const ForwardInputs &in, const Vec &dy, Vec &values,
                  double h) {
  Vec grad(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const double original = values[i];
    auto lossAt = [&](double offset) {
      values[i] = original + offset;
      return lossOf(desc, layout, in, dy);
    };
    const long double diff =
        -lossAt(2 * h) + 8 * lossAt(h) - 8 * lossAt(-h) + lossAt(-2 * h);
    values[i] = original;
    grad[i] = static_cast<double>(diff / (12.0L * h));
  }
  return grad;
}

} // namespace

FiniteDiffResult finiteDifference(const NormDesc &desc,
                                  const ForwardInputs &inputs, const Vec &dy,
                                  double h) {
  FiniteDiffResult result;
  // Running statistics do not affect y; drop them from the problem.
  NormDesc d = desc;
  d.updateRunning = false;
  ForwardInputs in = inputs;
  in.runningMean = in.runningVar = nullptr;

  result.error = validate(d);
  if (!result.ok())
    return result;
  const Layout layout = makeLayout(d);
  result.error = firstError({checkForwardInputs(d, layout, in),
                             checkInput(&dy, true, layout.numElements, "dy")});
  if (result.ok() && !(h > 0))
    result.error = "h must be > 0";
  if (!result.ok())
    return result;

  // Perturb private copies; `in` points at them.
  Vec x = *in.x;
  Vec gamma = in.gamma ? *in.gamma : Vec();
  Vec beta = in.beta ? *in.beta : Vec();
  in.x = &x;
  in.gamma = in.gamma ? &gamma : nullptr;
  in.beta = in.beta ? &beta : nullptr;

  result.dx = differentiate(d, layout, in, dy, x, h);
  if (in.gamma)
    result.dgamma = differentiate(d, layout, in, dy, gamma, h);
  if (in.beta)
    result.dbeta = differentiate(d, layout, in, dy, beta, h);
  return result;
}

namespace {

FiniteDiffResult finiteDifferenceAll(const NormDesc &desc, const Vec &x,
                                     const Vec *gamma, const Vec *beta,
                                     const Vec &dy, double h,
                                     const Vec *givenMean,
                                     const Vec *givenVar) {
  ForwardInputs in;
  in.x = &x;
  in.gamma = gamma;
  in.beta = beta;
  in.givenMean = givenMean;
  in.givenVar = givenVar;
  return finiteDifference(desc, in, dy, h);
}

} // namespace

Vec finiteDifferenceDx(const NormDesc &desc, const Vec &x, const Vec *gamma,
                       const Vec *beta, const Vec &dy, double h,
                       const Vec *givenMean, const Vec *givenVar) {
  return finiteDifferenceAll(desc, x, gamma, beta, dy, h, givenMean, givenVar)
      .dx;
}

Vec finiteDifferenceDgamma(const NormDesc &desc, const Vec &x, const Vec *gamma,
                           const Vec *beta, const Vec &dy, double h,
                           const Vec *givenMean, const Vec *givenVar) {
  return finiteDifferenceAll(desc, x, gamma, beta, dy, h, givenMean, givenVar)
      .dgamma;
}

Vec finiteDifferenceDbeta(const NormDesc &desc, const Vec &x, const Vec *gamma,
                          const Vec *beta, const Vec &dy, double h,
                          const Vec *givenMean, const Vec *givenVar) {
  return finiteDifferenceAll(desc, x, gamma, beta, dy, h, givenMean, givenVar)
      .dbeta;
}

ForwardInputs forwardInputs(const NormDesc &desc, const std::vector<double> &x,
                            const std::vector<double> &gamma,
                            const std::vector<double> &beta,
                            const std::vector<double> &mean,
                            const std::vector<double> &var) {
  ForwardInputs in;
  in.x = &x;
  if (desc.hasGamma)
    in.gamma = &gamma;
  if (desc.hasBeta)
    in.beta = &beta;
  if (desc.givenStats) {
    in.givenMean = &mean;
    in.givenVar = &var;
  }
  if (desc.updateRunning) {
    in.runningMean = &mean;
    in.runningVar = &var;
  }
  return in;
}

BackwardInputs
backwardInputs(const NormDesc &desc, const std::vector<double> &dy,
               const std::vector<double> &x, const std::vector<double> &gamma,
               const ForwardResult &exact, const std::vector<double> &givenMean,
               const std::vector<double> &givenVar) {
  BackwardInputs in;
  in.dy = &dy;
  in.x = &x;
  if (desc.hasGamma)
    in.gamma = &gamma;
  if (desc.givenStats) {
    if (desc.center)
      in.mean = &givenMean;
    in.var = &givenVar;
    return in;
  }
  if (desc.center)
    in.mean = &exact.mean;
  in.rstd = &exact.rstd;
  in.var = &exact.var;
  return in;
}

} // namespace normc::ref
