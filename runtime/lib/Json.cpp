//===- Json.cpp - Minimal JSON parser with byte offsets -------------------===//

#include "Json.h"

#include "Error.h"

#include <charconv>
#include <clocale>
#include <cstdlib>
#include <locale.h>

namespace normc {
namespace json {

const char *kindName(Kind kind) {
  switch (kind) {
  case Kind::Null:
    return "null";
  case Kind::Bool:
    return "boolean";
  case Kind::Number:
    return "number";
  case Kind::String:
    return "string";
  case Kind::Array:
    return "array";
  case Kind::Object:
    return "object";
  }
  return "unknown";
}

const Value *Value::find(std::string_view key) const {
  for (const Member &member : members)
    if (member.key == key)
      return &member.value;
  return nullptr;
}

namespace {

// strtod honours LC_NUMERIC, which a host application may have changed
// (e.g. to a locale with a decimal comma); parse numbers in the C locale.
locale_t cLocale() {
  static locale_t locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
  return locale;
}

class Parser {
public:
  Parser(std::string_view text, ParseError &error) : text(text), error(error) {}

  bool parseDocument(Value &out) {
    skipWhitespace();
    if (!parseValue(out, 0))
      return false;
    skipWhitespace();
    if (pos != text.size())
      return fail(pos, format("unexpected %s after the JSON value",
                              describe(pos).c_str()));
    return true;
  }

private:
  std::string_view text;
  size_t pos = 0;
  ParseError &error;

  bool fail(size_t offset, std::string message) {
    error.offset = offset;
    error.message = std::move(message);
    return false;
  }

  bool atEnd() const { return pos >= text.size(); }

  // Reaching the end early is the typical symptom of a truncated manifest,
  // so say so explicitly.
  bool failEnd(const char *expected) {
    return fail(
        text.size(),
        format("unexpected end of input (truncated?), expected %s", expected));
  }

  // Human-readable description of the character at `offset`.
  std::string describe(size_t offset) const {
    if (offset >= text.size())
      return "end of input";
    unsigned char c = static_cast<unsigned char>(text[offset]);
    if (c >= 0x20 && c < 0x7f)
      return format("character '%c'", c);
    return format("byte 0x%02x", c);
  }

  void skipWhitespace() {
    while (!atEnd()) {
      char c = text[pos];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
        break;
      ++pos;
    }
  }

  bool expectLiteral(const char *literal, size_t length) {
    if (text.substr(pos, length) != std::string_view(literal, length)) {
      if (text.size() - pos < length &&
          std::string_view(literal, length).substr(0, text.size() - pos) ==
              text.substr(pos))
        return failEnd(literal);
      return fail(pos, format("invalid literal, expected '%s'", literal));
    }
    pos += length;
    return true;
  }

  bool parseValue(Value &out, unsigned depth) {
    if (atEnd())
      return failEnd("a value");
    out.begin = pos;
    bool ok;
    switch (text[pos]) {
    case '{':
      ok = parseObject(out, depth + 1);
      break;
    case '[':
      ok = parseArray(out, depth + 1);
      break;
    case '"':
      out.kind = Kind::String;
      ok = parseString(out.string);
      break;
    case 't':
      out.kind = Kind::Bool;
      out.boolean = true;
      ok = expectLiteral("true", 4);
      break;
    case 'f':
      out.kind = Kind::Bool;
      out.boolean = false;
      ok = expectLiteral("false", 5);
      break;
    case 'n':
      out.kind = Kind::Null;
      ok = expectLiteral("null", 4);
      break;
    default:
      if (text[pos] == '-' || (text[pos] >= '0' && text[pos] <= '9')) {
        ok = parseNumber(out);
        break;
      }
      return fail(pos,
                  format("expected a value, got %s", describe(pos).c_str()));
    }
    out.end = pos;
    return ok;
  }

  bool checkDepth(unsigned depth) {
    if (depth > kMaxDepth)
      return fail(pos, format("nesting deeper than %u levels", kMaxDepth));
    return true;
  }

  bool parseObject(Value &out, unsigned depth) {
    if (!checkDepth(depth))
      return false;
    out.kind = Kind::Object;
    ++pos; // '{'
    skipWhitespace();
    if (!atEnd() && text[pos] == '}') {
      ++pos;
      return true;
    }
    while (true) {
      skipWhitespace();
      if (atEnd())
        return failEnd("an object key");
      if (text[pos] != '"')
        return fail(pos, format("expected '\"' to start an object key, got %s",
                                describe(pos).c_str()));
      Member member;
      member.keyOffset = pos;
      if (!parseString(member.key))
        return false;
      // Duplicate keys are legal JSON but make a manifest ambiguous.
      if (out.find(member.key))
        return fail(member.keyOffset,
                    format("duplicate object key '%s'", member.key.c_str()));
      skipWhitespace();
      if (atEnd())
        return failEnd("':'");
      if (text[pos] != ':')
        return fail(pos, format("expected ':' after object key, got %s",
                                describe(pos).c_str()));
      ++pos;
      skipWhitespace();
      if (!parseValue(member.value, depth))
        return false;
      out.members.push_back(std::move(member));
      skipWhitespace();
      if (atEnd())
        return failEnd("',' or '}'");
      if (text[pos] == '}') {
        ++pos;
        return true;
      }
      if (text[pos] != ',')
        return fail(pos, format("expected ',' or '}' in object, got %s",
                                describe(pos).c_str()));
      ++pos;
    }
  }

  bool parseArray(Value &out, unsigned depth) {
    if (!checkDepth(depth))
      return false;
    out.kind = Kind::Array;
    ++pos; // '['
    skipWhitespace();
    if (!atEnd() && text[pos] == ']') {
      ++pos;
      return true;
    }
    while (true) {
      skipWhitespace();
      Value item;
      if (!parseValue(item, depth))
        return false;
      out.items.push_back(std::move(item));
      skipWhitespace();
      if (atEnd())
        return failEnd("',' or ']'");
      if (text[pos] == ']') {
        ++pos;
        return true;
      }
      if (text[pos] != ',')
        return fail(pos, format("expected ',' or ']' in array, got %s",
                                describe(pos).c_str()));
      ++pos;
    }
  }

  static int hexValue(char c) {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
      return c - 'A' + 10;
    return -1;
  }

  // Parses the 4 hex digits of a \u escape starting at pos.
  bool parseHex4(uint32_t &out) {
    out = 0;
    for (int i = 0; i < 4; ++i) {
      if (atEnd())
        return failEnd("4 hex digits after \\u");
      int digit = hexValue(text[pos]);
      if (digit < 0)
        return fail(pos, format("invalid hex digit in \\u escape: %s",
                                describe(pos).c_str()));
      out = out * 16 + static_cast<uint32_t>(digit);
      ++pos;
    }
    return true;
  }

  static void appendUtf8(std::string &out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  bool parseEscape(std::string &out) {
    size_t escapeOffset = pos - 1; // the backslash
    if (atEnd())
      return failEnd("an escape character");
    char c = text[pos++];
    switch (c) {
    case '"':
    case '\\':
    case '/':
      out += c;
      return true;
    case 'b':
      out += '\b';
      return true;
    case 'f':
      out += '\f';
      return true;
    case 'n':
      out += '\n';
      return true;
    case 'r':
      out += '\r';
      return true;
    case 't':
      out += '\t';
      return true;
    case 'u':
      break;
    default:
      return fail(escapeOffset, format("invalid escape sequence '\\%c'", c));
    }
    uint32_t cp;
    if (!parseHex4(cp))
      return false;
    if (cp >= 0xdc00 && cp <= 0xdfff)
      return fail(escapeOffset, "unpaired UTF-16 low surrogate in \\u escape");
    if (cp >= 0xd800 && cp <= 0xdbff) {
      if (text.substr(pos, 2) != "\\u")
        return fail(escapeOffset,
                    "unpaired UTF-16 high surrogate in \\u escape");
      pos += 2;
      uint32_t low;
      if (!parseHex4(low))
        return false;
      if (low < 0xdc00 || low > 0xdfff)
        return fail(escapeOffset, "invalid UTF-16 surrogate pair");
      cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
    }
    appendUtf8(out, cp);
    return true;
  }

  bool parseString(std::string &out) {
    size_t start = pos;
    ++pos; // opening quote
    while (true) {
      if (atEnd())
        return fail(text.size(),
                    format("unexpected end of input (truncated?) in the "
                           "string starting at byte %zu",
                           start));
      char c = text[pos];
      if (c == '"') {
        ++pos;
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20)
        return fail(pos, format("unescaped control character 0x%02x in string",
                                static_cast<unsigned char>(c)));
      ++pos;
      if (c == '\\') {
        if (!parseEscape(out))
          return false;
        continue;
      }
      out += c;
    }
  }

  bool parseDigits() {
    if (atEnd())
      return failEnd("a digit");
    if (text[pos] < '0' || text[pos] > '9')
      return fail(pos, format("expected a digit in number, got %s",
                              describe(pos).c_str()));
    while (!atEnd() && text[pos] >= '0' && text[pos] <= '9')
      ++pos;
    return true;
  }

  bool parseNumber(Value &out) {
    out.kind = Kind::Number;
    size_t start = pos;
    bool integral = true;
    if (text[pos] == '-')
      ++pos;
    if (!atEnd() && text[pos] == '0') {
      ++pos;
      if (!atEnd() && text[pos] >= '0' && text[pos] <= '9')
        return fail(start, "leading zeros are not allowed in numbers");
    } else if (!parseDigits()) {
      return false;
    }
    if (!atEnd() && text[pos] == '.') {
      integral = false;
      ++pos;
      if (!parseDigits())
        return false;
    }
    if (!atEnd() && (text[pos] == 'e' || text[pos] == 'E')) {
      integral = false;
      ++pos;
      if (!atEnd() && (text[pos] == '+' || text[pos] == '-'))
        ++pos;
      if (!parseDigits())
        return false;
    }
    std::string token(text.substr(start, pos - start));
    out.number = strtod_l(token.c_str(), nullptr, cLocale());
    if (integral) {
      int64_t value = 0;
      auto result =
          std::from_chars(token.data(), token.data() + token.size(), value);
      // Out-of-range integers stay usable as doubles but are not "integers".
      if (result.ec == std::errc() &&
          result.ptr == token.data() + token.size()) {
        out.isInteger = true;
        out.integer = value;
      }
    }
    return true;
  }
};

} // namespace

bool parse(std::string_view text, Value &out, ParseError &error) {
  out = Value();
  Parser parser(text, error);
  return parser.parseDocument(out);
}

} // namespace json
} // namespace normc
