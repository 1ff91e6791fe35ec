//===- PrepassManifestTest.cpp - The "prepass" kernel field ---------------===//
//
// The optional prepass of forward kernels (bundle ABI 3), checked on
// manifest text: "prepass": {"entry": ..., "work": ...} needs "workspace",
// and a workspace needs a prepass or a finalize step (PrepassRunTest.cpp
// covers opening and running such kernels).
//
//===----------------------------------------------------------------------===//

#include "Manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

using namespace normc;
using ::testing::HasSubstr;

namespace {

/// A forward LayerNorm kernel object as normc writes it for long rows, with
/// `fields` after "work".
std::string kernel(const std::string &fields) {
  return R"({"name": "ln", "kind": "forward", "op": "layer_norm", "attrs": {"eps": 1e-05}, "entry": "__normc_ln_packed", "work": "__normc_ln_work", )" +
         fields + R"("dims": ["d0", "d1"], "args": [
    {"name": "x", "io": "in", "dtype": "f32", "shape": ["d0", "d1"]},
    {"name": "gamma", "io": "in", "dtype": "f32", "shape": ["d1"]},
    {"name": "beta", "io": "in", "dtype": "f32", "shape": ["d1"]},
    {"name": "y", "io": "out", "dtype": "f32", "shape": ["d0", "d1"]},
    {"name": "mean", "io": "out", "dtype": "f32", "shape": ["d0"]},
    {"name": "rstd", "io": "out", "dtype": "f32", "shape": ["d0"]}]})";
}

const char *kWorkspace = R"("workspace": "__normc_ln_workspace", )";
const char *kPrepass =
    R"("prepass": {"entry": "__normc_ln_prepass", "work": "__normc_ln_prepass_work"}, )";

std::string manifest(const std::string &kernels, const std::string &top = "") {
  return R"({"abi_version": 3, "generator": "normc 0.1.0", )" + top +
         R"("kernels": [)" + kernels + "]}";
}

std::string parseError(const std::string &text) {
  Manifest out;
  std::string error;
  EXPECT_FALSE(parseManifest(text, out, error)) << text;
  return error;
}

/// Byte offset of the first kernel object in manifest(...).
size_t kernelOffset() { return manifest("").size() - 2; }

/// Byte offset of the value of the first kernel's "prepass" field.
size_t prepassOffset(const std::string &text) {
  return text.find("\"prepass\": ") + std::string("\"prepass\": ").size();
}

TEST(ManifestPrepass, ParsesPrepassWithWorkspace) {
  Manifest m;
  std::string error;
  ASSERT_TRUE(parseManifest(
      manifest(kernel(std::string(kWorkspace) + kPrepass)), m, error))
      << error;
  ASSERT_EQ(m.kernels.size(), 1u);
  const KernelSpec &k = m.kernels[0];
  EXPECT_EQ(k.kind, NORMC_KIND_FORWARD);
  EXPECT_EQ(k.workspace, "__normc_ln_workspace");
  EXPECT_EQ(k.prepassEntry, "__normc_ln_prepass");
  EXPECT_EQ(k.prepassWork, "__normc_ln_prepass_work");
  // No finalize step, and the workspace is not an argument.
  EXPECT_EQ(k.finalize, "");
  EXPECT_EQ(k.args.size(), 6u);
}

TEST(ManifestPrepass, FieldOrderDoesNotMatter) {
  Manifest m;
  std::string error;
  ASSERT_TRUE(parseManifest(
      manifest(kernel(std::string(kPrepass) + kWorkspace)), m, error))
      << error;
  EXPECT_EQ(m.kernels[0].prepassEntry, "__normc_ln_prepass");
  EXPECT_EQ(m.kernels[0].workspace, "__normc_ln_workspace");
}

TEST(ManifestPrepass, WithFinalizeAndGpu) {
  Manifest m;
  std::string error;
  std::string fields = std::string(kWorkspace) + kPrepass +
                       R"("finalize": "__normc_ln_finalize", )" +
                       R"("gpu": {"plan": "__normc_ln_gpu_plan", )" +
                       R"("functions": ["ln_gpu_rows"]}, )";
  ASSERT_TRUE(parseManifest(
      manifest(kernel(fields), R"("gpu_archs": ["sm_90"], )"), m, error))
      << error;
  const KernelSpec &k = m.kernels[0];
  EXPECT_EQ(k.prepassEntry, "__normc_ln_prepass");
  EXPECT_EQ(k.prepassWork, "__normc_ln_prepass_work");
  EXPECT_EQ(k.finalize, "__normc_ln_finalize");
  EXPECT_TRUE(k.hasGpu);
  EXPECT_EQ(k.gpu.plan, "__normc_ln_gpu_plan");
}

TEST(ManifestPrepass, PrepassWithoutWorkspaceIsRejected) {
  std::string at = " at byte " + std::to_string(kernelOffset());
  EXPECT_THAT(parseError(manifest(kernel(kPrepass))),
              HasSubstr("kernels[0]: 'prepass' requires 'workspace'" + at));
  // Also next to a finalize step (which needs the workspace too).
  EXPECT_THAT(
      parseError(manifest(kernel(std::string(kPrepass) +
                                 R"("finalize": "__normc_ln_finalize", )"))),
      HasSubstr("requires 'workspace'" + at));
  // In a later kernel, with the right index.
  EXPECT_THAT(parseError(manifest(kernel(std::string(kWorkspace) + kPrepass) +
                                  ", " + kernel(kPrepass))),
              HasSubstr("kernels[1]: 'prepass' requires 'workspace'"));
}

TEST(ManifestPrepass, WorkspaceAloneIsRejected) {
  EXPECT_THAT(parseError(manifest(kernel(kWorkspace))),
              HasSubstr("kernels[0]: 'workspace' requires 'finalize' or "
                        "'prepass' at byte " +
                        std::to_string(kernelOffset())));
}

TEST(ManifestPrepass, MissingFieldsAreNamed) {
  std::string noWork =
      manifest(kernel(std::string(kWorkspace) +
                      R"("prepass": {"entry": "__normc_ln_prepass"}, )"));
  EXPECT_THAT(parseError(noWork),
              HasSubstr("kernels[0].prepass: missing required field 'work' in "
                        "the object at byte " +
                        std::to_string(prepassOffset(noWork))));
  std::string noEntry =
      manifest(kernel(std::string(kWorkspace) +
                      R"("prepass": {"work": "__normc_ln_prepass_work"}, )"));
  EXPECT_THAT(parseError(noEntry),
              HasSubstr("kernels[0].prepass: missing required field 'entry' "
                        "in the object at byte " +
                        std::to_string(prepassOffset(noEntry))));
  EXPECT_THAT(parseError(manifest(
                  kernel(std::string(kWorkspace) + R"("prepass": {}, )"))),
              HasSubstr("kernels[0].prepass: missing required field"));
}

TEST(ManifestPrepass, EmptyNamesAreRejected) {
  EXPECT_THAT(
      parseError(manifest(kernel(
          std::string(kWorkspace) +
          R"("prepass": {"entry": "", "work": "__normc_ln_prepass_work"}, )"))),
      HasSubstr("kernels[0].prepass.entry: must not be empty"));
  EXPECT_THAT(
      parseError(manifest(kernel(
          std::string(kWorkspace) +
          R"("prepass": {"entry": "__normc_ln_prepass", "work": ""}, )"))),
      HasSubstr("kernels[0].prepass.work: must not be empty"));
}

TEST(ManifestPrepass, FieldTypes) {
  EXPECT_THAT(
      parseError(manifest(kernel(std::string(kWorkspace) +
                                 R"("prepass": "__normc_ln_prepass", )"))),
      HasSubstr("kernels[0].prepass: expected object, got string"));
  EXPECT_THAT(
      parseError(manifest(kernel(std::string(kWorkspace) +
                                 R"("prepass": {"entry": 1, "work": "w"}, )"))),
      HasSubstr("kernels[0].prepass.entry: expected string, got "
                "number"));
  EXPECT_THAT(parseError(manifest(
                  kernel(std::string(kWorkspace) +
                         R"("prepass": {"entry": "e", "work": null}, )"))),
              HasSubstr("kernels[0].prepass.work: expected string, got null"));
  EXPECT_THAT(parseError(manifest(
                  kernel(R"("workspace": 8, )" + std::string(kPrepass)))),
              HasSubstr("kernels[0].workspace: expected string, got number"));
}

TEST(ManifestPrepass, UnknownFieldsInsideAreIgnored) {
  Manifest m;
  std::string error;
  ASSERT_TRUE(parseManifest(
      manifest(kernel(
          std::string(kWorkspace) +
          R"("prepass": {"entry": "e", "work": "w", "items_hint": 4}, )")),
      m, error))
      << error;
  EXPECT_EQ(m.kernels[0].prepassEntry, "e");
  EXPECT_EQ(m.kernels[0].prepassWork, "w");
}

} // namespace
