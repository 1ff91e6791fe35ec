//===- KernelQueryTest.cpp - Listing kernels and reading signatures -------===//

#include "TestUtil.h"

#include <cstring>

using namespace normc_test;

namespace {

class KernelQuery : public ::testing::Test {
protected:
  void SetUp() override {
    bundle = openBundle("good_bundle");
    ASSERT_TRUE(bundle);
  }
  BundlePtr bundle;
};

TEST_F(KernelQuery, ListsKernelsInManifestOrder) {
  const char *expected[] = {"ln", "rms", "probe", "fail", "half"};
  ASSERT_EQ(normc_bundle_num_kernels(bundle.get()), 5u);
  for (size_t i = 0; i < 5; ++i)
    EXPECT_STREQ(normc_kernel_name(normc_bundle_kernel(bundle.get(), i)),
                 expected[i]);
  EXPECT_EQ(normc_bundle_kernel(bundle.get(), 5), nullptr);
}

TEST_F(KernelQuery, FindByName) {
  const normc_kernel *kernel = nullptr;
  ASSERT_EQ(normc_bundle_find_kernel(bundle.get(), "rms", &kernel), NORMC_OK);
  EXPECT_EQ(kernel, normc_bundle_kernel(bundle.get(), 1));

  EXPECT_EQ(normc_bundle_find_kernel(bundle.get(), "nope", &kernel),
            NORMC_ERROR_NOT_FOUND);
  EXPECT_EQ(kernel, nullptr);
  EXPECT_THAT(normc_last_error(),
              HasSubstr("has no kernel named 'nope' (available: 'ln', 'rms', "
                        "'probe', 'fail', 'half')"));
  EXPECT_EQ(normc_bundle_find_kernel(bundle.get(), nullptr, &kernel),
            NORMC_ERROR_INVALID_ARGUMENT);
}

TEST_F(KernelQuery, LayerNormSignature) {
  const normc_kernel *kernel = findKernel(bundle.get(), "ln");
  ASSERT_NE(kernel, nullptr);
  EXPECT_EQ(normc_kernel_get_kind(kernel), NORMC_KIND_FORWARD);
  EXPECT_EQ(normc_kernel_op(kernel), NORMC_OP_LAYER_NORM);
  // Attributes are passed through verbatim.
  EXPECT_STREQ(normc_kernel_attrs_json(kernel),
               "{\"eps\": 1e-05, \"eps_outside\": false, \"center\": true, "
               "\"reduction_dims\": [1], \"affine_dims\": [1]}");
  ASSERT_EQ(normc_kernel_num_dims(kernel), 1u);
  EXPECT_STREQ(normc_kernel_dim_name(kernel, 0), "d0");
  EXPECT_EQ(normc_kernel_dim_name(kernel, 1), nullptr);

  struct Expected {
    const char *name;
    normc_io io;
    std::vector<normc_dim> shape;
    const char *inplace;
  };
  const normc_dim d0 = {-1, 0}, hidden = {256, -1};
  std::vector<Expected> expected = {{"x", NORMC_IO_IN, {d0, hidden}, nullptr},
                                    {"gamma", NORMC_IO_IN, {hidden}, nullptr},
                                    {"beta", NORMC_IO_IN, {hidden}, nullptr},
                                    {"y", NORMC_IO_OUT, {d0, hidden}, "x"},
                                    {"mean", NORMC_IO_OUT, {d0}, nullptr},
                                    {"rstd", NORMC_IO_OUT, {d0}, nullptr}};
  ASSERT_EQ(normc_kernel_num_args(kernel), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(expected[i].name);
    normc_arg_info info;
    ASSERT_EQ(normc_kernel_arg(kernel, i, &info), NORMC_OK);
    EXPECT_STREQ(info.name, expected[i].name);
    EXPECT_EQ(info.io, expected[i].io);
    EXPECT_EQ(info.dtype, NORMC_DTYPE_F32);
    ASSERT_EQ(info.rank, expected[i].shape.size());
    for (size_t d = 0; d < info.rank; ++d) {
      EXPECT_EQ(info.shape[d].size, expected[i].shape[d].size);
      EXPECT_EQ(info.shape[d].symbol, expected[i].shape[d].symbol);
    }
    if (expected[i].inplace)
      EXPECT_STREQ(info.inplace, expected[i].inplace);
    else
      EXPECT_EQ(info.inplace, nullptr);
  }
}

TEST_F(KernelQuery, OtherKernels) {
  const normc_kernel *rms = findKernel(bundle.get(), "rms");
  ASSERT_NE(rms, nullptr);
  EXPECT_EQ(normc_kernel_op(rms), NORMC_OP_RMS_NORM);
  ASSERT_EQ(normc_kernel_num_dims(rms), 2u);
  EXPECT_STREQ(normc_kernel_dim_name(rms, 0), "rows");
  EXPECT_STREQ(normc_kernel_dim_name(rms, 1), "cols");
  normc_arg_info gamma;
  ASSERT_EQ(normc_kernel_arg(rms, 1, &gamma), NORMC_OK);
  ASSERT_EQ(gamma.rank, 1u);
  EXPECT_EQ(gamma.shape[0].symbol, 1);

  const normc_kernel *probe = findKernel(bundle.get(), "probe");
  ASSERT_NE(probe, nullptr);
  EXPECT_EQ(normc_kernel_op(probe), NORMC_OP_NORMALIZE);
  EXPECT_STREQ(normc_kernel_attrs_json(probe), "{}"); // no "attrs" field
  normc_arg_info acc;
  ASSERT_EQ(normc_kernel_arg(probe, 1, &acc), NORMC_OK);
  EXPECT_EQ(acc.io, NORMC_IO_INOUT);

  const normc_kernel *fail = findKernel(bundle.get(), "fail");
  ASSERT_NE(fail, nullptr);
  EXPECT_EQ(normc_kernel_get_kind(fail), NORMC_KIND_BACKWARD);
  EXPECT_EQ(normc_kernel_op(fail), NORMC_OP_BATCH_NORM);
  normc_arg_info x;
  ASSERT_EQ(normc_kernel_arg(fail, 0, &x), NORMC_OK);
  EXPECT_EQ(x.dtype, NORMC_DTYPE_F64);

  const normc_kernel *half = findKernel(bundle.get(), "half");
  ASSERT_NE(half, nullptr);
  EXPECT_EQ(normc_kernel_op(half), NORMC_OP_GROUP_NORM);
  EXPECT_EQ(normc_kernel_num_dims(half), 0u);
  normc_arg_info a, b;
  ASSERT_EQ(normc_kernel_arg(half, 0, &a), NORMC_OK);
  ASSERT_EQ(normc_kernel_arg(half, 1, &b), NORMC_OK);
  EXPECT_EQ(a.dtype, NORMC_DTYPE_F16);
  EXPECT_EQ(b.dtype, NORMC_DTYPE_BF16);
  EXPECT_EQ(a.shape[0].size, 2);
  EXPECT_EQ(a.shape[1].size, 3);
}

TEST_F(KernelQuery, ArgLookupErrors) {
  const normc_kernel *kernel = findKernel(bundle.get(), "ln");
  size_t index = 0;
  ASSERT_EQ(normc_kernel_find_arg(kernel, "rstd", &index), NORMC_OK);
  EXPECT_EQ(index, 5u);
  EXPECT_EQ(normc_kernel_find_arg(kernel, "z", &index), NORMC_ERROR_NOT_FOUND);
  EXPECT_THAT(normc_last_error(),
              HasSubstr("kernel 'ln' has no arg named 'z'"));
  normc_arg_info info;
  EXPECT_EQ(normc_kernel_arg(kernel, 6, &info), NORMC_ERROR_INVALID_ARGUMENT);
  EXPECT_THAT(normc_last_error(),
              HasSubstr("kernel 'ln' has 6 args; index 6 is out of range"));
  EXPECT_EQ(normc_kernel_arg(kernel, 0, nullptr), NORMC_ERROR_INVALID_ARGUMENT);
}

TEST(KernelQueryNull, NullHandlesDoNotCrash) {
  EXPECT_EQ(normc_bundle_num_kernels(nullptr), 0u);
  EXPECT_EQ(normc_bundle_kernel(nullptr, 0), nullptr);
  EXPECT_STREQ(normc_bundle_generator(nullptr), "");
  EXPECT_STREQ(normc_bundle_manifest_json(nullptr), "");
  EXPECT_STREQ(normc_kernel_name(nullptr), "");
  EXPECT_STREQ(normc_kernel_attrs_json(nullptr), "{}");
  EXPECT_EQ(normc_kernel_num_args(nullptr), 0u);
  EXPECT_EQ(normc_kernel_num_dims(nullptr), 0u);
  EXPECT_EQ(normc_kernel_dim_name(nullptr, 0), nullptr);
  normc_arg_info info;
  EXPECT_EQ(normc_kernel_arg(nullptr, 0, &info), NORMC_ERROR_INVALID_ARGUMENT);
}

TEST(EnumNames, DtypesOpsAndStatuses) {
  EXPECT_STREQ(normc_dtype_name(NORMC_DTYPE_F32), "f32");
  EXPECT_STREQ(normc_dtype_name(NORMC_DTYPE_F16), "f16");
  EXPECT_STREQ(normc_dtype_name(NORMC_DTYPE_BF16), "bf16");
  EXPECT_STREQ(normc_dtype_name(NORMC_DTYPE_F64), "f64");
  EXPECT_EQ(normc_dtype_name(static_cast<normc_dtype>(0)), nullptr);
  EXPECT_EQ(normc_dtype_size(NORMC_DTYPE_F32), 4u);
  EXPECT_EQ(normc_dtype_size(NORMC_DTYPE_F16), 2u);
  EXPECT_EQ(normc_dtype_size(NORMC_DTYPE_BF16), 2u);
  EXPECT_EQ(normc_dtype_size(NORMC_DTYPE_F64), 8u);
  EXPECT_EQ(normc_dtype_size(static_cast<normc_dtype>(99)), 0u);

  EXPECT_STREQ(normc_op_name(NORMC_OP_LAYER_NORM), "layer_norm");
  EXPECT_STREQ(normc_op_name(NORMC_OP_RMS_NORM), "rms_norm");
  EXPECT_STREQ(normc_op_name(NORMC_OP_BATCH_NORM), "batch_norm");
  EXPECT_STREQ(normc_op_name(NORMC_OP_INSTANCE_NORM), "instance_norm");
  EXPECT_STREQ(normc_op_name(NORMC_OP_GROUP_NORM), "group_norm");
  EXPECT_STREQ(normc_op_name(NORMC_OP_NORMALIZE), "normalize");
  EXPECT_EQ(normc_op_name(static_cast<normc_op>(42)), nullptr);

  EXPECT_STREQ(normc_status_name(NORMC_OK), "NORMC_OK");
  EXPECT_STREQ(normc_status_name(NORMC_ERROR_ALIASING), "NORMC_ERROR_ALIASING");
  EXPECT_STREQ(normc_status_name(NORMC_ERROR_INTERNAL), "NORMC_ERROR_INTERNAL");
  EXPECT_STREQ(normc_status_name(static_cast<normc_status>(1000)),
               "NORMC_ERROR_UNKNOWN");
  // Values are part of the ABI.
  EXPECT_EQ(NORMC_ERROR_SIGNATURE_MISMATCH, 8);
  EXPECT_EQ(NORMC_ERROR_KERNEL_FAILED, 12);
}

} // namespace
