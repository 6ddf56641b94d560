// Plan shards: splitting, fingerprints, shard.json, merging.
#include "sim/app/plan_shards.h"

#include <fmt/format.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "sim/core/check.h"
#include "sim/core/file_writer.h"
#include "sim/core/json_value.h"
#include "sim/metrics/json_writer.h"
#include "sim/planner/candidate_codec.h"

namespace kvsim {
namespace {

namespace fs = std::filesystem;

// shard.json's format; LoadShard refuses others.
constexpr int64_t kShardFormat = 1;

std::string ReadText(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot read {}", path, what));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string ShardName(ShardSpec s) { return fmt::format("shard {}/{}", s.index, s.count); }

}  // namespace

ShardSpec ParseShard(const std::string& text) {
  ShardSpec s;
  const size_t slash = text.find('/');
  const auto number = [&](std::string_view part, int64_t& out) {
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), out);
    return ec == std::errc() && end == part.data() + part.size() && !part.empty();
  };
  const std::string_view all(text);
  if (slash == std::string::npos || !number(all.substr(0, slash), s.index) ||
      !number(all.substr(slash + 1), s.count) || s.count < 1 || s.count > kMaxShards ||
      s.index < 0 || s.index >= s.count) {
    throw InputError(fmt::format(
        "--shard: '{}' is not I/N with 0 <= I < N <= {} (e.g. --shard 0/4 for the first of four; "
        "a Slurm array passes --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)",
        text, kMaxShards));
  }
  return s;
}

std::vector<size_t> ShardIndices(size_t total, ShardSpec s) {
  std::vector<size_t> indices;
  for (auto i = static_cast<size_t>(s.index); i < total; i += static_cast<size_t>(s.count)) {
    indices.push_back(i);
  }
  return indices;
}

std::string PlanFingerprint(const PlanConfig& plan, const PreparedPlan& prepared) {
  uint32_t crc = 0xFFFFFFFFu;
  for (const PlanScenario& s : plan.scenarios) crc = Crc32Update(crc, s.tree.Dump());
  crc = Crc32Update(crc, ReadText(plan.plan_file, "the plan"));
  for (const CandidateResult& c : prepared.candidates) {
    crc = Crc32Update(crc, fmt::format("{}#{}\n", c.name, c.scenario));
  }
  return fmt::format("crc32:{:08x}/{}", crc ^ 0xFFFFFFFFu, prepared.candidates.size());
}

std::string ShardJson(const PlanConfig& plan, const std::string& fingerprint, ShardSpec s,
                      size_t total, const std::vector<size_t>& indices,
                      const std::vector<CandidateResult>& candidates, double wall_s) {
  std::string out = fmt::format(
      "{{\"kvsim_plan_shard\": {}, \"plan\": {}, \"plan_as_given\": {}, \"fingerprint\": {}, "
      "\"shard\": {}, \"shards\": {}, \"candidates\": {}, \"wall_s\": {},\n\"results\": [",
      kShardFormat, JsonWriter::Quote(fs::absolute(plan.plan_file).lexically_normal().string()),
      JsonWriter::Quote(plan.plan_file), JsonWriter::Quote(fingerprint), s.index, s.count, total,
      wall_s);
  for (size_t k = 0; k < indices.size(); ++k) {
    out += fmt::format("{}\n{{\"index\": {}, \"candidate\": {}}}", k ? "," : "", indices[k],
                       EncodeCandidate(candidates[indices[k]]));
  }
  out += "\n]}\n";
  return out;
}

LoadedShard LoadShard(const std::string& dir) {
  const std::string path = (fs::path(dir) / "shard.json").string();
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    throw InputError(fmt::format(
        "{}: no shard.json: the shard did not finish (killed, failed or still running); run it "
        "again with the same --shard I/N",
        dir));
  }
  const JsonValue root = ParseJson(ReadText(path, "the shard"), path);
  const auto field = [&](const char* key) -> const JsonValue& {
    const JsonValue* v = root.Find(key);
    if (v == nullptr) throw InputError(fmt::format("{}: '{}': missing", path, key));
    return *v;
  };
  if (!root.IsObject() || field("kvsim_plan_shard").AsInt() != kShardFormat) {
    throw InputError(fmt::format("{}: not a shard.json of format {}", path, kShardFormat));
  }
  LoadedShard s;
  s.dir = dir;
  s.plan_file = field("plan").AsString();
  s.plan_as_given = field("plan_as_given").AsString();
  s.fingerprint = field("fingerprint").AsString();
  s.spec = {field("shard").AsInt(), field("shards").AsInt()};
  s.total = static_cast<size_t>(field("candidates").AsInt());
  s.wall_s = field("wall_s").AsNumber();
  for (const JsonValue& r : field("results").AsArray()) {
    const int64_t index = r.At("index").AsInt();
    if (index < 0) throw InputError(fmt::format("{}:{}: 'index': negative", path, r.line()));
    s.results.emplace_back(static_cast<size_t>(index), DecodeCandidate(r.At("candidate"), path));
  }
  return s;
}

std::vector<CandidateResult> MergeShards(const std::vector<LoadedShard>& shards,
                                         const PreparedPlan& prepared,
                                         const std::string& fingerprint) {
  KVSIM_CHECK(!shards.empty(), "no shards to merge");
  const int64_t count = shards.front().spec.count;
  std::map<int64_t, std::string> seen;  // shard index -> its directory
  for (const LoadedShard& s : shards) {
    if (s.fingerprint != fingerprint || s.total != prepared.candidates.size()) {
      throw InputError(fmt::format(
          "{}: a shard of another plan, or of this plan before an edit (its fingerprint {}, the "
          "plan's now {}): run every shard of one plan",
          s.dir, s.fingerprint, fingerprint));
    }
    if (s.spec.count != count) {
      throw InputError(fmt::format("{}: {} of a plan split {} ways; {} is {}", s.dir,
                                   ShardName(s.spec), s.spec.count, shards.front().dir,
                                   ShardName(shards.front().spec)));
    }
    if (auto [it, fresh] = seen.emplace(s.spec.index, s.dir); !fresh) {
      throw InputError(
          fmt::format("{} and {}: both hold {}", it->second, s.dir, ShardName(s.spec)));
    }
  }
  std::vector<std::string> missing;
  for (int64_t i = 0; i < count; ++i) {
    if (!seen.contains(i)) missing.push_back(ShardName({i, count}));
  }
  if (!missing.empty()) {
    throw InputError(fmt::format("{} missing: merge needs all {} shards' directories",
                                 fmt::join(missing, ", "), count));
  }
  std::vector<CandidateResult> merged = prepared.candidates;
  std::vector<bool> filled(merged.size(), false);
  for (const LoadedShard& s : shards) {
    for (const auto& [index, result] : s.results) {
      if (index >= merged.size() ||
          static_cast<int64_t>(index % static_cast<size_t>(count)) != s.spec.index ||
          filled[index]) {
        throw InputError(fmt::format("{}: candidate {} does not belong to {} or is given twice",
                                     s.dir, index, ShardName(s.spec)));
      }
      if (result.name != merged[index].name) {
        throw InputError(fmt::format("{}: candidate {} is {}, the plan's is {}", s.dir, index,
                                     result.name, merged[index].name));
      }
      merged[index] = result;
      filled[index] = true;
    }
  }
  for (size_t i = 0; i < merged.size(); ++i) {
    if (!filled[i]) {
      throw InputError(fmt::format("{}: candidate {} ({}) missing",
                                   seen.at(static_cast<int64_t>(i % static_cast<size_t>(count))), i,
                                   merged[i].name));
    }
  }
  return merged;
}

}  // namespace kvsim
