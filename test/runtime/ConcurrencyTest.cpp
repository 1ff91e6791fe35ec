//===- ConcurrencyTest.cpp - Concurrent runs and thread-local errors ------===//

#include "TestUtil.h"

#include <atomic>
#include <cstring>
#include <thread>

using namespace normc_test;

namespace {

TEST(Concurrency, EightThreadsRunSameKernelOnDifferentBuffers) {
  BundlePtr bundle = openBundle("good_bundle");
  ASSERT_TRUE(bundle);
  const normc_kernel *ln = findKernel(bundle.get(), "ln");
  ContextPtr shared = makeContext(4);
  ASSERT_TRUE(shared);

  constexpr int kThreads = 8;
  constexpr int kIterations = 25;
  // Expected outputs, computed serially up front.
  std::vector<LayerNormData> expected;
  ContextPtr serial = makeContext(1);
  for (int t = 0; t < kThreads; ++t) {
    expected.emplace_back(9 + 5 * t, 1000 + t);
    Args args = expected.back().args();
    ASSERT_EQ(normc_run(serial.get(), ln, args.data(), args.size()), NORMC_OK);
  }

  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int iteration = 0; iteration < kIterations; ++iteration) {
        LayerNormData data(9 + 5 * t, 1000 + t);
        Args args = data.args();
        if (normc_run(shared.get(), ln, args.data(), args.size()) != NORMC_OK ||
            std::memcmp(data.y.data(), expected[t].y.data(),
                        data.y.size() * sizeof(float)) != 0 ||
            data.mean != expected[t].mean || data.rstd != expected[t].rstd)
          ++failures;

        // Interleave a rejected run: its message must be this thread's own.
        args.setShape(4, {1000 + t});
        if (normc_run(shared.get(), ln, args.data(), args.size()) !=
                NORMC_ERROR_SIGNATURE_MISMATCH ||
            std::string(normc_last_error())
                    .find("dim 0 is " + std::to_string(1000 + t) + " but") ==
                std::string::npos)
          ++failures;
      }
    });
  }
  for (std::thread &thread : threads)
    thread.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(Concurrency, ThreadsWithOwnContextsAndBundles) {
  constexpr int kThreads = 4;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int iteration = 0; iteration < 5; ++iteration) {
        normc_bundle *bundle = nullptr;
        normc_context *context = nullptr;
        normc_context_options options;
        normc_context_options_init(&options);
        options.num_threads = 2;
        const normc_kernel *ln = nullptr;
        if (normc_bundle_open(bundlePath("good_bundle").c_str(), &bundle) ||
            normc_context_create(&options, &context) ||
            normc_bundle_find_kernel(bundle, "ln", &ln)) {
          ++failures;
        } else {
          LayerNormData data(3 + t, 7);
          Args args = data.args();
          if (normc_run(context, ln, args.data(), args.size()) != NORMC_OK)
            ++failures;
          else if (data.mean[0] == -7.0f)
            ++failures;
        }
        normc_context_destroy(context);
        normc_bundle_close(bundle);
      }
    });
  }
  for (std::thread &thread : threads)
    thread.join();
  EXPECT_EQ(failures.load(), 0);
}

} // namespace
