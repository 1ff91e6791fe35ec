//===- WorkspaceManifests.h - Kernels with a workspace and finalize -*- C++
//-*-//
//
// Manifest text and test hooks of WorkspaceBundle.cpp, shared with the tests
// (which compute the byte offsets the runtime must report).
//
// Every kernel has the same signature, like a backward kernel's:
//   x    in  f32 [n, 4]
//   dx   out f32 [n, 4]   dx = 2 * x, written by the work items
//   dsum out f64 [4]      column sums of x, written by the finalize step
// Work items are chunks of kRowsPerItem rows; item c adds its rows' column
// sums into workspace[4c .. 4c + 4) (doubles), and finalize adds the chunks
// in order. The workspace function asks for 4 extra bytes (a size that is
// not a multiple of 8), which finalize also writes.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_TEST_BUNDLES_WORKSPACEMANIFESTS_H
#define NORMC_TEST_BUNDLES_WORKSPACEMANIFESTS_H

#include <cstddef>
#include <cstdint>

#define NORMC_TEST_WS_SIGNATURE                                                \
  "\"dims\": [\"n\"], \"args\": ["                                             \
  "{\"name\": \"x\", \"io\": \"in\", \"dtype\": \"f32\", \"shape\": "          \
  "[\"n\", 4]}, "                                                              \
  "{\"name\": \"dx\", \"io\": \"out\", \"dtype\": \"f32\", \"shape\": "        \
  "[\"n\", 4]}, "                                                              \
  "{\"name\": \"dsum\", \"io\": \"out\", \"dtype\": \"f64\", \"shape\": "      \
  "[4]}]}"

/// A kernel object with `fields` (workspace and/or finalize) spliced in.
#define NORMC_TEST_WS_KERNEL_WITH(name, fields)                                \
  "{\"name\": \"" #name "\", \"kind\": \"backward\", \"op\": "                 \
  "\"layer_norm\", \"attrs\": {}, \"entry\": \"__normc_" #name "_packed\", "   \
  "\"work\": \"__normc_" #name "_work\", " fields NORMC_TEST_WS_SIGNATURE

#define NORMC_TEST_WS_WORKSPACE_FIELD(name)                                    \
  "\"workspace\": \"__normc_" #name "_workspace\", "
#define NORMC_TEST_WS_FINALIZE_FIELD(name)                                     \
  "\"finalize\": \"__normc_" #name "_finalize\", "

#define NORMC_TEST_WS_KERNEL(name)                                             \
  NORMC_TEST_WS_KERNEL_WITH(name, NORMC_TEST_WS_WORKSPACE_FIELD(name)          \
                                      NORMC_TEST_WS_FINALIZE_FIELD(name))

/// The good bundle's manifest:
///   wsum       the kernel described above;
///   wfinfail   its finalize step returns 2 (NORMC_ERR_BAD_SHAPE);
///   witemfail  work item 1 returns 5;
///   wneg       its workspace function returns -8;
///   plain      no workspace (a forward-style kernel): dx = 2 * x only,
///              dsum untouched.
// clang-format off
#define NORMC_TEST_WS_MANIFEST                                                 \
  "{\"abi_version\": 3, \"generator\": \"normc-test-workspace 0.0.0\", "       \
  "\"kernels\": ["                                                             \
  NORMC_TEST_WS_KERNEL(wsum) ", "                                              \
  NORMC_TEST_WS_KERNEL(wfinfail) ", "                                          \
  NORMC_TEST_WS_KERNEL(witemfail) ", "                                         \
  NORMC_TEST_WS_KERNEL(wneg) ", "                                              \
  NORMC_TEST_WS_KERNEL_WITH(plain, "")                                         \
  "]}"
// clang-format on

/// "workspace" without "finalize" (and the other way round).
#define NORMC_TEST_WS_NO_FINALIZE_MANIFEST                                     \
  "{\"abi_version\": 3, \"kernels\": [" NORMC_TEST_WS_KERNEL_WITH(             \
      wsum, NORMC_TEST_WS_WORKSPACE_FIELD(wsum)) "]}"
#define NORMC_TEST_WS_NO_WORKSPACE_MANIFEST                                    \
  "{\"abi_version\": 3, \"kernels\": [" NORMC_TEST_WS_KERNEL_WITH(             \
      wsum, NORMC_TEST_WS_FINALIZE_FIELD(wsum)) "]}"

namespace normc_test_ws {

constexpr int64_t kCols = 4;
constexpr int64_t kRowsPerItem = 5;
/// Bytes the workspace function adds after the chunks' partial sums.
constexpr int64_t kExtraBytes = 4;

/// What the bundle saw, for the tests (reset with normc_test_ws_reset).
struct Stats {
  int64_t packedCalls = 0;
  int64_t itemsRun = 0;
  int64_t finalizeCalls = 0;
  /// itemsRun when finalize was last called.
  int64_t itemsRunAtFinalize = -1;
  /// The last value the workspace function returned.
  int64_t workspaceBytes = -1;
  /// Distinct workspace pointers the packed calls were given.
  int64_t distinctPackedWorkspaces = 0;
  const void *packedWorkspace = nullptr; // one of them
  const void *finalizeWorkspace = nullptr;
  /// malloc_usable_size of the finalize's workspace.
  size_t finalizeUsableBytes = 0;
  /// Some call got a workspace equal to one of its tensor pointers.
  bool workspaceAliasesAnArg = false;
};

using ResetFn = void (*)();
using StatsFn = void (*)(Stats *);

} // namespace normc_test_ws

#endif // NORMC_TEST_BUNDLES_WORKSPACEMANIFESTS_H
