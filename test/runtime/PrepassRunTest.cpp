//===- PrepassRunTest.cpp - Forward kernels with a prepass step -----------===//
//
// Forward kernels on long rows come with a prepass (bundle ABI 3, manifest
// field "prepass" next to "workspace"). With the hand-written
// prepass_bundle.so (bundles/PrepassBundle.cpp) these tests check that the
// runtime
//   * resolves the prepass entry and work symbols when opening, and names
//     them when missing; refuses a prepass without a workspace;
//   * allocates the workspace and passes the same one to the prepass, the
//     work items and the finalize step;
//   * runs every prepass item, split over the threads, before any work item
//     starts (the bundle's results are wrong otherwise), then every work
//     item, then finalize if there is one;
//   * skips the prepass when its work function returns 0 for the dims;
//   * reports a failing prepass item (the work items then do not run) and a
//     negative prepass item count;
//   * gives each of several concurrent runs its own workspace.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"
#include "bundles/PrepassManifests.h"

#include <cstring>
#include <dlfcn.h>
#include <thread>

using namespace normc_test;
using normc_test_pp::kChunk;
using normc_test_pp::Stats;

namespace {

/// Opens `name`, expecting failure with `status`; returns the message.
std::string openFailure(const std::string &name, normc_status status) {
  normc_bundle *bundle = nullptr;
  EXPECT_EQ(normc_bundle_open(bundlePath(name).c_str(), &bundle), status)
      << normc_last_error();
  EXPECT_EQ(bundle, nullptr);
  normc_bundle_close(bundle);
  return normc_last_error();
}

/// Inputs and outputs of the bundle's kernels for `rows` x `cols`.
struct Data {
  int64_t rows, cols;
  std::vector<float> x, y;
  std::vector<double> mean;

  Data(int64_t rows, int64_t cols, uint32_t seed = 1)
      : rows(rows), cols(cols), x(rows * cols), y(rows * cols, -7.0f),
        mean(1, -7.0) {
    // Small integers: every sum is exact, whatever the order.
    std::vector<float> r = randomFloats(rows * cols, seed);
    for (size_t i = 0; i < x.size(); ++i)
      x[i] = std::floor(r[i] * 8);
  }

  Args args() {
    Args args;
    args.add(x.data(), NORMC_DTYPE_F32, {rows, cols});
    args.add(y.data(), NORMC_DTYPE_F32, {rows, cols});
    args.add(mean.data(), NORMC_DTYPE_F64, {1});
    return args;
  }

  double expectedMean() const {
    double total = 0;
    for (float v : x)
      total += v;
    return x.empty() ? 0 : total / static_cast<double>(x.size());
  }
  /// y = x - mean and the mean, exactly.
  void expectResults() const {
    double m = expectedMean();
    EXPECT_EQ(mean[0], m);
    for (size_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(y[i], static_cast<float>(x[i] - m)) << "y[" << i << "]";
  }
};

int64_t prepassItems(int64_t rows, int64_t cols) {
  return rows * ((cols + kChunk - 1) / kChunk);
}

class Prepass : public HookedBundleTest<Stats> {
protected:
  Prepass() : HookedBundleTest("prepass_bundle", "normc_test_pp") {}
};

TEST_F(Prepass, KernelsOpenWithTheirSignature) {
  EXPECT_EQ(normc_bundle_num_kernels(bundle.get()), 5u);
  const normc_kernel *pre = kernel("pre");
  ASSERT_NE(pre, nullptr);
  EXPECT_EQ(normc_kernel_get_kind(pre), NORMC_KIND_FORWARD);
  // The workspace is not an argument.
  EXPECT_EQ(normc_kernel_num_args(pre), 3u);
  EXPECT_THAT(normc_bundle_manifest_json(bundle.get()),
              HasSubstr("\"prepass\": {\"entry\": \"__normc_pre_prepass\", "
                        "\"work\": \"__normc_pre_prepass_work\"}"));
}

class PrepassThreads : public Prepass,
                       public ::testing::WithParamInterface<uint32_t> {};

/// 7 rows of 37: 5 chunks a row, 35 prepass items (so 2 and 4 threads
/// split them) and 7 work items. Every work item adds up all 35 slots.
TEST_P(PrepassThreads, EveryPrepassItemRunsBeforeAnyWorkItem) {
  ContextPtr context = makeContext(GetParam());
  ASSERT_TRUE(context);
  const int64_t rows = 7, cols = 37, items = prepassItems(rows, cols);
  ASSERT_EQ(items, 35);
  Data data(rows, cols, 3);
  Args args = data.args();
  ASSERT_EQ(normc_run(context.get(), kernel("pre"), args.data(), args.size()),
            NORMC_OK)
      << normc_last_error();
  data.expectResults();

  Stats s = stats();
  EXPECT_EQ(s.prepassItemsRun, items) << "every prepass item runs once";
  EXPECT_EQ(s.mainItemsRun, rows) << "every work item runs once";
  EXPECT_EQ(s.prepassItemsAtMain, items)
      << "a work item started before the prepass had finished";
  EXPECT_EQ(s.mainItemsAtPrepass, 0) << "a prepass item ran after a work item";
  EXPECT_EQ(s.finalizeCalls, 0);
  // One workspace of the asked size for the whole run, at args[3], aligned
  // for doubles, and not one of the tensors.
  EXPECT_EQ(s.workspaceBytes, items * 8);
  EXPECT_EQ(s.distinctWorkspaces, 1);
  EXPECT_NE(s.workspace, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(s.workspace) % alignof(double), 0u);
  EXPECT_FALSE(s.workspaceAliasesAnArg);
  if (GetParam() > 1) {
    EXPECT_GT(s.prepassCalls, 1) << "the prepass items were not split";
    EXPECT_GT(s.mainCalls, 1) << "the work items were not split";
  }

  // The results do not depend on the thread count.
  Data serial(rows, cols, 3);
  ContextPtr one = makeContext(1);
  Args serialArgs = serial.args();
  ASSERT_EQ(
      normc_run(one.get(), kernel("pre"), serialArgs.data(), serialArgs.size()),
      NORMC_OK);
  EXPECT_EQ(serial.y, data.y);
  EXPECT_EQ(std::memcmp(serial.mean.data(), data.mean.data(), sizeof(double)),
            0);
}

/// A kernel with a prepass and a finalize step: prepass, work items, then
/// finalize once, all with the same workspace.
TEST_P(PrepassThreads, FinalizeRunsAfterTheWorkItems) {
  ContextPtr context = makeContext(GetParam());
  const int64_t rows = 6, cols = 20, items = prepassItems(rows, cols);
  Data data(rows, cols, 4);
  Args args = data.args();
  ASSERT_EQ(
      normc_run(context.get(), kernel("prefin"), args.data(), args.size()),
      NORMC_OK)
      << normc_last_error();
  data.expectResults();
  Stats s = stats();
  EXPECT_EQ(s.prepassItemsRun, items);
  EXPECT_EQ(s.prepassItemsAtMain, items);
  EXPECT_EQ(s.finalizeCalls, 1);
  EXPECT_EQ(s.mainItemsAtFinalize, rows) << "finalize ran before a work item";
  EXPECT_EQ(s.distinctWorkspaces, 1);
}

/// preshort has no prepass items for rows of at most kChunk elements: the
/// prepass is not called, the 0-byte workspace is still a valid pointer.
/// One element more and it has a prepass again.
TEST_P(PrepassThreads, NoPrepassWhenItHasNoItems) {
  ContextPtr context = makeContext(GetParam());
  for (int64_t cols : {kChunk, kChunk + 1}) {
    SCOPED_TRACE(std::to_string(cols) + " columns");
    reset();
    const int64_t rows = 9;
    Data data(rows, cols, 5);
    Args args = data.args();
    ASSERT_EQ(
        normc_run(context.get(), kernel("preshort"), args.data(), args.size()),
        NORMC_OK)
        << normc_last_error();
    data.expectResults();
    Stats s = stats();
    int64_t items = cols <= kChunk ? 0 : prepassItems(rows, cols);
    EXPECT_EQ(s.workspaceBytes, items * 8);
    EXPECT_EQ(s.prepassCalls == 0, items == 0);
    EXPECT_EQ(s.prepassItemsRun, items);
    EXPECT_EQ(s.prepassItemsAtMain, items);
    EXPECT_EQ(s.mainItemsRun, rows);
    EXPECT_EQ(s.distinctWorkspaces, 1);
    EXPECT_NE(s.workspace, nullptr);
  }
}

/// Zero rows: neither step has items; finalize still runs once. Also with
/// NULL data for the empty tensors.
TEST_P(PrepassThreads, ZeroRows) {
  ContextPtr context = makeContext(GetParam());
  for (const char *name : {"pre", "prefin"}) {
    for (bool nullEmpty : {false, true}) {
      SCOPED_TRACE(std::string(name) + (nullEmpty ? ", NULL data" : ""));
      reset();
      Data data(0, 37);
      Args args = data.args();
      if (nullEmpty) {
        args[0].data = nullptr;
        args[1].data = nullptr;
      }
      ASSERT_EQ(
          normc_run(context.get(), kernel(name), args.data(), args.size()),
          NORMC_OK)
          << normc_last_error();
      Stats s = stats();
      EXPECT_EQ(s.workspaceBytes, 0);
      EXPECT_EQ(s.prepassCalls, 0);
      EXPECT_EQ(s.mainCalls, 0);
      bool finalize = std::string(name) == "prefin";
      EXPECT_EQ(s.finalizeCalls, finalize ? 1 : 0);
      EXPECT_EQ(data.mean[0], finalize ? 0.0 : -7.0);
    }
  }
}

TEST_P(PrepassThreads, FailingPrepassItemSkipsTheWorkItems) {
  ContextPtr context = makeContext(GetParam());
  Data data(7, 37);
  Args args = data.args();
  EXPECT_EQ(
      normc_run(context.get(), kernel("prefail"), args.data(), args.size()),
      NORMC_ERROR_KERNEL_FAILED);
  EXPECT_THAT(normc_last_error(),
              HasSubstr("kernel 'prefail': prepass failed with code 2 "
                        "(NORMC_ERR_BAD_SHAPE: a negative size, an empty "
                        "reduction or channels not divisible by the groups) "
                        "on prepass items [0, "));
  EXPECT_THAT(normc_last_error(), HasSubstr(") of 35"));
  Stats s = stats();
  EXPECT_GE(s.prepassCalls, 1);
  EXPECT_EQ(s.mainCalls, 0);
  EXPECT_EQ(data.y, std::vector<float>(7 * 37, -7.0f));
  EXPECT_EQ(data.mean[0], -7.0);
}

TEST_P(PrepassThreads, NegativePrepassItemCountIsReported) {
  ContextPtr context = makeContext(GetParam());
  Data data(7, 37);
  Args args = data.args();
  EXPECT_EQ(
      normc_run(context.get(), kernel("preneg"), args.data(), args.size()),
      NORMC_ERROR_KERNEL_FAILED);
  EXPECT_STREQ(normc_last_error(),
               "kernel 'preneg': prepass work function returned a negative "
               "item count (-3)");
  Stats s = stats();
  EXPECT_EQ(s.prepassCalls, 0);
  EXPECT_EQ(s.mainCalls, 0);
  EXPECT_EQ(data.y, std::vector<float>(7 * 37, -7.0f));
}

INSTANTIATE_TEST_SUITE_P(ThreadCounts, PrepassThreads,
                         ::testing::Values(1u, 2u, 4u));

/// Runs from several threads at once, on one context: each has its own
/// workspace, so each gets its own mean.
TEST_F(Prepass, ConcurrentRunsHaveTheirOwnWorkspace) {
  ContextPtr context = makeContext(4);
  ASSERT_TRUE(context);
  const normc_kernel *pre = kernel("pre");
  constexpr int kCallers = 4, kRounds = 4;
  std::vector<std::unique_ptr<Data>> data;
  for (int i = 0; i < kCallers * kRounds; ++i)
    data.push_back(std::make_unique<Data>(3 + i % 5, 17 + 3 * i, 100 + i));
  std::vector<normc_status> status(data.size(), NORMC_OK);
  std::vector<std::thread> callers;
  for (int t = 0; t < kCallers; ++t)
    callers.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        size_t i = t * kRounds + r;
        Args args = data[i]->args();
        status[i] = normc_run(context.get(), pre, args.data(), args.size());
      }
    });
  for (std::thread &t : callers)
    t.join();
  int64_t items = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    SCOPED_TRACE("run " + std::to_string(i));
    ASSERT_EQ(status[i], NORMC_OK);
    data[i]->expectResults();
    items += prepassItems(data[i]->rows, data[i]->cols);
  }
  EXPECT_EQ(stats().prepassItemsRun, items);
}

//===----------------------------------------------------------------------===//
// Opening
//===----------------------------------------------------------------------===//

TEST(PrepassOpen, MissingPrepassSymbolIsNamed) {
  std::string message =
      openFailure("pp_missing_prepass", NORMC_ERROR_MISSING_SYMBOL);
  EXPECT_THAT(message, HasSubstr("missing kernel symbol "
                                 "'__normc_pre_prepass' (prepass of kernel "
                                 "'pre')"));
  EXPECT_THAT(message, Not(HasSubstr("prepass work")));
}

TEST(PrepassOpen, MissingPrepassWorkSymbolIsNamed) {
  std::string message =
      openFailure("pp_missing_prepass_work", NORMC_ERROR_MISSING_SYMBOL);
  EXPECT_THAT(message, HasSubstr("missing kernel symbol "
                                 "'__normc_pre_prepass_work' (prepass work "
                                 "of kernel 'pre')"));
  EXPECT_THAT(message, Not(HasSubstr("(prepass of")));
}

TEST(PrepassOpen, PrepassWithoutWorkspaceIsRejected) {
  std::string manifest = NORMC_TEST_PP_NO_WORKSPACE_MANIFEST;
  size_t kernelOffset = manifest.find("[{") + 1;
  EXPECT_THAT(
      openFailure("pp_no_workspace_field", NORMC_ERROR_INVALID_MANIFEST),
      HasSubstr("invalid manifest: kernels[0]: 'prepass' requires "
                "'workspace' at byte " +
                std::to_string(kernelOffset)));
}

} // namespace
