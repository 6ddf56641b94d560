// Loaders of measured runs: vLLM's engine request log (JSON lines), vLLM's benchmark_serving
// result JSON and a plain per-request CSV, all into MeasuredRequests.
#include "sim/fit/measurement.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "sim/core/check.h"
#include "sim/core/json_value.h"
#include "sim/core/text.h"
#include "sim/workload/benchmark_serving_trace.h"
#include "sim/workload/trace_reader.h"

namespace kvsim {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw InputError(
        fmt::format("{}: cannot open the measurement file ({})", path, std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw InputError(fmt::format("{}: read error", path));
  return std::move(text).str();
}

// Calls fn(line_text, line_number) for each line of `text` (1-based numbers), with a
// trailing '\r' and a leading UTF-8 byte order mark removed.
template <typename Fn>
void ForEachLine(std::string_view text, Fn&& fn) {
  text = WithoutByteOrderMark(text);
  int line_no = 0;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    fn(line, ++line_no);
  }
}

// Makes arrivals relative to the earliest and sorts by arrival, keeping file order for ties.
void MakeArrivalsRelative(std::vector<MeasuredRequest>* requests) {
  double first_s = std::numeric_limits<double>::infinity();
  for (const MeasuredRequest& r : *requests) first_s = std::min(first_s, r.arrival_s);
  for (MeasuredRequest& r : *requests) r.arrival_s -= first_s;
  std::stable_sort(
      requests->begin(), requests->end(),
      [](const MeasuredRequest& a, const MeasuredRequest& b) { return a.arrival_s < b.arrival_s; });
}

double FiniteNumber(const JsonValue& v) {
  const double x = v.AsNumber();
  if (!std::isfinite(x)) v.Fail(fmt::format("expected a finite number, got {}", x));
  return x;
}

double NonNegativeSeconds(const JsonValue& v) {
  const double x = FiniteNumber(v);
  if (x < 0) v.Fail(fmt::format("a time in seconds must be >= 0, got {}", x));
  return x;
}

// Why a measured token count above kMaxTraceTokens cannot be replayed.
std::string BeyondAnyContext(int64_t tokens) {
  return fmt::format("{} tokens: beyond any model's context (at most {} tokens per request)",
                     tokens, kMaxTraceTokens);
}

int64_t TokenCount(const JsonValue& v) {
  const int64_t n = v.AsInt();
  if (n <= 0) v.Fail(fmt::format("a token count must be > 0, got {}", n));
  if (n > kMaxTraceTokens) v.Fail(BeyondAnyContext(n));
  return n;
}

// The line each request id was first seen on. A repeated id means the file was concatenated
// with another run's or a line was duplicated: replaying it would send the request twice.
class RequestIds {
 public:
  explicit RequestIds(const std::string& path) : path_(path) {}

  // Records `id` of the request on `line_no`; throws InputError "path:line_no: ..." naming
  // the line of its first occurrence when `id` was seen before.
  void Add(std::string id, int line_no) {
    const auto [first, inserted] = first_line_.emplace(std::move(id), line_no);
    if (!inserted) {
      throw InputError(fmt::format(
          "{}:{}: request_id '{}' repeats the request of line {}: the log was concatenated or a "
          "line duplicated; keep one line per request",
          path_, line_no, first->first, first->second));
    }
  }

 private:
  const std::string& path_;
  std::unordered_map<std::string, int> first_line_;
};

// ---------------------------------------------------------------------------------------
// vLLM engine request log

void LoadVllmRequestsJsonl(const std::string& text, MeasuredRequests* run) {
  const std::string& path = run->path;
  RequestIds ids(path);
  ForEachLine(text, [&](std::string_view line, int line_no) {
    if (Trim(line).empty()) return;
    const JsonValue row = ParseJson(line, path, line_no);
    if (!row.IsObject()) {
      throw InputError(fmt::format("{}:{}: expected one JSON object per line, got {}", path,
                                   line_no, JsonValue::TypeName(row.type())));
    }
    if (const JsonValue* id = row.Find("request_id")) {
      if (id->AsString().empty()) id->Fail("an empty request id");
      ids.Add(id->AsString(), line_no);
    }
    MeasuredRequest r;
    r.prompt_tokens = TokenCount(row.At("input_toks"));
    r.output_tokens = TokenCount(row.At("output_toks"));
    const double queued_ts = FiniteNumber(row.At("queued_ts"));
    const double first_token_ts = FiniteNumber(row.At("first_token_ts"));
    const double last_token_ts = FiniteNumber(row.At("last_token_ts"));
    if (first_token_ts < queued_ts) {
      throw InputError(fmt::format("{}:{}: first_token_ts {} is before queued_ts {}", path, line_no,
                                   first_token_ts, queued_ts));
    }
    if (last_token_ts < first_token_ts) {
      throw InputError(fmt::format("{}:{}: last_token_ts {} is before first_token_ts {}", path,
                                   line_no, last_token_ts, first_token_ts));
    }
    r.arrival_s = queued_ts;
    r.ttft_s = first_token_ts - queued_ts;
    r.e2e_s = last_token_ts - queued_ts;
    run->requests.push_back(std::move(r));
  });
  if (run->requests.empty()) {
    throw InputError(fmt::format("{}:1: no requests (the file has no JSON lines)", path));
  }
  MakeArrivalsRelative(&run->requests);
}

// ---------------------------------------------------------------------------------------
// benchmark_serving result JSON

// One line of a (possibly multi-line) error text, shortened for a message.
std::string ShortError(const std::string& error) {
  std::string s = error.substr(0, error.find('\n'));
  if (s.size() > 160) s = s.substr(0, 157) + "...";
  return s;
}

[[noreturn]] void FailRequest(const JsonValue& where, size_t index, const std::string& why) {
  throw InputError(
      fmt::format("{}:{}: request {} failed ({}): kvsim cannot replay a failed request; rerun the "
                  "benchmark or drop it",
                  where.origin(), where.line(), index, why));
}

const std::vector<JsonValue>& DetailArray(const JsonValue& root, const char* key) {
  const JsonValue* v = root.Find(key);
  if (v == nullptr) {
    throw InputError(fmt::format(
        "{}:{}: missing key '{}': the per-request arrays are saved only with "
        "`vllm bench serve --save-result --save-detailed` (benchmark_serving.py: --save-result)",
        root.origin(), root.line(), key));
  }
  return v->AsArray();
}

void LoadBenchmarkServingJson(const std::string& text, MeasuredRequests* run) {
  const JsonValue root = ParseJson(text, run->path);
  root.AsObject();  // the type check
  run->arrivals_recorded = false;

  CheckBenchmarkServingOpenLoop(root,
                                "kvsim replays open-loop arrivals at one request_rate, so rerun "
                                "the benchmark without --max-concurrency and --ramp-up-strategy");
  run->request_rate_qps = BenchmarkServingRequestRate(root.At("request_rate"));
  run->burstiness = BenchmarkServingBurstiness(root.Find("burstiness"));

  const std::vector<JsonValue>& input_lens = DetailArray(root, "input_lens");
  const std::vector<JsonValue>& output_lens = DetailArray(root, "output_lens");
  const std::vector<JsonValue>& ttfts = DetailArray(root, "ttfts");
  const std::vector<JsonValue>& itls = DetailArray(root, "itls");
  const JsonValue* errors = root.Find("errors");
  const size_t n = input_lens.size();
  for (const char* key : {"output_lens", "ttfts", "itls", "errors"}) {
    const JsonValue* v = root.Find(key);
    if (v != nullptr && v->AsArray().size() != n) {
      v->Fail(fmt::format("has {} entries but 'input_lens' has {}", v->size(), n));
    }
  }
  if (n == 0) root.At("input_lens").Fail("no requests (the array is empty)");

  run->requests.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (errors != nullptr) {
      const JsonValue& error = errors->Element(i);
      if (!error.IsNull() && !error.AsString().empty()) {
        FailRequest(error, i, fmt::format("'{}'", ShortError(error.AsString())));
      }
    }
    if (output_lens[i].AsInt() == 0) FailRequest(output_lens[i], i, "no output tokens");
    MeasuredRequest r;
    r.prompt_tokens = TokenCount(input_lens[i]);
    r.output_tokens = TokenCount(output_lens[i]);
    r.ttft_s = NonNegativeSeconds(ttfts[i]);
    r.e2e_s = r.ttft_s;
    for (const JsonValue& itl : itls[i].AsArray()) {
      r.itls_s.push_back(NonNegativeSeconds(itl));
      r.e2e_s += r.itls_s.back();
    }
    run->requests.push_back(std::move(r));
  }
}

// ---------------------------------------------------------------------------------------
// Per-request CSV

constexpr const char* kCsvColumns[] = {"arrival_s", "prompt_tokens", "output_tokens", "ttft_s",
                                       "e2e_s"};

// Parses a CSV cell of `column` at `where` ("path:line").
class CsvCell {
 public:
  CsvCell(const std::string& where, const char* column, std::string_view text)
      : where_(where), column_(column), text_(text) {}

  [[noreturn]] void Fail(std::string_view what) const {
    throw InputError(fmt::format("{}: column '{}': {}", where_, column_, what));
  }

  // A finite number >= 0.
  double Seconds() const {
    double x = 0;
    const auto [ptr, ec] = std::from_chars(text_.data(), text_.data() + text_.size(), x);
    if (text_.empty() || ec != std::errc() || ptr != text_.data() + text_.size()) {
      Fail(fmt::format("'{}' is not a number", text_));
    }
    if (!std::isfinite(x)) Fail(fmt::format("'{}' is not a finite number", text_));
    if (x < 0) Fail(fmt::format("'{}' is negative", text_));
    return x;
  }

  // An integer > 0 (an integral value written as a decimal, "12.0", is accepted).
  int64_t Tokens() const {
    int64_t n = 0;
    const auto [ptr, ec] = std::from_chars(text_.data(), text_.data() + text_.size(), n);
    if (text_.empty() || ec != std::errc() || ptr != text_.data() + text_.size()) {
      double x = 0;
      const auto [dptr, dec] = std::from_chars(text_.data(), text_.data() + text_.size(), x);
      if (text_.empty() || dec != std::errc() || dptr != text_.data() + text_.size()) {
        Fail(fmt::format("'{}' is not a number", text_));
      }
      if (x != std::floor(x) || std::fabs(x) > 9.0e15) {
        Fail(fmt::format("'{}' is not an integer token count", text_));
      }
      n = static_cast<int64_t>(x);
    }
    if (n <= 0) Fail(fmt::format("a token count must be > 0, got '{}'", text_));
    if (n > kMaxTraceTokens) Fail(BeyondAnyContext(n));
    return n;
  }

 private:
  const std::string& where_;
  const char* column_;
  std::string_view text_;
};

// The field index of column `name` in the header `fields` at `where`, or nullopt when the
// header lacks it; a column named twice is an error.
std::optional<size_t> FindColumn(const std::vector<std::string_view>& fields, const char* name,
                                 const std::string& where) {
  const auto found = std::find(fields.begin(), fields.end(), name);
  if (found == fields.end()) return std::nullopt;
  if (std::find(found + 1, fields.end(), name) != fields.end()) {
    throw InputError(fmt::format("{}: column '{}' appears twice in the header", where, name));
  }
  return static_cast<size_t>(found - fields.begin());
}

// A per-request CSV's header row.
struct CsvHeader {
  int line = 0;  // 0 until the header is read
  size_t num_fields = 0;
  size_t index[std::size(kCsvColumns)] = {};  // field index of each of kCsvColumns
  std::optional<size_t> request_id;           // the optional request_id column's
};

CsvHeader ReadCsvHeader(const std::vector<std::string_view>& fields, std::string_view line,
                        int line_no, const std::string& where) {
  CsvHeader header;
  header.line = line_no;
  header.num_fields = fields.size();
  for (size_t c = 0; c < std::size(kCsvColumns); ++c) {
    const std::optional<size_t> index = FindColumn(fields, kCsvColumns[c], where);
    if (!index) {
      throw InputError(fmt::format("{}: missing column '{}' in the header '{}' (needs {})", where,
                                   kCsvColumns[c], line, fmt::join(kCsvColumns, ",")));
    }
    header.index[c] = *index;
  }
  header.request_id = FindColumn(fields, "request_id", where);
  return header;
}

void LoadRequestsCsv(const std::string& text, MeasuredRequests* run) {
  const std::string& path = run->path;
  CsvHeader header;
  RequestIds ids(path);
  ForEachLine(text, [&](std::string_view line, int line_no) {
    line = Trim(line);
    if (line.empty() || line.front() == '#') return;
    const std::vector<std::string_view> fields = SplitFields(line, " \t");
    const std::string where = fmt::format("{}:{}", path, line_no);
    if (header.line == 0) {
      header = ReadCsvHeader(fields, line, line_no, where);
      return;
    }
    if (fields.size() != header.num_fields) {
      throw InputError(fmt::format("{}: expected {} fields as in the header (line {}), got {}",
                                   where, header.num_fields, header.line, fields.size()));
    }
    auto cell = [&](size_t c) { return CsvCell(where, kCsvColumns[c], fields[header.index[c]]); };
    MeasuredRequest r;
    r.arrival_s = cell(0).Seconds();
    r.prompt_tokens = cell(1).Tokens();
    r.output_tokens = cell(2).Tokens();
    r.ttft_s = cell(3).Seconds();
    r.e2e_s = cell(4).Seconds();
    if (r.e2e_s < r.ttft_s) {
      throw InputError(
          fmt::format("{}: e2e_s {} is less than ttft_s {}", where, r.e2e_s, r.ttft_s));
    }
    if (header.request_id) {
      const std::string_view id = fields[*header.request_id];
      if (id.empty()) CsvCell(where, "request_id", id).Fail("an empty request id");
      ids.Add(std::string(id), line_no);
    }
    run->requests.push_back(std::move(r));
  });
  if (header.line == 0) {
    throw InputError(fmt::format("{}:1: no header row (expected the columns {})", path,
                                 fmt::join(kCsvColumns, ",")));
  }
  if (run->requests.empty()) {
    throw InputError(fmt::format("{}:{}: no requests after the header", path, header.line));
  }
  MakeArrivalsRelative(&run->requests);
}

}  // namespace

MeasurementFormat ParseMeasurementFormat(const std::string& name, const std::string& where) {
  if (const std::optional<MeasurementFormat> format = kMeasurementFormats.Parse(name)) {
    return *format;
  }
  throw InputError(fmt::format("{}: unknown measurement format '{}' (expected one of {})", where,
                               name, kMeasurementFormats.NameList()));
}

std::optional<MeasurementFormat> FormatFromExtension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".jsonl") return MeasurementFormat::kVllmRequestsJsonl;
  if (ext == ".json") return MeasurementFormat::kBenchmarkServingJson;
  if (ext == ".csv") return MeasurementFormat::kRequestsCsv;
  return std::nullopt;
}

MeasuredRequests LoadMeasuredRequests(const std::string& path, MeasurementFormat format) {
  MeasuredRequests run;
  run.path = path;
  run.format = format;
  const std::string text = ReadFile(path);
  switch (format) {
    case MeasurementFormat::kVllmRequestsJsonl:
      LoadVllmRequestsJsonl(text, &run);
      break;
    case MeasurementFormat::kBenchmarkServingJson:
      LoadBenchmarkServingJson(text, &run);
      break;
    case MeasurementFormat::kRequestsCsv:
      LoadRequestsCsv(text, &run);
      break;
  }
  return run;
}

}  // namespace kvsim
