// JsonWriter: writes indented JSON with deterministic number formatting
// (computed doubles as %.10g, values the user configured as the shortest text
// that reads back as the same double; non-finite numbers as null).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kvsim {

class JsonWriter {
 public:
  JsonWriter& BeginObject(std::string_view key = {});
  JsonWriter& EndObject();
  JsonWriter& BeginArray(std::string_view key = {});
  JsonWriter& EndArray();
  JsonWriter& Field(std::string_view key, double value);
  // A double that is an input of the run rather than a result (a configured rate, a
  // plan's target load): the shortest text that parses back to exactly `value`, so
  // an output echoes it in full.
  JsonWriter& FieldExact(std::string_view key, double value);
  JsonWriter& Field(std::string_view key, int64_t value);
  JsonWriter& Field(std::string_view key, bool value);
  JsonWriter& Field(std::string_view key, std::string_view value);
  JsonWriter& Field(std::string_view key, const char* value) {
    return Field(key, std::string_view(value));
  }
  // Splices `json` (a complete value) under `key`.
  JsonWriter& Raw(std::string_view key, std::string_view json);

  // The document. REQUIRES: every object and array closed.
  const std::string& str() const;

  static std::string Quote(std::string_view s);

 private:
  void Prefix(std::string_view key);
  std::string out_;
  std::vector<bool> first_;  // per open container: no element written yet
};

}  // namespace kvsim
