// vLLM benchmark_serving result JSON as a trace: the whole document is parsed with the
// JSON reader of sim/core (keeping only the keys a trace needs), its per-request token
// counts are copied out and returned one record at a time.
#include "sim/workload/benchmark_serving_trace.h"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sim/core/check.h"
#include "sim/workload/trace_reader.h"

namespace kvsim {
namespace {

bool IsKeyOf(std::string_view key, std::initializer_list<std::string_view> keys) {
  for (std::string_view k : keys) {
    if (key == k) return true;
  }
  return false;
}

// A token count of input_lens or output_lens: an integer >= 1 (>= 0 with `allow_zero`).
int64_t TokenCount(const JsonValue& v, bool allow_zero) {
  const int64_t n = v.AsInt();
  if (n < 0) v.Fail(fmt::format("negative token count {}", n));
  if (n == 0 && !allow_zero) v.Fail("token count must be >= 1, got 0");
  return n;
}

// The array under `key`, which a result must have.
const std::vector<JsonValue>& LengthArray(const JsonValue& root, const char* key) {
  const JsonValue* v = root.Find(key);
  if (v == nullptr) {
    throw InputError(
        fmt::format("{}:{}: missing key '{}': not a vLLM benchmark_serving result (input_lens and "
                    "output_lens are saved by `vllm bench serve --save-result --save-detailed`)",
                    root.origin(), root.line(), key));
  }
  return v->AsArray();
}

class BenchmarkServingTraceReader final : public TraceReader {
 public:
  explicit BenchmarkServingTraceReader(const std::string& path) : path_(path) {
    const std::string text = ReadJsonTraceFile(path);
    const JsonValue root = ParseJsonKeeping(text, path, 1, [](std::string_view key) {
      return IsKeyOf(key, {"input_lens", "output_lens", "errors", "request_rate"});
    });
    root.AsObject();  // the type check
    const std::vector<JsonValue>& inputs = LengthArray(root, "input_lens");
    input_lens_line_ = root.At("input_lens").line();
    const std::vector<JsonValue>& outputs = LengthArray(root, "output_lens");
    const JsonValue* errors = root.Find("errors");
    for (const JsonValue* v : {root.Find("output_lens"), errors}) {
      if (v != nullptr && v->AsArray().size() != inputs.size()) {
        v->Fail(fmt::format("has {} entries but 'input_lens' has {}", v->size(), inputs.size()));
      }
    }
    // Only an infinite rate gives arrival times (all 0 s); a finite one is an arrival
    // process, which the workload draws.
    if (const JsonValue* rate = root.Find("request_rate")) {
      at_once_ = std::isinf(BenchmarkServingRequestRate(*rate));
    }
    rows_.reserve(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      const bool error = errors != nullptr && !errors->Element(i).IsNull() &&
                         !errors->Element(i).AsString().empty();
      const int64_t output_tokens = TokenCount(outputs[i], /*allow_zero=*/true);
      if (error || output_tokens == 0) {
        ++skipped_rows_;
        continue;
      }
      rows_.push_back({TokenCount(inputs[i], /*allow_zero=*/false), output_tokens,
                       static_cast<int64_t>(inputs[i].line())});
    }
  }

  std::optional<TraceRecord> Next() override {
    if (next_ >= rows_.size()) return std::nullopt;
    const Row& row = rows_[next_++];
    TraceRecord record;
    if (at_once_) record.arrival_s = 0.0;
    record.prompt_tokens = row.prompt_tokens;
    record.output_tokens = row.output_tokens;
    record.line = row.line;
    return record;
  }

  TraceFormat format() const override { return TraceFormat::kBenchmarkServing; }
  bool has_arrivals() const override { return at_once_; }
  int64_t skipped_rows() const override { return skipped_rows_; }
  const char* skipped_rows_reason() const override {
    return "failed requests (an error or 0 output tokens)";
  }

 protected:
  std::string NoRequestsWhat() const override {
    return fmt::format("{}:{}: 'input_lens': no requests{}", path_, input_lens_line_,
                       skipped_rows_ == 0 ? " (the array is empty)" : "");
  }

 private:
  struct Row {
    int64_t prompt_tokens;
    int64_t output_tokens;
    int64_t line;  // of the request's input_lens entry
  };
  std::string path_;
  int input_lens_line_ = 1;  // 1-based line where the input_lens list starts
  std::vector<Row> rows_;
  size_t next_ = 0;
  bool at_once_ = false;  // request_rate "inf": every request arrives at 0 s
  int64_t skipped_rows_ = 0;
};

}  // namespace

std::string ReadJsonTraceFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw InputError(fmt::format("{}: is a directory, not a trace file", path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw InputError(fmt::format("{}:1: cannot open trace file ({})", path, std::strerror(errno)));
  }
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxJsonTraceBytes) {
    throw InputError(
        fmt::format("{}:1: a JSON trace is read whole, and this one is larger than "
                    "{} MiB ({} bytes)",
                    path, kMaxJsonTraceBytes >> 20, size));
  }
  std::string text;
  if (!ec) text.reserve(static_cast<size_t>(size));
  char chunk[1 << 16];
  while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
    text.append(chunk, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxJsonTraceBytes) {
      throw InputError(
          fmt::format("{}:1: a JSON trace is read whole, and this one is larger "
                      "than {} MiB",
                      path, kMaxJsonTraceBytes >> 20));
    }
  }
  if (in.bad()) throw InputError(fmt::format("{}:1: read error", path));
  return text;
}

bool IsBenchmarkServingResult(std::string_view text, const std::string& path) {
  const JsonValue root = ParseJsonKeeping(text, path, 1, [](std::string_view key) {
    return IsKeyOf(key, {"input_lens", "output_lens"});
  });
  return root.IsObject() && root.Find("input_lens") != nullptr &&
         root.Find("output_lens") != nullptr;
}

double BenchmarkServingRequestRate(const JsonValue& request_rate) {
  // vLLM writes an infinite rate as the string "inf"; Python's json.dumps as Infinity.
  if (request_rate.IsString()) {
    const std::string& s = request_rate.AsString();
    if (s == "inf" || s == "Infinity") return std::numeric_limits<double>::infinity();
    request_rate.Fail(fmt::format("expected a number or \"inf\", got \"{}\"", Excerpt(s)));
  }
  const double rate = request_rate.AsNumber();
  if (!(rate > 0)) request_rate.Fail(fmt::format("expected a rate > 0 requests/s, got {}", rate));
  return rate;
}

double BenchmarkServingBurstiness(const JsonValue* burstiness) {
  if (burstiness == nullptr || burstiness->IsNull()) return 1;
  const double b = burstiness->AsNumber();
  if (!std::isfinite(b)) burstiness->Fail(fmt::format("expected a finite number, got {}", b));
  if (b <= 0) burstiness->Fail(fmt::format("expected > 0, got {}", b));
  return b;
}

void CheckBenchmarkServingOpenLoop(const JsonValue& root, std::string_view remedy) {
  if (const JsonValue* v = root.Find("max_concurrency"); v != nullptr && !v->IsNull()) {
    v->Fail(fmt::format(
        "the run was limited to {} concurrent requests, a closed loop in which a request is "
        "sent only when another completes, so its request_rate is not when requests arrived; "
        "{}",
        v->IsNumber() ? fmt::format("{}", v->AsNumber()) : "some", remedy));
  }
  if (const JsonValue* v = root.Find("ramp_up_strategy"); v != nullptr && !v->IsNull()) {
    v->Fail(
        fmt::format("the request rate was ramped during the run, so no one request_rate "
                    "describes it; {}",
                    remedy));
  }
}

BenchmarkServingArrivals ReadBenchmarkServingArrivals(const std::string& path) {
  const std::string text = ReadJsonTraceFile(path);
  const JsonValue root = ParseJsonKeeping(text, path, 1, [](std::string_view key) {
    return IsKeyOf(key, {"request_rate", "burstiness", "max_concurrency", "ramp_up_strategy"});
  });
  root.AsObject();  // the type check
  constexpr std::string_view kRemedy =
      "set workload.arrival.process (and rate_qps) to choose the arrivals, or rerun the "
      "benchmark open-loop";
  CheckBenchmarkServingOpenLoop(root, kRemedy);
  const JsonValue* rate = root.Find("request_rate");
  if (rate == nullptr) {
    throw InputError(
        fmt::format("{}:{}: missing key 'request_rate', the rate the benchmark sent "
                    "requests at; set workload.arrival.process (and rate_qps) to "
                    "choose the arrivals",
                    path, root.line()));
  }
  BenchmarkServingArrivals arrivals;
  arrivals.request_rate_qps = BenchmarkServingRequestRate(*rate);
  const JsonValue* burstiness = root.Find("burstiness");
  arrivals.burstiness = BenchmarkServingBurstiness(burstiness);
  arrivals.burstiness_line = burstiness != nullptr ? burstiness->line() : 0;
  return arrivals;
}

std::unique_ptr<TraceReader> NewBenchmarkServingTraceReader(const std::string& path) {
  return std::make_unique<BenchmarkServingTraceReader>(path);
}

}  // namespace kvsim
