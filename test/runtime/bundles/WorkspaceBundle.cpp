//===- WorkspaceBundle.cpp - Kernels with a workspace and finalize --------===//
//
// Stands in for normc's backward kernels (see WorkspaceManifests.h for the
// kernels). Built several times (test/runtime/CMakeLists.txt):
//   workspace_bundle           the valid bundle, with test hooks;
//   ws_missing_workspace       wsum's workspace function is not exported;
//   ws_missing_finalize        wsum's finalize function is not exported;
//   ws_no_finalize_field       the manifest has "workspace" but no "finalize";
//   ws_no_workspace_field      the manifest has "finalize" but no "workspace".
//
//===----------------------------------------------------------------------===//

#include "BundleAbi.h"
#include "WorkspaceManifests.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <malloc.h>
#include <mutex>
#include <set>
#include <thread>

using namespace normc_test_ws;

NORMC_TEST_EXPORT const uint32_t normc_abi_version = 3;

#if defined(NORMC_TEST_WS_NO_FINALIZE_FIELD)
NORMC_TEST_EXPORT const char normc_manifest[] =
    NORMC_TEST_WS_NO_FINALIZE_MANIFEST;
#elif defined(NORMC_TEST_WS_NO_WORKSPACE_FIELD)
NORMC_TEST_EXPORT const char normc_manifest[] =
    NORMC_TEST_WS_NO_WORKSPACE_MANIFEST;
#else
NORMC_TEST_EXPORT const char normc_manifest[] = NORMC_TEST_WS_MANIFEST;
#endif

namespace {

std::mutex mutex;
Stats stats;
std::set<const void *> packedWorkspaces;
std::atomic<int64_t> itemsRun{0};

int64_t workItems(const int64_t *dims) {
  return (dims[0] + kRowsPerItem - 1) / kRowsPerItem;
}

int64_t workspaceBytes(const int64_t *dims) {
  int64_t work = workItems(dims);
  int64_t bytes =
      work * kCols * int64_t(sizeof(double)) + (work ? kExtraBytes : 0);
  std::lock_guard<std::mutex> lock(mutex);
  stats.workspaceBytes = bytes;
  return bytes;
}

bool aliasesAnArg(void *const *args, const void *workspace) {
  for (int i = 0; i < 3; ++i)
    if (args[i] && args[i] == workspace)
      return true;
  return false;
}

/// Work items [begin, end); `failItem` returns 5 instead of running.
int32_t runItems(void *const *args, const int64_t *dims, int64_t begin,
                 int64_t end, bool useWorkspace, int64_t failItem = -1) {
  int64_t rows = dims[0];
  const float *x = static_cast<const float *>(args[0]);
  float *dx = static_cast<float *>(args[1]);
  double *ws = useWorkspace ? static_cast<double *>(args[3]) : nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex);
    ++stats.packedCalls;
    if (useWorkspace) {
      packedWorkspaces.insert(ws);
      stats.packedWorkspace = ws;
      stats.workspaceAliasesAnArg |= aliasesAnArg(args, ws);
    }
  }
  for (int64_t item = begin; item < end; ++item) {
    if (item == failItem)
      return 5;
    double partial[kCols] = {0, 0, 0, 0};
    int64_t last = std::min(rows, (item + 1) * kRowsPerItem);
    for (int64_t row = item * kRowsPerItem; row < last; ++row)
      for (int64_t j = 0; j < kCols; ++j) {
        dx[row * kCols + j] = 2 * x[row * kCols + j];
        partial[j] += x[row * kCols + j];
      }
    if (ws)
      for (int64_t j = 0; j < kCols; ++j)
        ws[item * kCols + j] = partial[j];
    // Slow enough that threads overlap.
    std::this_thread::sleep_for(std::chrono::microseconds(100));
    itemsRun.fetch_add(1);
  }
  return 0;
}

int32_t finalizeSums(void *const *args, const int64_t *dims, int32_t code) {
  int64_t work = workItems(dims);
  double *dsum = static_cast<double *>(args[2]);
  double *ws = static_cast<double *>(args[3]);
  {
    std::lock_guard<std::mutex> lock(mutex);
    ++stats.finalizeCalls;
    stats.itemsRunAtFinalize = itemsRun.load();
    stats.finalizeWorkspace = ws;
    stats.finalizeUsableBytes = ws ? malloc_usable_size(ws) : 0;
    stats.workspaceAliasesAnArg |= aliasesAnArg(args, ws);
  }
  if (code)
    return code;
  for (int64_t j = 0; j < kCols; ++j) {
    double total = 0;
    for (int64_t item = 0; item < work; ++item)
      total += ws[item * kCols + j];
    dsum[j] = total;
  }
  // Touch every requested byte, including the odd tail.
  if (work)
    std::memset(reinterpret_cast<char *>(ws + work * kCols), 0x5A, kExtraBytes);
  return 0;
}

} // namespace

//===--- test hooks (not part of the ABI) ---------------------------------===//

NORMC_TEST_EXPORT void normc_test_ws_reset() {
  std::lock_guard<std::mutex> lock(mutex);
  stats = Stats();
  packedWorkspaces.clear();
  itemsRun.store(0);
}

NORMC_TEST_EXPORT void normc_test_ws_stats(Stats *out) {
  std::lock_guard<std::mutex> lock(mutex);
  *out = stats;
  out->itemsRun = itemsRun.load();
  out->distinctPackedWorkspaces = static_cast<int64_t>(packedWorkspaces.size());
}

//===--- kernels ----------------------------------------------------------===//

#define NORMC_TEST_WS_WORK(name)                                               \
  NORMC_TEST_EXPORT int64_t __normc_##name##_work(const int64_t *dims) {       \
    return workItems(dims);                                                    \
  }

NORMC_TEST_WS_WORK(wsum)
NORMC_TEST_EXPORT int32_t __normc_wsum_packed(void *const *args,
                                              const int64_t *dims,
                                              int64_t begin, int64_t end) {
  return runItems(args, dims, begin, end, true);
}
#if !defined(NORMC_TEST_WS_MISSING_WORKSPACE)
NORMC_TEST_EXPORT int64_t __normc_wsum_workspace(const int64_t *dims) {
  return workspaceBytes(dims);
}
#endif
#if !defined(NORMC_TEST_WS_MISSING_FINALIZE)
NORMC_TEST_EXPORT int32_t __normc_wsum_finalize(void *const *args,
                                                const int64_t *dims) {
  return finalizeSums(args, dims, 0);
}
#endif

NORMC_TEST_WS_WORK(wfinfail)
NORMC_TEST_EXPORT int32_t __normc_wfinfail_packed(void *const *args,
                                                  const int64_t *dims,
                                                  int64_t begin, int64_t end) {
  return runItems(args, dims, begin, end, true);
}
NORMC_TEST_EXPORT int64_t __normc_wfinfail_workspace(const int64_t *dims) {
  return workspaceBytes(dims);
}
NORMC_TEST_EXPORT int32_t __normc_wfinfail_finalize(void *const *args,
                                                    const int64_t *dims) {
  return finalizeSums(args, dims, 2);
}

NORMC_TEST_WS_WORK(witemfail)
NORMC_TEST_EXPORT int32_t __normc_witemfail_packed(void *const *args,
                                                   const int64_t *dims,
                                                   int64_t begin, int64_t end) {
  return runItems(args, dims, begin, end, true, /*failItem=*/1);
}
NORMC_TEST_EXPORT int64_t __normc_witemfail_workspace(const int64_t *dims) {
  return workspaceBytes(dims);
}
NORMC_TEST_EXPORT int32_t __normc_witemfail_finalize(void *const *args,
                                                     const int64_t *dims) {
  return finalizeSums(args, dims, 0);
}

NORMC_TEST_WS_WORK(wneg)
NORMC_TEST_EXPORT int32_t __normc_wneg_packed(void *const *args,
                                              const int64_t *dims,
                                              int64_t begin, int64_t end) {
  return runItems(args, dims, begin, end, true);
}
NORMC_TEST_EXPORT int64_t __normc_wneg_workspace(const int64_t *) { return -8; }
NORMC_TEST_EXPORT int32_t __normc_wneg_finalize(void *const *args,
                                                const int64_t *dims) {
  return finalizeSums(args, dims, 0);
}

NORMC_TEST_WS_WORK(plain)
NORMC_TEST_EXPORT int32_t __normc_plain_packed(void *const *args,
                                               const int64_t *dims,
                                               int64_t begin, int64_t end) {
  return runItems(args, dims, begin, end, false);
}
