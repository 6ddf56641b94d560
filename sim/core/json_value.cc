// A recursive-descent JSON parser into JsonValue, and JsonValue's typed accessors.
#include "sim/core/json_value.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "sim/core/check.h"

namespace kvsim {
namespace {

// Deepest nesting of arrays and objects accepted; bounds the parser's recursion.
constexpr int kMaxDepth = 256;

}  // namespace

class JsonParser {
 public:
  // `keep`, when not null, picks the root object's members to store (ParseJsonKeeping).
  JsonParser(std::string_view text, const std::string& origin, int first_line,
             const std::function<bool(std::string_view)>* keep = nullptr)
      : s_(text),
        origin_(std::make_shared<const std::string>(origin)),
        line_(first_line),
        keep_(keep) {}

  JsonValue ParseDocument() {
    if (s_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
    SkipSpace();
    JsonValue root = ParseValue("", 0);
    SkipSpace();
    if (pos_ != s_.size()) Fail("unexpected characters after the JSON value");
    return root;
  }

 private:
  [[noreturn]] void Fail(std::string_view what) const {
    throw InputError(fmt::format("{}:{}: malformed JSON at column {}: {}", *origin_, line_,
                                 pos_ - line_start_ + 1, what));
  }

  char Peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }

  bool Consume(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  void SkipSpace() {
    for (; pos_ < s_.size(); ++pos_) {
      const char c = s_[pos_];
      if (c == '\n') {
        ++line_;
        line_start_ = pos_ + 1;
      } else if (c != ' ' && c != '\t' && c != '\r') {
        return;
      }
    }
  }

  JsonValue ParseValue(std::string where, int depth) {
    JsonValue v;
    v.origin_ = origin_;
    v.line_ = line_;
    v.where_ = std::move(where);
    const char c = Peek();
    if (c == '{' || c == '[') {
      if (depth >= kMaxDepth) Fail(fmt::format("nesting deeper than {} levels", kMaxDepth));
      if (c == '{') {
        ParseObject(&v, depth + 1);
      } else {
        ParseArray(&v, depth + 1);
      }
    } else if (c == '"') {
      v.type_ = JsonValue::Type::kString;
      ParseString(&v.string_);
    } else if (Consume("true")) {
      v.type_ = JsonValue::Type::kBool;
      v.bool_ = true;
    } else if (Consume("false")) {
      v.type_ = JsonValue::Type::kBool;
    } else if (Consume("null")) {
      v.type_ = JsonValue::Type::kNull;
    } else if (c == '-' || (c >= '0' && c <= '9') || c == 'I' || c == 'N') {
      ParseNumber(&v);
    } else if (pos_ >= s_.size()) {
      Fail("unexpected end of input, expected a value");
    } else {
      Fail(fmt::format("unexpected character '{}', expected a value", c));
    }
    return v;
  }

  // Key path of element `index` of the array at `where`: "where[index]".
  static std::string ElementPath(const std::string& where, size_t index) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, index).ptr;
    std::string path;
    path.reserve(where.size() + static_cast<size_t>(end - digits) + 2);
    path.append(where).append(1, '[').append(digits, end).append(1, ']');
    return path;
  }

  // Key path of a member `key` of the value at `where`.
  static std::string MemberPath(const std::string& where, const std::string& key) {
    return where.empty() ? key : where + "." + key;
  }

  void ParseObject(JsonValue* v, int depth) {
    v->type_ = JsonValue::Type::kObject;
    ++pos_;  // '{'
    SkipSpace();
    if (Peek() == '}') {
      ++pos_;
      return;
    }
    // Keys of the root's members that `keep_` refused: not stored, still unique.
    std::vector<std::string> skipped;
    const bool filter = keep_ != nullptr && depth == 1;
    for (;;) {
      SkipSpace();
      if (Peek() != '"') Fail("expected a key string");
      std::string key;
      const int key_line = line_;
      ParseString(&key);
      const bool seen = std::any_of(v->members_.begin(), v->members_.end(),
                                    [&](const JsonValue::Member& m) { return m.key == key; }) ||
                        std::find(skipped.begin(), skipped.end(), key) != skipped.end();
      if (seen) {
        throw InputError(fmt::format("{}:{}: duplicate key '{}'", *origin_, key_line,
                                     MemberPath(v->where_, key)));
      }
      SkipSpace();
      if (Peek() != ':') Fail("expected ':' after a key");
      ++pos_;
      SkipSpace();
      if (filter && !(*keep_)(key)) {
        SkipValue(depth);
        skipped.push_back(std::move(key));
      } else {
        JsonValue value = ParseValue(MemberPath(v->where_, key), depth);
        v->members_.push_back({std::move(key), std::move(value)});
      }
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() != '}') Fail("expected ',' or '}' after a member of an object");
      ++pos_;
      return;
    }
  }

  void ParseArray(JsonValue* v, int depth) {
    v->type_ = JsonValue::Type::kArray;
    ++pos_;  // '['
    SkipSpace();
    if (Peek() == ']') {
      ++pos_;
      return;
    }
    for (;;) {
      SkipSpace();
      v->elements_.push_back(ParseValue(ElementPath(v->where_, v->elements_.size()), depth));
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() != ']') Fail("expected ',' or ']' after an element of an array");
      ++pos_;
      return;
    }
  }

  // Checks the value at pos_ as ParseValue(where, depth) would, storing nothing of it
  // (a scalar is parsed into a value that is dropped).
  void SkipValue(int depth) {
    const char open = Peek();
    if (open != '{' && open != '[') {
      ParseValue(std::string(), depth);
      return;
    }
    if (depth >= kMaxDepth) Fail(fmt::format("nesting deeper than {} levels", kMaxDepth));
    const bool object = open == '{';
    const char close = object ? '}' : ']';
    ++pos_;
    SkipSpace();
    if (Peek() == close) {
      ++pos_;
      return;
    }
    std::vector<std::string> keys;
    for (;;) {
      SkipSpace();
      if (object) {
        if (Peek() != '"') Fail("expected a key string");
        std::string key;
        const int key_line = line_;
        ParseString(&key);
        if (std::find(keys.begin(), keys.end(), key) != keys.end()) {
          throw InputError(fmt::format("{}:{}: duplicate key '{}'", *origin_, key_line, key));
        }
        keys.push_back(std::move(key));
        SkipSpace();
        if (Peek() != ':') Fail("expected ':' after a key");
        ++pos_;
        SkipSpace();
      }
      SkipValue(depth + 1);
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() != close) {
        Fail(object ? "expected ',' or '}' after a member of an object"
                    : "expected ',' or ']' after an element of an array");
      }
      ++pos_;
      return;
    }
  }

  // JSON number grammar -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, plus Python's
  // Infinity, -Infinity and NaN.
  void ParseNumber(JsonValue* v) {
    v->type_ = JsonValue::Type::kNumber;
    const size_t start = pos_;
    const bool negative = Consume("-");
    if (Consume("Infinity")) {
      v->number_ = negative ? -std::numeric_limits<double>::infinity()
                            : std::numeric_limits<double>::infinity();
      return;
    }
    if (!negative && Consume("NaN")) {
      v->number_ = std::numeric_limits<double>::quiet_NaN();
      return;
    }
    auto digits = [&] {
      const size_t from = pos_;
      while (Peek() >= '0' && Peek() <= '9') ++pos_;
      return pos_ - from;
    };
    v->integral_ = true;
    if (Peek() == '0') {
      ++pos_;
      if (Peek() >= '0' && Peek() <= '9') Fail("leading zeros are not allowed in a number");
    } else if (digits() == 0) {
      Fail("expected digits in a number");
    }
    if (Peek() == '.') {
      ++pos_;
      v->integral_ = false;
      if (digits() == 0) Fail("expected digits after '.'");
    }
    if (Peek() == 'e' || Peek() == 'E') {
      ++pos_;
      v->integral_ = false;
      if (Peek() == '+' || Peek() == '-') ++pos_;
      if (digits() == 0) Fail("expected digits in an exponent");
    }
    const char* first = s_.data() + start;
    const char* last = s_.data() + pos_;
    if (v->integral_) {
      const auto [iptr, iec] = std::from_chars(first, last, v->integer_);
      v->int64_exact_ = iec == std::errc() && iptr == last;
      // An int64 converts to the nearest double, as from_chars would round the text.
      if (v->int64_exact_) {
        v->number_ = v->integer_ == 0 && *first == '-' ? -0.0 : static_cast<double>(v->integer_);
        return;
      }
    }
    const auto [ptr, ec] = std::from_chars(first, last, v->number_);
    if (ec != std::errc() || ptr != last) {
      Fail(fmt::format("number {} is out of range", std::string_view(first, last - first)));
    }
  }

  int HexDigit() {
    const char h = Peek();
    int d = -1;
    if (h >= '0' && h <= '9') d = h - '0';
    if (h >= 'a' && h <= 'f') d = h - 'a' + 10;
    if (h >= 'A' && h <= 'F') d = h - 'A' + 10;
    if (d < 0) Fail("expected 4 hex digits after \\u");
    ++pos_;
    return d;
  }

  // The code unit of a \uXXXX escape, with pos_ after the 'u'.
  unsigned CodeUnit() {
    unsigned unit = 0;
    for (int i = 0; i < 4; ++i) unit = unit * 16 + static_cast<unsigned>(HexDigit());
    return unit;
  }

  static void AppendUtf8(unsigned cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  // Parses the string at pos_ into *out with escapes decoded (\u escapes to UTF-8,
  // surrogate pairs joined); raw bytes are copied as they are.
  void ParseString(std::string* out) {
    ++pos_;  // '"'
    for (;;) {
      if (pos_ >= s_.size()) Fail("unterminated string");
      const char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return;
      }
      if (static_cast<unsigned char>(c) < 0x20) {
        Fail(c == '\n' ? "unterminated string (end of line)" : "control character in a string");
      }
      ++pos_;
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      const char e = Peek();
      ++pos_;
      // Simple escapes: the character after '\\' and what it stands for.
      static constexpr std::string_view kEscaped = "\"\\/bfnrt";
      static constexpr std::string_view kDecoded = "\"\\/\b\f\n\r\t";
      if (const size_t k = kEscaped.find(e); e != '\0' && k != std::string_view::npos) {
        out->push_back(kDecoded[k]);
      } else if (e == 'u') {
        unsigned cp = CodeUnit();
        if (cp >= 0xDC00 && cp <= 0xDFFF) Fail("unpaired low surrogate in a \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (!Consume("\\u")) Fail("unpaired high surrogate in a \\u escape");
          const unsigned low = CodeUnit();
          if (low < 0xDC00 || low > 0xDFFF) Fail("unpaired high surrogate in a \\u escape");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        AppendUtf8(cp, out);
      } else {
        pos_ -= 2;  // at the backslash
        Fail("invalid escape in a string");
      }
    }
  }

  std::string_view s_;
  std::shared_ptr<const std::string> origin_;
  int line_;
  size_t pos_ = 0;
  size_t line_start_ = 0;  // offset of the current line's first character
  const std::function<bool(std::string_view)>* keep_;  // null: keep every member
};

JsonValue ParseJson(std::string_view text, const std::string& origin, int first_line) {
  return JsonParser(text, origin, first_line).ParseDocument();
}

JsonValue ParseJsonKeeping(std::string_view text, const std::string& origin, int first_line,
                           const std::function<bool(std::string_view key)>& keep) {
  return JsonParser(text, origin, first_line, &keep).ParseDocument();
}

const std::string& JsonValue::origin() const {
  static const std::string kNone;
  return origin_ ? *origin_ : kNone;
}

const char* JsonValue::TypeName(Type type) {
  static constexpr const char* kNames[] = {"null",     "a boolean", "a number",
                                           "a string", "an array",  "an object"};
  return kNames[static_cast<int>(type)];
}

void JsonValue::Fail(std::string_view what) const {
  if (where_.empty()) throw InputError(fmt::format("{}:{}: {}", origin(), line_, what));
  throw InputError(fmt::format("{}:{}: '{}': {}", origin(), line_, where_, what));
}

void JsonValue::FailType(const char* expected) const {
  Fail(fmt::format("expected {}, got {}", expected, TypeName(type_)));
}

bool JsonValue::AsBool() const {
  if (type_ != Type::kBool) FailType("a boolean");
  return bool_;
}

double JsonValue::AsNumber() const {
  if (type_ != Type::kNumber) FailType("a number");
  return number_;
}

int64_t JsonValue::AsInt() const {
  if (type_ != Type::kNumber) FailType("an integer");
  if (!integral_) {
    Fail(fmt::format("expected an integer literal (no fraction or exponent), got {}", number_));
  }
  if (!int64_exact_) Fail(fmt::format("integer {} is out of the 64-bit range", number_));
  return integer_;
}

const std::string& JsonValue::AsString() const {
  if (type_ != Type::kString) FailType("a string");
  return string_;
}

const std::vector<JsonValue>& JsonValue::AsArray() const {
  if (type_ != Type::kArray) FailType("an array");
  return elements_;
}

const std::vector<JsonValue::Member>& JsonValue::AsObject() const {
  if (type_ != Type::kObject) FailType("an object");
  return members_;
}

size_t JsonValue::size() const {
  if (type_ == Type::kObject) return members_.size();
  if (type_ != Type::kArray) FailType("an array or an object");
  return elements_.size();
}

const JsonValue& JsonValue::Element(size_t index) const {
  const std::vector<JsonValue>& elements = AsArray();
  if (index >= elements.size()) {
    Fail(fmt::format("index {} is out of range (the array has {} elements)", index,
                     elements.size()));
  }
  return elements[index];
}

const JsonValue* JsonValue::Find(std::string_view key) const {
  for (const Member& m : AsObject()) {
    if (m.key == key) return &m.value;
  }
  return nullptr;
}

const JsonValue& JsonValue::At(std::string_view key) const {
  if (const JsonValue* v = Find(key)) return *v;
  throw InputError(
      fmt::format("{}:{}: missing key '{}'", origin(), line_,
                  where_.empty() ? std::string(key) : where_ + "." + std::string(key)));
}

}  // namespace kvsim
