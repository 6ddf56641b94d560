// Merging all-reduce rows into an existing profile.
#include "tools/kvprobe/host/allreduce_merge.h"

#include <algorithm>
#include <charconv>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "sim/timing/profile.h"
#include "tools/kvprobe/host/profile_writer.h"
#include "tools/kvprobe/host/text.h"

namespace kvprobe {
namespace {

constexpr size_t kFields = schema::kAllreduce.fields.size();

// The value of a decimal field, or nothing.
bool ParseNumber(const std::string& text, double& value) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

bool IsSectionLine(const std::string& line) {
  return line.size() >= 2 && line.front() == '[' && line.back() == ']';
}

using Key = std::pair<double, double>;  // (gpus, bytes)
using Rows = std::vector<std::pair<Key, std::string>>;

// The new rows as (key, CSV line), and the GPU counts they measured (in first-seen
// order). Throws std::invalid_argument for a row without one field per [allreduce]
// column or without numeric gpus and bytes.
void TakeNewRows(const std::vector<AllreduceRow>& rows, Rows& merged,
                 std::vector<double>& new_counts) {
  for (const AllreduceRow& r : rows) {
    Key key;
    if (r.size() != kFields || !ParseNumber(r[0], key.first) || !ParseNumber(r[1], key.second)) {
      throw std::invalid_argument("MergeAllreduceRows: a row needs " + std::to_string(kFields) +
                                  " fields, gpus and bytes numeric");
    }
    std::string line = r[0];
    for (size_t i = 1; i < r.size(); ++i) line += "," + r[i];
    merged.emplace_back(key, line);
    if (std::find(new_counts.begin(), new_counts.end(), key.first) == new_counts.end()) {
      new_counts.push_back(key.first);
    }
  }
}

// Where the target's [allreduce] section is: lines [first, last) hold its comment
// lines, the section line, the header and its rows (up to the next section or the
// end); `section` is the section line. All three are lines.size() without one.
struct SectionSpan {
  size_t first, section, last;
};

SectionSpan LocateSection(const std::vector<std::string>& lines) {
  SectionSpan span{lines.size(), lines.size(), lines.size()};
  const std::string section_line = SectionLine(schema::kAllreduce);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (Trim(lines[i]) == section_line) span.section = i;
  }
  if (span.section == lines.size()) return span;
  span.first = span.section;
  while (span.first > 0 && Trim(lines[span.first - 1]).rfind('#', 0) == 0) --span.first;
  span.last = span.section + 1;
  while (span.last < lines.size() && !IsSectionLine(Trim(lines[span.last]))) ++span.last;
  return span;
}

// The number of columns of a target [allreduce] header: the current header, or an
// earlier one without some of its trailing optional columns; 0 for any other line.
size_t HeaderColumns(const std::string& line) {
  const auto& fields = schema::kAllreduce.fields;
  std::string header;
  for (size_t n = 1; n <= fields.size(); ++n) {
    header += (n > 1 ? "," : "") + std::string(fields[n - 1].name);
    const bool rest_optional = std::all_of(
        fields.begin() + static_cast<std::ptrdiff_t>(n), fields.end(),
        [](const schema::Field& f) { return f.presence == schema::Presence::kOptional; });
    if (line == header && rest_optional) return n;
  }
  return 0;
}

// Adds the target section's rows of GPU counts the new rows do not measure. Throws
// std::runtime_error "TARGET:LINE: what" for a bad header or row, and for a row to
// keep under an earlier header (it lacks columns the merged section has).
void KeepOldRows(const std::vector<std::string>& lines, const SectionSpan& span,
                 const std::string& target_name, const std::vector<double>& new_counts,
                 Rows& merged) {
  const std::string header = HeaderLine(schema::kAllreduce);
  size_t columns = 0;  // of the target's header, once seen
  for (size_t i = span.section + 1; i < span.last; ++i) {
    const std::string line = Trim(lines[i]);
    auto fail = [&](const std::string& what) {
      std::string message = target_name;
      message += ":" + std::to_string(i + 1) + ": ";
      message += what;
      throw std::runtime_error(message);
    };
    if (line.empty() || line[0] == '#') continue;
    if (columns == 0) {
      columns = HeaderColumns(line);
      if (columns == 0) {
        fail(("[allreduce] header is '" + line + "', expected '").append(header) + "'");
      }
      continue;
    }
    const std::vector<std::string> fields = SplitFields(line);
    Key key;
    if (fields.size() != columns) {
      fail("[allreduce] row has " + std::to_string(fields.size()) + " fields, expected " +
           std::to_string(columns));
    }
    if (!ParseNumber(fields[0], key.first) || !ParseNumber(fields[1], key.second)) {
      fail("[allreduce] row has a non-numeric gpus or bytes field: '" + line + "'");
    }
    if (std::find(new_counts.begin(), new_counts.end(), key.first) == new_counts.end()) {
      if (columns != kFields) {
        fail("[allreduce] rows for " + fields[0] + " GPUs have no " +
             std::string(schema::kAllreduce.fields[columns].name) +
             " column (an earlier kvprobe's); measure " + fields[0] +
             " GPUs again too (--allreduce-gpus) to merge");
      }
      merged.emplace_back(key, line);
    }
  }
}

// The target with its section (or, without one, the end) replaced by `merged`.
std::string Render(const std::vector<std::string>& lines, const SectionSpan& span,
                   const Rows& merged, const std::string& note) {
  std::string out;
  for (size_t i = 0; i < span.first; ++i) out += lines[i] + "\n";
  if (span.first == lines.size() && !out.empty() && !Trim(lines.back()).empty()) out += "\n";
  for (size_t i = span.first; i < span.section; ++i) out += lines[i] + "\n";  // its comments
  if (!note.empty()) out += "# [allreduce] " + note + "\n";
  out += SectionLine(schema::kAllreduce) + "\n" + HeaderLine(schema::kAllreduce) + "\n";
  for (const auto& [key, line] : merged) out += line + "\n";
  if (span.last < lines.size()) {
    out += "\n";
    for (size_t i = span.last; i < lines.size(); ++i) out += lines[i] + "\n";
  }
  return out;
}

// Takes the end marker (kvsim::kProfileEndMarker) off `lines` when it is their last
// non-blank line, with the blank lines before it; whether it was there.
bool TakeEndMarker(std::vector<std::string>& lines) {
  size_t last = lines.size();
  while (last > 0 && Trim(lines[last - 1]).empty()) --last;
  if (last == 0 || Trim(lines[last - 1]) != kvsim::kProfileEndMarker) return false;
  --last;
  while (last > 0 && Trim(lines[last - 1]).empty()) --last;
  lines.resize(last);
  return true;
}

}  // namespace

std::string MergeAllreduceRows(const std::string& target, const std::string& target_name,
                               const std::vector<AllreduceRow>& rows, const std::string& note) {
  if (rows.empty()) throw std::invalid_argument("MergeAllreduceRows: no rows to merge");
  Rows merged;
  std::vector<double> new_counts;
  TakeNewRows(rows, merged, new_counts);
  std::vector<std::string> lines;
  {
    std::istringstream in(target);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  // The end marker stays the last line, after a section appended or the last one merged.
  const bool marked = TakeEndMarker(lines);
  const SectionSpan span = LocateSection(lines);
  if (span.section < lines.size()) KeepOldRows(lines, span, target_name, new_counts, merged);
  std::stable_sort(merged.begin(), merged.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string out = Render(lines, span, merged, note);
  if (marked) out += "\n" + std::string(kvsim::kProfileEndMarker) + "\n";
  return out;
}

void CheckAllreduceMergeTarget(const std::string& target, const std::string& target_name,
                               const std::vector<int>& gpu_counts) {
  std::vector<AllreduceRow> rows;  // one row of every column per count
  for (int gpus : gpu_counts) {
    AllreduceRow row(kFields, "1");
    row[0] = std::to_string(gpus);
    row[1] = "65536";
    rows.push_back(row);
  }
  MergeAllreduceRows(target, target_name, rows, "");
}

std::string ProfileGpuName(const std::string& profile_text) {
  std::istringstream in(profile_text);
  const std::string meta = SectionLine(schema::kMeta);
  const std::string key = std::string(schema::meta::kGpuName) + ":";
  bool in_meta = false;
  for (std::string line; std::getline(in, line);) {
    line = Trim(line);
    if (IsSectionLine(line)) {
      in_meta = line == meta;
    } else if (in_meta && line.rfind(key, 0) == 0) {
      return Trim(line.substr(key.size()));
    }
  }
  return "";
}

}  // namespace kvprobe
