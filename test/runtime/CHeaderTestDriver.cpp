//===- CHeaderTestDriver.cpp - Runs the C99 smoke test --------------------===//

#include "TestUtil.h"

extern "C" int normc_c_api_smoke(const char *bundlePath);

namespace {

TEST(CHeader, CompilesAsC99AndRuns) {
  EXPECT_EQ(normc_c_api_smoke(normc_test::bundlePath("good_bundle").c_str()), 0)
      << normc_last_error();
}

} // namespace
