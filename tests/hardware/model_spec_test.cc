// Tests for ModelSpec: the shipped cards in models/llm/, the derived weight and KV
// sizes, and the strict rejection of malformed cards.
#include "sim/hardware/model_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "sim/core/check.h"
#include "tests/testing/malformed_card.h"

namespace kvsim {
namespace {

namespace fs = std::filesystem;
using ::kvsim::testing::MalformedCardTest;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::string LlmCard(const std::string& name) {
  return std::string(KVSIM_SOURCE_DIR) + "/models/llm/" + name + ".yaml";
}

ModelSpec LoadLlm(const std::string& name) { return LoadModelSpec(LlmCard(name)); }

// The 2-byte KV bytes per token of LLM_MODELS.md section 3 (2 x layers x kv_heads x
// head_dim x 2), for every shipped card. Llama-3.1 shares Llama-3's shapes.
std::map<std::string, int64_t> PublishedKvBytesPerToken() {
  return {
      {"Llama-2-7B", 524288},  {"Llama-2-70B", 327680},  {"Llama-3-8B", 131072},
      {"Llama-3-70B", 327680}, {"Llama-3.1-8B", 131072}, {"Llama-3.1-70B", 327680},
      {"Yi-6B", 65536},        {"Yi-34B", 245760},       {"Mistral-7B", 131072},
      {"Yi-6B-200K", 65536},   {"Yi-34B-200K", 245760},  {"Mixtral-8x7B", 131072},
      {"Qwen2.5-7B", 57344},   {"Qwen2.5-72B", 327680},
  };
}

TEST(ModelSpec, Llama3_8BHoldsOneHundredTwentyEightKiBOfKvPerToken) {
  EXPECT_EQ(LoadLlm("Llama-3-8B").KvBytesPerTokenPerRank(1), 128 * 1024);
  EXPECT_EQ(LoadLlm("Llama-3-8B").KvBytesPerTokenPerRank(1), 131072);
}

TEST(ModelSpec, Yi6BHoldsSixtyFourKiBOfKvPerToken) {
  EXPECT_EQ(LoadLlm("Yi-6B").KvBytesPerTokenPerRank(1), 65536);
}

TEST(ModelSpec, Yi34BHoldsTwoHundredFortyKiBOfKvPerToken) {
  EXPECT_EQ(LoadLlm("Yi-34B").KvBytesPerTokenPerRank(1), 245760);
}

TEST(ModelSpec, Llama2_70BHoldsThreeHundredTwentyKiBOfKvPerToken) {
  EXPECT_EQ(LoadLlm("Llama-2-70B").KvBytesPerTokenPerRank(1), 327680);
}

TEST(ModelSpec, EveryShippedCardMatchesThePublishedKvBytesPerToken) {
  for (const auto& [name, bytes] : PublishedKvBytesPerToken()) {
    EXPECT_EQ(LoadLlm(name).KvBytesPerTokenPerRank(1), bytes) << name;
  }
}

TEST(ModelSpec, EveryCardInModelsLlmLoadsAndIsNamedAfterItsFile) {
  const std::map<std::string, int64_t> published = PublishedKvBytesPerToken();
  std::set<std::string> seen;
  for (const fs::directory_entry& entry :
       fs::directory_iterator(fs::path(KVSIM_SOURCE_DIR) / "models" / "llm")) {
    if (entry.path().extension() != ".yaml") continue;
    ModelSpec spec;
    ASSERT_NO_THROW(spec = LoadModelSpec(entry.path().string())) << entry.path();
    EXPECT_EQ(spec.name, entry.path().stem().string());
    EXPECT_GT(spec.TotalParams(), 0) << spec.name;
    if (published.count(spec.name) != 0) {
      // Every model of the design table has head_dim = hidden / heads and 16-bit weights.
      EXPECT_EQ(spec.head_dim * spec.num_heads, spec.hidden_size) << spec.name;
      EXPECT_EQ(spec.dtype_bytes, 2) << spec.name;
    }
    seen.insert(spec.name);
  }
  for (const auto& [name, bytes] : published) {
    EXPECT_EQ(seen.count(name), 1u) << "missing card " << name;
  }
}

TEST(ModelSpec, Llama31KeepsLlama3ShapesButReaches128KContext) {
  const ModelSpec l3 = LoadLlm("Llama-3-8B");
  const ModelSpec l31 = LoadLlm("Llama-3.1-8B");
  EXPECT_EQ(l3.max_context_tokens, 8192);
  EXPECT_EQ(l31.max_context_tokens, 131072);
  EXPECT_EQ(l31.TotalParams(), l3.TotalParams());
  EXPECT_EQ(LoadLlm("Llama-3.1-70B").TotalParams(), LoadLlm("Llama-3-70B").TotalParams());
}

// Llama-2-7B by hand (hidden 4096, 32 layers, 32 heads = 32 KV heads of 128, ffn 11008,
// vocab 32000, untied):
//   attention per layer = 4 x 4096 x 4096           =    67,108,864
//   MLP per layer       = 3 x 4096 x 11008          =   135,266,304
//   32 layers x (67,108,864 + 135,266,304)          = 6,476,005,376
//   embeddings          = 2 x 32000 x 4096          =   262,144,000
//   total                                           = 6,738,149,376  (Meta quotes 6.74e9)
TEST(ModelSpec, Llama2_7BHasSixPointSevenFourBillionParameters) {
  const ModelSpec spec = LoadLlm("Llama-2-7B");
  EXPECT_EQ(spec.AttentionParamsPerLayer(), 67'108'864);
  EXPECT_EQ(spec.MlpParamsPerExpert(), 135'266'304);
  EXPECT_EQ(spec.EmbeddingParams(), 262'144'000);
  EXPECT_EQ(spec.TotalParams(), 6'738'149'376);
  EXPECT_NEAR(static_cast<double>(spec.TotalParams()), 6.74e9, 0.01 * 6.74e9);
  EXPECT_EQ(spec.WeightBytesPerRank(1), 2 * 6'738'149'376);
}

// fp8 weights: the 6,476,005,376 layer parameters take a byte each, the 262,144,000
// embedding and LM-head ones keep two: 6,476,005,376 + 524,288,000 = 7,000,293,376 B.
// An fp8 KV cache: 32 layers x 2 x 32 heads x 128 x 1 B = 256 KiB per token (512 in bf16).
TEST(ModelSpec, Fp8WeightsAndKvTakeOneByteEachButEmbeddingsKeepTwo) {
  ModelSpec spec = LoadLlm("Llama-2-7B");
  EXPECT_EQ(spec.KvBytesPerTokenPerRank(1), 512 * 1024);
  spec.weight_dtype_bytes = 1;
  spec.kv_dtype_bytes = 1;
  EXPECT_EQ(spec.WeightBytesPerRank(1), 7'000'293'376);
  EXPECT_EQ(spec.WeightBytesPerRank(2), 3'500'146'688);
  EXPECT_EQ(spec.KvBytesPerTokenPerRank(1), 256 * 1024);
}

// Mixtral-8x7B: attention 2 x 4096^2 + 2 x 4096 x 1024 + router 4096 x 8 = 41,975,808;
// 8 experts x 3 x 4096 x 14336 = 1,409,286,144; x 32 layers + 2 x 32000 x 4096
// = 46,702,526,464, the "46.7B" usually quoted.
TEST(ModelSpec, Mixtral8x7BCountsEveryExpertAndTheRouter) {
  const ModelSpec spec = LoadLlm("Mixtral-8x7B");
  EXPECT_EQ(spec.num_experts, 8);
  EXPECT_EQ(spec.experts_per_token, 2);
  EXPECT_EQ(spec.AttentionParamsPerLayer(), 41'975'808);
  EXPECT_EQ(spec.TotalParams(), 46'702'526'464);
}

TEST(ModelSpec, KvShrinksWithTensorParallelismUntilHeadsRunOut) {
  const ModelSpec llama3 = LoadLlm("Llama-3-8B");  // 8 KV heads
  EXPECT_EQ(llama3.KvHeadsPerRank(2), 4);
  EXPECT_EQ(llama3.KvBytesPerTokenPerLayerPerRank(1), 8 * 128 * 2);
  EXPECT_EQ(llama3.KvBytesPerTokenPerRank(2), 65536);
  EXPECT_EQ(llama3.KvHeadsPerRank(8), 1);
  EXPECT_EQ(llama3.KvBytesPerTokenPerRank(8), 16384);

  const ModelSpec llama2_70b = LoadLlm("Llama-2-70B");  // 8 KV heads, 80 layers
  EXPECT_EQ(llama2_70b.KvBytesPerTokenPerRank(2), 163840);
  EXPECT_EQ(llama2_70b.KvBytesPerTokenPerRank(8), 40960);
}

TEST(ModelSpec, KvHeadsAreReplicatedWhenTensorParallelismExceedsThem) {
  const ModelSpec yi6b = LoadLlm("Yi-6B");  // 4 KV heads
  EXPECT_EQ(yi6b.KvHeadsPerRank(2), 2);
  EXPECT_EQ(yi6b.KvBytesPerTokenPerRank(2), 32768);
  EXPECT_EQ(yi6b.KvHeadsPerRank(8), 1);
  // One whole head per rank: no smaller than at TP 4.
  EXPECT_EQ(yi6b.KvBytesPerTokenPerRank(8), yi6b.KvBytesPerTokenPerRank(4));
  EXPECT_EQ(yi6b.KvBytesPerTokenPerRank(8), 2 * 32 * 1 * 128 * 2);
  EXPECT_EQ(LoadLlm("Llama-3-70B").KvHeadsPerRank(16), 1);
}

TEST(ModelSpec, HeadsSplitEvenlyOrTheProblemIsNamed) {
  const ModelSpec yi6b = LoadLlm("Yi-6B");  // 32 heads, 4 KV heads
  EXPECT_EQ(yi6b.HeadSplitProblem(1), "");
  EXPECT_EQ(yi6b.HeadSplitProblem(4), "");
  EXPECT_EQ(yi6b.HeadSplitProblem(8), "");  // each rank holds a copy of one KV head
  EXPECT_EQ(yi6b.HeadSplitProblem(3), "32 attention heads of Yi-6B do not split over 3 GPUs");
  ModelSpec six_kv = yi6b;  // 32 heads over 16 ranks split; 6 KV heads neither split nor copy
  six_kv.num_kv_heads = 6;
  EXPECT_EQ(six_kv.HeadSplitProblem(16),
            "6 KV heads of Yi-6B neither split over 16 GPUs nor copy evenly onto them");
}

// tiny-moe: layers 2, hidden 8, heads 4 x 2, kv_heads 2, ffn 16, vocab 10, 4 experts, tied.
//   attention = 8x8 [Q] + 2x8x4 [K,V] + 8x8 [O] + 8x4 [router] = 224
//   mlp per expert = 3x8x16 = 384;  embeddings (tied) = 10x8 = 80
//   total = 2 x (224 + 4 x 384) + 80 = 3600 params = 7200 bytes
TEST(ModelSpec, TinyMoeFixtureMatchesHandArithmetic) {
  const ModelSpec spec =
      LoadModelSpec(std::string(KVSIM_TEST_DATA_DIR) + "/hardware/tiny-moe.yaml");
  EXPECT_EQ(spec.name, "tiny-moe");
  EXPECT_TRUE(spec.tied_embeddings);
  EXPECT_EQ(spec.AttentionParamsPerLayer(), 224);
  EXPECT_EQ(spec.MlpParamsPerExpert(), 384);
  EXPECT_EQ(spec.EmbeddingParams(), 80);
  EXPECT_EQ(spec.TotalParams(), 3600);
  EXPECT_EQ(spec.WeightBytesPerRank(1), 7200);
  EXPECT_EQ(spec.WeightBytesPerRank(3), 2400);
  EXPECT_EQ(spec.WeightBytesPerRank(7), 1029);           // 7200 / 7 = 1028.57, rounded up
  EXPECT_EQ(spec.KvBytesPerTokenPerLayerPerRank(1), 8);  // 2 heads x 2 x 2 bytes
  EXPECT_EQ(spec.KvBytesPerTokenPerRank(1), 32);
  EXPECT_EQ(spec.KvBytesPerTokenPerRank(2), 16);
  EXPECT_EQ(spec.KvBytesPerTokenPerRank(4), 16);  // replicated head
}

TEST(ModelSpec, UntyingEmbeddingsAddsAnLmHeadOfVocabTimesHidden) {
  ModelSpec spec = LoadLlm("Qwen2.5-7B");
  EXPECT_FALSE(spec.tied_embeddings);
  const int64_t untied = spec.TotalParams();
  spec.tied_embeddings = true;
  EXPECT_EQ(untied - spec.TotalParams(), int64_t{152064} * 3584);
}

TEST(ModelSpec, DenseModelsHaveNoRouter) {
  ModelSpec spec = LoadLlm("Mistral-7B");
  const int64_t dense = spec.AttentionParamsPerLayer();
  spec.num_experts = 2;
  EXPECT_EQ(spec.AttentionParamsPerLayer() - dense, 2 * spec.hidden_size);
}

TEST(ModelSpec, TensorParallelBelowOneIsABug) {
  const ModelSpec spec = LoadLlm("Llama-3-8B");
  EXPECT_THROW(spec.KvHeadsPerRank(0), InvariantError);
  EXPECT_THROW(spec.WeightBytesPerRank(-1), InvariantError);
  EXPECT_THROW(spec.KvBytesPerTokenPerRank(0), InvariantError);
}

// ---- Malformed cards -------------------------------------------------------------

// A valid card, one key per line (line 1 = name ... line 14 = source).
constexpr const char* kValidCard =
    "name: broken\n"
    "num_layers: 32\n"
    "hidden_size: 4096\n"
    "num_heads: 32\n"
    "num_kv_heads: 8\n"
    "head_dim: 128\n"
    "ffn_size: 14336\n"
    "vocab_size: 32000\n"
    "max_context_tokens: 8192\n"
    "dtype_bytes: 2\n"
    "num_experts: 1\n"
    "experts_per_token: 1\n"
    "tied_embeddings: false\n"
    "source: test\n";

// Cards written to a temporary directory: kValidCard, edited or not, or other text.
class MalformedModelCard : public MalformedCardTest<&LoadModelSpec> {
 protected:
  MalformedModelCard() : MalformedCardTest(kValidCard) {}
};

TEST_F(MalformedModelCard, TheValidBaseCardLoads) {
  const ModelSpec spec = LoadModelSpec(Write("ok.yaml", kValidCard));
  EXPECT_EQ(spec.name, "broken");
  EXPECT_EQ(spec.KvBytesPerTokenPerRank(1), 131072);
}

TEST_F(MalformedModelCard, AnUnknownKeyIsRejectedWithItsFileAndLine) {
  const std::string path = Write("unknown.yaml", std::string(kValidCard) + "num_layerz: 3\n");
  EXPECT_THAT(ErrorOf(path), AllOf(HasSubstr("unknown.yaml:15:"), HasSubstr("'num_layerz'"),
                                   HasSubstr("unknown key")));
}

TEST_F(MalformedModelCard, AMissingKeyIsRejectedByName) {
  const std::string path = Write("missing.yaml", Edit("ffn_size", ""));
  EXPECT_THAT(ErrorOf(path),
              AllOf(HasSubstr("missing.yaml"), HasSubstr("'ffn_size'"), HasSubstr("missing")));
}

TEST_F(MalformedModelCard, ANegativeValueIsRejectedWithItsLine) {
  const std::string path = Write("negative.yaml", Edit("num_layers", "num_layers: -32"));
  EXPECT_THAT(ErrorOf(path), AllOf(HasSubstr("negative.yaml:2:"), HasSubstr("key 'num_layers'"),
                                   HasSubstr("expected a positive integer"), HasSubstr("'-32'")));
}

TEST_F(MalformedModelCard, AZeroValueIsRejected) {
  const std::string path = Write("zero.yaml", Edit("head_dim", "head_dim: 0"));
  EXPECT_THAT(ErrorOf(path), AllOf(HasSubstr("zero.yaml:6:"), HasSubstr("'head_dim'")));
}

TEST_F(MalformedModelCard, WrongTypesAreRejected) {
  EXPECT_THAT(ErrorOf(Write("frac.yaml", Edit("num_heads", "num_heads: 32.5"))),
              AllOf(HasSubstr("frac.yaml:4:"), HasSubstr("'num_heads'")));
  EXPECT_THAT(ErrorOf(Write("quoted.yaml", Edit("num_heads", "num_heads: \"32\""))),
              AllOf(HasSubstr("quoted.yaml:4:"), HasSubstr("'num_heads'")));
  EXPECT_THAT(ErrorOf(Write("list.yaml", Edit("vocab_size", "vocab_size: [1, 2]"))),
              AllOf(HasSubstr("list.yaml:8:"), HasSubstr("'vocab_size'"), HasSubstr("a list")));
  EXPECT_THAT(ErrorOf(Write("bool.yaml", Edit("tied_embeddings", "tied_embeddings: maybe"))),
              AllOf(HasSubstr("bool.yaml:13:"), HasSubstr("'tied_embeddings'")));
  EXPECT_THAT(ErrorOf(Write("empty.yaml", Edit("name", "name:"))),
              AllOf(HasSubstr("empty.yaml:1:"), HasSubstr("'name'")));
}

TEST_F(MalformedModelCard, ADtypeWidthNoEngineServesIsRejectedWithItsFileLineAndKey) {
  for (const char* bytes : {"3", "8", "0"}) {
    SCOPED_TRACE(bytes);
    const std::string path =
        Write("dtype.yaml", Edit("dtype_bytes", std::string("dtype_bytes: ") + bytes));
    EXPECT_THAT(ErrorOf(path),
                AllOf(HasSubstr(path + ":10: key 'dtype_bytes': expected the bytes of one element "
                                       "the model is served in: 2 (bf16, fp16) or 4 (fp32)"),
                      HasSubstr(std::string("got '") + bytes + "'")));
  }
}

// An fp8 checkpoint keeps embeddings, activations and logits in 16 bits: a card of
// 1-byte elements would charge them at 1 byte (about 1 GiB short on Llama-3-8B).
TEST_F(MalformedModelCard, OneByteElementsAreRefusedPointingAtTheFp8DeploymentKeys) {
  const std::string path = Write("dtype.yaml", Edit("dtype_bytes", "dtype_bytes: 1"));
  EXPECT_THAT(ErrorOf(path), AllOf(HasSubstr("deployment.weight_dtype: fp8"),
                                   HasSubstr("kv_cache.dtype: fp8"), HasSubstr("got '1'")));
}

TEST_F(MalformedModelCard, EveryServedDtypeWidthLoadsAndSizesTheKv) {
  for (const int64_t bytes : {2, 4}) {
    SCOPED_TRACE(bytes);
    const ModelSpec spec = LoadModelSpec(
        Write("dtype.yaml", Edit("dtype_bytes", "dtype_bytes: " + std::to_string(bytes))));
    EXPECT_EQ(spec.dtype_bytes, bytes);
    EXPECT_EQ(spec.KvBytesPerTokenPerRank(1), 65536 * bytes);
  }
}

TEST_F(MalformedModelCard, KvHeadsMustDivideQueryHeads) {
  const std::string path = Write("gqa.yaml", Edit("num_kv_heads", "num_kv_heads: 5"));
  EXPECT_THAT(ErrorOf(path), AllOf(HasSubstr("gqa.yaml:5:"), HasSubstr("'num_kv_heads'"),
                                   HasSubstr("does not divide")));
}

TEST_F(MalformedModelCard, ExpertsPerTokenCannotExceedExperts) {
  const std::string path = Write("moe.yaml", Edit("experts_per_token", "experts_per_token: 2"));
  EXPECT_THAT(ErrorOf(path), AllOf(HasSubstr("moe.yaml:12:"), HasSubstr("'experts_per_token'")));
}

TEST_F(MalformedModelCard, ADuplicatedKeyIsRejected) {
  const std::string path = Write("twice.yaml", std::string(kValidCard) + "num_layers: 40\n");
  EXPECT_THAT(ErrorOf(path),
              AllOf(HasSubstr("twice.yaml:15:"), HasSubstr("'num_layers'"), HasSubstr("line 2")));
}

TEST_F(MalformedModelCard, ImplausiblyLargeSizesAreRejected) {
  const std::string path = Write("huge.yaml", Edit("hidden_size", "hidden_size: 1000000000000"));
  EXPECT_THAT(ErrorOf(path), HasSubstr("huge.yaml"));
}

TEST_F(MalformedModelCard, TextThatIsNotYamlIsRejectedWithTheFileName) {
  EXPECT_THAT(ErrorOf(Write("garbage.yaml", "num_layers: [32, 40\nhidden: {\n")),
              AllOf(HasSubstr("garbage.yaml"), HasSubstr("not valid YAML")));
  EXPECT_THAT(ErrorOf(Write("scalar.yaml", "just some words\n")), HasSubstr("scalar.yaml"));
  EXPECT_THAT(ErrorOf(Write("blank.yaml", "")), HasSubstr("blank.yaml"));
}

TEST_F(MalformedModelCard, AMissingFileIsRejectedWithItsName) {
  const std::string path = dir_.PathOf("no-such-card.yaml");
  EXPECT_THAT(ErrorOf(path), HasSubstr("no-such-card.yaml"));
  const std::string dir = dir_.path().string();  // a directory, not a file
  EXPECT_THAT(ErrorOf(dir), HasSubstr(dir));
}

// Found by fuzzing (tests/fuzz/fuzz_scenario): a file name longer than the file system
// allows made the existence check throw std::filesystem::filesystem_error.
TEST_F(MalformedModelCard, AFileNameTooLongForTheFileSystemIsRejectedWithItsName) {
  const std::string path = dir_.PathOf(std::string(300, 'x') + ".yaml");
  EXPECT_THAT(ErrorOf(path), AllOf(HasSubstr(path), HasSubstr("cannot open card file")));
}

}  // namespace
}  // namespace kvsim
