// CSV trace readers: Azure LLM inference (wall-clock TIMESTAMP), Splitwise/Vidur
// (arrived_at seconds), length-only traces, BurstGPT (Timestamp seconds, failed requests
// skipped) and generic CSV files whose columns a TraceColumns mapping names. Columns are
// found by name in the header; rows are streamed one at a time.
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "sim/core/check.h"
#include "sim/core/text.h"
#include "sim/workload/trace_reader.h"

namespace kvsim {
namespace {

bool IsBlank(std::string_view s) { return Trim(s).empty(); }

// Splits one CSV line (without its line terminator) into `fields`, views into `line`.
// Commas inside double quotes do not split; each field is trimmed of spaces and tabs and
// loses its surrounding quotes. Escaped quotes ("") are left as they are: no numeric
// field of a trace contains them. Returns false when a quote is left open (a quoted
// field cannot span lines).
bool SplitCsvLine(std::string_view line, std::vector<std::string_view>* fields) {
  fields->clear();
  bool in_quotes = false;
  size_t start = 0;
  for (size_t i = 0; i <= line.size(); ++i) {
    if (i < line.size()) {
      const char c = line[i];
      if (c == '"') in_quotes = !in_quotes;
      if (c != ',' || in_quotes) continue;
    }
    std::string_view field = Trim(line.substr(start, i - start));
    if (field.size() >= 2 && field.front() == '"' && field.back() == '"') {
      field = field.substr(1, field.size() - 2);
    }
    fields->push_back(field);
    start = i + 1;
  }
  return !in_quotes;
}

// A header cell as a column name: escaped quotes ("") become one quote.
std::string ColumnName(std::string_view cell) {
  std::string name;
  for (size_t i = 0; i < cell.size(); ++i) {
    name.push_back(cell[i]);
    if (cell[i] == '"' && i + 1 < cell.size() && cell[i + 1] == '"') ++i;
  }
  return name;
}

// "'a', 'b', 'c'" for messages: at most 20 names, each cut by Excerpt.
std::string ListColumns(const std::vector<std::string>& columns) {
  constexpr size_t kMaxListed = 20;
  std::string list;
  for (size_t i = 0; i < columns.size() && i < kMaxListed; ++i) {
    list += fmt::format("{}'{}'", i == 0 ? "" : ", ", Excerpt(columns[i]));
  }
  if (columns.size() > kMaxListed) {
    list += fmt::format(" and {} more", columns.size() - kMaxListed);
  }
  return list;
}

// Parses all of `s` as a decimal integer with std::from_chars.
bool ParseWholeInt(std::string_view s, int64_t* out) {
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// Parses all of `s` as a finite double.
bool ParseWholeDouble(std::string_view s, double* out) {
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size() && std::isfinite(*out);
}

// Reads exactly `n` decimal digits at s[*pos], advancing *pos.
bool ReadDigits(std::string_view s, size_t* pos, int n, int64_t* out) {
  if (*pos + n > s.size()) return false;
  int64_t v = 0;
  for (int i = 0; i < n; ++i) {
    const char c = s[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

bool IsLeapYear(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int64_t DaysInMonth(int64_t y, int64_t m) {
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeapYear(y) ? 29 : kDays[m - 1];
}

// Days from 1970-01-01 to the proleptic Gregorian date y-m-d (m in 1..12, d valid).
// Counts in 400-year eras of 146097 days, with years starting on March 1 so the leap
// day is the last day of the year.
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  if (m <= 2) --y;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t year_of_era = y - era * 400;                             // [0, 399]
  const int64_t month_from_march = m > 2 ? m - 3 : m + 9;                // [0, 11]
  const int64_t day_of_year = (153 * month_from_march + 2) / 5 + d - 1;  // [0, 365]
  const int64_t day_of_era =
      year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;  // [0, 146096]
  constexpr int64_t kDaysFrom0000To1970 = 719468;  // 0000-03-01 to 1970-01-01
  return era * 146097 + day_of_era - kDaysFrom0000To1970;
}

// A wall-clock instant as whole seconds since 1970-01-01 (UTC when an offset is given)
// plus nanoseconds in [0, 1e9).
struct WallTime {
  int64_t seconds = 0;
  int64_t nanos = 0;
  bool operator<(const WallTime& o) const {
    return seconds != o.seconds ? seconds < o.seconds : nanos < o.nanos;
  }
};

// Parses "YYYY-MM-DD HH:MM:SS[.f]" where the fraction has 1 to 9 digits, the separator
// may also be 'T', and an optional suffix "Z", "+HH:MM", "-HH:MM", "+HHMM" or "+HH" gives
// the offset from UTC. Returns nullptr on success, else what is wrong.
const char* ParseDateTime(std::string_view s, WallTime* out) {
  size_t pos = 0;
  int64_t year, month, day, hour, minute, second;
  auto expect = [&](char c) {
    if (pos < s.size() && s[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  };
  if (!ReadDigits(s, &pos, 4, &year) || !expect('-') || !ReadDigits(s, &pos, 2, &month) ||
      !expect('-') || !ReadDigits(s, &pos, 2, &day)) {
    return "expected a date YYYY-MM-DD";
  }
  if (!expect(' ') && !expect('T')) return "expected ' ' or 'T' between date and time";
  if (!ReadDigits(s, &pos, 2, &hour) || !expect(':') || !ReadDigits(s, &pos, 2, &minute) ||
      !expect(':') || !ReadDigits(s, &pos, 2, &second)) {
    return "expected a time HH:MM:SS";
  }
  if (month < 1 || month > 12) return "month out of range";
  if (day < 1 || day > DaysInMonth(year, month)) return "day out of range for the month";
  if (hour > 23) return "hour out of range";
  if (minute > 59) return "minute out of range";
  if (second > 60) return "second out of range";  // 60: leap second
  int64_t nanos = 0;
  if (expect('.')) {
    int digits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (++digits > 9) return "more than 9 fractional second digits";
      nanos = nanos * 10 + (s[pos] - '0');
      ++pos;
    }
    if (digits == 0) return "expected digits after '.'";
    for (int i = digits; i < 9; ++i) nanos *= 10;
  }
  int64_t offset_s = 0;
  if (pos < s.size()) {
    if (s[pos] == 'Z') {
      ++pos;
    } else if (s[pos] == '+' || s[pos] == '-') {
      const int64_t sign = s[pos] == '+' ? 1 : -1;
      ++pos;
      int64_t oh = 0, om = 0;
      if (!ReadDigits(s, &pos, 2, &oh)) return "expected a UTC offset +HH:MM";
      if (pos < s.size()) {
        expect(':');
        if (!ReadDigits(s, &pos, 2, &om)) return "expected a UTC offset +HH:MM";
      }
      if (oh > 23 || om > 59) return "UTC offset out of range";
      offset_s = sign * (oh * 3600 + om * 60);
    }
  }
  if (pos != s.size()) return "unexpected characters after the time";
  out->seconds =
      DaysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset_s;
  out->nanos = nanos;
  return nullptr;
}

// What "seconds" means in messages about an arrival column of `unit`.
const char* UnitWords(ArrivalUnit unit) {
  switch (unit) {
    case ArrivalUnit::kSeconds:
      return "seconds";
    case ArrivalUnit::kMilliseconds:
      return "milliseconds";
    case ArrivalUnit::kMicroseconds:
      return "microseconds";
    case ArrivalUnit::kTimestamp:
      break;
  }
  return "date-time";
}

// Seconds per unit of a numeric arrival column, as a divisor (exact for s, ms and us).
double UnitsPerSecond(ArrivalUnit unit) {
  switch (unit) {
    case ArrivalUnit::kMilliseconds:
      return 1e3;
    case ArrivalUnit::kMicroseconds:
      return 1e6;
    default:
      return 1;
  }
}

// One arrival field as read: a wall-clock time (kTimestamp) or a number in the column's
// unit.
struct ArrivalValue {
  WallTime wall;
  double number = 0;
};

class CsvTraceReader final : public TraceReader {
 public:
  // Opens `path`, reads the header and locates the columns of `format`; `columns` names
  // them for kCsv.
  CsvTraceReader(const std::string& path, TraceFormat format, const TraceColumns& columns);

  std::optional<TraceRecord> Next() override;
  TraceFormat format() const override { return format_; }
  bool has_arrivals() const override { return time_col_ >= 0; }
  int64_t skipped_rows() const override { return skipped_rows_; }
  const char* skipped_rows_reason() const override {
    return format_ == TraceFormat::kBurstGpt ? "failed requests (0 Response tokens)" : "";
  }

 protected:
  // The header is line 1 (ReadHeader).
  std::string NoRequestsWhat() const override {
    return fmt::format("{}:1: no requests after the header", path_);
  }

 private:
  // A column kvsim reads: header name, config key naming it (mapped CSV), index member.
  struct WantedColumn {
    std::string name;
    const char* key = nullptr;
    int* col = nullptr;
  };

  // The columns format_ reads (for kCsv as `columns` names them); sets unit_.
  std::vector<WantedColumn> WantedColumns(const TraceColumns& columns);
  // Opens path_ for reading through buffer_; fails when it cannot.
  void Open();
  // Reads line 1 into columns_; returns it (a view into line_) without BOM and CR.
  std::string_view ReadHeader(const std::string& expected);
  // Sets *w.col to the index of w's column; fails when it is missing or appears twice.
  void LocateColumn(const WantedColumn& w, std::string_view header, const std::string& expected);
  [[noreturn]] void Fail(int64_t line, std::string_view what) const {
    throw InputError(fmt::format("{}:{}: {}", path_, line, what));
  }
  // Token count in column `col`: an integer >= 1 (an integral value written as a
  // decimal, e.g. "12.0", is accepted); 0 too when `allow_zero`.
  int64_t ParseTokenCount(size_t col, bool allow_zero = false) const;
  // The arrival field of the current row, checked but not yet compared with others.
  ArrivalValue ParseArrival() const;
  // Seconds since the first returned row for `value`; checks that it is not before the
  // previous returned row's.
  double RelativeArrival(const ArrivalValue& value);

  std::string path_;
  TraceFormat format_;
  ArrivalUnit unit_ = ArrivalUnit::kSeconds;
  std::vector<char> buffer_;  // stream buffer; declared before in_, which uses it
  std::ifstream in_;
  std::vector<std::string> columns_;  // header names, for messages
  int time_col_ = -1;                 // -1: no arrival column
  int prompt_col_ = -1;
  int output_col_ = -1;
  int64_t line_no_ = 0;
  std::string line_;                      // current row
  std::vector<std::string_view> fields_;  // views into line_
  int64_t skipped_rows_ = 0;              // BurstGPT failed requests
  // Arrival state: the first returned row's time and the previous one's (for
  // monotonicity).
  bool have_first_ = false;
  ArrivalValue first_, prev_;
  std::string prev_text_;  // the previous returned row's time field, for messages
};

CsvTraceReader::CsvTraceReader(const std::string& path, TraceFormat format,
                               const TraceColumns& columns)
    : path_(path), format_(format), buffer_(1 << 16) {
  const std::vector<WantedColumn> wanted = WantedColumns(columns);
  std::string expected;
  for (const WantedColumn& w : wanted) expected += (expected.empty() ? "" : ",") + w.name;
  Open();
  const std::string_view header = ReadHeader(expected);
  for (const WantedColumn& w : wanted) LocateColumn(w, header, expected);
}

std::vector<CsvTraceReader::WantedColumn> CsvTraceReader::WantedColumns(
    const TraceColumns& columns) {
  std::vector<WantedColumn> wanted;
  switch (format_) {
    case TraceFormat::kAzure:
      unit_ = ArrivalUnit::kTimestamp;
      wanted = {{"TIMESTAMP", nullptr, &time_col_},
                {"ContextTokens", nullptr, &prompt_col_},
                {"GeneratedTokens", nullptr, &output_col_}};
      break;
    case TraceFormat::kSplitwise:
      wanted = {{"arrived_at", nullptr, &time_col_}};
      [[fallthrough]];
    case TraceFormat::kLengths:
      wanted.push_back({"num_prefill_tokens", nullptr, &prompt_col_});
      wanted.push_back({"num_decode_tokens", nullptr, &output_col_});
      break;
    case TraceFormat::kBurstGpt:
      wanted = {{"Timestamp", nullptr, &time_col_},
                {"Request tokens", nullptr, &prompt_col_},
                {"Response tokens", nullptr, &output_col_}};
      break;
    case TraceFormat::kCsv:
      if (columns.prompt_tokens.empty() || columns.output_tokens.empty()) {
        throw InputError(fmt::format(
            "{}: workload.columns: format csv needs the prompt_tokens and output_tokens "
            "columns named",
            path_));
      }
      unit_ = columns.arrival_unit;
      if (!columns.arrival.empty()) {
        wanted.push_back({columns.arrival, "workload.columns.arrival", &time_col_});
      }
      wanted.push_back({columns.prompt_tokens, "workload.columns.prompt_tokens", &prompt_col_});
      wanted.push_back({columns.output_tokens, "workload.columns.output_tokens", &output_col_});
      break;
    default:
      KVSIM_CHECK(false, "not a CSV trace format");
  }
  return wanted;
}

void CsvTraceReader::Open() {
  in_.rdbuf()->pubsetbuf(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
  in_.open(path_, std::ios::binary);
  if (!in_) Fail(1, fmt::format("cannot open trace file ({})", std::strerror(errno)));
}

std::string_view CsvTraceReader::ReadHeader(const std::string& expected) {
  line_no_ = 1;
  if (!ReadTraceLine(in_, line_, path_, 1)) {
    Fail(1, fmt::format("empty file; expected a {} header with columns {}",
                        TraceFormatName(format_), expected));
  }
  std::string_view header = WithoutByteOrderMark(line_);
  if (!header.empty() && header.back() == '\r') header.remove_suffix(1);
  if (!SplitCsvLine(header, &fields_)) {
    Fail(1, "unterminated quoted field in the header (a quoted field cannot span lines)");
  }
  for (std::string_view f : fields_) columns_.push_back(ColumnName(f));
  return header;
}

void CsvTraceReader::LocateColumn(const WantedColumn& w, std::string_view header,
                                  const std::string& expected) {
  const auto found = std::find(columns_.begin(), columns_.end(), w.name);
  if (found == columns_.end()) {
    if (w.key != nullptr) {
      Fail(1, fmt::format("{}: no column '{}' in the header; its columns are {}", w.key,
                          Excerpt(w.name), ListColumns(columns_)));
    }
    Fail(1, fmt::format("header '{}' has no column '{}'; {} traces need columns {}",
                        Excerpt(header), w.name, TraceFormatName(format_), expected));
  }
  const auto again = std::find(found + 1, columns_.end(), w.name);
  if (again != columns_.end()) {
    Fail(1,
         fmt::format("column '{}' appears twice in the header (columns {} and {})", Excerpt(w.name),
                     found - columns_.begin() + 1, again - columns_.begin() + 1));
  }
  *w.col = static_cast<int>(found - columns_.begin());
}

std::optional<TraceRecord> CsvTraceReader::Next() {
  while (ReadTraceLine(in_, line_, path_, line_no_ + 1)) {
    ++line_no_;
    std::string_view row(line_);
    if (!row.empty() && row.back() == '\r') row.remove_suffix(1);
    if (IsBlank(row)) continue;
    if (!SplitCsvLine(row, &fields_)) {
      Fail(line_no_, "unterminated quoted field (a quoted field cannot span lines)");
    }
    if (fields_.size() != columns_.size()) {
      Fail(line_no_, fmt::format("expected {} columns as in the header, got {}", columns_.size(),
                                 fields_.size()));
    }
    TraceRecord record;
    record.line = line_no_;
    const std::optional<ArrivalValue> arrival =
        time_col_ >= 0 ? std::optional(ParseArrival()) : std::nullopt;
    record.prompt_tokens = ParseTokenCount(prompt_col_);
    record.output_tokens = ParseTokenCount(output_col_, format_ == TraceFormat::kBurstGpt);
    if (record.output_tokens == 0) {  // a failed BurstGPT request
      ++skipped_rows_;
      continue;
    }
    if (arrival) record.arrival_s = RelativeArrival(*arrival);
    return record;
  }
  if (in_.bad()) Fail(line_no_ + 1, "read error");
  return std::nullopt;
}

int64_t CsvTraceReader::ParseTokenCount(size_t col, bool allow_zero) const {
  const std::string_view field = fields_[col];
  int64_t value = 0;
  if (!ParseWholeInt(field, &value)) {
    double d = 0;
    if (field.empty()) {
      Fail(line_no_,
           fmt::format("column '{}' is empty; expected a token count", Excerpt(columns_[col])));
    }
    if (!ParseWholeDouble(field, &d)) {
      Fail(line_no_, fmt::format("column '{}': '{}' is not a number", Excerpt(columns_[col]),
                                 Excerpt(field)));
    }
    if (d != std::floor(d) || std::fabs(d) > 9.0e15) {
      Fail(line_no_, fmt::format("column '{}': token count '{}' is not an integer",
                                 Excerpt(columns_[col]), Excerpt(field)));
    }
    value = static_cast<int64_t>(d);
  }
  if (value < 0) {
    Fail(line_no_, fmt::format("column '{}': negative token count {}", Excerpt(columns_[col]),
                               Excerpt(field)));
  }
  if (value == 0 && !allow_zero) {
    Fail(line_no_, fmt::format("column '{}': token count must be >= 1, got {}",
                               Excerpt(columns_[col]), Excerpt(field)));
  }
  return value;
}

ArrivalValue CsvTraceReader::ParseArrival() const {
  const std::string_view field = fields_[time_col_];
  ArrivalValue value;
  if (unit_ == ArrivalUnit::kTimestamp) {
    if (const char* why = ParseDateTime(field, &value.wall)) {
      Fail(line_no_, fmt::format("column '{}': bad date-time '{}': {} (expected YYYY-MM-DD "
                                 "HH:MM:SS[.fffffffff], optionally with 'T' for the space and "
                                 "an offset Z or +HH:MM)",
                                 Excerpt(columns_[time_col_]), Excerpt(field), why));
    }
  } else if (!ParseWholeDouble(field, &value.number)) {
    Fail(line_no_, fmt::format("column '{}': '{}' is not a finite number of {}",
                               Excerpt(columns_[time_col_]), Excerpt(field), UnitWords(unit_)));
  }
  return value;
}

double CsvTraceReader::RelativeArrival(const ArrivalValue& value) {
  const std::string_view field = fields_[time_col_];
  const bool wall = unit_ == ArrivalUnit::kTimestamp;
  if (!have_first_) {
    have_first_ = true;
    first_ = value;
  } else if (wall ? value.wall < prev_.wall : value.number < prev_.number) {
    std::string hint;
    if (format_ == TraceFormat::kBurstGpt) {
      hint =
          "; BurstGPT files are not always sorted by Timestamp and kvsim replays rows in "
          "file order: sort the rows first, e.g. (head -n 1 F; tail -n +2 F | sort -t, -k1,1g) "
          "> sorted.csv";
    } else if (format_ == TraceFormat::kCsv) {
      hint = fmt::format("; kvsim replays rows in file order: sort the file by column '{}' first",
                         Excerpt(columns_[time_col_]));
    }
    Fail(line_no_, fmt::format("timestamp goes backwards: {}{}{} is before the previous row's "
                               "{}{}{}{}",
                               wall ? "'" : "", Excerpt(field), wall ? "'" : "", wall ? "'" : "",
                               Excerpt(prev_text_), wall ? "'" : "", hint));
  }
  prev_ = value;
  prev_text_.assign(field);
  if (!wall) return (value.number - first_.number) / UnitsPerSecond(unit_);
  // Differences are taken in integer seconds and nanoseconds; below 2^53 ns (104 days)
  // the one division rounds correctly, so "4.314579 s later" gives the double 4.314579.
  const int64_t delta_s = value.wall.seconds - first_.wall.seconds;
  const int64_t delta_ns = value.wall.nanos - first_.wall.nanos;
  constexpr int64_t kMaxExactSeconds = int64_t{1} << 33;  // 272 years
  if (delta_s < kMaxExactSeconds) {
    return static_cast<double>(delta_s * 1'000'000'000 + delta_ns) / 1e9;
  }
  return static_cast<double>(delta_s) + static_cast<double>(delta_ns) / 1e9;
}

}  // namespace

std::unique_ptr<TraceReader> NewAzureTraceReader(const std::string& path) {
  return std::make_unique<CsvTraceReader>(path, TraceFormat::kAzure, TraceColumns{});
}

std::unique_ptr<TraceReader> NewSplitwiseTraceReader(const std::string& path) {
  return std::make_unique<CsvTraceReader>(path, TraceFormat::kSplitwise, TraceColumns{});
}

std::unique_ptr<TraceReader> NewLengthsTraceReader(const std::string& path) {
  return std::make_unique<CsvTraceReader>(path, TraceFormat::kLengths, TraceColumns{});
}

std::unique_ptr<TraceReader> NewCsvTraceReader(const std::string& path,
                                               const TraceColumns& columns) {
  return std::make_unique<CsvTraceReader>(path, TraceFormat::kCsv, columns);
}

std::unique_ptr<TraceReader> NewBurstGptTraceReader(const std::string& path) {
  return std::make_unique<CsvTraceReader>(path, TraceFormat::kBurstGpt, TraceColumns{});
}

}  // namespace kvsim
