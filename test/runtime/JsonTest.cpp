//===- JsonTest.cpp - The runtime's JSON parser ---------------------------===//

#include "Json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <clocale>
#include <string>

using namespace normc::json;
using ::testing::HasSubstr;

namespace {

Value parseOk(const std::string &text) {
  Value value;
  ParseError error;
  EXPECT_TRUE(parse(text, value, error))
      << "at byte " << error.offset << ": " << error.message;
  return value;
}

/// Expects a parse error at `offset` whose message contains `message`.
void expectError(const std::string &text, size_t offset,
                 const std::string &message) {
  Value value;
  ParseError error;
  ASSERT_FALSE(parse(text, value, error)) << text;
  EXPECT_EQ(error.offset, offset) << text << "\n" << error.message;
  EXPECT_THAT(error.message, HasSubstr(message)) << text;
}

TEST(Json, Scalars) {
  EXPECT_EQ(parseOk("null").kind, Kind::Null);
  Value t = parseOk(" true ");
  EXPECT_EQ(t.kind, Kind::Bool);
  EXPECT_TRUE(t.boolean);
  EXPECT_FALSE(parseOk("false").boolean);
  EXPECT_EQ(parseOk("\"hi\"").string, "hi");
}

TEST(Json, Numbers) {
  Value v = parseOk("4096");
  EXPECT_TRUE(v.isInteger);
  EXPECT_EQ(v.integer, 4096);
  v = parseOk("-0");
  EXPECT_TRUE(v.isInteger);
  EXPECT_EQ(v.integer, 0);
  v = parseOk("1e-05");
  EXPECT_FALSE(v.isInteger);
  EXPECT_DOUBLE_EQ(v.number, 1e-5);
  v = parseOk("-2.5E+3");
  EXPECT_DOUBLE_EQ(v.number, -2500);
  v = parseOk("4096.0");
  EXPECT_FALSE(v.isInteger);
  EXPECT_DOUBLE_EQ(v.number, 4096);
  // Too large for int64: still a number, but not an integer.
  v = parseOk("123456789012345678901234567890");
  EXPECT_FALSE(v.isInteger);
  EXPECT_GT(v.number, 1e29);
  v = parseOk("9223372036854775807");
  EXPECT_TRUE(v.isInteger);
  EXPECT_EQ(v.integer, INT64_MAX);
}

TEST(Json, NumbersIgnoreTheProcessLocale) {
  // A decimal-comma locale must not change how "1.5" parses.
  const char *previous = std::setlocale(LC_NUMERIC, nullptr);
  std::string saved = previous ? previous : "C";
  if (!std::setlocale(LC_NUMERIC, "de_DE.UTF-8") &&
      !std::setlocale(LC_NUMERIC, "fr_FR.UTF-8"))
    GTEST_SKIP() << "no decimal-comma locale installed";
  Value v = parseOk("1.5");
  std::setlocale(LC_NUMERIC, saved.c_str());
  EXPECT_DOUBLE_EQ(v.number, 1.5);
}

TEST(Json, StringsAndEscapes) {
  EXPECT_EQ(parseOk(R"("a\"b\\c\/d\b\f\n\r\t")").string, "a\"b\\c/d\b\f\n\r\t");
  EXPECT_EQ(parseOk(R"("\u0041\u00e9\u20ac")").string, "A\xc3\xa9\xe2\x82\xac");
  EXPECT_EQ(parseOk(R"("\ud83d\ude00")").string, "\xf0\x9f\x98\x80");
  EXPECT_EQ(parseOk("\"caf\xc3\xa9\"").string, "caf\xc3\xa9");
}

TEST(Json, ContainersKeepOrderAndOffsets) {
  std::string text = R"({"b": [1, {"c": null}], "a": "x"})";
  Value v = parseOk(text);
  ASSERT_EQ(v.kind, Kind::Object);
  ASSERT_EQ(v.members.size(), 2u);
  EXPECT_EQ(v.members[0].key, "b");
  EXPECT_EQ(v.members[1].key, "a");
  EXPECT_EQ(v.members[0].keyOffset, 1u);
  const Value *b = v.find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->begin, text.find('['));
  EXPECT_EQ(b->end, text.find(']') + 1);
  EXPECT_EQ(b->items[1].find("c")->begin, text.find("null"));
  EXPECT_EQ(v.find("zzz"), nullptr);
  EXPECT_EQ(parseOk("[]").items.size(), 0u);
  EXPECT_EQ(parseOk("{ }").members.size(), 0u);
  EXPECT_EQ(v.begin, 0u);
  EXPECT_EQ(v.end, text.size());
}

TEST(Json, SyntaxErrorsCarryByteOffsets) {
  expectError("{\"a\": 1,}", 8,
              "expected '\"' to start an object key, got "
              "character '}'");
  expectError("{\"a\" 1}", 5,
              "expected ':' after object key, got character "
              "'1'");
  expectError("{\"a\": 1 \"b\": 2}", 8, "expected ',' or '}' in object");
  expectError("[1 2]", 3, "expected ',' or ']' in array, got character '2'");
  expectError("[1,]", 3, "expected a value, got character ']'");
  expectError("tru", 3,
              "unexpected end of input (truncated?), expected "
              "true");
  expectError("trux", 0, "invalid literal, expected 'true'");
  expectError("nul", 3, "truncated");
  expectError("01", 0, "leading zeros are not allowed");
  expectError("-", 1, "truncated");
  expectError("1.", 2, "truncated");
  expectError("1.x", 2, "expected a digit in number, got character 'x'");
  expectError("1e+", 3, "truncated");
  expectError("\"a\nb\"", 2, "unescaped control character 0x0a in string");
  expectError(R"("\x")", 1, "invalid escape sequence '\\x'");
  expectError(R"("\u12G4")", 5, "invalid hex digit in \\u escape");
  expectError(R"("\udc00")", 1, "unpaired UTF-16 low surrogate");
  expectError(R"("\ud800x")", 1, "unpaired UTF-16 high surrogate");
  expectError(R"("\ud800\u0041")", 1, "invalid UTF-16 surrogate pair");
  expectError("{\"a\": 1, \"a\": 2}", 9, "duplicate object key 'a'");
  expectError("{} x", 3, "unexpected character 'x' after the JSON value");
  expectError("{}\x01", 2, "unexpected byte 0x01 after the JSON value");
  expectError("@", 0, "expected a value, got character '@'");
}

TEST(Json, TruncationIsReportedAtTheEnd) {
  expectError("", 0, "unexpected end of input (truncated?), expected a value");
  expectError("   ", 3, "expected a value");
  expectError("{", 1, "truncated?), expected an object key");
  expectError("{\"a\"", 4, "truncated?), expected ':'");
  expectError("{\"a\":", 5, "truncated?), expected a value");
  expectError("{\"a\": 1", 7, "truncated?), expected ',' or '}'");
  expectError("[1,", 3, "truncated?), expected a value");
  expectError("[1", 2, "truncated?), expected ',' or ']'");
  expectError("{\"abc", 5,
              "unexpected end of input (truncated?) in the string starting "
              "at byte 1");
  expectError(R"("\u12)", 5, "truncated");
  expectError("\"\\", 2, "truncated");
}

TEST(Json, DeepNestingIsRejectedNotFatal) {
  std::string deep(100000, '[');
  expectError(deep, kMaxDepth, "nesting deeper than 128 levels");
  std::string ok(kMaxDepth, '[');
  ok += std::string(kMaxDepth, ']');
  parseOk(ok);
}

TEST(Json, EmbeddedNulIsAnError) {
  expectError(std::string("{}\0{}", 5), 2, "byte 0x00");
}

} // namespace
