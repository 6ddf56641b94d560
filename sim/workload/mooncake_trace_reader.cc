// Mooncake JSONL trace reader: one JSON object per line with "timestamp" (ms),
// "input_length", "output_length" and optional "hash_ids" (prefix-block hashes, one per
// 512-token block of the prompt: ceil(input_length / 512) of them, or none); other
// keys may hold any JSON value and are skipped unstored. Each line is parsed by the JSON
// reader of sim/core (ParseJsonKeeping), so its errors name path:line.
#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "sim/core/check.h"
#include "sim/core/json_value.h"
#include "sim/core/text.h"
#include "sim/workload/trace_reader.h"

namespace kvsim {
namespace {

bool IsMooncakeKey(std::string_view key) {
  return key == "timestamp" || key == "input_length" || key == "output_length" || key == "hash_ids";
}

// A token count: an integer >= 1 (an integral value written as a decimal, "12.0", is
// accepted).
int64_t TokenCount(const JsonValue& v) {
  const double d = v.AsNumber();
  int64_t n = 0;
  if (v.IsIntegral()) {
    n = v.AsInt();
  } else {
    if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.0e15) {
      v.Fail(fmt::format("token count {} is not an integer", d));
    }
    n = static_cast<int64_t>(d);
  }
  if (n < 0) v.Fail(fmt::format("negative token count {}", n));
  if (n == 0) v.Fail("token count must be >= 1, got 0");
  return n;
}

// Tokens per hash id of a Mooncake row (RequestSpec::hash_block_tokens).
constexpr int64_t kHashBlockTokens = 512;

// A row's hash_ids name each 512-token block of its prompt, the last one partial:
// ceil(input_length / 512) of them. Throws InputError "path:line: 'hash_ids': ..." with
// both counts when the row has another number; an empty list (no prefix identity, as
// when the key is absent) passes.
void CheckHashIdCount(const JsonValue& ids, const TraceRecord& record) {
  const auto count = static_cast<int64_t>(record.hash_ids.size());
  const int64_t blocks = (record.prompt_tokens + kHashBlockTokens - 1) / kHashBlockTokens;
  if (count == 0 || count == blocks) return;
  ids.Fail(
      fmt::format("{} hash id{} for input_length {}, which needs {} (one per {}-token "
                  "block, the last one partial: ceil({} / {}))",
                  count, count == 1 ? "" : "s", record.prompt_tokens, blocks, kHashBlockTokens,
                  record.prompt_tokens, kHashBlockTokens));
}

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
      if (line_no_ == 1) text = WithoutByteOrderMark(text);
      if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
      if (text.find_first_not_of(" \t") == std::string_view::npos) continue;  // blank line

      const JsonValue row =
          ParseJsonKeeping(text, path_, static_cast<int>(line_no_), IsMooncakeKey);
      if (!row.IsObject()) {
        throw InputError(fmt::format("{}:{}: expected one JSON object per line, got {}", path_,
                                     line_no_, JsonValue::TypeName(row.type())));
      }
      const JsonValue& timestamp = row.At("timestamp");
      const double timestamp_ms = timestamp.AsNumber();
      if (!std::isfinite(timestamp_ms)) {
        timestamp.Fail(
            fmt::format("expected a finite number of milliseconds, got {}", timestamp_ms));
      }
      TraceRecord record;
      record.prompt_tokens = TokenCount(row.At("input_length"));
      record.output_tokens = TokenCount(row.At("output_length"));
      if (const JsonValue* ids = row.Find("hash_ids")) {
        record.hash_ids.reserve(ids->size());
        for (const JsonValue& id : ids->AsArray()) {
          const int64_t value = id.AsInt();
          if (value < 0) id.Fail(fmt::format("hash id {} is negative", value));
          record.hash_ids.push_back(static_cast<uint64_t>(value));
        }
        CheckHashIdCount(*ids, record);
      }
      if (!have_first_) {
        have_first_ = true;
        first_ms_ = timestamp_ms;
      } else if (timestamp_ms < prev_ms_) {
        throw InputError(
            fmt::format("{}:{}: timestamp goes backwards: {} ms is before the previous row's {} ms",
                        path_, line_no_, timestamp_ms, prev_ms_));
      }
      prev_ms_ = timestamp_ms;
      record.arrival_s = (timestamp_ms - first_ms_) / 1000.0;
      record.line = line_no_;
      return record;
    }
    if (in_.bad()) {
      throw InputError(fmt::format("{}:{}: read error", path_, line_no_ + 1));
    }
    return std::nullopt;
  }

  TraceFormat format() const override { return TraceFormat::kMooncake; }

 protected:
  // JSON lines have no header: an empty trace has only blank lines, if any.
  std::string NoRequestsWhat() const override {
    return fmt::format("{}:1: no requests (the file has no JSON lines)", path_);
  }

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
