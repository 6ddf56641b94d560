// JsonWriter implementation.
#include "sim/metrics/json_writer.h"

#include <fmt/format.h>

#include <cmath>

#include "sim/core/check.h"

namespace kvsim {

std::string JsonWriter::Quote(std::string_view s) {
  std::string q = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        q += "\\\"";
        break;
      case '\\':
        q += "\\\\";
        break;
      case '\n':
        q += "\\n";
        break;
      case '\t':
        q += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          q += fmt::format("\\u{:04x}", static_cast<int>(c));
        } else {
          q += c;
        }
    }
  }
  q += '"';
  return q;
}

void JsonWriter::Prefix(std::string_view key) {
  if (!first_.empty()) {
    if (!first_.back()) out_ += ',';
    first_.back() = false;
    out_ += '\n';
    out_.append(2 * first_.size(), ' ');
  }
  if (!key.empty()) {
    out_ += Quote(key);
    out_ += ": ";
  }
}

JsonWriter& JsonWriter::BeginObject(std::string_view key) {
  Prefix(key);
  out_ += '{';
  first_.push_back(true);
  return *this;
}

JsonWriter& JsonWriter::EndObject() {
  KVSIM_CHECK(!first_.empty(), "unbalanced JSON object");
  const bool empty = first_.back();
  first_.pop_back();
  if (!empty) {
    out_ += '\n';
    out_.append(2 * first_.size(), ' ');
  }
  out_ += '}';
  if (first_.empty()) out_ += '\n';
  return *this;
}

JsonWriter& JsonWriter::BeginArray(std::string_view key) {
  Prefix(key);
  out_ += '[';
  first_.push_back(true);
  return *this;
}

JsonWriter& JsonWriter::EndArray() {
  KVSIM_CHECK(!first_.empty(), "unbalanced JSON array");
  const bool empty = first_.back();
  first_.pop_back();
  if (!empty) {
    out_ += '\n';
    out_.append(2 * first_.size(), ' ');
  }
  out_ += ']';
  if (first_.empty()) out_ += '\n';
  return *this;
}

JsonWriter& JsonWriter::Field(std::string_view key, double value) {
  Prefix(key);
  out_ += std::isfinite(value) ? fmt::format("{:.10g}", value) : "null";
  return *this;
}

JsonWriter& JsonWriter::FieldExact(std::string_view key, double value) {
  Prefix(key);
  out_ += std::isfinite(value) ? fmt::format("{}", value) : "null";
  return *this;
}

JsonWriter& JsonWriter::Field(std::string_view key, int64_t value) {
  Prefix(key);
  out_ += fmt::format("{}", value);
  return *this;
}

JsonWriter& JsonWriter::Field(std::string_view key, bool value) {
  Prefix(key);
  out_ += value ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::Field(std::string_view key, std::string_view value) {
  Prefix(key);
  out_ += Quote(value);
  return *this;
}

JsonWriter& JsonWriter::Raw(std::string_view key, std::string_view json) {
  Prefix(key);
  out_ += json;
  return *this;
}

const std::string& JsonWriter::str() const {
  KVSIM_CHECK(first_.empty(), "JSON document not closed");
  return out_;
}

}  // namespace kvsim
