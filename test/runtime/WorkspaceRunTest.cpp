//===- WorkspaceRunTest.cpp - Kernels with a workspace and finalize step --===//
//
// Backward kernels come with a scratch buffer and a finalize step (manifest
// fields "workspace" and "finalize"). With the hand-written
// workspace_bundle.so (bundles/WorkspaceBundle.cpp) these tests check that
// the runtime
//   * resolves both symbols when opening, and names them when missing;
//   * refuses a manifest that has one of the two fields without the other;
//   * allocates the workspace with the size the workspace function gives,
//     passes it to every work item as args[nargs] (one buffer per run,
//     never one of the tensors), and a valid pointer even for 0 bytes;
//   * calls finalize exactly once, after every work item, with the same
//     args array, also when there are no work items;
//   * reports a failing finalize step, a failing work item (then finalize
//     does not run) and a negative workspace size;
//   * gives each of several concurrent runs its own workspace.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"
#include "bundles/WorkspaceManifests.h"

#include <cstring>
#include <dlfcn.h>
#include <thread>

using namespace normc_test;
using normc_test_ws::kCols;
using normc_test_ws::kExtraBytes;
using normc_test_ws::kRowsPerItem;
using normc_test_ws::Stats;

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

/// Inputs and outputs of the bundle's kernels for `rows` rows.
struct Data {
  int64_t rows;
  std::vector<float> x, dx;
  std::vector<double> dsum;

  explicit Data(int64_t rows, uint32_t seed = 1)
      : rows(rows), x(rows * kCols), dx(rows * kCols, -7.0f),
        dsum(kCols, -7.0) {
    // Small integers: every sum is exact, whatever the order.
    std::vector<float> r = randomFloats(rows * kCols, seed);
    for (size_t i = 0; i < x.size(); ++i)
      x[i] = std::floor(r[i] * 8);
  }

  Args args() {
    Args args;
    args.add(x.data(), NORMC_DTYPE_F32, {rows, kCols});
    args.add(dx.data(), NORMC_DTYPE_F32, {rows, kCols});
    args.add(dsum.data(), NORMC_DTYPE_F64, {kCols});
    return args;
  }

  void expectDx() const {
    for (size_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(dx[i], 2 * x[i]) << "dx[" << i << "]";
  }
  void expectSums() const {
    for (int64_t j = 0; j < kCols; ++j) {
      double sum = 0;
      for (int64_t row = 0; row < rows; ++row)
        sum += x[row * kCols + j];
      EXPECT_EQ(dsum[j], sum) << "dsum[" << j << "]";
    }
  }
};

class Workspace : public HookedBundleTest<Stats> {
protected:
  Workspace() : HookedBundleTest("workspace_bundle", "normc_test_ws") {}
};

TEST_F(Workspace, KernelsOpenWithTheirSignature) {
  EXPECT_EQ(normc_bundle_num_kernels(bundle.get()), 5u);
  const normc_kernel *wsum = kernel("wsum");
  ASSERT_NE(wsum, nullptr);
  EXPECT_EQ(normc_kernel_get_kind(wsum), NORMC_KIND_BACKWARD);
  // The workspace is not an argument.
  EXPECT_EQ(normc_kernel_num_args(wsum), 3u);
  EXPECT_THAT(normc_bundle_manifest_json(bundle.get()),
              HasSubstr("\"workspace\": \"__normc_wsum_workspace\""));
}

class WorkspaceThreads : public Workspace,
                         public ::testing::WithParamInterface<uint32_t> {};

/// 37 rows: 8 work items (the last one short), so 2 and 4 threads split
/// them; the workspace is 8 x 4 doubles + 4 bytes.
TEST_P(WorkspaceThreads, AllocatedPassedAndFinalizedOnce) {
  ContextPtr context = makeContext(GetParam());
  ASSERT_TRUE(context);
  const int64_t rows = 37, work = (rows + kRowsPerItem - 1) / kRowsPerItem;
  Data data(rows, 3);
  Args args = data.args();
  ASSERT_EQ(normc_run(context.get(), kernel("wsum"), args.data(), args.size()),
            NORMC_OK)
      << normc_last_error();
  data.expectDx();
  data.expectSums();

  Stats s = stats();
  const int64_t bytes = work * kCols * 8 + kExtraBytes;
  EXPECT_EQ(s.workspaceBytes, bytes);
  EXPECT_EQ(s.itemsRun, work) << "every work item runs exactly once";
  EXPECT_EQ(s.finalizeCalls, 1);
  EXPECT_EQ(s.itemsRunAtFinalize, work) << "finalize ran before an item";
  // One workspace for the whole run, at args[3], at least `bytes` long,
  // aligned for doubles, and not one of the tensors.
  EXPECT_EQ(s.distinctPackedWorkspaces, 1);
  EXPECT_NE(s.finalizeWorkspace, nullptr);
  EXPECT_EQ(s.packedWorkspace, s.finalizeWorkspace);
  EXPECT_GE(s.finalizeUsableBytes, static_cast<size_t>(bytes));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(s.finalizeWorkspace) % alignof(double),
            0u);
  EXPECT_FALSE(s.workspaceAliasesAnArg);
  if (GetParam() > 1) {
    EXPECT_GT(s.packedCalls, 1) << "the items were not split";
  }

  // The sums do not depend on the thread count.
  Data serial(rows, 3);
  ContextPtr one = makeContext(1);
  Args serialArgs = serial.args();
  ASSERT_EQ(normc_run(one.get(), kernel("wsum"), serialArgs.data(),
                      serialArgs.size()),
            NORMC_OK);
  EXPECT_EQ(
      std::memcmp(serial.dsum.data(), data.dsum.data(), kCols * sizeof(double)),
      0);
}

/// No work items (zero rows): finalize still runs, once, and writes the
/// sums (zeros), with a valid workspace pointer although 0 bytes were
/// asked for; also with NULL data for the empty tensors.
TEST_P(WorkspaceThreads, FinalizeRunsWithoutWorkItems) {
  ContextPtr context = makeContext(GetParam());
  ASSERT_TRUE(context);
  for (bool nullEmpty : {false, true}) {
    SCOPED_TRACE(nullEmpty ? "NULL data" : "real pointers");
    reset();
    Data data(0);
    Args args = data.args();
    if (nullEmpty) {
      args[0].data = nullptr;
      args[1].data = nullptr;
    }
    ASSERT_EQ(
        normc_run(context.get(), kernel("wsum"), args.data(), args.size()),
        NORMC_OK)
        << normc_last_error();
    EXPECT_EQ(data.dsum, std::vector<double>(kCols, 0.0));
    Stats s = stats();
    EXPECT_EQ(s.workspaceBytes, 0);
    EXPECT_EQ(s.packedCalls, 0);
    EXPECT_EQ(s.finalizeCalls, 1);
    EXPECT_NE(s.finalizeWorkspace, nullptr);
    EXPECT_FALSE(s.workspaceAliasesAnArg);
  }
}

/// A kernel without workspace/finalize fields runs as before: no finalize,
/// no workspace function called.
TEST_P(WorkspaceThreads, KernelWithoutWorkspaceIsUnchanged) {
  ContextPtr context = makeContext(GetParam());
  Data data(23);
  Args args = data.args();
  ASSERT_EQ(normc_run(context.get(), kernel("plain"), args.data(), args.size()),
            NORMC_OK)
      << normc_last_error();
  data.expectDx();
  EXPECT_EQ(data.dsum, std::vector<double>(kCols, -7.0));
  Stats s = stats();
  EXPECT_EQ(s.workspaceBytes, -1);
  EXPECT_EQ(s.finalizeCalls, 0);
  EXPECT_EQ(s.itemsRun, 5);
}

TEST_P(WorkspaceThreads, FinalizeErrorIsReported) {
  ContextPtr context = makeContext(GetParam());
  for (int64_t rows : {12, 0}) {
    SCOPED_TRACE(std::to_string(rows) + " rows");
    reset();
    Data data(rows);
    Args args = data.args();
    EXPECT_EQ(
        normc_run(context.get(), kernel("wfinfail"), args.data(), args.size()),
        NORMC_ERROR_KERNEL_FAILED);
    EXPECT_STREQ(normc_last_error(),
                 "kernel 'wfinfail': finalize step failed with code 2 "
                 "(NORMC_ERR_BAD_SHAPE: a negative size, an empty reduction "
                 "or channels not divisible by the groups)");
    EXPECT_EQ(stats().finalizeCalls, 1);
  }
}

TEST_P(WorkspaceThreads, FailingWorkItemSkipsFinalize) {
  ContextPtr context = makeContext(GetParam());
  Data data(37);
  Args args = data.args();
  EXPECT_EQ(
      normc_run(context.get(), kernel("witemfail"), args.data(), args.size()),
      NORMC_ERROR_KERNEL_FAILED);
  EXPECT_THAT(normc_last_error(),
              HasSubstr("kernel 'witemfail' failed with code 5 (unknown "
                        "code) on work items ["));
  EXPECT_THAT(normc_last_error(), HasSubstr(") of 8"));
  EXPECT_EQ(stats().finalizeCalls, 0);
  EXPECT_EQ(data.dsum, std::vector<double>(kCols, -7.0));
}

TEST_P(WorkspaceThreads, NegativeWorkspaceSizeIsReported) {
  ContextPtr context = makeContext(GetParam());
  Data data(37);
  Args args = data.args();
  EXPECT_EQ(normc_run(context.get(), kernel("wneg"), args.data(), args.size()),
            NORMC_ERROR_KERNEL_FAILED);
  EXPECT_STREQ(normc_last_error(),
               "kernel 'wneg': workspace function returned a negative size "
               "(-8)");
  Stats s = stats();
  EXPECT_EQ(s.packedCalls, 0);
  EXPECT_EQ(s.finalizeCalls, 0);
  EXPECT_EQ(data.dx, std::vector<float>(37 * kCols, -7.0f));
}

INSTANTIATE_TEST_SUITE_P(ThreadCounts, WorkspaceThreads,
                         ::testing::Values(1u, 2u, 4u));

/// Runs of the same kernel from several threads at once, on one context:
/// each has its own workspace, so each gets its own sums.
TEST_F(Workspace, ConcurrentRunsHaveTheirOwnWorkspace) {
  ContextPtr context = makeContext(4);
  ASSERT_TRUE(context);
  const normc_kernel *wsum = kernel("wsum");
  constexpr int kCallers = 4, kRounds = 4;
  std::vector<std::unique_ptr<Data>> data;
  for (int i = 0; i < kCallers * kRounds; ++i)
    data.push_back(std::make_unique<Data>(29 + i, 100 + i));
  std::vector<normc_status> status(data.size(), NORMC_OK);
  std::vector<std::thread> callers;
  for (int t = 0; t < kCallers; ++t)
    callers.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        size_t i = t * kRounds + r;
        Args args = data[i]->args();
        status[i] = normc_run(context.get(), wsum, args.data(), args.size());
      }
    });
  for (std::thread &t : callers)
    t.join();
  int64_t items = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    SCOPED_TRACE("run " + std::to_string(i));
    ASSERT_EQ(status[i], NORMC_OK);
    data[i]->expectDx();
    data[i]->expectSums();
    items += (data[i]->rows + kRowsPerItem - 1) / kRowsPerItem;
  }
  Stats s = stats();
  EXPECT_EQ(s.finalizeCalls, kCallers * kRounds);
  EXPECT_EQ(s.itemsRun, items);
}

//===----------------------------------------------------------------------===//
// Opening
//===----------------------------------------------------------------------===//

TEST(WorkspaceOpen, MissingWorkspaceSymbolIsNamed) {
  std::string message =
      openFailure("ws_missing_workspace", NORMC_ERROR_MISSING_SYMBOL);
  EXPECT_THAT(message, HasSubstr("missing kernel symbol "
                                 "'__normc_wsum_workspace' (workspace of "
                                 "kernel 'wsum')"));
  EXPECT_THAT(message, Not(HasSubstr("finalize")));
}

TEST(WorkspaceOpen, MissingFinalizeSymbolIsNamed) {
  std::string message =
      openFailure("ws_missing_finalize", NORMC_ERROR_MISSING_SYMBOL);
  EXPECT_THAT(message, HasSubstr("missing kernel symbol "
                                 "'__normc_wsum_finalize' (finalize of "
                                 "kernel 'wsum')"));
  EXPECT_THAT(message, Not(HasSubstr("_workspace'")));
}

TEST(WorkspaceOpen, WorkspaceWithoutFinalizeIsRejected) {
  std::string manifest = NORMC_TEST_WS_NO_FINALIZE_MANIFEST;
  size_t kernelOffset = manifest.find("[{") + 1;
  EXPECT_THAT(openFailure("ws_no_finalize_field", NORMC_ERROR_INVALID_MANIFEST),
              HasSubstr("invalid manifest: kernels[0]: 'workspace' requires "
                        "'finalize' or 'prepass' at byte " +
                        std::to_string(kernelOffset)));
}

TEST(WorkspaceOpen, FinalizeWithoutWorkspaceIsRejected) {
  std::string manifest = NORMC_TEST_WS_NO_WORKSPACE_MANIFEST;
  size_t kernelOffset = manifest.find("[{") + 1;
  EXPECT_THAT(
      openFailure("ws_no_workspace_field", NORMC_ERROR_INVALID_MANIFEST),
      HasSubstr("invalid manifest: kernels[0]: 'finalize' requires "
                "'workspace' at byte " +
                std::to_string(kernelOffset)));
}

} // namespace
