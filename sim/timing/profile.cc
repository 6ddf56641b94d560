// Strict reader of kvprobe profiles (tools/kvprobe/PROFILE_FORMAT.md, version 1).
#include "sim/timing/profile.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include "sim/core/check.h"
#include "sim/core/text.h"
#include "sim/timing/profile_schema.h"

namespace kvsim {
namespace {

namespace schema = profile_schema;
namespace col = profile_schema::column;
constexpr std::string_view kMeta = profile_schema::section::kMeta;
constexpr std::string_view kVmm = profile_schema::section::kVmm;

constexpr double kMaxProfileTimeUs = 1e9;  // 1000 s

bool IsRequired(const schema::Field& f) { return f.presence == schema::Presence::kRequired; }

template <typename Range>
bool Contains(const Range& range, std::string_view value) {
  return std::find(std::begin(range), std::end(range), value) != std::end(range);
}

// Spaces, tabs and the carriage return of CRLF files around a field or line.
constexpr std::string_view kFieldBlanks = " \t\r\v";
std::string_view TrimField(std::string_view s) { return Trim(s, kFieldBlanks); }

// Comma-separated fields, each trimmed, as strings.
std::vector<std::string> FieldStrings(std::string_view line) {
  const std::vector<std::string_view> fields = SplitFields(line, kFieldBlanks);
  return {fields.begin(), fields.end()};
}

// A finite decimal number spanning all of `s`, or nothing.
std::optional<double> ParseNumber(std::string_view s) {
  double value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

// Section names are lower-case identifiers: [a-z][a-z0-9_]*.
bool IsSectionName(std::string_view name) {
  if (name.empty() || name.front() < 'a' || name.front() > 'z') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// The required columns of a table section, "a, b, c".
std::string RequiredColumns(const schema::Section& section) {
  std::string out;
  for (const schema::Field& f : section.fields) {
    if (!IsRequired(f)) continue;
    if (!out.empty()) out += ", ";
    out += f.name;
  }
  return out;
}

std::string KnownSections() {
  std::string out;
  for (const schema::Section& s : schema::kSections) {
    if (!out.empty()) out += ", ";
    out += s.name;
  }
  return out;
}

// A table section as read, before it becomes a ProfileTable (same fields, same meaning).
struct TableDraft {
  std::string name;
  int section_line = 0;
  int header_line = 0;
  std::vector<std::string> columns;
  std::vector<bool> numeric;
  std::vector<std::string> text;
  std::vector<double> numbers;
  std::vector<int> lines;
};

// A profile as read, before it becomes a Profile.
struct ProfileDraft {
  std::map<std::string, std::string> meta;
  std::map<std::string, int> meta_lines;
  std::map<std::string, double> meta_numbers;
  std::vector<TableDraft> tables;  // in file order
};

// The line-by-line reader's state.
struct ProfileReader {
  explicit ProfileReader(const std::string& file) : path(file) {}

  const std::string& path;  // for messages
  ProfileDraft draft;
  std::map<std::string, int, std::less<>> section_lines;  // section -> the line of "[section]"
  bool in_meta = false;
  TableDraft* table = nullptr;               // the table section being read
  const schema::Section* section = nullptr;  // its schema
  bool header_read = false;
  int meta_line = 0;
  int end_marker_line = 0;  // the first line that is kProfileEndMarker; 0: none
};

// Throws InputError "path:line: what".
[[noreturn]] void Fail(const ProfileReader& r, int line, const std::string& what) {
  throw InputError(fmt::format("{}:{}: {}", r.path, line, what));
}

// A table section ends: it must have had a header.
void EndTable(const ProfileReader& r) {
  if (r.table != nullptr && !r.header_read) {
    Fail(r, r.table->section_line, fmt::format("section [{}] has no header line", r.table->name));
  }
}

// Starts the section of the "[name]" line `line`; fails on a bad, unknown or repeated name.
void StartSection(ProfileReader& r, std::string_view line, int line_no) {
  if (line.back() != ']' || !IsSectionName(line.substr(1, line.size() - 2))) {
    Fail(r, line_no,
         fmt::format("malformed section header '{}' (expected [lower_case_name])", line));
  }
  const std::string name(line.substr(1, line.size() - 2));
  const schema::Section* next = schema::FindSection(name);
  if (next == nullptr) {
    Fail(r, line_no, fmt::format("unknown section [{}]; known: {}", name, KnownSections()));
  }
  if (const auto it = r.section_lines.find(name); it != r.section_lines.end()) {
    Fail(r, line_no, fmt::format("duplicate section [{}] (first at line {})", name, it->second));
  }
  r.section_lines.emplace(name, line_no);
  EndTable(r);
  r.in_meta = next->layout == schema::Layout::kKeyValue;
  r.section = next;
  r.header_read = false;
  r.table = nullptr;
  if (r.in_meta) {
    r.meta_line = line_no;
  } else {
    r.table = &r.draft.tables.emplace_back();
    r.table->name = name;
    r.table->section_line = line_no;
  }
}

// Records the "key: value" line `line` of [meta]; fails on another form or a repeated key.
void ReadMetaLine(ProfileReader& r, std::string_view line, int line_no) {
  const size_t colon = line.find(':');
  const std::string key(TrimField(line.substr(0, std::min(colon, line.size()))));
  if (colon == std::string_view::npos || key.empty()) {
    Fail(r, line_no, fmt::format("[{}] line '{}' is not 'key: value'", kMeta, line));
  }
  if (const auto it = r.draft.meta_lines.find(key); it != r.draft.meta_lines.end()) {
    Fail(r, line_no,
         fmt::format("duplicate [{}] key '{}' (first at line {})", kMeta, key, it->second));
  }
  r.draft.meta.emplace(key, std::string(TrimField(line.substr(colon + 1))));
  r.draft.meta_lines.emplace(key, line_no);
}

// Makes `fields` the current table's header; fails on an empty, repeated or missing column.
void ReadHeader(ProfileReader& r, std::vector<std::string> fields, int line_no) {
  TableDraft& table = *r.table;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].empty()) {
      Fail(r, line_no, fmt::format("[{}] header has an empty column name", table.name));
    }
    if (std::find(fields.begin(), fields.begin() + static_cast<std::ptrdiff_t>(i), fields[i]) !=
        fields.begin() + static_cast<std::ptrdiff_t>(i)) {
      Fail(r, line_no, fmt::format("[{}] header repeats column '{}'", table.name, fields[i]));
    }
  }
  for (const schema::Field& required : r.section->fields) {
    if (IsRequired(required) && !Contains(fields, required.name)) {
      Fail(r, line_no,
           fmt::format("[{}] header lacks required column '{}' (required: {})", table.name,
                       required.name, RequiredColumns(*r.section)));
    }
  }
  // Numbers are parsed in the schema's numeric columns (optional ones when present);
  // the others are kept as text.
  table.numeric.clear();
  for (const std::string& name : fields) {
    const schema::Field* f = schema::FindField(*r.section, name);
    table.numeric.push_back(f != nullptr && f->type == schema::Type::kNumber);
  }
  table.columns = std::move(fields);
  table.header_line = line_no;
  r.header_read = true;
}

// Appends row `fields` to the current table; fails on a wrong count, non-number or bad time.
void ReadRow(ProfileReader& r, std::vector<std::string> fields, int line_no) {
  TableDraft& table = *r.table;
  if (fields.size() != table.columns.size()) {
    Fail(r, line_no,
         fmt::format("[{}] row has {} fields, the header has {}", table.name, fields.size(),
                     table.columns.size()));
  }
  for (size_t c = 0; c < fields.size(); ++c) {
    double value = std::numeric_limits<double>::quiet_NaN();
    if (table.numeric[c]) {
      const std::optional<double> parsed = ParseNumber(fields[c]);
      if (!parsed) {
        Fail(r, line_no,
             fmt::format("[{}] column '{}': '{}' is not a number", table.name, table.columns[c],
                         fields[c]));
      }
      value = *parsed;
      // A time beyond 1000 s per measured call would outlast what kvsim simulates.
      if (table.columns[c].ends_with("_us") && !(value >= 0 && value <= kMaxProfileTimeUs)) {
        Fail(r, line_no,
             fmt::format("[{}] column '{}': {} is not a time in [0, {:g}] us", table.name,
                         table.columns[c], fields[c], kMaxProfileTimeUs));
      }
    }
    table.numbers.push_back(value);
    table.text.push_back(std::move(fields[c]));
  }
  table.lines.push_back(line_no);
}

// Reads the trimmed line `line` (number `line_no`), skipping blanks and comments.
void ReadLine(ProfileReader& r, std::string_view line, int line_no) {
  if (line.empty() || line.front() == '#') return;
  if (line.front() == '[') {
    StartSection(r, line, line_no);
  } else if (r.in_meta) {
    ReadMetaLine(r, line, line_no);
  } else if (r.table == nullptr) {
    Fail(r, line_no,
         fmt::format("'{}' is outside any section (expected a [section] line first)", line));
  } else if (!r.header_read) {
    ReadHeader(r, FieldStrings(line), line_no);
  } else {
    ReadRow(r, FieldStrings(line), line_no);
  }
}

// Fails (at `last_line`) when a required section is missing, or a required table has no rows.
void CheckSections(const ProfileReader& r, int last_line, RequiredSections required) {
  for (const schema::Section& s : schema::kSections) {
    if (s.presence != schema::Presence::kRequired) continue;
    if (required == RequiredSections::kMetaOnly && s.name != kMeta) continue;
    if (s.layout == schema::Layout::kKeyValue) {
      if (!r.section_lines.contains(s.name)) {
        Fail(r, last_line, fmt::format("required section [{}] is missing", s.name));
      }
      continue;
    }
    const auto t = std::find_if(r.draft.tables.begin(), r.draft.tables.end(),
                                [&s](const TableDraft& d) { return d.name == s.name; });
    if (t == r.draft.tables.end()) {
      Fail(r, last_line, fmt::format("required section [{}] is missing", s.name));
    } else if (t->lines.empty()) {
      Fail(r, t->section_line, fmt::format("required section [{}] has no rows", s.name));
    }
  }
}

// Fills draft.meta_numbers; fails on a missing key, a non-number or a format_version not 1.
void CheckMeta(ProfileReader& r) {
  ProfileDraft& d = r.draft;
  for (const schema::Field& f : schema::kMeta.fields) {
    if (IsRequired(f) && !d.meta.contains(std::string(f.name))) {
      Fail(r, r.meta_line, fmt::format("[{}] lacks required key '{}'", kMeta, f.name));
    }
  }
  for (const schema::Field& f : schema::kMeta.fields) {
    if (!IsRequired(f) || f.type != schema::Type::kNumber) continue;
    const std::string k(f.name);
    const std::optional<double> value = ParseNumber(d.meta.at(k));
    if (!value) {
      Fail(r, d.meta_lines.at(k),
           fmt::format("[{}] {}: '{}' is not a number", kMeta, k, d.meta.at(k)));
    }
    // Every numeric [meta] key is a version, a size, a count or a clock: positive.
    if (!(*value > 0)) {
      Fail(r, d.meta_lines.at(k),
           fmt::format("[{}] {}: '{}' must be positive", kMeta, k, d.meta.at(k)));
    }
    d.meta_numbers.emplace(k, *value);
  }
  const std::string version(schema::meta::kFormatVersion);
  if (d.meta_numbers.at(version) != 1) {
    Fail(r, d.meta_lines.at(version),
         fmt::format("[{}] {} {} is not supported (this reader reads version 1)", kMeta, version,
                     d.meta.at(version)));
  }
}

// The last line of `text` that is not blank, trimmed, and its 1-based number (0 for none).
std::pair<std::string_view, int> LastLine(std::string_view text) {
  std::pair<std::string_view, int> last{"", 0};
  int line_no = 1;
  for (size_t at = 0; at < text.size(); ++line_no) {
    const size_t end = std::min(text.find('\n', at), text.size());
    const std::string_view line = TrimField(text.substr(at, end - at));
    if (!line.empty()) last = {line, line_no};
    at = end + 1;
  }
  return last;
}

// Fails when the [meta] read so far names a kvprobe that ends its profiles with
// kProfileEndMarker and `last` (the file's last non-blank line, number `last_no`) is not it.
void CheckEndMarker(const ProfileReader& r, std::string_view last, int last_no) {
  const auto version = r.draft.meta.find(std::string(schema::meta::kKvprobeVersion));
  if (version == r.draft.meta.end() || !KvprobeWritesEndMarker(version->second) ||
      last == kProfileEndMarker) {
    return;
  }
  if (r.end_marker_line > 0) {
    throw InputError(fmt::format(
        "{}:{}: lines after the end marker of line {} ('{}'), which kvprobe writes last: "
        "another file appended, or rows merged in by a kvprobe before {}",
        r.path, last_no, r.end_marker_line, kProfileEndMarker, kFirstKvprobeWithEndMarker));
  }
  throw InputError(fmt::format(
      "{}: ends without the end marker kvprobe writes last: the file is cut short ({} {} ends "
      "every profile with the line '{}'; this file ends at line {})",
      r.path, schema::meta::kKvprobeVersion, version->second, kProfileEndMarker, last_no));
}

}  // namespace

bool KvprobeWritesEndMarker(std::string_view version) {
  // The leading dot-separated numbers of a version.
  const auto numbers = [](std::string_view v) {
    std::vector<uint64_t> out;
    for (uint64_t n = 0;; v.remove_prefix(1)) {
      const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc()) break;
      out.push_back(n);
      v.remove_prefix(static_cast<size_t>(end - v.data()));
      if (!v.starts_with('.')) break;
    }
    return out;
  };
  const std::vector<uint64_t> have = numbers(version);
  const std::vector<uint64_t> first = numbers(kFirstKvprobeWithEndMarker);
  return !have.empty() && !(have < first);
}

// ---- ProfileTable ---------------------------------------------------------

int ProfileTable::line(size_t row) const {
  KVSIM_CHECK(row < lines_.size(), "profile row out of range");
  return lines_[row];
}

bool ProfileTable::HasColumn(std::string_view column) const { return Contains(columns_, column); }

size_t ProfileTable::ColumnIndex(std::string_view column) const {
  const auto it = std::find(columns_.begin(), columns_.end(), column);
  KVSIM_CHECK(it != columns_.end(),
              fmt::format("[{}] has no column '{}' (a required column)", name_, column));
  return static_cast<size_t>(it - columns_.begin());
}

double ProfileTable::Number(size_t row, std::string_view column) const {
  KVSIM_CHECK(row < lines_.size(), "profile row out of range");
  const size_t c = ColumnIndex(column);
  KVSIM_CHECK(numeric_[c], fmt::format("[{}] column '{}' is not numeric", name_, column));
  return numbers_[row * columns_.size() + c];
}

const std::string& ProfileTable::Text(size_t row, std::string_view column) const {
  KVSIM_CHECK(row < lines_.size(), "profile row out of range");
  return text_[row * columns_.size() + ColumnIndex(column)];
}

// ---- Profile --------------------------------------------------------------

const std::string& Profile::MetaText(const std::string& key) const {
  const auto it = meta_.find(key);
  KVSIM_CHECK(it != meta_.end(), fmt::format("profile [{}] has no key '{}'", kMeta, key));
  return it->second;
}

double Profile::MetaNumber(const std::string& key) const {
  const auto it = meta_numbers_.find(key);
  KVSIM_CHECK(it != meta_numbers_.end(),
              fmt::format("profile [{}] '{}' is not a numeric key", kMeta, key));
  return it->second;
}

int Profile::MetaLine(const std::string& key) const {
  const auto it = meta_lines_.find(key);
  KVSIM_CHECK(it != meta_lines_.end(), fmt::format("profile [{}] has no key '{}'", kMeta, key));
  return it->second;
}

const ProfileTable* Profile::Find(std::string_view name) const {
  for (const ProfileTable& t : tables_) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

const ProfileTable& Profile::Table(std::string_view name) const {
  const ProfileTable* t = Find(name);
  KVSIM_CHECK(t != nullptr, fmt::format("profile has no section [{}]", name));
  return *t;
}

// ---- Parsing --------------------------------------------------------------

Profile ParseProfile(std::string_view text, const std::string& path, RequiredSections required) {
  ProfileReader reader(path);
  // A byte order mark (some editors save one) would hide the first line's "[meta]".
  text = WithoutByteOrderMark(text);
  const auto [last_line, last_line_no] = LastLine(text);
  int line_no = 0;
  try {
    while (!text.empty()) {
      const size_t newline = text.find('\n');
      const std::string_view raw = text.substr(0, newline);
      text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
      const std::string_view line = TrimField(raw);
      ++line_no;
      if (reader.end_marker_line == 0 && line == kProfileEndMarker) {
        reader.end_marker_line = line_no;
      }
      ReadLine(reader, line, line_no);
    }
    EndTable(reader);
    // Whole-file rules, reported at the last line (where the reader noticed).
    CheckSections(reader, std::max(line_no, 1), required);
  } catch (const InputError&) {
    // A file cut short is named as such, not by the short row or missing section it shows.
    CheckEndMarker(reader, last_line, last_line_no);
    throw;
  }
  CheckEndMarker(reader, last_line, last_line_no);
  CheckMeta(reader);
  ProfileDraft& d = reader.draft;

  Profile p;
  p.path_ = path;
  p.meta_ = std::move(d.meta);
  p.meta_lines_ = std::move(d.meta_lines);
  p.meta_numbers_ = std::move(d.meta_numbers);
  for (TableDraft& t : d.tables) {
    ProfileTable& table = p.tables_.emplace_back();
    table.name_ = std::move(t.name);
    table.section_line_ = t.section_line;
    table.header_line_ = t.header_line;
    table.columns_ = std::move(t.columns);
    table.numeric_ = std::move(t.numeric);
    table.text_ = std::move(t.text);
    table.numbers_ = std::move(t.numbers);
    table.lines_ = std::move(t.lines);
  }
  return p;
}

Profile LoadProfile(const std::string& path, RequiredSections required) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw InputError(fmt::format("{}: profile not found (or not a regular file)", path));
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) throw InputError(fmt::format("{}: cannot read the profile", path));
  return ParseProfile(text.str(), path, required);
}

// ---- VMM latencies --------------------------------------------------------

VmmLatencies VmmLatencyFromProfile(const Profile& profile) {
  const std::string key(schema::meta::kAllocationGranularityBytes);
  const double granularity = profile.MetaNumber(key);
  if (!(granularity > 0) || granularity != std::floor(granularity)) {
    throw InputError(fmt::format("{}:{}: [{}] {} must be a positive integer, got {}",
                                 profile.path(), profile.MetaLine(key), kMeta, key,
                                 profile.MetaText(key)));
  }
  const ProfileTable& vmm = profile.Table(kVmm);
  // The p50 of `call` at the granularity; nullopt when absent and `required` is false.
  const auto p50 = [&](std::string_view call, bool required) -> std::optional<Nanos> {
    std::optional<size_t> found;
    for (size_t r = 0; r < vmm.size(); ++r) {
      if (vmm.Text(r, col::kCall) != call || vmm.Number(r, col::kHandleBytes) != granularity) {
        continue;
      }
      if (found) {
        throw InputError(fmt::format("{}:{}: [{}] repeats {} at {} {} (first at line {})",
                                     profile.path(), vmm.line(r), kVmm, call, col::kHandleBytes,
                                     granularity, vmm.line(*found)));
      }
      found = r;
    }
    if (!found) {
      if (!required) return std::nullopt;
      throw InputError(fmt::format(
          "{}:{}: [{}] has no {} row with {} {} (the allocation granularity)", profile.path(),
          vmm.section_line(), kVmm, call, col::kHandleBytes, granularity));
    }
    const double us = vmm.Number(*found, col::kP50Us);
    // A VMM call of more than a second is no measurement (and its cost per page,
    // times pages and layers, must not overflow).
    if (!(us > 0 && us <= 1e6)) {
      throw InputError(fmt::format("{}:{}: [{}] {} {} must be in (0, 1e6], got {}", profile.path(),
                                   vmm.line(*found), kVmm, call, col::kP50Us, us));
    }
    return SecondsToNanos(us * 1e-6);
  };
  VmmLatencies v{.map = *p50("cuMemMap", true),
                 .set_access = *p50("cuMemSetAccess", true),
                 .unmap = *p50("cuMemUnmap", true)};
  // vAttention maps handles created once into a reserved range, interleaving maps and
  // unmaps; the pooled rows time exactly that pattern, which costs more than the calls
  // timed apart (on the H100s measured, 45 us against 1 + 27.5 us). Prefer them.
  const std::optional<Nanos> pooled = p50("map_set_access_pooled", false);
  if (pooled && *pooled > v.map) v.set_access = *pooled - v.map;
  if (const std::optional<Nanos> unmap = p50("unmap_pooled", false)) v.unmap = *unmap;
  return v;
}

}  // namespace kvsim
