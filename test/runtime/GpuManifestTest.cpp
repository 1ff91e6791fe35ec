//===- GpuManifestTest.cpp - "gpu_archs" and kernels' "gpu" objects -------===//
//
// The manifest fields of bundle ABI 2 (docs/gpu.md), checked on manifest
// text (GpuRunTest.cpp covers opening and running such bundles).
//
//===----------------------------------------------------------------------===//

#include "Manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

using namespace normc;
using ::testing::HasSubstr;

namespace {

const char *kGpu =
    R"("gpu": {"plan": "__normc_ln_gpu_plan", "functions": ["ln_gpu_rows", "ln_gpu_apply"]}, )";

/// A LayerNorm kernel object as normc writes it, with `fields` after
/// "work".
std::string kernel(const std::string &fields, const std::string &name = "ln") {
  return R"({"name": ")" + name +
         R"(", "kind": "forward", "op": "layer_norm", "attrs": {}, "entry": "__normc_ln_packed", "work": "__normc_ln_work", )" +
         fields + R"("dims": ["d0"], "args": [
    {"name": "x", "io": "in", "dtype": "f32", "shape": ["d0", 768]},
    {"name": "y", "io": "out", "dtype": "f32", "shape": ["d0", 768]}]})";
}

/// A manifest whose top level holds `top` (e.g. a gpu_archs member with a
/// trailing ", ") before "kernels".
std::string manifest(const std::string &top, const std::string &kernels) {
  return R"({"abi_version": 3, "generator": "normc 0.1.0", )" + top +
         R"("kernels": [)" + kernels + "]}";
}

const char *kArchs = R"("gpu_archs": ["sm_80", "sm_90"], )";

Manifest parseOk(const std::string &text) {
  Manifest out;
  std::string error;
  EXPECT_TRUE(parseManifest(text, out, error)) << error;
  return out;
}

std::string parseError(const std::string &text) {
  Manifest out;
  std::string error;
  EXPECT_FALSE(parseManifest(text, out, error)) << text;
  return error;
}

std::string at(const std::string &text, const std::string &needle,
               size_t from = 0) {
  size_t offset = text.find(needle, from);
  EXPECT_NE(offset, std::string::npos) << needle;
  return " at byte " + std::to_string(offset);
}

TEST(ManifestGpu, ParsesArchsAndGpuObjects) {
  Manifest m = parseOk(
      manifest(kArchs, kernel(kGpu) + ", " + kernel("", "ln_cpu_only")));
  EXPECT_EQ(m.gpuArchs, (std::vector<std::string>{"sm_80", "sm_90"}));
  ASSERT_EQ(m.kernels.size(), 2u);
  EXPECT_TRUE(m.kernels[0].hasGpu);
  EXPECT_EQ(m.kernels[0].gpu.plan, "__normc_ln_gpu_plan");
  EXPECT_EQ(m.kernels[0].gpu.functions,
            (std::vector<std::string>{"ln_gpu_rows", "ln_gpu_apply"}));
  EXPECT_FALSE(m.kernels[1].hasGpu);
  EXPECT_TRUE(m.kernels[1].gpu.functions.empty());
}

TEST(ManifestGpu, ArchsAreOptional) {
  Manifest m = parseOk(manifest("", kernel("")));
  EXPECT_TRUE(m.gpuArchs.empty());
  EXPECT_FALSE(m.kernels[0].hasGpu);
  // Empty is the same as absent.
  EXPECT_TRUE(
      parseOk(manifest(R"("gpu_archs": [], )", kernel(""))).gpuArchs.empty());
  // Archs without GPU kernels are allowed (the bundle still exports them).
  EXPECT_EQ(parseOk(manifest(kArchs, kernel(""))).gpuArchs.size(), 2u);
}

TEST(ManifestGpu, ArchsMayFollowTheKernels) {
  // JSON objects are unordered: gpu_archs after "kernels" still counts.
  std::string text = R"({"abi_version": 3, "kernels": [)" + kernel(kGpu) +
                     R"(], "gpu_archs": ["sm_90"]})";
  Manifest m = parseOk(text);
  EXPECT_EQ(m.gpuArchs, std::vector<std::string>{"sm_90"});
  EXPECT_TRUE(m.kernels[0].hasGpu);
}

TEST(ManifestGpu, ArchNames) {
  EXPECT_EQ(smArchNumber("sm_80"), 80);
  EXPECT_EQ(smArchNumber("sm_86"), 86);
  EXPECT_EQ(smArchNumber("sm_90"), 90);
  EXPECT_EQ(smArchNumber("sm_100"), 100);
  EXPECT_EQ(smArchNumber("sm_120"), 120);
  for (const char *bad : {"", "sm_", "sm_8", "sm_08", "sm_1000", "sm_90a",
                          "SM_80", "compute_80", "sm80", "sm_8x", " sm_80"})
    EXPECT_EQ(smArchNumber(bad), -1) << "'" << bad << "'";

  std::string text =
      manifest(R"("gpu_archs": ["sm_80", "compute_90"], )", kernel(kGpu));
  EXPECT_EQ(parseError(text),
            "gpu_archs[1]: 'compute_90' is not a GPU arch name of the form "
            "sm_<major><minor> (e.g. sm_80)" +
                at(text, "\"compute_90\""));
  text = manifest(R"("gpu_archs": ["sm_90a"], )", kernel(""));
  EXPECT_THAT(parseError(text), HasSubstr("gpu_archs[0]: 'sm_90a' is not"));
}

TEST(ManifestGpu, ArchListShape) {
  std::string text = manifest(R"("gpu_archs": "sm_80", )", kernel(""));
  EXPECT_EQ(parseError(text),
            "gpu_archs: expected array, got string" + at(text, "\"sm_80\""));
  text = manifest(R"("gpu_archs": ["sm_80", 90], )", kernel(""));
  EXPECT_EQ(parseError(text),
            "gpu_archs[1]: expected string, got number" + at(text, "90]"));
  text = manifest(R"("gpu_archs": ["sm_80", "sm_90", "sm_80"], )", kernel(""));
  EXPECT_EQ(parseError(text),
            "gpu_archs[2]: duplicate arch 'sm_80' (also gpu_archs[0])" +
                at(text, "\"sm_80\"]"));
}

TEST(ManifestGpu, GpuCodeNeedsArchs) {
  std::string text = manifest("", kernel(kGpu));
  EXPECT_EQ(parseError(text),
            "kernels[0].gpu: the kernel has GPU code but the manifest's "
            "'gpu_archs' is absent or empty" +
                at(text, "{\"plan\""));
  text = manifest(R"("gpu_archs": [], )", kernel("") + ", " + kernel(kGpu));
  EXPECT_THAT(parseError(text),
              HasSubstr("kernels[1].gpu: the kernel has GPU code but the "
                        "manifest's 'gpu_archs' is absent or empty"));
}

TEST(ManifestGpu, GpuObjectFields) {
  struct Case {
    const char *gpu;
    const char *message;
    const char *offsetOf; // text the reported offset points at
  };
  const Case cases[] = {
      {R"("gpu": "ln_gpu", )", "kernels[0].gpu: expected object, got string",
       "\"ln_gpu\""},
      {R"("gpu": {"functions": ["f"]}, )",
       "kernels[0].gpu: missing required field 'plan' in the object",
       "{\"functions\""},
      {R"("gpu": {"plan": 3, "functions": ["f"]}, )",
       "kernels[0].gpu.plan: expected string, got number", "3,"},
      {R"("gpu": {"plan": "", "functions": ["f"]}, )",
       "kernels[0].gpu.plan: must not be empty", "\"\","},
      {R"("gpu": {"plan": "p"}, )",
       "kernels[0].gpu: missing required field 'functions' in the object",
       "{\"plan\""},
      {R"("gpu": {"plan": "p", "functions": "f"}, )",
       "kernels[0].gpu.functions: expected array, got string", "\"f\"}"},
      {R"("gpu": {"plan": "p", "functions": []}, )",
       "kernels[0].gpu.functions: must not be empty", "[]}"},
      {R"("gpu": {"plan": "p", "functions": ["f", null]}, )",
       "kernels[0].gpu.functions[1]: expected string, got null", "null"},
      {R"("gpu": {"plan": "p", "functions": ["f", ""]}, )",
       "kernels[0].gpu.functions[1]: must not be empty", "\"\"]"},
  };
  for (const Case &c : cases) {
    std::string text = manifest(kArchs, kernel(c.gpu));
    size_t gpu = text.find("\"gpu\":");
    EXPECT_EQ(parseError(text), c.message + at(text, c.offsetOf, gpu)) << c.gpu;
  }
}

TEST(ManifestGpu, UnknownGpuFieldsAreIgnored) {
  Manifest m = parseOk(manifest(
      kArchs,
      kernel(
          R"("gpu": {"plan": "p", "functions": ["f"], "future": {"x": 1}}, )")));
  EXPECT_EQ(m.kernels[0].gpu.plan, "p");
}

} // namespace
