//===- BadBundle.cpp - Broken bundles, one per NORMC_TEST_CASE_* ----------===//
//
// Compiled once per case (see test/runtime/CMakeLists.txt), each time with a
// different macro, to produce the bundles every rejection test opens.
//
//===----------------------------------------------------------------------===//

#include "BadManifests.h"
#include "BundleAbi.h"

#if defined(NORMC_TEST_CASE_BAD_ABI)
// A bundle from before GPU support (ABI version 1).
NORMC_TEST_EXPORT const uint32_t normc_abi_version = 1;
NORMC_TEST_EXPORT const char normc_manifest[] = NORMC_TEST_OLD_ABI_MANIFEST;

#elif defined(NORMC_TEST_CASE_ABI_DISAGREE)
NORMC_TEST_EXPORT const uint32_t normc_abi_version = 3;
NORMC_TEST_EXPORT const char normc_manifest[] =
    NORMC_TEST_ABI_DISAGREE_MANIFEST;

#elif defined(NORMC_TEST_CASE_CORRUPT)
NORMC_TEST_EXPORT const uint32_t normc_abi_version = 3;
NORMC_TEST_EXPORT const char normc_manifest[] = NORMC_TEST_CORRUPT_MANIFEST;

#elif defined(NORMC_TEST_CASE_TRUNCATED)
NORMC_TEST_EXPORT const uint32_t normc_abi_version = 3;
NORMC_TEST_EXPORT const char normc_manifest[] = NORMC_TEST_TRUNCATED_MANIFEST;

#elif defined(NORMC_TEST_CASE_EMPTY)
NORMC_TEST_EXPORT const uint32_t normc_abi_version = 3;
NORMC_TEST_EXPORT const char normc_manifest[] = "";

#elif defined(NORMC_TEST_CASE_UNTERMINATED)
// No NUL anywhere in the symbol: the runtime must not read past its end.
NORMC_TEST_EXPORT const uint32_t normc_abi_version = 3;
NORMC_TEST_EXPORT const char normc_manifest[4] = {'{', ' ', ' ', '}'};

#elif defined(NORMC_TEST_CASE_MISSING_SYMBOL)
// The manifest names __normc_k_packed and __normc_k_work; only work exists.
NORMC_TEST_EXPORT const uint32_t normc_abi_version = 3;
NORMC_TEST_EXPORT const char normc_manifest[] = NORMC_TEST_VALID_MANIFEST;
NORMC_TEST_EXPORT int64_t __normc_k_work(const int64_t *dims) {
  return dims[0];
}

#elif defined(NORMC_TEST_CASE_DUPLICATE)
NORMC_TEST_EXPORT const uint32_t normc_abi_version = 3;
NORMC_TEST_EXPORT const char normc_manifest[] = NORMC_TEST_DUPLICATE_MANIFEST;
NORMC_TEST_EXPORT int64_t __normc_k_work(const int64_t *) { return 0; }
NORMC_TEST_EXPORT int32_t __normc_k_packed(void *const *, const int64_t *,
                                           int64_t, int64_t) {
  return 0;
}

#elif defined(NORMC_TEST_CASE_MISSING_FIELD)
NORMC_TEST_EXPORT const uint32_t normc_abi_version = 3;
NORMC_TEST_EXPORT const char normc_manifest[] =
    NORMC_TEST_MISSING_FIELD_MANIFEST;

#elif defined(NORMC_TEST_CASE_NO_ABI_SYMBOL)
NORMC_TEST_EXPORT const char normc_manifest[] = NORMC_TEST_VALID_MANIFEST;

#elif defined(NORMC_TEST_CASE_NO_MANIFEST)
// A plain shared library: nothing normc about it.
NORMC_TEST_EXPORT int normc_test_plain_function() { return 42; }

#else
#error "define one NORMC_TEST_CASE_* macro"
#endif
