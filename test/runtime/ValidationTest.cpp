//===- ValidationTest.cpp - Rejection of bad tensor descriptors -----------===//
//
// Each test breaks one property of otherwise valid arguments and checks the
// status and the exact message content. normc_validate and normc_run share
// the validator; the run-based tests make sure nothing runs on rejection.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

using namespace normc_test;

namespace {

class Validation : public ::testing::Test {
protected:
  void SetUp() override {
    bundle = openBundle("good_bundle");
    ASSERT_TRUE(bundle);
    ln = findKernel(bundle.get(), "ln");
    ASSERT_NE(ln, nullptr);
  }

  /// Validates `args` against "ln" and returns the message, expecting
  /// `status`.
  std::string reject(const Args &args, normc_status status,
                     const normc_kernel *kernel = nullptr) {
    kernel = kernel ? kernel : ln;
    EXPECT_EQ(normc_validate(kernel, args.data(), args.size()), status)
        << normc_last_error();
    return normc_last_error();
  }

  BundlePtr bundle;
  const normc_kernel *ln = nullptr;
};

TEST_F(Validation, ValidArgumentsPass) {
  LayerNormData data(8);
  Args args = data.args();
  EXPECT_EQ(normc_validate(ln, args.data(), args.size()), NORMC_OK)
      << normc_last_error();
}

TEST_F(Validation, WrongArgCount) {
  LayerNormData data(8);
  Args args = data.args();
  EXPECT_EQ(normc_validate(ln, args.data(), 5), NORMC_ERROR_SIGNATURE_MISMATCH);
  EXPECT_THAT(normc_last_error(),
              HasSubstr("kernel 'ln' expects 6 args but got 5"));
  EXPECT_EQ(normc_validate(ln, nullptr, 6), NORMC_ERROR_INVALID_ARGUMENT);
  EXPECT_THAT(normc_last_error(),
              HasSubstr("kernel 'ln': args is NULL but nargs is 6"));
  EXPECT_EQ(normc_validate(nullptr, args.data(), 6),
            NORMC_ERROR_INVALID_ARGUMENT);
}

TEST_F(Validation, WrongDtype) {
  LayerNormData data(8);
  Args args = data.args();
  args[1].dtype = NORMC_DTYPE_F16;
  EXPECT_THAT(reject(args, NORMC_ERROR_SIGNATURE_MISMATCH),
              HasSubstr("kernel 'ln' arg 'gamma' has dtype f16 but the "
                        "manifest requires f32"));
  args[1].dtype = static_cast<normc_dtype>(0); // zero-initialized
  EXPECT_THAT(reject(args, NORMC_ERROR_SIGNATURE_MISMATCH),
              HasSubstr("kernel 'ln' arg 'gamma' has invalid dtype value 0"));
}

TEST_F(Validation, WrongRank) {
  LayerNormData data(8);
  Args args = data.args();
  args.setShape(0, {8 * 256});
  EXPECT_THAT(reject(args, NORMC_ERROR_SIGNATURE_MISMATCH),
              HasSubstr("kernel 'ln' arg 'x' has rank 1 but the manifest "
                        "requires rank 2"));
}

TEST_F(Validation, NullShapeWithNonzeroRank) {
  LayerNormData data(8);
  Args args = data.args();
  args[2].shape = nullptr;
  EXPECT_THAT(reject(args, NORMC_ERROR_INVALID_ARGUMENT),
              HasSubstr("kernel 'ln' arg 'beta': shape is NULL but rank is 1"));
}

TEST_F(Validation, StaticDimMismatch) {
  LayerNormData data(8);
  Args args = data.args();
  args.setShape(1, {255});
  EXPECT_THAT(reject(args, NORMC_ERROR_SIGNATURE_MISMATCH),
              HasSubstr("kernel 'ln' arg 'gamma' dim 0 is 255 but the "
                        "manifest requires 256"));
  args.setShape(1, {256});
  args.setShape(3, {8, 128});
  EXPECT_THAT(reject(args, NORMC_ERROR_SIGNATURE_MISMATCH),
              HasSubstr("kernel 'ln' arg 'y' dim 1 is 128 but the manifest "
                        "requires 256"));
}

TEST_F(Validation, DynamicDimBoundInconsistently) {
  LayerNormData data(8);
  Args args = data.args();
  args.setShape(4, {7});
  EXPECT_THAT(reject(args, NORMC_ERROR_SIGNATURE_MISMATCH),
              HasSubstr("kernel 'ln' arg 'mean' dim 0 is 7 but d0 = 8 from "
                        "arg 'x'"));
}

TEST_F(Validation, SecondDynamicDimBoundInconsistently) {
  const normc_kernel *rms = findKernel(bundle.get(), "rms");
  std::vector<float> x(12), gamma(5), y(12), rstd(3);
  Args args;
  args.add(x.data(), NORMC_DTYPE_F32, {3, 4});
  args.add(gamma.data(), NORMC_DTYPE_F32, {5});
  args.add(y.data(), NORMC_DTYPE_F32, {3, 4});
  args.add(rstd.data(), NORMC_DTYPE_F32, {3});
  EXPECT_THAT(reject(args, NORMC_ERROR_SIGNATURE_MISMATCH, rms),
              HasSubstr("kernel 'rms' arg 'gamma' dim 0 is 5 but cols = 4 "
                        "from arg 'x'"));
}

TEST_F(Validation, NegativeDim) {
  LayerNormData data(8);
  Args args = data.args();
  args.setShape(0, {-1, 256});
  EXPECT_THAT(reject(args, NORMC_ERROR_SIGNATURE_MISMATCH),
              HasSubstr("kernel 'ln' arg 'x' dim 0 is negative (-1)"));
}

TEST_F(Validation, HugeDimsOverflow) {
  LayerNormData data(8);
  Args args = data.args();
  int64_t huge = int64_t(1) << 60;
  args.setShape(0, {huge, 256});
  args.setShape(3, {huge, 256});
  args.setShape(4, {huge});
  args.setShape(5, {huge});
  EXPECT_THAT(reject(args, NORMC_ERROR_INVALID_ARGUMENT),
              HasSubstr("kernel 'ln' arg 'x' is too large"));
}

TEST_F(Validation, NullDataPointer) {
  LayerNormData data(8);
  Args args = data.args();
  args[2].data = nullptr;
  EXPECT_THAT(reject(args, NORMC_ERROR_INVALID_ARGUMENT),
              HasSubstr("kernel 'ln' arg 'beta' has a NULL data pointer but "
                        "256 elements"));
}

TEST_F(Validation, NullDataPointerAllowedForEmptyTensors) {
  LayerNormData data(0);
  Args args = data.args();
  for (size_t i : {0, 3, 4, 5})
    args[i].data = nullptr;
  EXPECT_EQ(normc_validate(ln, args.data(), args.size()), NORMC_OK)
      << normc_last_error();
}

TEST_F(Validation, NonContiguousStridesRejected) {
  LayerNormData data(8);
  Args args = data.args();
  args.setStrides(0, {512, 1});
  EXPECT_THAT(reject(args, NORMC_ERROR_UNSUPPORTED),
              HasSubstr("kernel 'ln' arg 'x' is not contiguous: dim 0 has "
                        "stride 512 but row-major contiguous layout requires "
                        "256"));
  args.setStrides(0, {256, 2});
  EXPECT_THAT(reject(args, NORMC_ERROR_UNSUPPORTED),
              HasSubstr("dim 1 has stride 2 but row-major contiguous layout "
                        "requires 1"));
}

TEST_F(Validation, ContiguousStridesAccepted) {
  LayerNormData data(8);
  Args args = data.args();
  args.setStrides(0, {256, 1});
  args.setStrides(4, {1});
  EXPECT_EQ(normc_validate(ln, args.data(), args.size()), NORMC_OK)
      << normc_last_error();

  // The stride of a size-1 dim never matters.
  LayerNormData single(1);
  Args singleArgs = single.args();
  singleArgs.setStrides(0, {12345, 1});
  EXPECT_EQ(normc_validate(ln, singleArgs.data(), singleArgs.size()), NORMC_OK)
      << normc_last_error();
}

TEST_F(Validation, MixedDevices) {
  LayerNormData data(8);
  Args args = data.args();
  args[1].device = {NORMC_DEVICE_CUDA, 0};
  EXPECT_THAT(reject(args, NORMC_ERROR_SIGNATURE_MISMATCH),
              HasSubstr("kernel 'ln' arg 'gamma' is on cuda:0 but arg 'x' is "
                        "on cpu"));
  for (size_t i = 0; i < args.size(); ++i)
    args[i].device = {NORMC_DEVICE_CUDA, 0};
  args[5].device = {NORMC_DEVICE_CUDA, 1};
  EXPECT_THAT(reject(args, NORMC_ERROR_SIGNATURE_MISMATCH),
              HasSubstr("kernel 'ln' arg 'rstd' is on cuda:1 but arg 'x' is "
                        "on cuda:0"));
}

TEST_F(Validation, InvalidDevices) {
  LayerNormData data(8);
  Args args = data.args();
  args[0].device = {static_cast<normc_device_type>(7), 0};
  EXPECT_THAT(reject(args, NORMC_ERROR_INVALID_ARGUMENT),
              HasSubstr("kernel 'ln' arg 'x' has invalid device type 7"));
  args[0].device = {NORMC_DEVICE_CPU, 1};
  EXPECT_THAT(
      reject(args, NORMC_ERROR_INVALID_ARGUMENT),
      HasSubstr("kernel 'ln' arg 'x' has invalid CPU device ordinal 1"));
  args[0].device = {NORMC_DEVICE_CUDA, -1};
  EXPECT_THAT(reject(args, NORMC_ERROR_INVALID_ARGUMENT),
              HasSubstr("kernel 'ln' arg 'x' has negative device ordinal -1"));
}

//===--- Aliasing ---------------------------------------------------------===//

TEST_F(Validation, ExactInPlaceAliasAllowed) {
  LayerNormData data(8);
  Args args = data.args();
  args[3].data = data.x.data(); // y = x, declared "inplace": "x"
  EXPECT_EQ(normc_validate(ln, args.data(), args.size()), NORMC_OK)
      << normc_last_error();
}

TEST_F(Validation, PartialInPlaceOverlapRejected) {
  LayerNormData data(8);
  data.x.resize(8 * 256 + 1);
  Args args = data.args();
  args[3].data = data.x.data() + 1;
  EXPECT_THAT(reject(args, NORMC_ERROR_ALIASING),
              HasSubstr("kernel 'ln': output 'y' partially overlaps its "
                        "in-place input 'x'; in-place use requires the same "
                        "data pointer"));
}

TEST_F(Validation, OutputAliasingOtherInputRejected) {
  LayerNormData data(1);
  Args args = data.args();
  args[3].data = data.gamma.data(); // same size as y when rows == 1
  EXPECT_THAT(reject(args, NORMC_ERROR_ALIASING),
              HasSubstr("kernel 'ln': output 'y' aliases input 'gamma', which "
                        "the manifest does not allow"));
}

TEST_F(Validation, OutputOverlappingOtherInputRejected) {
  LayerNormData data(8);
  Args args = data.args();
  args[4].data = data.x.data() + 100; // mean inside x
  EXPECT_THAT(reject(args, NORMC_ERROR_ALIASING),
              HasSubstr("kernel 'ln': output 'mean' overlaps input 'x'"));
}

TEST_F(Validation, OutputsOverlappingEachOtherRejected) {
  LayerNormData data(8);
  Args args = data.args();
  args[5].data = data.mean.data();
  EXPECT_THAT(reject(args, NORMC_ERROR_ALIASING),
              HasSubstr("kernel 'ln': output 'mean' aliases output 'rstd'"));
  args[5].data = data.mean.data() + 4;
  EXPECT_THAT(reject(args, NORMC_ERROR_ALIASING),
              HasSubstr("kernel 'ln': output 'mean' overlaps output 'rstd'"));
  // The in-place output may still not overlap other outputs.
  args[5].data = data.rstd.data();
  args[4].data = data.y.data() + 256;
  EXPECT_THAT(reject(args, NORMC_ERROR_ALIASING),
              HasSubstr("kernel 'ln': output 'y' overlaps output 'mean'"));
}

TEST_F(Validation, InputsMayOverlap) {
  LayerNormData data(8);
  Args args = data.args();
  args[2].data = data.gamma.data(); // beta = gamma: both only read
  EXPECT_EQ(normc_validate(ln, args.data(), args.size()), NORMC_OK)
      << normc_last_error();
}

TEST_F(Validation, InoutArgAliasingRejected) {
  const normc_kernel *probe = findKernel(bundle.get(), "probe");
  std::vector<float> buffer(16);
  Args args;
  args.add(buffer.data(), NORMC_DTYPE_F32, {16});
  args.add(buffer.data(), NORMC_DTYPE_F32, {16});
  EXPECT_THAT(reject(args, NORMC_ERROR_ALIASING, probe),
              HasSubstr("kernel 'probe': inout arg 'acc' aliases input 'x'"));
}

TEST_F(Validation, EmptyTensorsNeverOverlap) {
  LayerNormData data(0);
  Args args = data.args();
  float scratch[4];
  for (size_t i : {0, 3, 4, 5})
    args[i].data = scratch; // same pointer, but zero bytes each
  EXPECT_EQ(normc_validate(ln, args.data(), args.size()), NORMC_OK)
      << normc_last_error();
}

TEST_F(Validation, RunRejectsBeforeRunning) {
  ContextPtr context = makeContext(2);
  LayerNormData data(8);
  Args args = data.args();
  args.setShape(5, {9});
  EXPECT_EQ(normc_run(context.get(), ln, args.data(), args.size()),
            NORMC_ERROR_SIGNATURE_MISMATCH);
  EXPECT_THAT(normc_last_error(),
              HasSubstr("kernel 'ln' arg 'rstd' dim 0 is 9 but d0 = 8 from "
                        "arg 'x'"));
  for (float value : data.y)
    ASSERT_EQ(value, -7.0f) << "the kernel must not have run";
}

} // namespace
