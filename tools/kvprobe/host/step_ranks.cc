// Combining the [step] rows of tensor-parallel rank processes.
#include "tools/kvprobe/host/step_ranks.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string_view>

#include "tools/kvprobe/host/profile_writer.h"
#include "tools/kvprobe/host/text.h"

namespace kvprobe {
namespace {

namespace col = kvsim::profile_schema::column;

constexpr std::string_view kTimeColumns[] = {col::kTimeUs, col::kGemmUs, col::kAttentionUs,
                                             col::kOtherUs, col::kAllreduceUs};

bool IsTimeColumn(std::string_view name) {
  return std::find(std::begin(kTimeColumns), std::end(kTimeColumns), name) !=
         std::end(kTimeColumns);
}

std::string JoinFields(const StepFields& fields) {
  std::string line;
  for (size_t i = 0; i < fields.size(); ++i) line += (i ? "," : "") + fields[i];
  return line;
}

// A finite number >= 0 (> 0 when `positive`), or nothing.
bool ParseTime(const std::string& text, bool positive, double& value) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size() && std::isfinite(value) &&
         (positive ? value > 0 : value >= 0);
}

// One rank's rows, each checked.
std::vector<StepFields> ParseRank(const std::string& text, const std::string& name) {
  const auto& columns = schema::kStep.fields;
  const std::string header = HeaderLine(schema::kStep);
  std::istringstream in(text);
  std::vector<StepFields> rows;
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    line = Trim(line);
    auto fail = [&](const std::string& what) {
      throw std::runtime_error(name + ":" + std::to_string(line_no) + ": " + what);
    };
    if (line_no == 1) {
      if (line != header) fail(("expected the header '" + header + "', got '").append(line) + "'");
      continue;
    }
    if (line.empty()) continue;
    StepFields fields = SplitFields(line);
    if (fields.size() != columns.size()) {
      fail("a [step] row has " + std::to_string(fields.size()) + " fields, expected " +
           std::to_string(columns.size()));
    }
    for (size_t c = 0; c < columns.size(); ++c) {
      double value = 0;
      const bool positive = columns[c].name == col::kTimeUs;
      if (IsTimeColumn(columns[c].name) && !ParseTime(fields[c], positive, value)) {
        fail(std::string(columns[c].name) + " must be a " +
             (positive ? "positive" : "non-negative") + " number, got '" + fields[c] + "'");
      }
    }
    rows.push_back(std::move(fields));
  }
  if (line_no == 0) throw std::runtime_error(name + ": empty (the rank wrote nothing)");
  return rows;
}

}  // namespace

std::string StepRankCsv(const std::vector<StepFields>& rows) {
  std::string out = HeaderLine(schema::kStep) + "\n";
  for (const StepFields& r : rows) {
    if (r.size() != schema::kStep.fields.size()) {
      throw std::invalid_argument("StepRankCsv: a row needs one field per [step] column");
    }
    out += JoinFields(r) + "\n";
  }
  return out;
}

std::vector<StepFields> CombineStepRanks(const std::vector<std::string>& rank_csvs,
                                         const std::vector<std::string>& names) {
  if (rank_csvs.empty() || names.size() != rank_csvs.size()) {
    throw std::invalid_argument("CombineStepRanks: one name per rank file, at least one rank");
  }
  const auto& columns = schema::kStep.fields;
  std::vector<StepFields> combined = ParseRank(rank_csvs[0], names[0]);
  for (size_t r = 1; r < rank_csvs.size(); ++r) {
    const std::vector<StepFields> rows = ParseRank(rank_csvs[r], names[r]);
    if (rows.size() != combined.size()) {
      throw std::runtime_error(names[r] + ": " + std::to_string(rows.size()) + " passes, " +
                               names[0] + " has " + std::to_string(combined.size()));
    }
    for (size_t i = 0; i < rows.size(); ++i) {
      for (size_t c = 0; c < columns.size(); ++c) {
        const std::string_view column = columns[c].name;
        if (IsTimeColumn(column)) {
          double mine = 0, slowest = 0;
          ParseTime(rows[i][c], false, mine);
          ParseTime(combined[i][c], false, slowest);
          if (mine > slowest) combined[i][c] = rows[i][c];
        } else if (column != col::kDecodeSplits && rows[i][c] != combined[i][c]) {
          throw std::runtime_error(names[r] + ": pass " + std::to_string(i + 1) + " has " +
                                   std::string(column) + " " + rows[i][c] + ", " + names[0] +
                                   "'s has " + combined[i][c]);
        }
      }
    }
  }
  return combined;
}

}  // namespace kvprobe
