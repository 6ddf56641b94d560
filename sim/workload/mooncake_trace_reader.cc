// Mooncake JSONL trace reader: one flat JSON object per line with "timestamp" (ms),
// "input_length", "output_length" and optional "hash_ids" (prefix-block hashes). A small
// strict parser accepts only what such a line can hold.
#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <string_view>
#include <vector>

#include "sim/core/check.h"
#include "sim/workload/trace_reader.h"

namespace kvsim {
namespace {

// A JSON number as written: its text and whether it is an integer literal (no fraction
// and no exponent).
struct NumberToken {
  std::string_view text;
  bool integral = false;
};

// The fields of one trace line that the reader keeps.
struct MooncakeRow {
  bool has_timestamp = false, has_input = false, has_output = false, has_hash_ids = false;
  double timestamp_ms = 0;
  int64_t input_length = 0;
  int64_t output_length = 0;
  std::vector<uint64_t> hash_ids;
};

// Parses one line holding a flat JSON object. Values of known keys must have their
// expected types; unknown keys may hold numbers, strings, true/false/null or arrays of
// numbers and strings, and are skipped. Throws InputError "path:line: ..." on anything
// else.
class JsonLineParser {
 public:
  JsonLineParser(std::string_view text, const std::string& path, int64_t line)
      : s_(text), path_(path), line_(line) {}

  MooncakeRow Parse() {
    MooncakeRow row;
    SkipSpace();
    Expect('{', "expected '{' at the start of the line");
    SkipSpace();
    if (Peek() == '}') {
      ++pos_;
    } else {
      for (;;) {
        SkipSpace();
        if (Peek() != '"') FailAt("expected a key string");
        ParseString(&key_);
        SkipSpace();
        Expect(':', "expected ':' after a key");
        SkipSpace();
        ParseMember(&row);
        SkipSpace();
        if (Peek() == ',') {
          ++pos_;
          continue;
        }
        Expect('}', "expected ',' or '}' after a value");
        break;
      }
    }
    SkipSpace();
    if (pos_ != s_.size()) FailAt("unexpected characters after the object");
    return row;
  }

  [[noreturn]] void Fail(std::string_view what) const {
    throw InputError(fmt::format("{}:{}: {}", path_, line_, what));
  }

 private:
  [[noreturn]] void FailAt(std::string_view what) const {
    throw InputError(
        fmt::format("{}:{}: malformed JSON at column {}: {}", path_, line_, pos_ + 1, what));
  }

  char Peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }

  void SkipSpace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\r' || s_[pos_] == '\n')) {
      ++pos_;
    }
  }

  void Expect(char c, const char* what) {
    if (Peek() != c) FailAt(what);
    ++pos_;
  }

  void ParseMember(MooncakeRow* row) {
    auto mark = [&](bool* seen) {
      if (*seen) Fail(fmt::format("duplicate key '{}'", key_));
      *seen = true;
    };
    if (key_ == "timestamp") {
      mark(&row->has_timestamp);
      row->timestamp_ms = NumberValue(ExpectNumber());
    } else if (key_ == "input_length") {
      mark(&row->has_input);
      row->input_length = TokenCount(ExpectNumber());
    } else if (key_ == "output_length") {
      mark(&row->has_output);
      row->output_length = TokenCount(ExpectNumber());
    } else if (key_ == "hash_ids") {
      mark(&row->has_hash_ids);
      ParseHashIds(&row->hash_ids);
    } else {
      SkipUnknownValue();
    }
  }

  NumberToken ExpectNumber() {
    const char c = Peek();
    if (c != '-' && (c < '0' || c > '9')) {
      FailAt(fmt::format("expected a number for key '{}'", key_));
    }
    return ParseNumber();
  }

  // JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  NumberToken ParseNumber() {
    const size_t start = pos_;
    auto digits = [&] {
      const size_t from = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ - from;
    };
    NumberToken token;
    token.integral = true;
    if (Peek() == '-') ++pos_;
    if (Peek() == '0') {
      ++pos_;
      if (Peek() >= '0' && Peek() <= '9') FailAt("leading zeros are not allowed in a number");
    } else if (digits() == 0) {
      FailAt("expected digits in a number");
    }
    if (Peek() == '.') {
      ++pos_;
      token.integral = false;
      if (digits() == 0) FailAt("expected digits after '.'");
    }
    if (Peek() == 'e' || Peek() == 'E') {
      ++pos_;
      token.integral = false;
      if (Peek() == '+' || Peek() == '-') ++pos_;
      if (digits() == 0) FailAt("expected digits in an exponent");
    }
    token.text = s_.substr(start, pos_ - start);
    return token;
  }

  double NumberValue(const NumberToken& token) const {
    double value = 0;
    const auto [ptr, ec] =
        std::from_chars(token.text.data(), token.text.data() + token.text.size(), value);
    if (ec != std::errc() || !std::isfinite(value)) {
      Fail(fmt::format("key '{}': number {} is out of range", key_, Excerpt(token.text)));
    }
    return value;
  }

  // A token count: an integer >= 1 (an integral value written as a decimal is accepted).
  int64_t TokenCount(const NumberToken& token) const {
    int64_t value = 0;
    const auto [ptr, ec] =
        std::from_chars(token.text.data(), token.text.data() + token.text.size(), value);
    if (!token.integral || ec != std::errc()) {
      const double d = NumberValue(token);
      if (d != std::floor(d) || std::fabs(d) > 9.0e15) {
        Fail(fmt::format("key '{}': token count {} is not an integer", key_, Excerpt(token.text)));
      }
      value = static_cast<int64_t>(d);
    }
    if (value < 0)
      Fail(fmt::format("key '{}': negative token count {}", key_, Excerpt(token.text)));
    if (value == 0) Fail(fmt::format("key '{}': token count must be >= 1, got 0", key_));
    return value;
  }

  void ParseHashIds(std::vector<uint64_t>* ids) {
    Expect('[', "expected '[' for key 'hash_ids'");
    SkipSpace();
    if (Peek() == ']') {
      ++pos_;
      return;
    }
    for (;;) {
      SkipSpace();
      const NumberToken token = ExpectNumber();
      uint64_t id = 0;
      const auto [ptr, ec] =
          std::from_chars(token.text.data(), token.text.data() + token.text.size(), id);
      if (!token.integral || ec != std::errc() || ptr != token.text.data() + token.text.size()) {
        Fail(fmt::format("key 'hash_ids': element {} ({}) is not a non-negative 64-bit integer",
                         ids->size(), Excerpt(token.text)));
      }
      ids->push_back(id);
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      Expect(']', "expected ',' or ']' in the array of key 'hash_ids'");
      return;
    }
  }

  // Skips the value of a key the reader does not use.
  void SkipUnknownValue() {
    const char c = Peek();
    if (c == '"') {
      ParseString(&scratch_);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      ParseNumber();
    } else if (c == '[') {
      ++pos_;
      SkipSpace();
      if (Peek() == ']') {
        ++pos_;
        return;
      }
      for (;;) {
        SkipSpace();
        const char e = Peek();
        if (e == '"') {
          ParseString(&scratch_);
        } else if (e == '-' || (e >= '0' && e <= '9')) {
          ParseNumber();
        } else {
          FailAt(fmt::format("key '{}': arrays may hold only numbers and strings", key_));
        }
        SkipSpace();
        if (Peek() == ',') {
          ++pos_;
          continue;
        }
        Expect(']', "expected ',' or ']' in an array");
        return;
      }
    } else if (s_.substr(pos_, 4) == "true" || s_.substr(pos_, 4) == "null") {
      pos_ += 4;
    } else if (s_.substr(pos_, 5) == "false") {
      pos_ += 5;
    } else if (c == '{') {
      FailAt(fmt::format("key '{}': nested objects are not supported", key_));
    } else {
      FailAt(fmt::format("expected a value for key '{}'", key_));
    }
  }

  // Parses a JSON string at pos_ into *out (escapes decoded; \u escapes are kept as
  // their code unit's low byte, which is enough to compare ASCII key names).
  void ParseString(std::string* out) {
    out->clear();
    Expect('"', "expected '\"'");
    for (;;) {
      if (pos_ >= s_.size()) FailAt("unterminated string");
      const char c = s_[pos_++];
      if (c == '"') return;
      if (static_cast<unsigned char>(c) < 0x20) {
        --pos_;
        FailAt("control character in a string");
      }
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      const char e = Peek();
      ++pos_;
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out->push_back(e);
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          unsigned code = 0;
          for (int i = 0; i < 4; ++i) {
            const char h = Peek();
            unsigned v;
            if (h >= '0' && h <= '9') {
              v = h - '0';
            } else if (h >= 'a' && h <= 'f') {
              v = h - 'a' + 10;
            } else if (h >= 'A' && h <= 'F') {
              v = h - 'A' + 10;
            } else {
              FailAt("expected 4 hex digits after \\u");
            }
            code = code * 16 + v;
            ++pos_;
          }
          out->push_back(static_cast<char>(code & 0xff));
          break;
        }
        default:
          --pos_;
          FailAt("invalid escape in a string");
      }
    }
  }

  std::string_view s_;
  const std::string& path_;
  int64_t line_;
  size_t pos_ = 0;
  std::string key_;      // the current key, decoded
  std::string scratch_;  // decoded unknown string values
};

class MooncakeTraceReader final : public TraceReader {
 public:
  explicit MooncakeTraceReader(const std::string& path) : path_(path), buffer_(1 << 16) {
    in_.rdbuf()->pubsetbuf(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
    in_.open(path, std::ios::binary);
    if (!in_) {
      throw InputError(
          fmt::format("{}:1: cannot open trace file ({})", path_, std::strerror(errno)));
    }
  }

  std::optional<TraceRecord> Next() override {
    while (ReadTraceLine(in_, line_, path_, line_no_ + 1)) {
      ++line_no_;
      std::string_view text(line_);
      if (line_no_ == 1 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
      if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
      if (text.find_first_not_of(" \t") == std::string_view::npos) continue;  // blank line

      JsonLineParser parser(text, path_, line_no_);
      MooncakeRow row = parser.Parse();
      if (!row.has_timestamp) parser.Fail("missing key 'timestamp'");
      if (!row.has_input) parser.Fail("missing key 'input_length'");
      if (!row.has_output) parser.Fail("missing key 'output_length'");
      if (!have_first_) {
        have_first_ = true;
        first_ms_ = row.timestamp_ms;
      } else if (row.timestamp_ms < prev_ms_) {
        parser.Fail(
            fmt::format("timestamp goes backwards: {} ms is before the previous row's {} ms",
                        row.timestamp_ms, prev_ms_));
      }
      prev_ms_ = row.timestamp_ms;

      TraceRecord record;
      record.arrival_s = (row.timestamp_ms - first_ms_) / 1000.0;
      record.prompt_tokens = row.input_length;
      record.output_tokens = row.output_length;
      record.hash_ids = std::move(row.hash_ids);
      record.line = line_no_;
      return record;
    }
    if (in_.bad()) {
      throw InputError(fmt::format("{}:{}: read error", path_, line_no_ + 1));
    }
    return std::nullopt;
  }

  TraceFormat format() const override { return TraceFormat::kMooncake; }

 private:
  std::string path_;
  std::vector<char> buffer_;  // stream buffer; declared before in_, which uses it
  std::ifstream in_;
  std::string line_;
  int64_t line_no_ = 0;
  bool have_first_ = false;
  double first_ms_ = 0;  // timestamp of the first row, ms
  double prev_ms_ = 0;   // timestamp of the previous row, ms
};

}  // namespace

std::unique_ptr<TraceReader> NewMooncakeTraceReader(const std::string& path) {
  return std::make_unique<MooncakeTraceReader>(path);
}

}  // namespace kvsim
