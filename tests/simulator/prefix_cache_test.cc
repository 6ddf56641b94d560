// Prefix caching end to end: on the Mooncake synthetic trace, the prompt tokens the
// paged prefix cache (and vAttention's, at page granularity) finds are exactly those
// a direct count from the trace's chained hashes gives (every block kept: a tiny
// model's KV fits many times over; requests far apart: each finishes before the next
// arrives), and nothing is found with it off.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sim/config/scenario_config.h"
#include "sim/config/yaml_tree.h"
#include "sim/core/json_value.h"
#include "sim/simulator/builder.h"
#include "tests/testing/temp_dir.h"

namespace kvsim {
namespace {

constexpr const char* kTrace = KVSIM_SOURCE_DIR "/traces/synthetic_trace.jsonl";
constexpr int64_t kRequests = 300;
constexpr int64_t kHashTokens = 512;  // Mooncake: tokens per hash id

// The direct count: request by request in arrival order, the leading hash blocks whose
// id an earlier request computed as a whole block (its prompt covered the block),
// at most (prompt - 1) / 512 of them (the last token is computed again). With
// 512-token KV blocks each hash block is one KV block.
struct DirectCount {
  int64_t hit_tokens = 0, prompt_tokens = 0, hit_requests = 0;
};
// `unit_tokens`: tokens of a KV block (paged) or page (vAttention), a multiple of 512.
// Unit u is found when an earlier request computed it whole inside its hashed
// prompt: the same hash id at the unit's last hash block, at the same position.
DirectCount CountFromHashes(int64_t unit_tokens = kHashTokens) {
  const int64_t per_unit = unit_tokens / kHashTokens;
  DirectCount c;
  std::set<std::pair<int64_t, uint64_t>> computed;  // (unit, hash id of its last block)
  std::ifstream in(kTrace);
  std::string line;
  int line_no = 0;
  while (line_no < kRequests && std::getline(in, line)) {
    ++line_no;
    const JsonValue row = ParseJson(line, kTrace, line_no);
    const int64_t prompt = row.At("input_length").AsInt();
    std::vector<uint64_t> ids;
    for (const JsonValue& v : row.At("hash_ids").AsArray()) {
      ids.push_back(static_cast<uint64_t>(v.AsInt()));
    }
    const auto last = [&](int64_t u) { return ids[static_cast<size_t>((u + 1) * per_unit - 1)]; };
    int64_t hits = 0;
    while (hits < (prompt - 1) / unit_tokens && computed.contains({hits, last(hits)})) ++hits;
    c.hit_tokens += hits * unit_tokens;
    c.hit_requests += hits > 0 ? 1 : 0;
    c.prompt_tokens += prompt;
    for (int64_t u = 0; u < prompt / unit_tokens; ++u) computed.insert({u, last(u)});
  }
  return c;
}

// `kv`: more kv_cache keys, after a comma.
Summary RunTrace(bool prefix_caching, const std::string& manager, const std::string& kv = "") {
  testing::TempDir dir;
  // One layer, one KV head of 16: 64 bytes of KV per token.
  const std::string card =
      dir.Write("tiny.yaml",
                "name: tiny\nnum_layers: 1\nhidden_size: 64\nnum_heads: 4\n"
                "num_kv_heads: 1\nhead_dim: 16\nffn_size: 128\n"
                "vocab_size: 1000\nmax_context_tokens: 262144\ndtype_bytes: 2\n"
                "num_experts: 1\nexperts_per_token: 1\n"
                "tied_embeddings: false\nsource: test\n");
  const ConfigTree tree = ConfigTree::Parse(
      "model: " + card + "\ngpu: H100-SXM\n" + "workload: {trace: " + kTrace +
          ", arrival: {process: trace, rate_qps: 0.05}, max_requests: " +
          std::to_string(kRequests) + "}\nscheduler: {type: vllm, max_num_seqs: 64}\n" +
          "kv_cache: {type: " + manager + ", block_tokens: 512, prefix_caching: " +
          (prefix_caching ? "true" : "false") + kv + "}\n",
      dir.PathOf("scenario.yaml"));
  return BuildSimulation(DecodeScenario(tree, KVSIM_SOURCE_DIR "/models"))->Run().summary;
}

TEST(PrefixCache, HitsOnTheMooncakeTraceAreExactlyTheDirectCountFromItsHashes) {
  const DirectCount expected = CountFromHashes();
  ASSERT_GT(expected.hit_tokens, 0) << "the trace's first requests share no prefix";
  const Summary s = RunTrace(true, "paged");
  ASSERT_EQ(s.requests_completed, kRequests);
  EXPECT_TRUE(s.prefix_caching);
  EXPECT_EQ(s.prompt_tokens, expected.prompt_tokens);
  EXPECT_EQ(s.prefix_hit_tokens, expected.hit_tokens);
  EXPECT_EQ(s.prefix_hit_requests, expected.hit_requests);
  EXPECT_EQ(s.recomputed_tokens, 0);
}

// vAttention shares whole pages: 64 KiB of one layer's K (or V) of the tiny model
// (one KV head of 16, 2 bytes: 32 bytes per token) holds 2048 tokens, 4 hash blocks.
TEST(PrefixCache, VAttentionHitsOnTheMooncakeTraceAreTheDirectCountAtPageGranularity) {
  const DirectCount expected = CountFromHashes(2048);
  ASSERT_GT(expected.hit_tokens, 0) << "the trace's first requests share no whole page";
  const Summary s = RunTrace(true, "vattention", ", page_bytes: 64KiB");
  ASSERT_EQ(s.requests_completed, kRequests);
  EXPECT_TRUE(s.prefix_caching);
  EXPECT_EQ(s.prompt_tokens, expected.prompt_tokens);
  EXPECT_EQ(s.prefix_hit_tokens, expected.hit_tokens);
  EXPECT_EQ(s.prefix_hit_requests, expected.hit_requests);
  EXPECT_EQ(s.recomputed_tokens, 0);
  // Fewer than the paged cache's 512-token blocks find: only whole 2048-token pages.
  EXPECT_LT(s.prefix_hit_tokens, CountFromHashes().hit_tokens);
  // Every found page group was mapped into its request's range.
  EXPECT_GE(s.map_calls, 2 * (expected.hit_tokens / 2048));
}

TEST(PrefixCache, WithPrefixCachingOffVAttentionFindsNothing) {
  const Summary s = RunTrace(false, "vattention", ", page_bytes: 64KiB");
  EXPECT_FALSE(s.prefix_caching);
  EXPECT_EQ(s.prefix_hit_tokens, 0);
}

TEST(PrefixCache, WithPrefixCachingOffNothingIsFound) {
  const Summary s = RunTrace(false, "paged");
  EXPECT_FALSE(s.prefix_caching);
  EXPECT_EQ(s.prefix_hit_tokens, 0);
  EXPECT_EQ(s.prefix_hit_requests, 0);
}

}  // namespace
}  // namespace kvsim
