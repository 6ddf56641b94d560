// Merging all-reduce rows into an existing profile.
#include "tools/kvprobe/host/allreduce_merge.h"

#include <algorithm>
#include <charconv>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "tools/kvprobe/host/text.h"

namespace kvprobe {
namespace {

constexpr const char* kHeader = "gpus,bytes,time_us,algbw_gbps,busbw_gbps";
constexpr size_t kFields = 5;

std::vector<std::string> SplitFields(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  for (char c : line + ",") {
    if (c == ',') {
      fields.push_back(field);
      field.clear();
    } else {
      field += c;
    }
  }
  return fields;
}

// The value of a decimal field, or nothing.
bool ParseNumber(const std::string& text, double& value) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

bool IsSectionLine(const std::string& line) {
  return line.size() >= 2 && line.front() == '[' && line.back() == ']';
}

}  // namespace

std::string MergeAllreduceRows(const std::string& target, const std::string& target_name,
                               const std::vector<AllreduceRow>& rows, const std::string& note) {
  if (rows.empty()) throw std::invalid_argument("MergeAllreduceRows: no rows to merge");
  using Key = std::pair<double, double>;  // (gpus, bytes)
  std::vector<std::pair<Key, std::string>> merged;
  std::vector<double> new_counts;
  for (const AllreduceRow& r : rows) {
    Key key;
    if (r.size() != kFields || !ParseNumber(r[0], key.first) || !ParseNumber(r[1], key.second)) {
      throw std::invalid_argument(
          "MergeAllreduceRows: a row needs 5 fields, gpus and bytes numeric");
    }
    std::string line = r[0];
    for (size_t i = 1; i < r.size(); ++i) line += "," + r[i];
    merged.emplace_back(key, line);
    if (std::find(new_counts.begin(), new_counts.end(), key.first) == new_counts.end()) {
      new_counts.push_back(key.first);
    }
  }

  std::vector<std::string> lines;
  {
    std::istringstream in(target);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  // Locate the section: [first, last) covers its comment lines, the section line, the
  // header and its rows (up to the next section or the end).
  size_t section = lines.size();
  for (size_t i = 0; i < lines.size(); ++i) {
    if (Trim(lines[i]) == "[allreduce]") section = i;
  }
  std::vector<std::string> comments;
  size_t first = lines.size(), last = lines.size();
  if (section < lines.size()) {
    first = section;
    while (first > 0 && Trim(lines[first - 1]).rfind('#', 0) == 0) --first;
    comments.assign(lines.begin() + static_cast<std::ptrdiff_t>(first),
                    lines.begin() + static_cast<std::ptrdiff_t>(section));
    last = section + 1;
    bool header_seen = false;
    for (; last < lines.size(); ++last) {
      const std::string line = Trim(lines[last]);
      const int line_no = static_cast<int>(last) + 1;
      auto fail = [&](const std::string& what) {
        std::string message = target_name;
        message += ":" + std::to_string(line_no) + ": ";
        message += what;
        throw std::runtime_error(message);
      };
      if (IsSectionLine(line)) break;
      if (line.empty() || line[0] == '#') continue;
      if (!header_seen) {
        if (line != kHeader)
          fail("[allreduce] header is '" + line + "', expected '" + kHeader + "'");
        header_seen = true;
        continue;
      }
      const std::vector<std::string> fields = SplitFields(line);
      Key key;
      if (fields.size() != kFields)
        fail("[allreduce] row has " + std::to_string(fields.size()) + " fields, expected 5");
      if (!ParseNumber(fields[0], key.first) || !ParseNumber(fields[1], key.second)) {
        fail("[allreduce] row has a non-numeric gpus or bytes field: '" + line + "'");
      }
      if (std::find(new_counts.begin(), new_counts.end(), key.first) == new_counts.end()) {
        merged.emplace_back(key, line);
      }
    }
  }
  std::stable_sort(merged.begin(), merged.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });

  std::string out;
  for (size_t i = 0; i < first; ++i) out += lines[i] + "\n";
  if (first == lines.size() && !out.empty() && !Trim(lines.back()).empty()) out += "\n";
  for (const std::string& c : comments) out += c + "\n";
  if (!note.empty()) out += "# [allreduce] " + note + "\n";
  out += std::string("[allreduce]\n") + kHeader + "\n";
  for (const auto& [key, line] : merged) out += line + "\n";
  if (last < lines.size()) {
    out += "\n";
    for (size_t i = last; i < lines.size(); ++i) out += lines[i] + "\n";
  }
  return out;
}

std::string ProfileGpuName(const std::string& profile_text) {
  std::istringstream in(profile_text);
  bool in_meta = false;
  for (std::string line; std::getline(in, line);) {
    line = Trim(line);
    if (IsSectionLine(line)) {
      in_meta = line == "[meta]";
    } else if (in_meta && line.rfind("gpu_name:", 0) == 0) {
      return Trim(line.substr(9));
    }
  }
  return "";
}

}  // namespace kvprobe
