// Prefix caching end to end: on the Mooncake synthetic trace, the prompt tokens the
// paged prefix cache finds are exactly those a direct count from the trace's chained
// hashes gives (every block kept: a tiny model's KV fits many times over; requests far
// apart: each finishes before the next arrives), and nothing is found with it off.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <unordered_set>
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
DirectCount CountFromHashes() {
  DirectCount c;
  std::unordered_set<uint64_t> computed;
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
    int64_t hits = 0;
    while (hits < (prompt - 1) / kHashTokens && computed.contains(ids[static_cast<size_t>(hits)])) {
      ++hits;
    }
    c.hit_tokens += hits * kHashTokens;
    c.hit_requests += hits > 0 ? 1 : 0;
    c.prompt_tokens += prompt;
    for (int64_t i = 0; i < prompt / kHashTokens; ++i) computed.insert(ids[static_cast<size_t>(i)]);
  }
  return c;
}

Summary RunTrace(bool prefix_caching, const std::string& manager) {
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
          "kv_cache: {type: " + manager +
          ", block_tokens: 512, prefix_caching: " + (prefix_caching ? "true" : "false") + "}\n",
      dir.PathOf("scenario.yaml"));
  return BuildSimulation(DecodeScenario(tree, KVSIM_SOURCE_DIR "/models"))->Run();
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

TEST(PrefixCache, WithPrefixCachingOffNothingIsFound) {
  const Summary s = RunTrace(false, "paged");
  EXPECT_FALSE(s.prefix_caching);
  EXPECT_EQ(s.prefix_hit_tokens, 0);
  EXPECT_EQ(s.prefix_hit_requests, 0);
}

}  // namespace
}  // namespace kvsim
