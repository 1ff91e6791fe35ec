//===- RuntimeForwardTest.cpp - normc bundles run through the runtime -----===//
//
// The end-to-end path an application takes: a spec compiled by normc
// (--emit=shared) is opened with libnormc_runtime, each kernel's manifest
// signature is checked, and the kernel is run with normc_run on tensor
// descriptors, on 1 and 2 threads. Outputs are compared with the float64
// reference (test/reference) the way ForwardTest.cpp does it (reference
// rounded to the output type, torch.testing's default tolerances), and
// must not depend on the thread count.
//
// Every named norm is covered in f32, f16 and bf16; the channel ops in NCHW
// ([N, C, H, W], channel dim 1) and NHWC ([N, H, W, C], channel dim 3) with
// a static C, so the manifests mix static and dynamic dims. Each kernel runs
// a few shapes, including a zero-size batch, and once in place (y = x, which
// every manifest allows).
//
// RuntimeZeroBatch checks that BatchNorm inference accepts a zero-size batch.
// RuntimeValidation checks the runtime's validation against these real
// kernels: wrong dtype, wrong static dim, inconsistent dynamic dim, NULL
// data, arg count, rank, aliasing, strides (each with its exact message,
// normc_validate agreeing with normc_run, and no output written), and how a
// kernel's own error code is reported.
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

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

using namespace normc::ref;
using namespace normc::test;

namespace {

using Config = RuntimeConfig;

std::vector<Config> testedConfigs() {
  std::vector<Config> configs = affineRuntimeConfigs();
  // Without weight/bias (InstanceNorm's PyTorch default).
  configs.push_back({Op::LayerNorm, DType::F32, false, false});
  configs.push_back({Op::InstanceNorm, DType::F32, false, false});
  configs.push_back({Op::GroupNorm, DType::BF16, true, false});
  return configs;
}

//===----------------------------------------------------------------------===//
// Arguments and reference
//===----------------------------------------------------------------------===//

struct Case {
  std::vector<Arg> args;
  std::string error; // reference failure, if any
};

/// The arguments of `c` for x of `shape`, in the kernel's order (spec
/// inputs, then results), with inputs drawn from `seed` and the float64
/// reference as the outputs' values. For a zero-size x, inputs are zeros
/// and outputs have no expected values.
Case makeCase(const Config &c, const std::vector<int64_t> &shape,
              uint64_t seed) {
  Case result;
  DType stat = DType::F32;
  std::vector<int64_t> affineShp, statsShp;
  argShapes(c, shape, affineShp, statsShp);
  std::vector<double> x(numel(shape)), gamma(numel(affineShp)),
      beta(numel(affineShp)), runMean(numel(statsShp)), runVar(numel(statsShp));
  ForwardResult ref;
  if (numel(shape) != 0) {
    NormDesc desc = descFor(c, shape);
    if (std::string why = validate(desc); !why.empty()) {
      result.error = "invalid reference desc: " + why;
      return result;
    }
    if (statsShape(desc) != statsShp || gammaShape(desc) != affineShp) {
      result.error = "the test's shapes disagree with the reference's";
      return result;
    }
    std::vector<Pattern> patterns = {Pattern::Normal, Pattern::LargeMean,
                                     Pattern::Constant, Pattern::NearMax,
                                     Pattern::TinyVariance};
    if (c.op == Op::BatchNormInfer) // given statistics: keep x ordinary
      patterns = {Pattern::Normal};
    x = generateInput(desc, c.dtype, patterns, seed);
    gamma = randomNormal(numel(affineShp), seed + 1, c.dtype, 1.0, 0.5);
    beta = randomNormal(numel(affineShp), seed + 2, c.dtype, 0.0, 1.0);
    runMean = randomNormal(numel(statsShp), seed + 3, stat);
    runVar = randomUniform(numel(statsShp), seed + 4, 0.25, 4.0, stat);

    ForwardInputs in =
        normc::ref::forwardInputs(desc, x, gamma, beta, runMean, runVar);
    ref = forward(desc, in);
    if (!ref.ok())
      result.error = "reference: " + ref.error;
  }

  auto &a = result.args;
  a.push_back({"x", false, c.dtype, shape, x});
  if (c.affine) {
    a.push_back({"gamma", false, c.dtype, affineShp, gamma});
    if (c.op != Op::RMSNorm)
      a.push_back({"beta", false, c.dtype, affineShp, beta});
  }
  if (c.op == Op::BatchNormInfer) {
    a.push_back({"mean", false, stat, statsShp, runMean});
    a.push_back({"var", false, stat, statsShp, runVar});
  }
  if (c.op == Op::BatchNormTrain) {
    a.push_back({"running_mean", false, stat, statsShp, runMean});
    a.push_back({"running_var", false, stat, statsShp, runVar});
  }
  a.push_back({"y", true, c.dtype, shape, ref.y});
  if (c.op != Op::BatchNormInfer) {
    if (c.op != Op::RMSNorm)
      a.push_back({"mean", true, stat, statsShp, ref.mean});
    a.push_back({"rstd", true, stat, statsShp, ref.rstd});
  }
  if (c.op == Op::BatchNormTrain) {
    a.push_back({"running_mean_out", true, stat, statsShp, ref.runningMean});
    a.push_back({"running_var_out", true, stat, statsShp, ref.runningVar});
  }
  return result;
}

std::string lastError() { return normc_last_error(); }

//===----------------------------------------------------------------------===//
// Shared bundle and contexts
//===----------------------------------------------------------------------===//

normc_bundle *bundle = nullptr;
std::string bundleError;
normc_context *contexts[2] = {nullptr, nullptr}; // 1 and 2 threads

class RuntimeBundle : public ::testing::Environment {
public:
  void SetUp() override {
    if (normc_bundle_open(NORMC_RUNTIME_FORWARD_TEST_BUNDLE, &bundle) !=
        NORMC_OK)
      bundleError = lastError();
    for (uint32_t i = 0; i < 2; ++i) {
      normc_context_options options;
      normc_context_options_init(&options);
      options.num_threads = i + 1;
      options.pin_threads = 0;
      if (normc_context_create(&options, &contexts[i]) != NORMC_OK)
        bundleError = lastError();
    }
  }
  void TearDown() override {
    for (normc_context *&ctx : contexts)
      normc_context_destroy(ctx), ctx = nullptr;
    normc_bundle_close(bundle);
    bundle = nullptr;
  }
};

const normc_kernel *findKernel(const std::string &name) {
  const normc_kernel *kernel = nullptr;
  if (normc_bundle_find_kernel(bundle, name.c_str(), &kernel) != NORMC_OK)
    return nullptr;
  return kernel;
}

//===----------------------------------------------------------------------===//
// Forward through the runtime
//===----------------------------------------------------------------------===//

class RuntimeForward : public ::testing::TestWithParam<Config> {};

std::vector<std::vector<int64_t>> shapesFor(const Config &c) {
  if (!c.isChannelOp())
    return {{1, 1}, {7, 17}, {64, 1151}, {3, 4096}, {0, 33}};
  // N, H, W with C fixed; BatchNorm training needs 2 values per channel.
  std::vector<std::vector<int64_t>> nhw = {{2, 5, 7}, {3, 16, 33}};
  if (c.op != Op::BatchNormTrain)
    nhw.push_back({1, 1, 1});
  nhw.push_back({0, 5, 7});
  std::vector<std::vector<int64_t>> shapes;
  for (auto &d : nhw)
    shapes.push_back(c.channelShape(d));
  return shapes;
}

TEST_P(RuntimeForward, MatchesFloat64Reference) {
  const Config &c = GetParam();
  ASSERT_TRUE(bundle && contexts[0] && contexts[1]) << bundleError;
  const normc_kernel *kernel = findKernel(c.name());
  ASSERT_NE(kernel, nullptr) << lastError();

  // The manifest signature: kind, op, and args (name, io, dtype) in order.
  static const char *ops[] = {"layer_norm", "rms_norm",      "batch_norm",
                              "batch_norm", "instance_norm", "group_norm"};
  EXPECT_EQ(normc_kernel_get_kind(kernel), NORMC_KIND_FORWARD);
  EXPECT_STREQ(normc_op_name(normc_kernel_op(kernel)), ops[(int)c.op]);
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
    EXPECT_EQ(info.inplace ? std::string(info.inplace) : std::string(),
              sig.args[i].name == "y" ? "x" : "")
        << info.name;
  }

  uint64_t seed = 1;
  bool inPlaceChecked = false;
  for (const std::vector<int64_t> &shape : shapesFor(c)) {
    SCOPED_TRACE(c.name() + " shape " + shapeText(shape));
    Case cs = makeCase(c, shape, seed);
    seed += 10;
    bool empty = numel(shape) == 0;
    ASSERT_TRUE(cs.error.empty()) << cs.error;
    const std::vector<Arg> &args = cs.args;

    if (empty) {
      // Zero-size batch, once with real pointers and once with NULL data for
      // the empty tensors (which the runtime allows). Training BatchNorm has
      // no statistics over zero values: the kernel reports a bad shape.
      // Everything else has nothing to do and succeeds (BatchNorm inference
      // is checked in RuntimeZeroBatch below).
      if (c.op == Op::BatchNormInfer)
        continue;
      for (bool nullEmpty : {false, true}) {
        Call call(args, nullEmpty);
        normc_status status = call.run(contexts[nullEmpty], kernel);
        if (c.op == Op::BatchNormTrain) {
          EXPECT_EQ(status, NORMC_ERROR_KERNEL_FAILED) << lastError();
        } else {
          EXPECT_EQ(status, NORMC_OK) << lastError();
        }
        EXPECT_TRUE(call.guardsIntact(args));
      }
      continue;
    }

    // Output bytes of the 1-thread run, by arg index.
    std::vector<std::vector<uint8_t>> first(args.size());
    for (int t = 0; t < 2; ++t) {
      SCOPED_TRACE(std::to_string(t + 1) + " thread(s)");
      Call call(args);
      ASSERT_EQ(call.run(contexts[t], kernel), NORMC_OK) << lastError();
      EXPECT_TRUE(call.guardsIntact(args)) << "wrote past an output";
      for (size_t i = 0; i < args.size(); ++i) {
        const Arg &o = args[i];
        if (!o.output)
          continue;
        std::vector<double> expected = roundToDType(o.values, o.dtype);
        CompareReport report = compareBuffer(o.dtype, call.buffers[i].data(),
                                             o.values.size(), expected);
        EXPECT_TRUE(report.ok) << o.name << ": " << report.message;
        std::vector<uint8_t> bytes = call.outputBytes(args, i);
        if (t == 0)
          first[i] = std::move(bytes);
        else
          EXPECT_TRUE(bytes == first[i])
              << o.name << " differs between 1 and 2 threads";
      }
    }

    // In place: y is x's buffer. Same bits as out of place.
    if (!inPlaceChecked) {
      inPlaceChecked = true;
      SCOPED_TRACE("in place");
      Call call(args);
      size_t y = 0;
      while (args[y].name != "y")
        ++y;
      call.tensors[y].data = call.buffers[0].data();
      ASSERT_EQ(call.run(contexts[1], kernel), NORMC_OK) << lastError();
      for (size_t i = y; i < args.size(); ++i) {
        const uint8_t *got =
            (i == y ? call.buffers[0] : call.buffers[i]).data();
        EXPECT_EQ(std::memcmp(got, first[i].data(), first[i].size()), 0)
            << args[i].name << " differs when running in place";
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllNorms, RuntimeForward,
                         ::testing::ValuesIn(testedConfigs()),
                         [](const ::testing::TestParamInfo<Config> &info) {
                           return info.param.name();
                         });

/// BatchNorm inference reduces nothing (the statistics are inputs), so a
/// zero-size batch is a valid call with nothing to do, as in PyTorch. Kept
/// apart from the parameterized test because normc's kernels currently
/// refuse it (the kernel's shape check treats it as an empty reduction and
/// returns NORMC_ERR_BAD_SHAPE).
TEST(RuntimeZeroBatch, BatchNormInferenceSucceeds) {
  ASSERT_TRUE(bundle && contexts[1]) << bundleError;
  for (const Config &c : testedConfigs()) {
    if (c.op != Op::BatchNormInfer)
      continue;
    const normc_kernel *kernel = findKernel(c.name());
    ASSERT_NE(kernel, nullptr);
    Case cs = makeCase(c, c.channelShape({0, 5, 7}), 1);
    for (bool nullEmpty : {false, true}) {
      Call call(cs.args, nullEmpty);
      EXPECT_EQ(call.run(contexts[1], kernel), NORMC_OK)
          << c.name() << (nullEmpty ? " (NULL data for empty tensors): " : ": ")
          << lastError();
    }
  }
}

//===----------------------------------------------------------------------===//
// Validation against real bundles
//===----------------------------------------------------------------------===//

class RuntimeValidation : public ::testing::Test {
protected:
  void SetUp() override { ASSERT_TRUE(bundle && contexts[1]) << bundleError; }

  /// Runs `call` (expecting `status` and `message`), checks that
  /// normc_validate agrees and that no output was written.
  void expectRejected(const normc_kernel *kernel, const Case &cs, Call &call,
                      normc_status status, const std::string &message) {
    EXPECT_EQ(normc_validate(kernel, call.tensors.data(), call.tensors.size()),
              status);
    EXPECT_EQ(lastError(), message);
    EXPECT_EQ(call.run(contexts[1], kernel), status)
        << normc_status_name(status);
    EXPECT_EQ(lastError(), message);
    EXPECT_TRUE(call.outputsUntouched(cs.args))
        << "a rejected call wrote an output";
  }
};

const Config kLayerNorm = {Op::LayerNorm, DType::F32, false, true};
const Config kGroupNorm = {Op::GroupNorm, DType::F16, false, true};

TEST_F(RuntimeValidation, ValidCallsPass) {
  for (const Config &c : {kLayerNorm, kGroupNorm}) {
    const normc_kernel *kernel = findKernel(c.name());
    ASSERT_NE(kernel, nullptr);
    Case cs = makeCase(c, shapesFor(c)[1], 3);
    Call call(cs.args);
    EXPECT_EQ(normc_validate(kernel, call.tensors.data(), call.tensors.size()),
              NORMC_OK)
        << lastError();
    EXPECT_EQ(call.run(contexts[1], kernel), NORMC_OK) << lastError();
  }
}

TEST_F(RuntimeValidation, WrongDType) {
  const normc_kernel *kernel = findKernel("layer_norm_f32");
  ASSERT_NE(kernel, nullptr);
  Case cs = makeCase(kLayerNorm, {7, 17}, 3);
  Call call(cs.args);
  call.tensors[0].dtype = NORMC_DTYPE_F16;
  expectRejected(kernel, cs, call, NORMC_ERROR_SIGNATURE_MISMATCH,
                 "kernel 'layer_norm_f32' arg 'x' has dtype f16 but the "
                 "manifest requires f32");

  // Statistics are f32 even for an f16 kernel.
  const normc_kernel *gn = findKernel("group_norm_nchw_f16");
  ASSERT_NE(gn, nullptr);
  Case gcs = makeCase(kGroupNorm, {2, kChannels, 5, 7}, 3);
  Call gcall(gcs.args);
  gcall.tensors[4].dtype = NORMC_DTYPE_F16; // mean
  expectRejected(gn, gcs, gcall, NORMC_ERROR_SIGNATURE_MISMATCH,
                 "kernel 'group_norm_nchw_f16' arg 'mean' has dtype f16 but "
                 "the manifest requires f32");
}

TEST_F(RuntimeValidation, WrongStaticDim) {
  const normc_kernel *kernel = findKernel("group_norm_nchw_f16");
  ASSERT_NE(kernel, nullptr);
  // C = 6 instead of the static 8 (and the right byte sizes for 6).
  Case cs = makeCase(kGroupNorm, {2, kChannels, 5, 7}, 3);
  Call call(cs.args);
  std::vector<int64_t> x6 = {2, 6, 5, 7};
  call.tensors[0].shape = x6.data();
  expectRejected(kernel, cs, call, NORMC_ERROR_SIGNATURE_MISMATCH,
                 "kernel 'group_norm_nchw_f16' arg 'x' dim 1 is 6 but the "
                 "manifest requires 8");

  Call call2(cs.args);
  std::vector<int64_t> gamma7 = {7};
  call2.tensors[1].shape = gamma7.data();
  expectRejected(kernel, cs, call2, NORMC_ERROR_SIGNATURE_MISMATCH,
                 "kernel 'group_norm_nchw_f16' arg 'gamma' dim 0 is 7 but the "
                 "manifest requires 8");

  Call call3(cs.args);
  std::vector<int64_t> stats = {2, 8}; // groups, not channels
  call3.tensors[5].shape = stats.data();
  expectRejected(kernel, cs, call3, NORMC_ERROR_SIGNATURE_MISMATCH,
                 "kernel 'group_norm_nchw_f16' arg 'rstd' dim 1 is 8 but the "
                 "manifest requires 4");
}

TEST_F(RuntimeValidation, InconsistentDynamicDim) {
  const normc_kernel *kernel = findKernel("layer_norm_f32");
  ASSERT_NE(kernel, nullptr);
  Case cs = makeCase(kLayerNorm, {7, 17}, 3);
  Call call(cs.args);
  std::vector<int64_t> gamma16 = {16};
  call.tensors[1].shape = gamma16.data();
  expectRejected(kernel, cs, call, NORMC_ERROR_SIGNATURE_MISMATCH,
                 "kernel 'layer_norm_f32' arg 'gamma' dim 0 is 16 but d1 = 17 "
                 "from arg 'x'");

  Call call2(cs.args);
  std::vector<int64_t> mean6 = {6};
  call2.tensors[4].shape = mean6.data();
  expectRejected(kernel, cs, call2, NORMC_ERROR_SIGNATURE_MISMATCH,
                 "kernel 'layer_norm_f32' arg 'mean' dim 0 is 6 but d0 = 7 "
                 "from arg 'x'");

  const normc_kernel *gn = findKernel("group_norm_nchw_f16");
  ASSERT_NE(gn, nullptr);
  Case gcs = makeCase(kGroupNorm, {2, kChannels, 5, 7}, 3);
  Call gcall(gcs.args);
  std::vector<int64_t> y = {2, kChannels, 5, 6};
  gcall.tensors[3].shape = y.data();
  expectRejected(gn, gcs, gcall, NORMC_ERROR_SIGNATURE_MISMATCH,
                 "kernel 'group_norm_nchw_f16' arg 'y' dim 3 is 6 but d2 = 7 "
                 "from arg 'x'");
}

TEST_F(RuntimeValidation, NullPointer) {
  const normc_kernel *kernel = findKernel("group_norm_nchw_f16");
  ASSERT_NE(kernel, nullptr);
  Case cs = makeCase(kGroupNorm, {2, kChannels, 5, 7}, 3);
  Call call(cs.args);
  call.tensors[1].data = nullptr;
  expectRejected(kernel, cs, call, NORMC_ERROR_INVALID_ARGUMENT,
                 "kernel 'group_norm_nchw_f16' arg 'gamma' has a NULL data "
                 "pointer but 8 elements");

  Call call2(cs.args);
  call2.tensors[3].data = nullptr;
  expectRejected(kernel, cs, call2, NORMC_ERROR_INVALID_ARGUMENT,
                 "kernel 'group_norm_nchw_f16' arg 'y' has a NULL data "
                 "pointer but 560 elements");
}

TEST_F(RuntimeValidation, CountRankAliasingStrides) {
  const normc_kernel *kernel = findKernel("layer_norm_f32");
  ASSERT_NE(kernel, nullptr);
  Case cs = makeCase(kLayerNorm, {7, 17}, 3);

  Call count(cs.args);
  EXPECT_EQ(normc_run(contexts[1], kernel, count.tensors.data(), 5),
            NORMC_ERROR_SIGNATURE_MISMATCH);
  EXPECT_EQ(lastError(), "kernel 'layer_norm_f32' expects 6 args but got 5");

  Call rank(cs.args);
  std::vector<int64_t> flat = {7 * 17};
  rank.tensors[0].rank = 1;
  rank.tensors[0].shape = flat.data();
  expectRejected(kernel, cs, rank, NORMC_ERROR_SIGNATURE_MISMATCH,
                 "kernel 'layer_norm_f32' arg 'x' has rank 1 but the manifest "
                 "requires rank 2");

  Call alias(cs.args);
  alias.tensors[5].data = alias.tensors[4].data; // rstd onto mean
  expectRejected(kernel, cs, alias, NORMC_ERROR_ALIASING,
                 "kernel 'layer_norm_f32': output 'mean' aliases output "
                 "'rstd', which the manifest does not allow");

  Call strided(cs.args);
  std::vector<int64_t> strides = {1, 7}; // column-major
  strided.tensors[0].strides = strides.data();
  EXPECT_EQ(normc_run(contexts[1], kernel, strided.tensors.data(),
                      strided.tensors.size()),
            NORMC_ERROR_UNSUPPORTED);
  EXPECT_NE(lastError().find("arg 'x' is not contiguous"), std::string::npos)
      << lastError();
  EXPECT_TRUE(strided.outputsUntouched(cs.args));
}

TEST_F(RuntimeValidation, KernelErrorsAreReported) {
  // An empty reduction with rows to normalize: the kernel itself refuses
  // (NORMC_ERR_BAD_SHAPE = 2) and the runtime says which kernel failed.
  const normc_kernel *kernel = findKernel("layer_norm_f32");
  ASSERT_NE(kernel, nullptr);
  std::vector<Arg> args = {{"x", false, DType::F32, {3, 0}, {}},
                           {"gamma", false, DType::F32, {0}, {}},
                           {"beta", false, DType::F32, {0}, {}},
                           {"y", true, DType::F32, {3, 0}, {}},
                           {"mean", true, DType::F32, {3}, {0, 0, 0}},
                           {"rstd", true, DType::F32, {3}, {0, 0, 0}}};
  Call call(args);
  EXPECT_EQ(call.run(contexts[1], kernel), NORMC_ERROR_KERNEL_FAILED);
  EXPECT_NE(lastError().find("kernel 'layer_norm_f32' failed with code 2"),
            std::string::npos)
      << lastError();
}

} // namespace

int main(int argc, char **argv) {
  if (normc::test::handleWriteSpec(
          argc, argv, specFor(testedConfigs(), /*backward=*/false)))
    return 0;
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new RuntimeBundle);
  return RUN_ALL_TESTS();
}
