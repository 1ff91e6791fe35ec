//===- CppWrapperTest.cpp - The header-only C++ wrapper -------------------===//

#include "normc/runtime.hpp"

#include "TestUtil.h"

using namespace normc_test;

namespace {

TEST(CppWrapper, OpenFailureCarriesStatusAndMessage) {
  normc::Expected<normc::Bundle> bundle =
      normc::Bundle::open(bundlePath("bad_bad_abi"));
  ASSERT_FALSE(bundle.ok());
  EXPECT_FALSE(static_cast<bool>(bundle));
  EXPECT_EQ(bundle.status().code(), NORMC_ERROR_ABI_MISMATCH);
  EXPECT_THAT(bundle.status().message(),
              HasSubstr("has ABI version 1 but this runtime supports ABI "
                        "version 3"));
  EXPECT_THAT(bundle.status().toString(),
              HasSubstr("NORMC_ERROR_ABI_MISMATCH: bundle '"));
}

TEST(CppWrapper, QueryAndRun) {
  normc::Expected<normc::Bundle> bundle =
      normc::Bundle::open(bundlePath("good_bundle"));
  ASSERT_TRUE(bundle.ok()) << bundle.status().toString();
  EXPECT_EQ(bundle->numKernels(), 5u);
  EXPECT_EQ(bundle->kernels().size(), 5u);
  EXPECT_EQ(bundle->generator(), "normc-test-bundle 0.0.0");

  normc::Expected<normc::Kernel> missing = bundle->find("missing");
  EXPECT_EQ(missing.status().code(), NORMC_ERROR_NOT_FOUND);

  normc::Expected<normc::Kernel> ln = bundle->find("ln");
  ASSERT_TRUE(ln.ok());
  EXPECT_EQ(ln->name(), "ln");
  EXPECT_EQ(ln->opName(), "layer_norm");
  EXPECT_EQ(ln->kind(), NORMC_KIND_FORWARD);
  EXPECT_THAT(ln->attrsJson(), HasSubstr("\"eps\": 1e-05"));
  EXPECT_EQ(ln->dims(), std::vector<std::string>{"d0"});
  std::vector<normc::ArgInfo> args = ln->args();
  ASSERT_EQ(args.size(), 6u);
  EXPECT_EQ(args[3].name, "y");
  EXPECT_EQ(args[3].inplace, "x");
  EXPECT_EQ(args[4].inplace, "");
  EXPECT_EQ(args[0].shape[0].symbol, 0);
  EXPECT_EQ(args[0].shape[1].size, 256);

  normc::ContextOptions options;
  options.numThreads = 2;
  normc::Expected<normc::Context> context = normc::Context::create(options);
  ASSERT_TRUE(context.ok()) << context.status().toString();
  EXPECT_EQ(context->numThreads(), 2u);

  LayerNormData data(6);
  std::vector<normc::Tensor> tensors = {
      normc::Tensor::f32(data.x.data(), {6, 256}),
      normc::Tensor::f32(data.gamma.data(), {256}),
      normc::Tensor::f32(data.beta.data(), {256}),
      normc::Tensor::f32(data.y.data(), {6, 256}),
      normc::Tensor::f32(data.mean.data(), {6}),
      normc::Tensor::f32(data.rstd.data(), {6})};
  normc::Status status = context->run(*ln, tensors);
  ASSERT_TRUE(status.ok()) << status.toString();
  data.expectMatchesReference(data.x);

  tensors[0].setStrides({512, 1});
  status = normc::Context::validate(*ln, tensors);
  EXPECT_EQ(status.code(), NORMC_ERROR_UNSUPPORTED);
  EXPECT_THAT(status.message(), HasSubstr("arg 'x' is not contiguous"));
}

TEST(CppWrapper, MoveSemantics) {
  normc::Expected<normc::Bundle> opened =
      normc::Bundle::open(bundlePath("good_bundle"));
  ASSERT_TRUE(opened.ok());
  normc::Bundle bundle = std::move(*opened);
  EXPECT_NE(bundle.get(), nullptr);
  normc::Bundle other;
  other = std::move(bundle);
  EXPECT_EQ(bundle.get(), nullptr);
  EXPECT_EQ(other.numKernels(), 5u);

  normc::Expected<normc::Context> created = normc::Context::create();
  ASSERT_TRUE(created.ok());
  normc::Context context = std::move(*created);
  EXPECT_GE(context.numThreads(), 1u);
  normc::Context moved(std::move(context));
  EXPECT_EQ(context.get(), nullptr);
  EXPECT_NE(moved.get(), nullptr);
}

TEST(CppWrapper, ExpectedFromOkStatusIsAnError) {
  normc::Expected<int> value{normc::Status()};
  EXPECT_FALSE(value.ok());
  EXPECT_EQ(value.status().code(), NORMC_ERROR_INTERNAL);
  normc::Expected<int> fine{42};
  ASSERT_TRUE(fine.ok());
  EXPECT_EQ(*fine, 42);
  EXPECT_TRUE(fine.status().ok());
}

} // namespace
