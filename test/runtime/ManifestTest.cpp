//===- ManifestTest.cpp - Manifest schema validation ----------------------===//
//
// Every schema rule, checked on manifest text directly (the bundle tests
// cover the same errors end to end for a few representative cases).
//
//===----------------------------------------------------------------------===//

#include "Manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

using namespace normc;
using ::testing::HasSubstr;

namespace {

/// A valid LayerNorm kernel object; tests splice variations into it.
std::string kernel(const std::string &name = "ln",
                   const std::string &extra = "",
                   const std::string &args = "") {
  std::string argList = args.empty() ? R"([
     {"name": "x", "io": "in", "dtype": "f32", "shape": ["d0", 4096]},
     {"name": "gamma", "io": "in", "dtype": "f32", "shape": [4096]},
     {"name": "y", "io": "out", "dtype": "f32", "shape": ["d0", 4096], "inplace": "x"},
     {"name": "rstd", "io": "out", "dtype": "f32", "shape": ["d0"]}])"
                                     : args;
  return R"({"name": ")" + name +
         R"(", "kind": "forward", "op": "layer_norm", "attrs": {"eps": 1e-05},
   "entry": "__normc_)" +
         name + R"(_packed", "work": "__normc_)" + name +
         R"(_work", "dims": ["d0"], )" + extra + R"("args": )" + argList + "}";
}

std::string manifest(const std::string &kernels) {
  return R"({"abi_version": 3, "generator": "normc 0.1.0", "kernels": [)" +
         kernels + "]}";
}

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

/// Message for a kernel whose args list is `args` (with dims ["d0"]).
std::string argsError(const std::string &args) {
  return parseError(manifest(kernel("k", "", args)));
}

TEST(Manifest, ParsesTheDocumentedExample) {
  Manifest m = parseOk(manifest(kernel()));
  EXPECT_EQ(m.abiVersion, 3u);
  EXPECT_EQ(m.generator, "normc 0.1.0");
  ASSERT_EQ(m.kernels.size(), 1u);
  const KernelSpec &k = m.kernels[0];
  EXPECT_EQ(k.name, "ln");
  EXPECT_EQ(k.kind, NORMC_KIND_FORWARD);
  EXPECT_EQ(k.op, NORMC_OP_LAYER_NORM);
  EXPECT_EQ(k.attrsJson, "{\"eps\": 1e-05}");
  EXPECT_EQ(k.entry, "__normc_ln_packed");
  EXPECT_EQ(k.work, "__normc_ln_work");
  ASSERT_EQ(k.dims.size(), 1u);
  ASSERT_EQ(k.args.size(), 4u);
  EXPECT_EQ(k.args[2].inplace, 0);
  EXPECT_EQ(k.args[3].inplace, -1);
  EXPECT_EQ(k.args[0].shape[0].symbol, 0);
  EXPECT_EQ(k.args[0].shape[1].size, 4096);
}

TEST(Manifest, IgnoresUnknownFieldsAndOptionalOnesMayBeAbsent) {
  Manifest m = parseOk(
      R"({"abi_version": 3, "new_field": [1, {"x": 2}], "kernels": [)" +
      kernel(
          "k", R"("future": {"a": 1}, )",
          R"([{"name": "x", "io": "inout", "dtype": "bf16", "shape": ["d0"], "hint": "?"}])") +
      "]}");
  EXPECT_EQ(m.generator, "");
  EXPECT_EQ(m.kernels[0].args[0].io, NORMC_IO_INOUT);
  EXPECT_EQ(m.kernels[0].args[0].dtype, NORMC_DTYPE_BF16);
  EXPECT_EQ(parseOk(R"({"abi_version": 3, "kernels": []})").kernels.size(), 0u);
}

TEST(Manifest, TopLevelErrors) {
  EXPECT_THAT(parseError("[1]"),
              HasSubstr("manifest: expected object, got array at byte 0"));
  EXPECT_THAT(parseError(R"({"kernels": []})"),
              HasSubstr("manifest: missing required field 'abi_version' in "
                        "the object at byte 0"));
  EXPECT_THAT(parseError(R"({"abi_version": "1", "kernels": []})"),
              HasSubstr("abi_version: expected number, got string at byte "
                        "16"));
  EXPECT_THAT(parseError(R"({"abi_version": 1.5, "kernels": []})"),
              HasSubstr("abi_version: expected a non-negative 32-bit integer "
                        "at byte 16"));
  EXPECT_THAT(parseError(R"({"abi_version": -1, "kernels": []})"),
              HasSubstr("non-negative 32-bit integer"));
  EXPECT_THAT(parseError(R"({"abi_version": 3})"),
              HasSubstr("missing required field 'kernels'"));
  EXPECT_THAT(parseError(R"({"abi_version": 3, "kernels": {}})"),
              HasSubstr("kernels: expected array, got object at byte 30"));
  EXPECT_THAT(
      parseError(R"({"abi_version": 3, "generator": 3, "kernels": []})"),
      HasSubstr("generator: expected string, got number"));
  EXPECT_THAT(parseError(R"({"abi_version": 3, "kernels": [7]})"),
              HasSubstr("kernels[0]: expected object, got number at byte 31"));
  EXPECT_THAT(parseError("{\"abi_version\": 3,"),
              HasSubstr("invalid JSON at byte 18: unexpected end of input "
                        "(truncated?)"));
}

TEST(Manifest, KernelFieldErrors) {
  std::string good = kernel("k");
  auto replace = [&](const std::string &from, const std::string &to) {
    std::string text = manifest(good);
    size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return parseError(text.replace(at, from.size(), to));
  };
  EXPECT_THAT(replace(R"("name": "k", )", ""),
              HasSubstr("kernels[0]: missing required field 'name'"));
  EXPECT_THAT(replace(R"("name": "k")", R"("name": "")"),
              HasSubstr("kernels[0].name: must not be empty"));
  EXPECT_THAT(replace(R"("kind": "forward")", R"("kind": "sideways")"),
              HasSubstr("kernels[0].kind: unknown value 'sideways' (expected "
                        "forward or backward)"));
  EXPECT_THAT(replace(R"("op": "layer_norm")", R"("op": "weight_norm")"),
              HasSubstr("kernels[0].op: unknown value 'weight_norm' (expected "
                        "layer_norm, rms_norm, batch_norm, instance_norm, "
                        "group_norm or normalize)"));
  EXPECT_THAT(replace(R"("op": "layer_norm")", R"("op": 3)"),
              HasSubstr("kernels[0].op: expected string, got number"));
  EXPECT_THAT(replace(R"("attrs": {"eps": 1e-05})", R"("attrs": [])"),
              HasSubstr("kernels[0].attrs: expected object, got array"));
  EXPECT_THAT(replace(R"("entry": "__normc_k_packed", )", ""),
              HasSubstr("missing required field 'entry'"));
  EXPECT_THAT(replace(R"("work": "__normc_k_work")", R"("work": null)"),
              HasSubstr("kernels[0].work: expected string, got null"));
  EXPECT_THAT(replace(R"("dims": ["d0"])", R"("dims": "d0")"),
              HasSubstr("kernels[0].dims: expected array, got string"));
  EXPECT_THAT(replace(R"("dims": ["d0"])", R"("dims": ["d0", 1])"),
              HasSubstr("kernels[0].dims[1]: expected string, got number"));
  EXPECT_THAT(replace(R"("dims": ["d0"])", R"("dims": ["d0", "d0"])"),
              HasSubstr("kernels[0].dims[1]: duplicate dim symbol 'd0'"));
  EXPECT_THAT(replace(R"("dims": ["d0"])", R"("dims": ["d0", "d1"])"),
              HasSubstr("kernels[0].dims[1]: dim symbol 'd1' is not used by "
                        "any arg shape"));
  EXPECT_THAT(replace(R"("args": [)", R"("args": 5, "old": [)"),
              HasSubstr("kernels[0].args: expected array, got number"));
}

TEST(Manifest, ArgErrors) {
  EXPECT_THAT(argsError(R"([3])"),
              HasSubstr("kernels[0].args[0]: expected object, got number"));
  EXPECT_THAT(argsError(R"([{"name": "x", "dtype": "f32", "shape": ["d0"]}])"),
              HasSubstr("kernels[0].args[0]: missing required field 'io'"));
  EXPECT_THAT(
      argsError(
          R"([{"name": "x", "io": "both", "dtype": "f32", "shape": ["d0"]}])"),
      HasSubstr("kernels[0].args[0].io: unknown value 'both' "
                "(expected in, out or inout)"));
  EXPECT_THAT(
      argsError(
          R"([{"name": "x", "io": "in", "dtype": "f8", "shape": ["d0"]}])"),
      HasSubstr("kernels[0].args[0].dtype: unknown value 'f8' "
                "(expected f32, f16, bf16 or f64)"));
  EXPECT_THAT(argsError(R"([{"name": "x", "io": "in", "dtype": "f32"}])"),
              HasSubstr("missing required field 'shape'"));
  EXPECT_THAT(
      argsError(
          R"([{"name": "x", "io": "in", "dtype": "f32", "shape": ["d0", -4]}])"),
      HasSubstr("kernels[0].args[0].shape[1]: expected a non-negative "
                "integer or a dim symbol"));
  EXPECT_THAT(
      argsError(
          R"([{"name": "x", "io": "in", "dtype": "f32", "shape": ["d0", 2.5]}])"),
      HasSubstr("shape[1]: expected a non-negative integer"));
  EXPECT_THAT(
      argsError(
          R"([{"name": "x", "io": "in", "dtype": "f32", "shape": ["d0", true]}])"),
      HasSubstr("shape[1]: expected integer or string, got boolean"));
  EXPECT_THAT(
      argsError(
          R"([{"name": "x", "io": "in", "dtype": "f32", "shape": ["d0", "d9"]}])"),
      HasSubstr("kernels[0].args[0].shape[1]: 'd9' is not one of the "
                "kernel's dims"));
  EXPECT_THAT(
      argsError(R"([{"name": "x", "io": "in", "dtype": "f32", "shape": ["d0"]},
                            {"name": "x", "io": "out", "dtype": "f32", "shape": ["d0"]}])"),
      HasSubstr("kernels[0].args[1]: duplicate arg name 'x'"));
}

TEST(Manifest, InplaceErrors) {
  const std::string x =
      R"({"name": "x", "io": "in", "dtype": "f32", "shape": ["d0"]})";
  EXPECT_THAT(
      argsError(
          "[" + x +
          R"(, {"name": "y", "io": "out", "dtype": "f32", "shape": ["d0"], "inplace": "z"}])"),
      HasSubstr("kernels[0].args[1].inplace: no arg named 'z'"));
  EXPECT_THAT(
      argsError(
          "[" + x +
          R"(, {"name": "y", "io": "out", "dtype": "f32", "shape": ["d0"], "inplace": 1}])"),
      HasSubstr("kernels[0].args[1].inplace: expected string, got "
                "number"));
  EXPECT_THAT(
      argsError(
          "[" + x +
          R"(, {"name": "y", "io": "in", "dtype": "f32", "shape": ["d0"], "inplace": "x"}])"),
      HasSubstr("kernels[0].args[1].inplace: only outputs may be "
                "in-place"));
  EXPECT_THAT(
      argsError(
          "[" + x +
          R"(, {"name": "o", "io": "out", "dtype": "f32", "shape": ["d0"]},
                              {"name": "y", "io": "out", "dtype": "f32", "shape": ["d0"], "inplace": "o"}])"),
      HasSubstr("kernels[0].args[2].inplace: 'o' is not an input"));
  EXPECT_THAT(
      argsError(
          "[" + x +
          R"(, {"name": "y", "io": "out", "dtype": "f16", "shape": ["d0"], "inplace": "x"}])"),
      HasSubstr("'x' must have the same dtype and shape as 'y' to be "
                "aliased"));
  EXPECT_THAT(
      argsError(
          "[" + x +
          R"(, {"name": "y", "io": "out", "dtype": "f32", "shape": ["d0", 1], "inplace": "x"}])"),
      HasSubstr("must have the same dtype and shape"));
}

TEST(Manifest, DuplicateKernelNames) {
  std::string text =
      manifest(kernel("a") + ", " + kernel("b") + ", " + kernel("a"));
  size_t third = text.find("\"name\": \"a\"", text.find("\"name\": \"b\""));
  EXPECT_THAT(parseError(text),
              HasSubstr("kernels[2]: duplicate kernel name 'a' (also "
                        "kernels[0]) at byte " +
                        std::to_string(third + 8)));
}

} // namespace
