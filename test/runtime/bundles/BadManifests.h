//===- BadManifests.h - Manifest texts of the broken test bundles -*- C++ -*-=//
//
// Shared by BadBundle.cpp (which embeds them) and the tests (which compute
// the exact byte offsets the runtime must report).
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_TEST_BUNDLES_BADMANIFESTS_H
#define NORMC_TEST_BUNDLES_BADMANIFESTS_H

/// A valid one-kernel manifest; the symbol-level cases reuse it.
#define NORMC_TEST_VALID_MANIFEST                                              \
  "{\"abi_version\": 3, \"kernels\": [{\"name\": \"k\", \"kind\": "            \
  "\"forward\", \"op\": \"normalize\", \"entry\": \"__normc_k_packed\", "      \
  "\"work\": \"__normc_k_work\", \"dims\": [\"n\"], \"args\": [{\"name\": "    \
  "\"x\", \"io\": \"in\", \"dtype\": \"f32\", \"shape\": [\"n\"]}]}]}"

/// Version 1 (before GPU support) everywhere: the runtime must refuse on the
/// symbol alone.
#define NORMC_TEST_OLD_ABI_MANIFEST "{\"abi_version\": 1, \"kernels\": []}"

/// Symbol says 3, manifest says 4.
#define NORMC_TEST_ABI_DISAGREE_MANIFEST "{\"abi_version\": 4, \"kernels\": []}"

/// A doubled comma inside the first kernel object.
#define NORMC_TEST_CORRUPT_MANIFEST                                            \
  "{\"abi_version\": 3, \"kernels\": [{\"name\": \"k\",, \"kind\": "           \
  "\"forward\"}]}"

/// Cut off in the middle of a string.
#define NORMC_TEST_TRUNCATED_MANIFEST                                          \
  "{\"abi_version\": 3, \"kernels\": [{\"name\": \"k\", \"kind\": \"forw"

/// Two kernels both named "k" (both with symbols).
#define NORMC_TEST_DUPLICATE_MANIFEST                                          \
  "{\"abi_version\": 3, \"kernels\": [{\"name\": \"k\", \"kind\": "            \
  "\"forward\", \"op\": \"normalize\", \"entry\": \"__normc_k_packed\", "      \
  "\"work\": \"__normc_k_work\", \"dims\": [], \"args\": []}, {\"name\": "     \
  "\"k\", \"kind\": \"backward\", \"op\": \"normalize\", \"entry\": "          \
  "\"__normc_k_packed\", \"work\": \"__normc_k_work\", \"dims\": [], "         \
  "\"args\": []}]}"

/// The kernel lacks the required "args" field.
#define NORMC_TEST_MISSING_FIELD_MANIFEST                                      \
  "{\"abi_version\": 3, \"kernels\": [{\"name\": \"k\", \"kind\": "            \
  "\"forward\", \"op\": \"normalize\", \"entry\": \"__normc_k_packed\", "      \
  "\"work\": \"__normc_k_work\", \"dims\": []}]}"

#endif // NORMC_TEST_BUNDLES_BADMANIFESTS_H
