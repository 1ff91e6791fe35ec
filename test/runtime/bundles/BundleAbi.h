//===- BundleAbi.h - Helpers for hand-written test bundles ------*- C++ -*-===//
//
// The test bundles stand in for compiler output: they export exactly the
// symbols of bundle ABI version 1 (see docs/runtime.md).
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_TEST_BUNDLES_BUNDLEABI_H
#define NORMC_TEST_BUNDLES_BUNDLEABI_H

#include <cstdint>

// Explicit default visibility: the project may compile with
// -fvisibility=hidden, and a bundle's ABI symbols must always be exported.
#define NORMC_TEST_EXPORT extern "C" __attribute__((visibility("default")))

#endif // NORMC_TEST_BUNDLES_BUNDLEABI_H
