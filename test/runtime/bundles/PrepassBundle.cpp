//===- PrepassBundle.cpp - Forward kernels with a prepass step ------------===//
//
// Stands in for normc's forward kernels on long rows (see
// PrepassManifests.h for the kernels). Built several times
// (test/runtime/CMakeLists.txt):
//   prepass_bundle            the valid bundle, with test hooks;
//   pp_missing_prepass        pre's prepass entry is not exported;
//   pp_missing_prepass_work   pre's prepass work function is not exported;
//   pp_no_workspace_field     the manifest has "prepass" but no "workspace".
//
//===----------------------------------------------------------------------===//

#include "BundleAbi.h"
#include "PrepassManifests.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

using namespace normc_test_pp;

NORMC_TEST_EXPORT const uint32_t normc_abi_version = 3;

#if defined(NORMC_TEST_PP_NO_WORKSPACE_FIELD)
NORMC_TEST_EXPORT const char normc_manifest[] =
    NORMC_TEST_PP_NO_WORKSPACE_MANIFEST;
#else
NORMC_TEST_EXPORT const char normc_manifest[] = NORMC_TEST_PP_MANIFEST;
#endif

namespace {

std::mutex mutex;
Stats stats;
std::set<const void *> workspaces;
std::atomic<int64_t> prepassItemsRun{0};
std::atomic<int64_t> mainItemsRun{0};

int64_t chunksPerRow(const int64_t *dims) {
  return (dims[1] + kChunk - 1) / kChunk;
}

int64_t prepassItems(const int64_t *dims) {
  return dims[0] * chunksPerRow(dims);
}

/// preshort: no prepass for rows that fit one chunk.
int64_t shortPrepassItems(const int64_t *dims) {
  return dims[1] <= kChunk ? 0 : prepassItems(dims);
}

int64_t workspaceBytes(int64_t items) {
  int64_t bytes = items * int64_t(sizeof(double));
  std::lock_guard<std::mutex> lock(mutex);
  stats.workspaceBytes = bytes;
  return bytes;
}

/// Records the workspace args[3] of a call (mutex held).
void recordWorkspace(void *const *args) {
  const void *ws = args[3];
  workspaces.insert(ws);
  stats.workspace = ws;
  for (int i = 0; i < 3; ++i)
    stats.workspaceAliasesAnArg |= args[i] && args[i] == ws;
}

/// Prepass items [begin, end) (clamped); `failItem` returns 2 instead of
/// running.
int32_t runPrepass(void *const *args, const int64_t *dims, int64_t begin,
                   int64_t end, int64_t failItem = -1) {
  int64_t m = dims[1], chunks = chunksPerRow(dims);
  begin = std::max<int64_t>(begin, 0);
  end = std::min(end, prepassItems(dims));
  {
    std::lock_guard<std::mutex> lock(mutex);
    ++stats.prepassCalls;
    stats.mainItemsAtPrepass =
        std::max(stats.mainItemsAtPrepass, mainItemsRun.load());
    recordWorkspace(args);
  }
  const float *x = static_cast<const float *>(args[0]);
  double *ws = static_cast<double *>(args[3]);
  for (int64_t item = begin; item < end; ++item) {
    if (item == failItem)
      return 2;
    int64_t row = item / chunks, first = (item % chunks) * kChunk;
    double sum = 0;
    for (int64_t j = first; j < std::min(m, first + kChunk); ++j)
      sum += x[row * m + j];
    ws[item] = sum;
    // Slow enough that threads overlap, and that work items started too
    // early would see missing slots.
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    prepassItemsRun.fetch_add(1);
  }
  return 0;
}

/// The mean of x: from every workspace slot, or (no prepass) from x.
double meanOf(void *const *args, const int64_t *dims, bool fromWorkspace) {
  int64_t n = dims[0], m = dims[1];
  if (n * m == 0)
    return 0;
  double total = 0;
  if (fromWorkspace) {
    const double *ws = static_cast<const double *>(args[3]);
    for (int64_t slot = 0; slot < prepassItems(dims); ++slot)
      total += ws[slot];
  } else {
    const float *x = static_cast<const float *>(args[0]);
    for (int64_t i = 0; i < n * m; ++i)
      total += x[i];
  }
  return total / static_cast<double>(n * m);
}

/// Work items (rows) [begin, end) (clamped).
int32_t runMain(void *const *args, const int64_t *dims, int64_t begin,
                int64_t end, bool fromWorkspace, bool writeMean) {
  int64_t n = dims[0], m = dims[1];
  begin = std::max<int64_t>(begin, 0);
  end = std::min(end, n);
  {
    std::lock_guard<std::mutex> lock(mutex);
    ++stats.mainCalls;
    int64_t done = prepassItemsRun.load();
    stats.prepassItemsAtMain = stats.prepassItemsAtMain < 0
                                   ? done
                                   : std::min(stats.prepassItemsAtMain, done);
    recordWorkspace(args);
  }
  const float *x = static_cast<const float *>(args[0]);
  float *y = static_cast<float *>(args[1]);
  double mean = meanOf(args, dims, fromWorkspace);
  for (int64_t row = begin; row < end; ++row) {
    for (int64_t j = 0; j < m; ++j)
      y[row * m + j] = static_cast<float>(x[row * m + j] - mean);
    if (row == 0 && writeMean)
      static_cast<double *>(args[2])[0] = mean;
    std::this_thread::sleep_for(std::chrono::microseconds(20));
    mainItemsRun.fetch_add(1);
  }
  return 0;
}

} // namespace

//===--- test hooks (not part of the ABI) ---------------------------------===//

NORMC_TEST_EXPORT void normc_test_pp_reset() {
  std::lock_guard<std::mutex> lock(mutex);
  stats = Stats();
  workspaces.clear();
  prepassItemsRun.store(0);
  mainItemsRun.store(0);
}

NORMC_TEST_EXPORT void normc_test_pp_stats(Stats *out) {
  std::lock_guard<std::mutex> lock(mutex);
  *out = stats;
  out->prepassItemsRun = prepassItemsRun.load();
  out->mainItemsRun = mainItemsRun.load();
  out->distinctWorkspaces = static_cast<int64_t>(workspaces.size());
}

//===--- kernels ----------------------------------------------------------===//

/// The work function, workspace function and work items of kernel `name`,
/// whose prepass has `items(dims)` items.
#define NORMC_TEST_PP_COMMON(name, items, writeMean)                           \
  NORMC_TEST_EXPORT int64_t __normc_##name##_work(const int64_t *dims) {       \
    return dims[0];                                                            \
  }                                                                            \
  NORMC_TEST_EXPORT int64_t __normc_##name##_workspace(const int64_t *dims) {  \
    return workspaceBytes(items(dims));                                        \
  }                                                                            \
  NORMC_TEST_EXPORT int32_t __normc_##name##_packed(                           \
      void *const *args, const int64_t *dims, int64_t begin, int64_t end) {    \
    return runMain(args, dims, begin, end, items(dims) > 0, writeMean);        \
  }

NORMC_TEST_PP_COMMON(pre, prepassItems, true)
#if !defined(NORMC_TEST_PP_MISSING_PREPASS_WORK)
NORMC_TEST_EXPORT int64_t __normc_pre_prepass_work(const int64_t *dims) {
  return prepassItems(dims);
}
#endif
#if !defined(NORMC_TEST_PP_MISSING_PREPASS)
NORMC_TEST_EXPORT int32_t __normc_pre_prepass(void *const *args,
                                              const int64_t *dims,
                                              int64_t begin, int64_t end) {
  return runPrepass(args, dims, begin, end);
}
#endif

NORMC_TEST_PP_COMMON(prefin, prepassItems, false)
NORMC_TEST_EXPORT int64_t __normc_prefin_prepass_work(const int64_t *dims) {
  return prepassItems(dims);
}
NORMC_TEST_EXPORT int32_t __normc_prefin_prepass(void *const *args,
                                                 const int64_t *dims,
                                                 int64_t begin, int64_t end) {
  return runPrepass(args, dims, begin, end);
}
NORMC_TEST_EXPORT int32_t __normc_prefin_finalize(void *const *args,
                                                  const int64_t *dims) {
  {
    std::lock_guard<std::mutex> lock(mutex);
    ++stats.finalizeCalls;
    stats.mainItemsAtFinalize = mainItemsRun.load();
    recordWorkspace(args);
  }
  static_cast<double *>(args[2])[0] = meanOf(args, dims, true);
  return 0;
}

NORMC_TEST_PP_COMMON(preshort, shortPrepassItems, true)
NORMC_TEST_EXPORT int64_t __normc_preshort_prepass_work(const int64_t *dims) {
  return shortPrepassItems(dims);
}
NORMC_TEST_EXPORT int32_t __normc_preshort_prepass(void *const *args,
                                                   const int64_t *dims,
                                                   int64_t begin, int64_t end) {
  return runPrepass(args, dims, begin, end);
}

NORMC_TEST_PP_COMMON(prefail, prepassItems, true)
NORMC_TEST_EXPORT int64_t __normc_prefail_prepass_work(const int64_t *dims) {
  return prepassItems(dims);
}
NORMC_TEST_EXPORT int32_t __normc_prefail_prepass(void *const *args,
                                                  const int64_t *dims,
                                                  int64_t begin, int64_t end) {
  return runPrepass(args, dims, begin, end, /*failItem=*/2);
}

NORMC_TEST_PP_COMMON(preneg, prepassItems, true)
NORMC_TEST_EXPORT int64_t __normc_preneg_prepass_work(const int64_t *) {
  return -3;
}
NORMC_TEST_EXPORT int32_t __normc_preneg_prepass(void *const *args,
                                                 const int64_t *dims,
                                                 int64_t begin, int64_t end) {
  return runPrepass(args, dims, begin, end);
}
