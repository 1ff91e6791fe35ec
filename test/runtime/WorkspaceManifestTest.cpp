//===- WorkspaceManifestTest.cpp - "workspace" and "finalize" fields ------===//
//
// The optional kernel fields of backward kernels, checked on manifest text
// (WorkspaceRunTest.cpp covers opening and running such kernels).
//
//===----------------------------------------------------------------------===//

#include "Manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

using namespace normc;
using ::testing::HasSubstr;

namespace {

/// A backward LayerNorm kernel object as normc writes it, with `fields`
/// after "work".
std::string kernel(const std::string &fields) {
  return R"({"name": "ln_backward", "kind": "backward", "op": "layer_norm", "attrs": {"eps": 1e-05}, "entry": "__normc_ln_backward_packed", "work": "__normc_ln_backward_work", )" +
         fields + R"("dims": ["d0"], "args": [
    {"name": "dy", "io": "in", "dtype": "f32", "shape": ["d0", 768]},
    {"name": "x", "io": "in", "dtype": "f32", "shape": ["d0", 768]},
    {"name": "gamma", "io": "in", "dtype": "f32", "shape": [768]},
    {"name": "mean", "io": "in", "dtype": "f32", "shape": ["d0"]},
    {"name": "rstd", "io": "in", "dtype": "f32", "shape": ["d0"]},
    {"name": "dx", "io": "out", "dtype": "f32", "shape": ["d0", 768]},
    {"name": "dgamma", "io": "out", "dtype": "f32", "shape": [768]},
    {"name": "dbeta", "io": "out", "dtype": "f32", "shape": [768]}]})";
}

const char *kBoth =
    R"("workspace": "__normc_ln_backward_workspace", "finalize": "__normc_ln_backward_finalize", )";

std::string manifest(const std::string &kernels) {
  return R"({"abi_version": 3, "generator": "normc 0.1.0", "kernels": [)" +
         kernels + "]}";
}

std::string parseError(const std::string &text) {
  Manifest out;
  std::string error;
  EXPECT_FALSE(parseManifest(text, out, error)) << text;
  return error;
}

/// Byte offset of the first kernel object in manifest(...).
size_t kernelOffset() { return manifest("").size() - 2; }

TEST(ManifestWorkspace, ParsesWorkspaceAndFinalize) {
  Manifest m;
  std::string error;
  ASSERT_TRUE(parseManifest(manifest(kernel(kBoth)), m, error)) << error;
  ASSERT_EQ(m.kernels.size(), 1u);
  const KernelSpec &k = m.kernels[0];
  EXPECT_EQ(k.kind, NORMC_KIND_BACKWARD);
  EXPECT_EQ(k.workspace, "__normc_ln_backward_workspace");
  EXPECT_EQ(k.finalize, "__normc_ln_backward_finalize");
  // The workspace is not an argument.
  EXPECT_EQ(k.args.size(), 8u);
}

TEST(ManifestWorkspace, BothFieldsAreOptional) {
  Manifest m;
  std::string error;
  ASSERT_TRUE(parseManifest(manifest(kernel("")), m, error)) << error;
  EXPECT_EQ(m.kernels[0].workspace, "");
  EXPECT_EQ(m.kernels[0].finalize, "");
  EXPECT_EQ(m.kernels[0].prepassEntry, "");
  EXPECT_EQ(m.kernels[0].prepassWork, "");
}

/// A workspace is there for a finalize step or a prepass
/// (PrepassManifestTest.cpp), and a finalize step needs the workspace.
TEST(ManifestWorkspace, OneWithoutTheOtherIsRejected) {
  std::string at = " at byte " + std::to_string(kernelOffset());
  EXPECT_THAT(parseError(manifest(
                  kernel(R"("workspace": "__normc_ln_backward_workspace", )"))),
              HasSubstr("kernels[0]: 'workspace' requires 'finalize' or "
                        "'prepass'" +
                        at));
  EXPECT_THAT(parseError(manifest(
                  kernel(R"("finalize": "__normc_ln_backward_finalize", )"))),
              HasSubstr("kernels[0]: 'finalize' requires 'workspace'" + at));
  // Also in a later kernel, with the right index.
  std::string second =
      manifest(kernel(kBoth) + ", " +
               kernel(R"("finalize": "__normc_ln_backward_finalize", )"));
  EXPECT_THAT(parseError(second),
              HasSubstr("kernels[1]: 'finalize' requires 'workspace'"));
}

TEST(ManifestWorkspace, FieldTypes) {
  EXPECT_THAT(
      parseError(manifest(kernel(
          R"("workspace": 16, "finalize": "__normc_ln_backward_finalize", )"))),
      HasSubstr("kernels[0].workspace: expected string, got number"));
  EXPECT_THAT(
      parseError(manifest(kernel(
          R"("workspace": "__normc_ln_backward_workspace", "finalize": null, )"))),
      HasSubstr("kernels[0].finalize: expected string, got null"));
  EXPECT_THAT(
      parseError(manifest(kernel(
          R"("workspace": "", "finalize": "__normc_ln_backward_finalize", )"))),
      HasSubstr("kernels[0].workspace: must not be empty"));
  EXPECT_THAT(
      parseError(manifest(kernel(
          R"("workspace": "__normc_ln_backward_workspace", "finalize": "", )"))),
      HasSubstr("kernels[0].finalize: must not be empty"));
}

TEST(ManifestWorkspace, DocumentedOffsetOfTheKernelObject) {
  // The message points at the kernel object that lacks the partner field.
  std::string text =
      manifest(kernel(R"("workspace": "__normc_ln_backward_workspace", )"));
  EXPECT_EQ(text[kernelOffset()], '{');
}

} // namespace
