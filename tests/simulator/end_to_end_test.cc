// End to end through the commands: determinism, a bundled-trace comparison of the
// four default KV managers, and the consistency of the files a run writes.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "sim/app/commands.h"
#include "tests/testing/temp_dir.h"

namespace kvsim {
namespace {

namespace fs = std::filesystem;
using ::kvsim::testing::TempDir;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "cannot read " << path;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A CSV file as a header-indexed table of strings.
struct Csv {
  std::map<std::string, size_t> column;
  std::vector<std::vector<std::string>> rows;

  const std::string& At(size_t row, const std::string& name) const {
    return rows[row][column.at(name)];
  }
  double Double(size_t row, const std::string& name) const { return std::stod(At(row, name)); }
  int64_t Int(size_t row, const std::string& name) const { return std::stoll(At(row, name)); }
  // Times are written with 9 decimals: whole nanoseconds.
  int64_t Nanos(size_t row, const std::string& name) const {
    return std::llround(Double(row, name) * 1e9);
  }
};

std::vector<std::string> Split(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream s(line);
  std::string cell;
  while (std::getline(s, cell, ',')) out.push_back(cell);
  return out;
}

Csv ReadCsv(const fs::path& path) {
  Csv csv;
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot read " << path;
  std::string line;
  if (!std::getline(in, line)) return csv;
  const std::vector<std::string> header = Split(line);
  for (size_t i = 0; i < header.size(); ++i) csv.column[header[i]] = i;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    csv.rows.push_back(Split(line));
    EXPECT_EQ(csv.rows.back().size(), header.size()) << path << ": " << line;
  }
  return csv;
}

// Structural equality of two parsed JSON documents, skipping the top-level keys
// in `skip`. Scalars compare as their text.
bool SameJson(const YAML::Node& a, const YAML::Node& b, const std::vector<std::string>& skip,
              std::string* where) {
  if (a.Type() != b.Type()) {
    *where = "type";
    return false;
  }
  if (a.IsScalar()) {
    if (a.Scalar() != b.Scalar()) *where = a.Scalar() + " vs " + b.Scalar();
    return a.Scalar() == b.Scalar();
  }
  if (a.IsSequence()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!SameJson(a[i], b[i], {}, where)) return false;
    }
    return true;
  }
  if (a.IsMap()) {
    if (a.size() != b.size()) return false;
    for (const auto& kv : a) {
      const std::string key = kv.first.as<std::string>();
      if (std::find(skip.begin(), skip.end(), key) != skip.end()) continue;
      if (!b[key]) {
        *where = key + " missing";
        return false;
      }
      if (!SameJson(kv.second, b[key], {}, where)) {
        *where = key + ": " + *where;
        return false;
      }
    }
    return true;
  }
  return true;
}

// ---- determinism ---------------------------------------------------------

// Poisson arrivals and uniform lengths (both drawn from the seed), a KV cache
// small enough (2 GiB = 16384 tokens) that requests are preempted.
constexpr const char* kSeededScenario = R"(seed: 7
model: Llama-3-8B
gpu: H100-SXM
deployment:
  max_model_len: 4096
  kv_capacity_bytes: 2GiB
workload:
  arrival:
    process: poisson
    rate_qps: 40
  lengths:
    source: uniform
    min_prompt_tokens: 16
    max_prompt_tokens: 2000
    min_output_tokens: 1
    max_output_tokens: 400
  max_requests: 300
scheduler:
  type: vllm
kv_cache:
  type: paged
timing:
  type: roofline
)";

class Determinism : public ::testing::Test {
 protected:
  fs::path Run(const std::string& name, std::vector<std::string> overrides = {}) {
    CommandOptions o;
    o.config_path = config_;
    o.overrides = std::move(overrides);
    o.out_dir = dir_.PathOf(name);
    o.quiet = true;
    std::ostringstream out;
    EXPECT_EQ(RunCommand(o, out), 0);
    return dir_.path() / name;
  }

  TempDir dir_;
  const std::string config_ = dir_.Write("seeded.yaml", kSeededScenario);
};

TEST_F(Determinism, SameConfigAndSeedGiveByteIdenticalOutputs) {
  const fs::path a = Run("a");
  const fs::path b = Run("b");
  for (const char* file : {"requests.csv", "timeseries.csv", "config.yaml"}) {
    const std::string text = ReadFile(a / file);
    EXPECT_FALSE(text.empty()) << file;
    EXPECT_TRUE(text == ReadFile(b / file)) << file << " differs between identical runs";
  }
  // summary.json differs only in "sim" (wall time).
  std::string where;
  EXPECT_TRUE(SameJson(YAML::LoadFile((a / "summary.json").string()),
                       YAML::LoadFile((b / "summary.json").string()), {"sim"}, &where))
      << where;
  // The scenario is not trivial: requests were preempted.
  EXPECT_GT(YAML::LoadFile((a / "summary.json").string())["preemptions"].as<int64_t>(), 0);
}

TEST_F(Determinism, DifferentSeedGivesDifferentPoissonArrivals) {
  const fs::path a = Run("a");
  const fs::path b = Run("b", {"seed=8"});
  EXPECT_FALSE(ReadFile(a / "requests.csv") == ReadFile(b / "requests.csv"));
  EXPECT_FALSE(ReadFile(a / "timeseries.csv") == ReadFile(b / "timeseries.csv"));
  const Csv ra = ReadCsv(a / "requests.csv");
  const Csv rb = ReadCsv(b / "requests.csv");
  ASSERT_FALSE(ra.rows.empty());
  ASSERT_FALSE(rb.rows.empty());
  // Request 0 arrives after an exponential gap drawn from the seed.
  auto arrival_of_first = [](const Csv& c) {
    for (size_t i = 0; i < c.rows.size(); ++i) {
      if (c.Int(i, "id") == 0) return c.Nanos(i, "arrival_s");
    }
    return int64_t{-1};
  };
  EXPECT_NE(arrival_of_first(ra), arrival_of_first(rb));
}

// ---- the bundled quickstart, compared across KV managers -----------------

const char* const kLabels[] = {"static", "paged", "vattention_2MiB", "vattention_64KiB"};

class QuickstartCompare : public ::testing::Test {
 protected:
  // One comparison, shared by the tests below.
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    CommandOptions o;
    o.config_path = KVSIM_SOURCE_DIR "/configs/quickstart.yaml";
    o.overrides = {"workload.max_requests=600"};
    o.out_dir = dir_->path().string();
    o.quiet = true;
    std::ostringstream out;
    rc_ = CompareCommand(o, out);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static const fs::path& Dir() { return dir_->path(); }

  static YAML::Node Summary(const std::string& label) {
    return YAML::LoadFile((Dir() / label / "summary.json").string());
  }

  static TempDir* dir_;
  static int rc_;
};

TempDir* QuickstartCompare::dir_ = nullptr;
int QuickstartCompare::rc_ = -1;

TEST_F(QuickstartCompare, EveryRunDirectoryHasItsFourFilesAndCompareJsonListsTheDefaultLabels) {
  ASSERT_EQ(rc_, 0);
  for (const char* label : kLabels) {
    for (const char* file : {"summary.json", "requests.csv", "timeseries.csv", "config.yaml"}) {
      EXPECT_TRUE(fs::is_regular_file(Dir() / label / file)) << label << "/" << file;
    }
  }
  const YAML::Node compare = YAML::LoadFile((Dir() / "compare.json").string());
  ASSERT_TRUE(compare.IsSequence());
  std::vector<std::string> labels;
  for (const auto& entry : compare) labels.push_back(entry["label"].as<std::string>());
  EXPECT_EQ(labels, std::vector<std::string>(std::begin(kLabels), std::end(kLabels)));
  for (const auto& entry : compare) {
    EXPECT_EQ(entry["summary"]["requests_total"].as<int64_t>(), 600);
  }
}

TEST_F(QuickstartCompare, PagedAndSmallPageVAttentionRunLargerBatchesThanStaticReservation) {
  ASSERT_EQ(rc_, 0);
  // Static reserves max_model_len tokens per request (8192 x 128 KiB = 1 GiB for
  // Llama-3-8B), so at most capacity / 1 GiB requests (54 of 58.8 GB on an H100)
  // run at once; paged and vAttention hold only what requests use.
  const YAML::Node st = Summary("static");
  const int64_t reservation =
      st["scenario"]["max_model_len"].as<int64_t>() * st["kv"]["bytes_per_token"].as<int64_t>();
  const int64_t static_max = st["batch"]["max_running"].as<int64_t>();
  const int64_t paged_max = Summary("paged")["batch"]["max_running"].as<int64_t>();
  const int64_t va64_max = Summary("vattention_64KiB")["batch"]["max_running"].as<int64_t>();
  EXPECT_EQ(reservation, int64_t{8192} * 131072);
  EXPECT_LE(static_max, st["kv"]["capacity_bytes"].as<int64_t>() / reservation);
  EXPECT_GT(paged_max, static_max);
  EXPECT_GT(va64_max, static_max);
}

TEST_F(QuickstartCompare, SummaryAgreesWithRequestsCsv) {
  ASSERT_EQ(rc_, 0);
  for (const char* label : kLabels) {
    SCOPED_TRACE(label);
    const YAML::Node s = Summary(label);
    const Csv csv = ReadCsv(Dir() / label / "requests.csv");
    const size_t n = csv.rows.size();
    ASSERT_GT(n, 0u);

    int64_t makespan = 0, output_tokens = 0, preemptions = 0;
    std::vector<int64_t> ttft;
    double e2e_sum = 0;
    for (size_t i = 0; i < n; ++i) {
      const int64_t arrival = csv.Nanos(i, "arrival_s");
      makespan = std::max(makespan, csv.Nanos(i, "finish_s"));
      output_tokens += csv.Int(i, "output_tokens");
      preemptions += csv.Int(i, "preemptions");
      ttft.push_back(csv.Nanos(i, "first_token_s") - arrival);
      e2e_sum += static_cast<double>(csv.Nanos(i, "finish_s") - arrival) * 1e-9;
    }
    std::sort(ttft.begin(), ttft.end());
    // Nearest rank: the ceil(q x n)-th smallest, in integers.
    auto nearest_rank = [&](int64_t percent) {
      const int64_t rank = std::max<int64_t>(1, (percent * static_cast<int64_t>(n) + 99) / 100);
      return static_cast<double>(ttft[static_cast<size_t>(rank - 1)]) * 1e-9;
    };
    const double makespan_s = static_cast<double>(makespan) * 1e-9;
    auto near = [](double expected, double actual) {
      return std::abs(expected - actual) <= 1e-6 * std::max(std::abs(expected), 1e-12);
    };

    EXPECT_EQ(s["requests_completed"].as<int64_t>(), static_cast<int64_t>(n));
    EXPECT_EQ(s["preemptions"].as<int64_t>(), preemptions);
    EXPECT_PRED2(near, makespan_s, s["makespan_s"].as<double>());
    EXPECT_PRED2(near, nearest_rank(50), s["ttft_s"]["p50"].as<double>());
    EXPECT_PRED2(near, nearest_rank(99), s["ttft_s"]["p99"].as<double>());
    EXPECT_PRED2(near, e2e_sum / static_cast<double>(n), s["e2e_s"]["mean"].as<double>());
    EXPECT_PRED2(near, static_cast<double>(output_tokens) / makespan_s,
                 s["throughput"]["output_tokens_per_s"].as<double>());
  }
}

TEST_F(QuickstartCompare, TimeseriesIntervalsKeepLiveWithinAllocatedWithinCapacity) {
  ASSERT_EQ(rc_, 0);
  for (const char* label : kLabels) {
    SCOPED_TRACE(label);
    const YAML::Node summary = Summary(label);
    const int64_t capacity = summary["kv"]["capacity_bytes"].as<int64_t>();
    const Csv csv = ReadCsv(Dir() / label / "timeseries.csv");  // 1 s intervals by default
    ASSERT_GT(csv.rows.size(), 0u);
    int64_t bad = 0, iterations = 0;
    for (size_t i = 0; i < csv.rows.size(); ++i) {
      const int64_t live = csv.Int(i, "mean_live_bytes");
      const int64_t allocated = csv.Int(i, "mean_allocated_bytes");
      const int64_t peak = csv.Int(i, "peak_allocated_bytes");
      iterations += csv.Int(i, "iterations");
      if (!(live <= allocated && allocated <= peak && peak <= capacity)) {
        if (++bad <= 3) {
          ADD_FAILURE() << "row " << i + 2 << ": mean live " << live << ", mean allocated "
                        << allocated << ", peak " << peak << ", capacity " << capacity;
        }
      }
    }
    EXPECT_EQ(bad, 0);
    // Every iteration is counted in exactly one interval.
    EXPECT_EQ(iterations, summary["batch"]["iterations"].as<int64_t>());
  }
}

}  // namespace
}  // namespace kvsim
