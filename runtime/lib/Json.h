//===- Json.h - Minimal JSON parser with byte offsets -----------*- C++ -*-===//
//
// A small strict JSON (RFC 8259) parser for bundle manifests. The runtime must
// not depend on LLVM or third-party libraries, and manifest errors have to
// point at the offending byte, so every value remembers where it starts and
// ends in the source text.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_RUNTIME_JSON_H
#define NORMC_RUNTIME_JSON_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace normc {
namespace json {

enum class Kind { Null, Bool, Number, String, Array, Object };

/// Lower-case JSON type name ("object", "string", ...) for messages.
const char *kindName(Kind kind);

struct Member;

struct Value {
  Kind kind = Kind::Null;
  /// Byte range [begin, end) of the value in the parsed text.
  size_t begin = 0;
  size_t end = 0;

  bool boolean = false;
  double number = 0;
  /// True if the number literal has no fraction or exponent and fits int64.
  bool isInteger = false;
  int64_t integer = 0;
  std::string string;
  std::vector<Value> items;
  /// Object members in source order (keys are unique).
  std::vector<Member> members;

  /// The member named `key`, or null if absent or this is not an object.
  const Value *find(std::string_view key) const;
};

struct Member {
  std::string key;
  size_t keyOffset = 0;
  Value value;
};

struct ParseError {
  size_t offset = 0;
  std::string message;
};

/// Maximum nesting of arrays/objects; deeper input is rejected rather than
/// risking stack exhaustion on corrupt manifests.
constexpr unsigned kMaxDepth = 128;

/// Parses exactly one JSON value surrounded by optional whitespace. On
/// failure returns false and describes the first error in `error`.
bool parse(std::string_view text, Value &out, ParseError &error);

} // namespace json
} // namespace normc

#endif // NORMC_RUNTIME_JSON_H
