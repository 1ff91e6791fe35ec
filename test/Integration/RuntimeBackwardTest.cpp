//===- RuntimeBackwardTest.cpp - backward bundles run through the runtime -===//
//
// The training path an application takes: a spec whose functions carry
// `attributes {norm.backward}` is compiled by normc (--emit=shared), so the
// bundle holds each forward kernel and its derived `<name>_backward`. The
// backward kernels are opened with libnormc_runtime and run with normc_run
// on tensor descriptors; the runtime allocates their workspace (size from
// the manifest's "workspace" function), passes it after the arguments and
// runs the "finalize" step (which writes dgamma/dbeta) once all work items
// are done.
//
// Every named norm is covered in f32, f16 and bf16; the channel ops in NCHW
// ([N, C, H, W], channel dim 1) and NHWC ([N, H, W, C], channel dim 3) with
// a static C, so the manifests mix static and dynamic dims; plus kernels
// without weight/bias and two that ask for a subset of the gradients
// (`norm.backward = ["dx"]`, `["dgamma", "dbeta"]`).
//
// What is checked, for each kernel:
//   * the manifest signature: kind backward, op, args (name, io, dtype,
//     rank, no in-place output) and the workspace/finalize symbols;
//   * dx, dgamma and dbeta against the float64 reference gradient
//     (test/reference backward()) computed from the exact statistics, after
//     rounding it to the output type, with torch.testing's default
//     tolerances. As in BackwardTest.cpp, the kernel gets the statistics a
//     forward kernel saves: the reference forward's mean/rstd rounded to f32
//     (BatchNorm inference: the running mean/var it is given);
//   * bitwise identical outputs on 1, 2 and 4 threads (work items are fixed
//     chunks and the finalize step adds their partial sums in chunk order);
//   * a zero-size batch: success, with dgamma/dbeta written as zeros (also
//     with NULL data for the empty tensors).
// And across kernels: concurrent runs of one backward kernel (each run has
// its own workspace), the forward kernel's saved statistics fed to the
// backward one, the direct C entry point (which mallocs the workspace
// itself) agreeing bit for bit with the runtime, and error reporting.
//
//===----------------------------------------------------------------------===//

#include "KernelBundle.h"
#include "RuntimeConfigs.h"

#include "DTypes.h"
#include "NormReference.h"
#include "TestData.h"
#include "Tolerance.h"

#include "normc/runtime.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace normc::ref;
using namespace normc::test;

namespace {

using Config = RuntimeConfig;

std::vector<Config> testedConfigs() {
  std::vector<Config> configs = affineRuntimeConfigs();
  // Without weight/bias: dx only (InstanceNorm's PyTorch default).
  configs.push_back({Op::LayerNorm, DType::F32, false, false});
  configs.push_back({Op::RMSNorm, DType::BF16, false, false});
  configs.push_back({Op::InstanceNorm, DType::F32, false, false});
  configs.push_back({Op::GroupNorm, DType::BF16, true, false});
  // A subset of the gradients.
  configs.push_back({Op::LayerNorm, DType::F32, false, true, Grads::DxOnly});
  configs.push_back(
      {Op::GroupNorm, DType::BF16, true, true, Grads::ParamsOnly});
  configs.push_back(
      {Op::BatchNormTrain, DType::F16, false, true, Grads::ParamsOnly});
  return configs;
}

//===----------------------------------------------------------------------===//
// Arguments and reference
//===----------------------------------------------------------------------===//

struct Case {
  std::vector<Arg> args;
  std::string error; // reference failure, if any
  /// The forward's inputs (for the forward-then-backward test).
  std::vector<double> x, gamma, beta, runMean, runVar;
};

/// The backward kernel's arguments for x of `shape`, in the kernel's order:
/// dy, x, [gamma], then mean and var (BatchNorm inference) or [mean] and
/// rstd (saved by the forward, as f32), then the requested gradients dx,
/// [dgamma], [dbeta]. Inputs are drawn from `seed`; outputs carry the
/// float64 gradient from exact statistics. For a zero-size x, inputs are
/// zeros and dgamma/dbeta are expected to be zeros.
Case makeCase(const Config &c, const std::vector<int64_t> &shape,
              uint64_t seed) {
  Case result;
  std::vector<int64_t> affineShp, statsShp;
  argShapes(c, shape, affineShp, statsShp);
  int64_t n = numel(shape), g = numel(affineShp), s = numel(statsShp);
  std::vector<double> x(n), gamma(g), beta(g), dy(n), runMean(s), runVar(s),
      savedMean(s), savedRstd(s);
  std::vector<double> dx(n), dgamma(g, 0.0), dbeta(g, 0.0);
  if (n != 0) {
    NormDesc desc = descFor(c, shape);
    if (std::string why = validate(desc); !why.empty()) {
      result.error = "invalid reference desc: " + why;
      return result;
    }
    if (statsShape(desc) != statsShp || gammaShape(desc) != affineShp) {
      result.error = "the test's shapes disagree with the reference's";
      return result;
    }
    // Random and adversarial sets (as BackwardTest.cpp); BatchNorm
    // inference's given statistics do not describe such sets, keep x
    // ordinary there.
    std::vector<Pattern> patterns = {Pattern::Normal, Pattern::LargeMean,
                                     Pattern::Constant, Pattern::NearMax,
                                     Pattern::TinyVariance};
    if (c.op == Op::BatchNormInfer)
      patterns = {Pattern::Normal};
    x = generateInput(desc, c.dtype, patterns, seed);
    gamma = randomNormal(g, seed + 1, c.dtype, 1.0, 0.5);
    beta = randomNormal(g, seed + 2, c.dtype, 0.0, 1.0);
    dy = randomNormal(n, seed + 3, c.dtype);
    runMean = randomNormal(s, seed + 4, DType::F32);
    runVar = randomUniform(s, seed + 5, 0.25, 4.0, DType::F32);

    ForwardInputs in =
        normc::ref::forwardInputs(desc, x, gamma, beta, runMean, runVar);
    ForwardResult fwd = forward(desc, in);
    if (!fwd.ok()) {
      result.error = "reference forward: " + fwd.error;
      return result;
    }
    // What a forward kernel saves: the statistics rounded to f32.
    savedMean = roundToDType(fwd.mean, DType::F32);
    savedRstd = roundToDType(fwd.rstd, DType::F32);

    // The true gradient: float64, from the exact statistics.
    BackwardInputs bin =
        normc::ref::backwardInputs(desc, dy, x, gamma, fwd, runMean, runVar);
    BackwardOutputs wanted;
    wanted.dx = c.wantDx();
    wanted.dgamma = c.wantDgamma();
    wanted.dbeta = c.wantDbeta();
    BackwardResult ref = backward(desc, bin, wanted);
    if (!ref.ok()) {
      result.error = "reference backward: " + ref.error;
      return result;
    }
    dx = ref.dx;
    dgamma = ref.dgamma;
    dbeta = ref.dbeta;
  }

  auto &a = result.args;
  a.push_back({"dy", false, c.dtype, shape, dy});
  a.push_back({"x", false, c.dtype, shape, x});
  if (c.affine)
    a.push_back({"gamma", false, c.dtype, affineShp, gamma});
  if (c.op == Op::BatchNormInfer) {
    a.push_back({"mean", false, DType::F32, statsShp, runMean});
    a.push_back({"var", false, DType::F32, statsShp, runVar});
  } else {
    if (c.center())
      a.push_back({"mean", false, DType::F32, statsShp, savedMean});
    a.push_back({"rstd", false, DType::F32, statsShp, savedRstd});
  }
  if (c.wantDx())
    a.push_back({"dx", true, c.dtype, shape, dx});
  if (c.wantDgamma())
    a.push_back({"dgamma", true, c.dtype, affineShp, dgamma});
  if (c.wantDbeta())
    a.push_back({"dbeta", true, c.dtype, affineShp, dbeta});
  result.x = x;
  result.gamma = gamma;
  result.beta = beta;
  result.runMean = runMean;
  result.runVar = runVar;
  return result;
}

std::string lastError() { return normc_last_error(); }

/// The largest fraction of the allowed error used, per output and dtype
/// (printed at the end for the record).
std::map<std::string, std::pair<double, double>> worst;

void record(const std::string &what, DType dtype, const CompareReport &r) {
  auto &[abs, used] = worst[what + " " + dtypeName(dtype)];
  abs = std::max(abs, r.maxAbsError);
  if (r.worstIndex < 0)
    return;
  Tolerance tol = defaultTolerance(dtype);
  double error = std::fabs(r.worstActual - r.worstExpected);
  if (std::isfinite(error))
    used = std::max(used,
                    error / (tol.atol + tol.rtol * std::fabs(r.worstExpected)));
}

//===----------------------------------------------------------------------===//
// Shared bundle and contexts
//===----------------------------------------------------------------------===//

normc_bundle *bundle = nullptr;
std::string bundleError;
constexpr uint32_t kThreadCounts[] = {1, 2, 4};
normc_context *contexts[3] = {nullptr, nullptr, nullptr};

class RuntimeBundle : public ::testing::Environment {
public:
  void SetUp() override {
    if (normc_bundle_open(NORMC_RUNTIME_BACKWARD_TEST_BUNDLE, &bundle) !=
        NORMC_OK)
      bundleError = lastError();
    for (size_t i = 0; i < 3; ++i) {
      normc_context_options options;
      normc_context_options_init(&options);
      options.num_threads = kThreadCounts[i];
      options.pin_threads = 0;
      if (normc_context_create(&options, &contexts[i]) != NORMC_OK)
        bundleError = lastError();
    }
  }
  void TearDown() override {
    std::printf("runtime backward: worst errors against the float64 gradient "
                "(after rounding to the output type):\n");
    for (auto &[what, err] : worst)
      std::printf("  %-12s max abs error %.3g, %.2f of the tolerance\n",
                  what.c_str(), err.first, err.second);
    for (normc_context *&ctx : contexts)
      normc_context_destroy(ctx), ctx = nullptr;
    normc_bundle_close(bundle);
    bundle = nullptr;
  }
};

bool ready() { return bundle && contexts[0] && contexts[1] && contexts[2]; }

const normc_kernel *findKernel(const std::string &name) {
  const normc_kernel *kernel = nullptr;
  if (normc_bundle_find_kernel(bundle, name.c_str(), &kernel) != NORMC_OK)
    return nullptr;
  return kernel;
}

std::vector<std::vector<int64_t>> shapesFor(const Config &c) {
  // The last shape has more work items (chunks) than 4 threads x 4 chunks.
  if (!c.isChannelOp())
    return {{1, 1}, {7, 17}, {64, 1151}, {3, 4096}, {300, 257}};
  // N, H, W with C fixed; BatchNorm training needs 2 values per channel.
  std::vector<std::vector<int64_t>> nhw = {{2, 5, 7}, {3, 16, 33}};
  if (c.op != Op::BatchNormTrain)
    nhw.push_back({1, 1, 1});
  nhw.push_back({16, 9, 40});
  std::vector<std::vector<int64_t>> shapes;
  for (auto &d : nhw)
    shapes.push_back(c.channelShape(d));
  return shapes;
}

std::vector<int64_t> zeroBatchShape(const Config &c) {
  if (!c.isChannelOp())
    return {0, 33};
  return c.channelShape({0, 5, 7});
}

/// Checks every output of `call` against the reference in `args`.
void compareOutputs(const std::vector<Arg> &args, const Call &call, bool keep) {
  for (size_t i = 0; i < args.size(); ++i) {
    const Arg &o = args[i];
    if (!o.output)
      continue;
    std::vector<double> expected = roundToDType(o.values, o.dtype);
    CompareReport report = compareBuffer(o.dtype, call.buffers[i].data(),
                                         o.values.size(), expected);
    EXPECT_TRUE(report.ok) << o.name << ": " << report.message;
    if (keep)
      record(o.name, o.dtype, report);
  }
}

//===----------------------------------------------------------------------===//
// Backward kernels through the runtime
//===----------------------------------------------------------------------===//

class RuntimeBackward : public ::testing::TestWithParam<Config> {};

TEST_P(RuntimeBackward, ManifestSignature) {
  const Config &c = GetParam();
  ASSERT_TRUE(ready()) << bundleError;
  const normc_kernel *kernel = findKernel(c.backwardName());
  ASSERT_NE(kernel, nullptr) << lastError();

  static const char *ops[] = {"layer_norm", "rms_norm",      "batch_norm",
                              "batch_norm", "instance_norm", "group_norm"};
  EXPECT_EQ(normc_kernel_get_kind(kernel), NORMC_KIND_BACKWARD);
  EXPECT_STREQ(normc_op_name(normc_kernel_op(kernel)), ops[(int)c.op]);
  // The forward kernel is in the bundle too, with the same op.
  const normc_kernel *fwd = findKernel(c.name());
  ASSERT_NE(fwd, nullptr);
  EXPECT_EQ(normc_kernel_get_kind(fwd), NORMC_KIND_FORWARD);
  EXPECT_EQ(normc_kernel_op(fwd), normc_kernel_op(kernel));

  Case sig = makeCase(c, shapesFor(c)[0], 1);
  ASSERT_TRUE(sig.error.empty()) << sig.error;
  ASSERT_EQ(normc_kernel_num_args(kernel), sig.args.size());
  for (size_t i = 0; i < sig.args.size(); ++i) {
    normc_arg_info info;
    ASSERT_EQ(normc_kernel_arg(kernel, i, &info), NORMC_OK);
    EXPECT_EQ(std::string(info.name), sig.args[i].name) << "arg " << i;
    EXPECT_EQ(info.io, sig.args[i].output ? NORMC_IO_OUT : NORMC_IO_IN)
        << info.name;
    EXPECT_EQ(info.dtype, runtimeDType(sig.args[i].dtype)) << info.name;
    EXPECT_EQ(info.rank, sig.args[i].shape.size()) << info.name;
    EXPECT_EQ(info.inplace, nullptr)
        << info.name << " may alias " << info.inplace;
    // Static dims: C of the channel ops (x, dy, dx at the channel dim;
    // gamma and the gradients of the parameters; BatchNorm's statistics)
    // and the groups of GroupNorm's statistics. Everything else is dynamic.
    for (size_t d = 0; d < info.rank; ++d) {
      bool isStatic = false;
      if (c.isChannelOp()) {
        if (info.rank == 4)
          isStatic = (int64_t)d == c.channelDim();
        else if (info.rank == 1)
          isStatic = true; // [C]
        else
          isStatic = d == 1; // [N, C] or [N, G]
      }
      if (isStatic) {
        EXPECT_EQ(info.shape[d].symbol, -1) << info.name << " dim " << d;
        EXPECT_EQ(info.shape[d].size, sig.args[i].shape[d])
            << info.name << " dim " << d;
      } else {
        EXPECT_GE(info.shape[d].symbol, 0) << info.name << " dim " << d;
      }
    }
  }
  // The manifest names the workspace and finalize functions of the kernel.
  std::string json = normc_bundle_manifest_json(bundle);
  std::string k = c.backwardName();
  EXPECT_NE(json.find("\"workspace\": \"__normc_" + k + "_workspace\""),
            std::string::npos);
  EXPECT_NE(json.find("\"finalize\": \"__normc_" + k + "_finalize\""),
            std::string::npos);
  // The forward kernel has a workspace exactly when it has a prepass (rows
  // that may be long, bundle ABI 3), and no finalize step.
  std::string f = "__normc_" + c.name();
  EXPECT_EQ(json.find(f + "_workspace\"") != std::string::npos,
            json.find("\"prepass\": {\"entry\": \"" + f + "_prepass\"") !=
                std::string::npos)
      << "the forward kernel has a workspace without a prepass, or the "
         "other way round";
  EXPECT_EQ(json.find(f + "_finalize\""), std::string::npos)
      << "the forward kernel has a finalize step";
}

TEST_P(RuntimeBackward, MatchesFloat64Gradient) {
  const Config &c = GetParam();
  ASSERT_TRUE(ready()) << bundleError;
  const normc_kernel *kernel = findKernel(c.backwardName());
  ASSERT_NE(kernel, nullptr) << lastError();

  uint64_t seed = 100;
  for (const std::vector<int64_t> &shape : shapesFor(c)) {
    SCOPED_TRACE(c.backwardName() + " shape " + shapeText(shape));
    Case cs = makeCase(c, shape, seed += 10);
    ASSERT_TRUE(cs.error.empty()) << cs.error;
    const std::vector<Arg> &args = cs.args;

    // Output bytes of the 1-thread run, by arg index.
    std::vector<std::vector<uint8_t>> first(args.size());
    for (size_t t = 0; t < 3; ++t) {
      SCOPED_TRACE(std::to_string(kThreadCounts[t]) + " thread(s)");
      Call call(args);
      ASSERT_EQ(call.run(contexts[t], kernel), NORMC_OK) << lastError();
      EXPECT_TRUE(call.guardsIntact(args)) << "wrote past an output";
      compareOutputs(args, call, /*keep=*/t == 0);
      for (size_t i = 0; i < args.size(); ++i) {
        if (!args[i].output)
          continue;
        std::vector<uint8_t> bytes = call.outputBytes(args, i);
        if (t == 0)
          first[i] = std::move(bytes);
        else
          EXPECT_TRUE(bytes == first[i])
              << args[i].name << " differs between 1 and " << kThreadCounts[t]
              << " threads";
      }
    }
  }
}

/// A zero-size batch is a valid call with nothing to reduce: dx is empty
/// and dgamma/dbeta are written as zeros (the finalize step runs although
/// there are no work items), for every norm including BatchNorm training
/// (a sum over an empty batch is zero, as in PyTorch).
class RuntimeBackwardEmpty : public ::testing::TestWithParam<Config> {};

TEST_P(RuntimeBackwardEmpty, ZeroSizeBatchWritesZeroGradients) {
  const Config &c = GetParam();
  ASSERT_TRUE(ready()) << bundleError;
  const normc_kernel *kernel = findKernel(c.backwardName());
  ASSERT_NE(kernel, nullptr) << lastError();
  Case cs = makeCase(c, zeroBatchShape(c), 1);
  ASSERT_TRUE(cs.error.empty()) << cs.error;
  for (bool nullEmpty : {false, true})
    for (size_t t : {0, 2}) {
      SCOPED_TRACE(
          std::string(nullEmpty ? "NULL data for empty tensors, " : "") +
          std::to_string(kThreadCounts[t]) + " thread(s)");
      Call call(cs.args, nullEmpty);
      ASSERT_EQ(call.run(contexts[t], kernel), NORMC_OK) << lastError();
      EXPECT_TRUE(call.guardsIntact(cs.args));
      for (size_t i = 0; i < cs.args.size(); ++i) {
        const Arg &o = cs.args[i];
        if (!o.output || numel(o.shape) == 0)
          continue;
        std::vector<double> got =
            loadFrom(o.dtype, call.buffers[i].data(), numel(o.shape));
        for (size_t j = 0; j < got.size(); ++j)
          ASSERT_EQ(got[j], 0.0) << o.name << "[" << j << "]";
      }
    }
}

INSTANTIATE_TEST_SUITE_P(AllNorms, RuntimeBackward,
                         ::testing::ValuesIn(testedConfigs()),
                         [](const ::testing::TestParamInfo<Config> &info) {
                           return info.param.name();
                         });

INSTANTIATE_TEST_SUITE_P(AllNorms, RuntimeBackwardEmpty,
                         ::testing::ValuesIn(testedConfigs()),
                         [](const ::testing::TestParamInfo<Config> &info) {
                           return info.param.name();
                         });

//===----------------------------------------------------------------------===//
// Across kernels
//===----------------------------------------------------------------------===//

const Config kLayerNorm = {Op::LayerNorm, DType::F32, false, true};
const Config kGroupNormNhwc = {Op::GroupNorm, DType::F16, true, true};
const Config kBatchNormTrain = {Op::BatchNormTrain, DType::BF16, false, true};

/// Several application threads run the same backward kernel on one context
/// at once: each run has its own workspace, so every result is the serial
/// one, bit for bit.
TEST(RuntimeBackwardConcurrency, SameKernelFromFourThreads) {
  ASSERT_TRUE(ready()) << bundleError;
  for (const Config &c : {kLayerNorm, kGroupNormNhwc, kBatchNormTrain}) {
    SCOPED_TRACE(c.backwardName());
    const normc_kernel *kernel = findKernel(c.backwardName());
    ASSERT_NE(kernel, nullptr);
    Case cs = makeCase(c, shapesFor(c).back(), 7);
    ASSERT_TRUE(cs.error.empty()) << cs.error;
    Call serial(cs.args);
    ASSERT_EQ(serial.run(contexts[0], kernel), NORMC_OK) << lastError();

    constexpr int kCallers = 4, kRounds = 3;
    std::vector<std::unique_ptr<Call>> calls;
    for (int i = 0; i < kCallers * kRounds; ++i)
      calls.push_back(std::make_unique<Call>(cs.args));
    std::vector<normc_status> status(calls.size(), NORMC_OK);
    std::vector<std::thread> callers;
    for (int t = 0; t < kCallers; ++t)
      callers.emplace_back([&, t] {
        for (int r = 0; r < kRounds; ++r) {
          size_t i = t * kRounds + r;
          status[i] = calls[i]->run(contexts[2], kernel);
        }
      });
    for (std::thread &t : callers)
      t.join();
    for (size_t i = 0; i < calls.size(); ++i) {
      ASSERT_EQ(status[i], NORMC_OK) << "call " << i;
      for (size_t a = 0; a < cs.args.size(); ++a) {
        if (cs.args[a].output) {
          EXPECT_TRUE(calls[i]->outputBytes(cs.args, a) ==
                      serial.outputBytes(cs.args, a))
              << cs.args[a].name << " of call " << i
              << " differs from the serial run";
        }
      }
    }
  }
}

/// What training does: the forward kernel's saved mean/rstd feed the
/// backward kernel, both through the runtime. The gradient matches the
/// float64 one from exact statistics.
TEST(RuntimeBackwardChain, ForwardStatisticsFeedTheBackward) {
  ASSERT_TRUE(ready()) << bundleError;
  for (const Config &c : {kLayerNorm, kGroupNormNhwc, kBatchNormTrain}) {
    std::vector<int64_t> shape = shapesFor(c)[1];
    SCOPED_TRACE(c.name() + " shape " + shapeText(shape));
    const normc_kernel *fwd = findKernel(c.name());
    const normc_kernel *bwd = findKernel(c.backwardName());
    ASSERT_TRUE(fwd && bwd);
    Case cs = makeCase(c, shape, 21);
    ASSERT_TRUE(cs.error.empty()) << cs.error;

    // Forward args: x, [gamma, beta], [running stats], y, mean, rstd,
    // [running outputs].
    std::vector<int64_t> affineShp, statsShp;
    argShapes(c, shape, affineShp, statsShp);
    std::vector<Arg> fargs = {{"x", false, c.dtype, shape, cs.x}};
    if (c.affine) {
      fargs.push_back({"gamma", false, c.dtype, affineShp, cs.gamma});
      if (c.hasBeta())
        fargs.push_back({"beta", false, c.dtype, affineShp, cs.beta});
    }
    if (c.op == Op::BatchNormTrain) {
      fargs.push_back(
          {"running_mean", false, DType::F32, statsShp, cs.runMean});
      fargs.push_back({"running_var", false, DType::F32, statsShp, cs.runVar});
    }
    fargs.push_back({"y", true, c.dtype, shape, {}});
    size_t meanIndex = fargs.size();
    fargs.push_back({"mean", true, DType::F32, statsShp, {}});
    fargs.push_back({"rstd", true, DType::F32, statsShp, {}});
    if (c.op == Op::BatchNormTrain) {
      fargs.push_back({"running_mean_out", true, DType::F32, statsShp, {}});
      fargs.push_back({"running_var_out", true, DType::F32, statsShp, {}});
    }
    ASSERT_EQ(normc_kernel_num_args(fwd), fargs.size());
    Call forwardCall(fargs);
    ASSERT_EQ(forwardCall.run(contexts[2], fwd), NORMC_OK) << lastError();

    // The backward reads the forward's mean and rstd buffers.
    Call backwardCall(cs.args);
    size_t bmean = 0;
    while (cs.args[bmean].name != "mean")
      ++bmean;
    backwardCall.tensors[bmean].data = forwardCall.buffers[meanIndex].data();
    backwardCall.tensors[bmean + 1].data =
        forwardCall.buffers[meanIndex + 1].data();
    ASSERT_EQ(backwardCall.run(contexts[2], bwd), NORMC_OK) << lastError();
    compareOutputs(cs.args, backwardCall, /*keep=*/false);
  }
}

/// The direct C entry point `<name>_backward(...)` allocates the workspace
/// itself and runs everything on the calling thread; it agrees with the
/// runtime bit for bit.
TEST(RuntimeBackwardDirect, DirectEntryAgreesWithTheRuntime) {
  ASSERT_TRUE(ready()) << bundleError;
  // dlopen returns the instance the runtime already loaded.
  normc::test::KernelBundle direct(NORMC_RUNTIME_BACKWARD_TEST_BUNDLE);
  ASSERT_TRUE(direct.ok()) << direct.error();
  using Fn =
      int32_t (*)(const void *, const void *, const void *, const void *,
                  const void *, void *, void *, void *, int64_t, int64_t);
  auto fn = reinterpret_cast<Fn>(direct.symbol(kLayerNorm.backwardName()));
  ASSERT_NE(fn, nullptr);
  const normc_kernel *kernel = findKernel(kLayerNorm.backwardName());
  ASSERT_NE(kernel, nullptr);
  // The largest LayerNorm shape of the tests has more work items than the
  // 16 chunks a 4-thread context splits a run into, so the thread-count
  // checks above really spread chunks over threads.
  normc::test::KernelEntry entry = direct.kernel(kLayerNorm.backwardName());
  ASSERT_NE(entry.work, nullptr);
  std::vector<int64_t> largest = shapesFor(kLayerNorm).back();
  EXPECT_GT(entry.work(largest.data()), 16);
  for (const std::vector<int64_t> &shape :
       {std::vector<int64_t>{300, 257}, std::vector<int64_t>{0, 33}}) {
    SCOPED_TRACE(shapeText(shape));
    Case cs = makeCase(kLayerNorm, shape, 5);
    ASSERT_TRUE(cs.error.empty()) << cs.error;
    Call viaRuntime(cs.args), viaDirect(cs.args);
    ASSERT_EQ(viaRuntime.run(contexts[2], kernel), NORMC_OK) << lastError();
    auto p = [&](size_t i) { return viaDirect.buffers[i].data(); };
    ASSERT_EQ(
        fn(p(0), p(1), p(2), p(3), p(4), p(5), p(6), p(7), shape[0], shape[1]),
        0);
    for (size_t i = 5; i < 8; ++i)
      EXPECT_TRUE(viaDirect.outputBytes(cs.args, i) ==
                  viaRuntime.outputBytes(cs.args, i))
          << cs.args[i].name;
  }
}

TEST(RuntimeBackwardErrors, ReportedByTheRuntime) {
  ASSERT_TRUE(ready()) << bundleError;
  const std::string name = kLayerNorm.backwardName();
  const normc_kernel *kernel = findKernel(name);
  ASSERT_NE(kernel, nullptr);
  Case cs = makeCase(kLayerNorm, {7, 17}, 3);
  ASSERT_TRUE(cs.error.empty()) << cs.error;

  // The workspace is the runtime's business, not an argument.
  Call extra(cs.args);
  std::vector<normc_tensor> nine = extra.tensors;
  nine.push_back(nine.back());
  EXPECT_EQ(normc_run(contexts[1], kernel, nine.data(), nine.size()),
            NORMC_ERROR_SIGNATURE_MISMATCH);
  EXPECT_EQ(lastError(), "kernel '" + name + "' expects 8 args but got 9");
  EXPECT_TRUE(extra.outputsUntouched(cs.args));

  // Validation covers the gradients like any output: dx may not overlap
  // dy (the manifest declares no in-place output for backward kernels).
  Call alias(cs.args);
  alias.tensors[5].data = alias.tensors[0].data;
  EXPECT_EQ(alias.run(contexts[1], kernel), NORMC_ERROR_ALIASING);
  EXPECT_NE(lastError().find("output 'dx'"), std::string::npos) << lastError();
  EXPECT_TRUE(alias.outputsUntouched(cs.args));

  // An empty reduction with rows: nothing to differentiate, dx and the
  // parameter gradients are empty, and the call succeeds (the forward
  // refuses it, see RuntimeForwardTest).
  std::vector<Arg> args = {{"dy", false, DType::F32, {3, 0}, {}},
                           {"x", false, DType::F32, {3, 0}, {}},
                           {"gamma", false, DType::F32, {0}, {}},
                           {"mean", false, DType::F32, {3}, {0, 0, 0}},
                           {"rstd", false, DType::F32, {3}, {1, 1, 1}},
                           {"dx", true, DType::F32, {3, 0}, {}},
                           {"dgamma", true, DType::F32, {0}, {}},
                           {"dbeta", true, DType::F32, {0}, {}}};
  Call empty(args);
  EXPECT_EQ(empty.run(contexts[1], kernel), NORMC_OK) << lastError();
}

} // namespace

int main(int argc, char **argv) {
  if (normc::test::handleWriteSpec(argc, argv,
                                   specFor(testedConfigs(), /*backward=*/true)))
    return 0;
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new RuntimeBundle);
  return RUN_ALL_TESTS();
}
