// JsonValue: a strict JSON reader producing a small DOM, for the measurement files that
// `kvsim fit` reads and the JSON traces of the workload layer. Beyond RFC 8259 it accepts only the
// number tokens `Infinity`,
// `-Infinity` and `NaN` that Python's json.dumps writes for non-finite floats. Every value
// remembers the file (origin) and 1-based line where it starts and the key path that leads
// to it, so the typed accessors throw InputError "origin:line: 'key': what" on a type
// mismatch.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kvsim {

class JsonValue {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  struct Member;  // one key and its value of an object

  JsonValue() = default;

  Type type() const { return type_; }
  // 1-based line of the value's first character in its origin.
  int line() const { return line_; }
  // The file (or other source) the text came from, as given to ParseJson.
  const std::string& origin() const;
  // The key path from the root: "" for the root, "ttfts", "itls[3][0]", "a.b".
  const std::string& where() const { return where_; }

  bool IsNull() const { return type_ == Type::kNull; }
  bool IsBool() const { return type_ == Type::kBool; }
  bool IsNumber() const { return type_ == Type::kNumber; }
  bool IsString() const { return type_ == Type::kString; }
  bool IsArray() const { return type_ == Type::kArray; }
  bool IsObject() const { return type_ == Type::kObject; }
  // True for a number written as an integer literal (no fraction, no exponent).
  bool IsIntegral() const { return type_ == Type::kNumber && integral_; }

  // Each throws InputError naming origin:line and the key path when the value has
  // another type.
  bool AsBool() const;
  // Any number, including the non-finite Infinity, -Infinity and NaN.
  double AsNumber() const;
  // An integer literal in the int64 range; "3.0" and "3e0" are rejected.
  int64_t AsInt() const;
  const std::string& AsString() const;
  const std::vector<JsonValue>& AsArray() const;
  // An object's members in the order of the text (keys are unique).
  const std::vector<Member>& AsObject() const;

  // Number of elements of an array or members of an object (throws otherwise).
  size_t size() const;
  // Element `index` of an array; throws InputError when out of range.
  const JsonValue& Element(size_t index) const;
  // The value of `key` in an object, or nullptr when absent.
  const JsonValue* Find(std::string_view key) const;
  // The value of `key` in an object; throws InputError "origin:line: missing key 'key'".
  const JsonValue& At(std::string_view key) const;

  // "null", "a boolean", "a number", "a string", "an array" or "an object".
  static const char* TypeName(Type type);

  // Throws InputError "origin:line: 'where': what" ("origin:line: what" for the root), for
  // callers that find a well-typed value out of range.
  [[noreturn]] void Fail(std::string_view what) const;

 private:
  friend class JsonParser;

  [[noreturn]] void FailType(const char* expected) const;

  Type type_ = Type::kNull;
  bool bool_ = false;
  bool integral_ = false;     // number written as an integer literal
  bool int64_exact_ = false;  // integral_ and integer_ holds its exact value
  int line_ = 0;
  double number_ = 0;
  int64_t integer_ = 0;
  std::string string_;
  std::vector<JsonValue> elements_;
  std::vector<Member> members_;
  std::shared_ptr<const std::string> origin_;  // shared by all values of one parse
  std::string where_;
};

struct JsonValue::Member {
  std::string key;
  JsonValue value;
};

// Parses `text` as one JSON value (surrounding whitespace allowed; a leading UTF-8 byte
// order mark is skipped). `origin` names the source in messages and `first_line` is the
// line number of the text's first line (for one line of a JSON-lines file). Throws
// InputError "origin:line: what" on any syntax error, including duplicate keys in an
// object, trailing commas, comments and anything after the value.
JsonValue ParseJson(std::string_view text, const std::string& origin, int first_line = 1);

// ParseJson for a document of which only some top-level keys are wanted: when the root is
// an object, its members whose key `keep` refuses are checked as ParseJson checks them
// (syntax, duplicate keys, nesting depth) but not stored, so that they take no memory.
// What is kept, and every error, is as ParseJson gives it.
JsonValue ParseJsonKeeping(std::string_view text, const std::string& origin, int first_line,
                           const std::function<bool(std::string_view key)>& keep);

}  // namespace kvsim
