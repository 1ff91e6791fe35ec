//===- PrepassManifests.h - Kernels with a prepass --------------*- C++ -*-===//
//
// Manifest text and test hooks of PrepassBundle.cpp, shared with the tests
// (which compute the byte offsets the runtime must report).
//
// The kernels stand in for normc's forward kernels on long rows (bundle
// ABI 3): a prepass step writes partial sums of the rows into the workspace,
// and the work items read them. Every kernel has the same signature:
//   x    in  f32 [n, m]
//   y    out f32 [n, m]   y = x - mean, written by the work items
//   mean out f64 [1]      the mean of all n * m elements of x
// Prepass item p sums chunk p % chunks of row p / chunks (kChunk elements;
// chunks = ceil(m / kChunk)) into workspace slot p (a double). Work item r
// writes row r of y; it adds up *every* slot, so y is only right if every
// prepass item has finished before any work item starts. Work item 0 also
// writes mean (prefin: its finalize step does instead).
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_TEST_BUNDLES_PREPASSMANIFESTS_H
#define NORMC_TEST_BUNDLES_PREPASSMANIFESTS_H

#include <cstddef>
#include <cstdint>

#define NORMC_TEST_PP_SIGNATURE                                                \
  "\"dims\": [\"n\", \"m\"], \"args\": ["                                      \
  "{\"name\": \"x\", \"io\": \"in\", \"dtype\": \"f32\", \"shape\": "          \
  "[\"n\", \"m\"]}, "                                                          \
  "{\"name\": \"y\", \"io\": \"out\", \"dtype\": \"f32\", \"shape\": "         \
  "[\"n\", \"m\"]}, "                                                          \
  "{\"name\": \"mean\", \"io\": \"out\", \"dtype\": \"f64\", \"shape\": "      \
  "[1]}]}"

/// A forward kernel object with `fields` (workspace, prepass, finalize)
/// spliced in.
#define NORMC_TEST_PP_KERNEL_WITH(name, fields)                                \
  "{\"name\": \"" #name "\", \"kind\": \"forward\", \"op\": "                  \
  "\"layer_norm\", \"attrs\": {}, \"entry\": \"__normc_" #name "_packed\", "   \
  "\"work\": \"__normc_" #name "_work\", " fields NORMC_TEST_PP_SIGNATURE

#define NORMC_TEST_PP_WORKSPACE_FIELD(name)                                    \
  "\"workspace\": \"__normc_" #name "_workspace\", "
#define NORMC_TEST_PP_FINALIZE_FIELD(name)                                     \
  "\"finalize\": \"__normc_" #name "_finalize\", "
#define NORMC_TEST_PP_PREPASS_FIELD(name)                                      \
  "\"prepass\": {\"entry\": \"__normc_" #name "_prepass\", \"work\": "         \
  "\"__normc_" #name "_prepass_work\"}, "

/// A kernel with a workspace and a prepass (no finalize step).
#define NORMC_TEST_PP_KERNEL(name)                                             \
  NORMC_TEST_PP_KERNEL_WITH(name, NORMC_TEST_PP_WORKSPACE_FIELD(name)          \
                                      NORMC_TEST_PP_PREPASS_FIELD(name))

/// The good bundle's manifest:
///   pre       the kernel described above;
///   prefin    the same with a finalize step, which writes mean;
///   preshort  no prepass items (and a 0-byte workspace) for rows of at most
///             kChunk elements: its work items then sum x themselves;
///   prefail   prepass item 2 returns 2 (NORMC_ERR_BAD_SHAPE);
///   preneg    its prepass work function returns -3.
// clang-format off
#define NORMC_TEST_PP_MANIFEST                                                 \
  "{\"abi_version\": 3, \"generator\": \"normc-test-prepass 0.0.0\", "         \
  "\"kernels\": ["                                                             \
  NORMC_TEST_PP_KERNEL(pre) ", "                                               \
  NORMC_TEST_PP_KERNEL_WITH(prefin, NORMC_TEST_PP_WORKSPACE_FIELD(prefin)      \
                                    NORMC_TEST_PP_PREPASS_FIELD(prefin)        \
                                    NORMC_TEST_PP_FINALIZE_FIELD(prefin)) ", " \
  NORMC_TEST_PP_KERNEL(preshort) ", "                                          \
  NORMC_TEST_PP_KERNEL(prefail) ", "                                           \
  NORMC_TEST_PP_KERNEL(preneg)                                                 \
  "]}"
// clang-format on

/// "prepass" without "workspace".
#define NORMC_TEST_PP_NO_WORKSPACE_MANIFEST                                    \
  "{\"abi_version\": 3, \"kernels\": [" NORMC_TEST_PP_KERNEL_WITH(             \
      pre, NORMC_TEST_PP_PREPASS_FIELD(pre)) "]}"

namespace normc_test_pp {

/// Elements of a row per prepass item.
constexpr int64_t kChunk = 8;

/// What the bundle saw, for the tests (reset with normc_test_pp_reset).
struct Stats {
  int64_t prepassCalls = 0;
  int64_t prepassItemsRun = 0;
  int64_t mainCalls = 0;
  int64_t mainItemsRun = 0;
  int64_t finalizeCalls = 0;
  /// The fewest prepass items that had finished when a call of the work
  /// items started (-1: no such call).
  int64_t prepassItemsAtMain = -1;
  /// The most work items that had finished when a prepass call started
  /// (-1: no prepass call).
  int64_t mainItemsAtPrepass = -1;
  /// mainItemsRun when finalize was last called (-1: never).
  int64_t mainItemsAtFinalize = -1;
  /// The last value a workspace function returned (-1: never called).
  int64_t workspaceBytes = -1;
  /// Distinct workspace pointers the prepass, work item and finalize calls
  /// were given, and one of them.
  int64_t distinctWorkspaces = 0;
  const void *workspace = nullptr;
  /// Some call got a workspace equal to one of its tensor pointers.
  bool workspaceAliasesAnArg = false;
};

using ResetFn = void (*)();
using StatsFn = void (*)(Stats *);

} // namespace normc_test_pp

#endif // NORMC_TEST_BUNDLES_PREPASSMANIFESTS_H
