// kvprobe's model-card reader and the per-rank GEMM shapes it derives: the real cards
// in models/llm read back, the GEMM widths worked out by hand for Llama-3-8B and Yi-6B,
// and malformed cards rejected with the file and line.
#include "tools/kvprobe/host/model_card.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/testing/temp_dir.h"

namespace kvprobe {
namespace {

using ::testing::HasSubstr;

std::string CardPath(const std::string& name) {
  return std::string(KVSIM_SOURCE_DIR) + "/models/llm/" + name + ".yaml";
}

// The CardError message of reading `path`; fails the test when it reads.
std::string ErrorOf(const std::string& path) {
  try {
    ReadModelCard(path);
  } catch (const CardError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a CardError reading " << path;
  return "";
}

// Finds the GEMM of `layer`; fails the test when there is none.
GemmShape Layer(const std::vector<GemmShape>& gemms, const std::string& layer) {
  for (const GemmShape& g : gemms) {
    if (g.layer == layer) return g;
  }
  ADD_FAILURE() << "no GEMM for layer " << layer;
  return {};
}

// A card of made-up numbers, one key per line; line N is the N-th line of the text.
constexpr const char* kValidCard =
    "name: Tiny\n"                // 1
    "num_layers: 2\n"             // 2
    "hidden_size: 64\n"           // 3
    "num_heads: 4\n"              // 4
    "num_kv_heads: 2\n"           // 5
    "head_dim: 16\n"              // 6
    "ffn_size: 256\n"             // 7
    "vocab_size: 1000\n"          // 8
    "num_experts: 1\n"            // 9
    "max_context_tokens: 512\n";  // 10

// kValidCard with the line of `key` replaced by `replacement` (removed when empty).
std::string Edit(const std::string& key, const std::string& replacement) {
  std::string text = kValidCard;
  const size_t begin = text.find(key + ":");
  EXPECT_NE(begin, std::string::npos) << key;
  const size_t end = text.find('\n', begin) + 1;
  text.replace(begin, end - begin, replacement.empty() ? "" : replacement + "\n");
  return text;
}

TEST(ReadModelCardTest, ReadsTheNumbersOfLlama3_8B) {
  const CardShapes c = ReadModelCard(CardPath("Llama-3-8B"));
  EXPECT_EQ(c.name, "Llama-3-8B");
  EXPECT_EQ(c.num_layers, 32);
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.num_heads, 32);
  EXPECT_EQ(c.num_kv_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.ffn_size, 14336);
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_EQ(c.num_experts, 1);
}

TEST(ReadModelCardTest, ReadsTheNumbersOfYi6B) {
  const CardShapes c = ReadModelCard(CardPath("Yi-6B"));
  EXPECT_EQ(c.name, "Yi-6B");
  EXPECT_EQ(c.num_layers, 32);
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.num_heads, 32);
  EXPECT_EQ(c.num_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.ffn_size, 11008);
  EXPECT_EQ(c.vocab_size, 64000);
  EXPECT_EQ(c.num_experts, 1);
}

TEST(ReadModelCardTest, ReadsThePerExpertFfnAndExpertCountOfMixtral) {
  const CardShapes c = ReadModelCard(CardPath("Mixtral-8x7B"));
  EXPECT_EQ(c.name, "Mixtral-8x7B");
  EXPECT_EQ(c.ffn_size, 14336);
  EXPECT_EQ(c.num_experts, 8);
  EXPECT_EQ(c.vocab_size, 32000);
}

TEST(ReadModelCardTest, ReadsEveryRealCard) {
  for (const char* name :
       {"Llama-2-70B", "Llama-2-7B", "Llama-3-70B", "Llama-3-8B", "Llama-3.1-70B", "Llama-3.1-8B",
        "Mistral-7B", "Mixtral-8x7B", "Qwen2.5-72B", "Qwen2.5-7B", "Yi-34B", "Yi-6B"}) {
    SCOPED_TRACE(name);
    const CardShapes c = ReadModelCard(CardPath(name));
    EXPECT_EQ(c.name, name);
    EXPECT_EQ(c.num_heads % c.num_kv_heads, 0);
    EXPECT_TRUE(SplitsOver(c, 1));
  }
}

TEST(ReadModelCardsTest, ReadsEveryYamlCardOfADirectoryInNameOrder) {
  kvsim::testing::TempDir dir;
  std::string b = kValidCard, a = kValidCard;
  b.replace(b.find("name: Tiny"), 10, "name: Bee");
  a.replace(a.find("name: Tiny"), 10, "name: Ant");
  dir.Write("b.yaml", b);
  dir.Write("a.yaml", a);
  dir.Write("notes.txt", "not a card");
  const std::vector<CardShapes> all = ReadModelCards(dir.path().string(), {});
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "Ant");
  EXPECT_EQ(all[1].name, "Bee");
  // Named cards, in the order given.
  const std::vector<CardShapes> named = ReadModelCards(dir.path().string(), {"b", "a"});
  ASSERT_EQ(named.size(), 2u);
  EXPECT_EQ(named[0].name, "Bee");
  EXPECT_EQ(named[1].name, "Ant");
}

TEST(ReadModelCardsTest, ADirectoryWithoutCardsIsAnErrorNamingIt) {
  kvsim::testing::TempDir dir;
  dir.Write("notes.txt", "not a card");
  try {
    ReadModelCards(dir.path().string(), {});
    FAIL() << "expected a CardError";
  } catch (const CardError& e) {
    EXPECT_THAT(e.what(), HasSubstr(dir.path().string() + ": no model cards (*.yaml)"));
  }
}

TEST(ReadModelCardTest, SkipsCommentsAndFoldedBlocks) {
  kvsim::testing::TempDir dir;
  const std::string path = dir.Write("card.yaml",
                                     "# num_layers: 99\n"
                                     "name: Tiny   # a comment after the value\n"
                                     "source: >-\n"
                                     "  hidden_size: 999 in a folded block\n"
                                     "  num_heads: not a number\n"
                                     "\n"
                                     "num_layers: 2\n"
                                     "hidden_size: 64  # width of the residual stream\n"
                                     "num_heads: 4\n"
                                     "num_kv_heads: 2\n"
                                     "notes: >-\n"
                                     "\tffn_size: 7\n"
                                     "head_dim: 16\n"
                                     "ffn_size: 256\n"
                                     "vocab_size: 1000\n"
                                     "num_experts: 1\n");
  const CardShapes c = ReadModelCard(path);
  EXPECT_EQ(c.name, "Tiny");
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.ffn_size, 256);
  EXPECT_EQ(c.vocab_size, 1000);
  EXPECT_EQ(c.num_experts, 1);
}

TEST(ReadModelCardTest, ReadsQuotedNamesWithoutTheirQuotesAsKvsimDoes) {
  kvsim::testing::TempDir dir;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"(name: "Llama-3-8B")", "Llama-3-8B"},
      {"name: 'Llama-3-8B'", "Llama-3-8B"},
      {R"(name: "Llama-3-8B"   # the card's name)", "Llama-3-8B"},
      {"name: 'Llama-3-8B'\t# the card's name", "Llama-3-8B"},
      {"name: 'it''s'", "it's"},
      {R"(name: "say \"hi\" \\ a\/b")", R"(say "hi" \ a/b)"},
      {R"(name: "x #1")", "x #1"},
      {"name: Llama-3-8B#1", "Llama-3-8B#1"},
  };
  for (const auto& [line, name] : cases) {
    SCOPED_TRACE(line);
    EXPECT_EQ(ReadModelCard(dir.Write("q.yaml", Edit("name", line))).name, name);
  }
}

TEST(ReadModelCardTest, AQuotedNameReadsAsTheSameCardAsThePlainOne) {
  kvsim::testing::TempDir dir;
  std::string text;
  {
    std::ifstream in(CardPath("Llama-3-8B"));
    std::stringstream all;
    all << in.rdbuf();
    text = all.str();
  }
  const size_t at = text.find("\nname: Llama-3-8B\n");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 18, "\nname: \"Llama-3-8B\"\n");
  const CardShapes quoted = ReadModelCard(dir.Write("Q.yaml", text));
  const CardShapes plain = ReadModelCard(CardPath("Llama-3-8B"));
  EXPECT_EQ(quoted.name, plain.name);
  EXPECT_EQ(quoted.hidden_size, plain.hidden_size);
  EXPECT_EQ(quoted.ffn_size, plain.ffn_size);
}

TEST(ReadModelCardTest, MalformedQuotedValuesAreErrorsNamingFileAndLine) {
  kvsim::testing::TempDir dir;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"(name: "Llama-3-8B)", "a value opened with \" does not end on its line"},
      {"name: 'Llama-3-8B", "a value opened with ' does not end on its line"},
      {R"(name: "Llama\)", "a value opened with \" does not end on its line"},
      {R"(name: "Llama" 3)",
       "text '3' after the quoted value \"Llama\" (only a # comment may follow)"},
      {R"(name: "Llama\t3")", "the escape '\\t' in a double-quoted value is not read by kvprobe"},
  };
  for (const auto& [line, message] : cases) {
    SCOPED_TRACE(line);
    const std::string path = dir.Write("bad.yaml", Edit("name", line));
    EXPECT_THAT(ErrorOf(path), HasSubstr(path + ":1: " + message));
  }
}

TEST(ReadModelCardTest, ValuesOfKeysKvprobeDoesNotReadAreNeverRefused) {
  kvsim::testing::TempDir dir;
  const std::string path = dir.Write(
      "other.yaml", std::string(kValidCard) + "notes: \"a tab \\t and an unclosed 'quote\"\n" +
                        "source: \"unclosed\n");
  EXPECT_EQ(ReadModelCard(path).name, "Tiny");
}

TEST(ReadModelCardTest, AnEmptyNameIsAnErrorNamingFileAndLine) {
  kvsim::testing::TempDir dir;
  for (const char* line : {"name: \"\"", "name: ''", "name:", "name: # no name"}) {
    SCOPED_TRACE(line);
    const std::string path = dir.Write("empty.yaml", Edit("name", line));
    EXPECT_THAT(ErrorOf(path), HasSubstr(path + ":1: key 'name': expected a non-empty string"));
  }
}

TEST(ReadModelCardTest, AQuotedNumberIsAnErrorAsInKvsim) {
  kvsim::testing::TempDir dir;
  const std::string path = dir.Write("q.yaml", Edit("num_layers", "num_layers: \"2\""));
  EXPECT_THAT(ErrorOf(path),
              HasSubstr(path + ":2: key 'num_layers': expected a positive integer, got '\"2\"'"));
}

TEST(ReadModelCardTest, ReadsCardsWithWindowsLineEnds) {
  kvsim::testing::TempDir dir;
  std::string text;
  for (char ch : std::string(kValidCard))
    text += ch == '\n' ? std::string("\r\n") : std::string(1, ch);
  const CardShapes c = ReadModelCard(dir.Write("crlf.yaml", text));
  EXPECT_EQ(c.name, "Tiny");
  EXPECT_EQ(c.num_experts, 1);
}

TEST(ReadModelCardTest, MissingFileIsAnErrorNamingIt) {
  kvsim::testing::TempDir dir;
  const std::string path = dir.PathOf("absent.yaml");
  const std::string message = ErrorOf(path);
  EXPECT_THAT(message, HasSubstr(path));
  EXPECT_THAT(message, HasSubstr("cannot open"));
}

TEST(ReadModelCardTest, EveryMissingKeyIsAnErrorNamingFileAndKey) {
  kvsim::testing::TempDir dir;
  for (const char* key : {"name", "num_layers", "hidden_size", "num_heads", "num_kv_heads",
                          "head_dim", "ffn_size", "vocab_size", "num_experts"}) {
    SCOPED_TRACE(key);
    const std::string path = dir.Write("missing.yaml", Edit(key, ""));
    const std::string message = ErrorOf(path);
    EXPECT_THAT(message, HasSubstr(path));
    EXPECT_THAT(message, HasSubstr(std::string("'") + key + "'"));
    EXPECT_THAT(message, HasSubstr("missing"));
  }
}

TEST(ReadModelCardTest, KeyOnlyInsideAFoldedBlockCountsAsMissing) {
  kvsim::testing::TempDir dir;
  const std::string path =
      dir.Write("folded.yaml", Edit("ffn_size", "source: >-\n  ffn_size: 256"));
  EXPECT_THAT(ErrorOf(path), HasSubstr("missing key 'ffn_size'"));
}

TEST(ReadModelCardTest, NonPositiveValueIsAnErrorNamingFileLineAndKey) {
  kvsim::testing::TempDir dir;
  for (const char* value : {"0", "-256"}) {
    SCOPED_TRACE(value);
    const std::string path =
        dir.Write("zero.yaml", Edit("ffn_size", std::string("ffn_size: ") + value));
    const std::string message = ErrorOf(path);
    EXPECT_THAT(message, HasSubstr(path + ":7:"));
    EXPECT_THAT(message, HasSubstr("'ffn_size'"));
    EXPECT_THAT(message, HasSubstr(std::string("got '") + value + "'"));
  }
}

TEST(ReadModelCardTest, NonIntegerValueIsAnErrorNamingFileLineAndKey) {
  kvsim::testing::TempDir dir;
  for (const char* value : {"64.5", "sixty-four", "64x", "", "1e3"}) {
    SCOPED_TRACE(value);
    const std::string path =
        dir.Write("bad.yaml", Edit("hidden_size", std::string("hidden_size: ") + value));
    const std::string message = ErrorOf(path);
    EXPECT_THAT(message, HasSubstr(path + ":3:"));
    EXPECT_THAT(message, HasSubstr("'hidden_size'"));
    EXPECT_THAT(message, HasSubstr("positive integer"));
  }
}

TEST(ReadModelCardTest, LineNumbersCountCommentsBlankLinesAndFoldedBlocks) {
  kvsim::testing::TempDir dir;
  const std::string path = dir.Write("lines.yaml", std::string("# a comment\n"
                                                               "\n"
                                                               "source: >-\n"
                                                               "  two folded\n"
                                                               "  lines\n") +
                                                       Edit("num_heads", "num_heads: four"));
  // num_heads is line 4 of the card, after five lines of preamble.
  EXPECT_THAT(ErrorOf(path), HasSubstr(path + ":9:"));
}

TEST(SplitsOverTest, SplitsWhenQueryHeadsFfnAndVocabDivideEvenly) {
  const CardShapes c = ReadModelCard(CardPath("Llama-3-8B"));
  for (int tp : {1, 2, 4, 8}) EXPECT_TRUE(SplitsOver(c, tp)) << tp;
}

TEST(SplitsOverTest, DoesNotSplitOverThreeRanks) {
  EXPECT_FALSE(SplitsOver(ReadModelCard(CardPath("Llama-3-8B")), 3));
}

TEST(SplitsOverTest, DoesNotSplitWhenQueryHeadsDoNotDivide) {
  // Qwen2.5-7B has 28 query heads: 4 ranks take 7 each, 8 ranks cannot split them.
  const CardShapes c = ReadModelCard(CardPath("Qwen2.5-7B"));
  EXPECT_TRUE(SplitsOver(c, 4));
  EXPECT_FALSE(SplitsOver(c, 8));
}

TEST(SplitsOverTest, NoRanksIsNotASplit) {
  const CardShapes c = ReadModelCard(CardPath("Llama-3-8B"));
  EXPECT_FALSE(SplitsOver(c, 0));
  EXPECT_FALSE(SplitsOver(c, -1));
}

TEST(LayerGemmsTest, Llama3_8BOnOneRank) {
  const std::vector<GemmShape> g = LayerGemms(ReadModelCard(CardPath("Llama-3-8B")), 1);
  ASSERT_EQ(g.size(), 5u);
  EXPECT_EQ(g[0].layer, "qkv");
  EXPECT_EQ(g[1].layer, "o");
  EXPECT_EQ(g[2].layer, "gate_up");
  EXPECT_EQ(g[3].layer, "down");
  EXPECT_EQ(g[4].layer, "lm_head");
  // qkv: (32 query + 2 x 8 KV heads) x 128 = 6144 outputs of the 4096-wide hidden state.
  EXPECT_EQ(g[0].n, 6144);
  EXPECT_EQ(g[0].k, 4096);
  EXPECT_EQ(g[1].n, 4096);
  EXPECT_EQ(g[1].k, 4096);
  EXPECT_EQ(g[2].n, 28672);
  EXPECT_EQ(g[2].k, 4096);
  EXPECT_EQ(g[3].n, 4096);
  EXPECT_EQ(g[3].k, 14336);
  EXPECT_EQ(g[4].n, 128256);
  EXPECT_EQ(g[4].k, 4096);
}

TEST(LayerGemmsTest, Llama3_8BOnEightRanksSplitsEveryWidthButTheHiddenOne) {
  const std::vector<GemmShape> g = LayerGemms(ReadModelCard(CardPath("Llama-3-8B")), 8);
  // 32/8 = 4 query heads and 8/8 = 1 KV head per rank: (4 + 2 x 1) x 128 = 768.
  EXPECT_EQ(Layer(g, "qkv").n, 768);
  EXPECT_EQ(Layer(g, "qkv").k, 4096);
  EXPECT_EQ(Layer(g, "o").n, 4096);
  EXPECT_EQ(Layer(g, "o").k, 512);         // 32 x 128 / 8
  EXPECT_EQ(Layer(g, "gate_up").n, 3584);  // 2 x 14336 / 8
  EXPECT_EQ(Layer(g, "gate_up").k, 4096);
  EXPECT_EQ(Layer(g, "down").n, 4096);
  EXPECT_EQ(Layer(g, "down").k, 1792);      // 14336 / 8
  EXPECT_EQ(Layer(g, "lm_head").n, 16032);  // 128256 / 8
  EXPECT_EQ(Layer(g, "lm_head").k, 4096);
}

TEST(LayerGemmsTest, Yi6BOnEightRanksReplicatesItsFourKvHeads) {
  const std::vector<GemmShape> g = LayerGemms(ReadModelCard(CardPath("Yi-6B")), 8);
  // 4 KV heads over 8 ranks: each rank keeps max(1, 4/8) = 1, so (4 + 2 x 1) x 128 = 768.
  EXPECT_EQ(Layer(g, "qkv").n, 768);
  EXPECT_EQ(Layer(g, "qkv").k, 4096);
  EXPECT_EQ(Layer(g, "o").k, 512);
  EXPECT_EQ(Layer(g, "gate_up").n, 2752);  // 2 x 11008 / 8
  EXPECT_EQ(Layer(g, "down").k, 1376);     // 11008 / 8
  EXPECT_EQ(Layer(g, "lm_head").n, 8000);  // 64000 / 8
}

TEST(LayerGemmsTest, Yi6BOnFourRanksHasOneKvHeadPerRank) {
  const std::vector<GemmShape> g = LayerGemms(ReadModelCard(CardPath("Yi-6B")), 4);
  EXPECT_EQ(Layer(g, "qkv").n, (8 + 2 * 1) * 128);
}

TEST(LayerGemmsTest, MixtralUsesOneExpertForTheFfn) {
  const std::vector<GemmShape> g = LayerGemms(ReadModelCard(CardPath("Mixtral-8x7B")), 2);
  EXPECT_EQ(Layer(g, "gate_up").n, 14336);  // 2 x 14336 / 2, not times 8 experts
  EXPECT_EQ(Layer(g, "down").k, 7168);
}

TEST(LayerGemmsTest, ThrowsWhenTheModelDoesNotSplit) {
  const CardShapes c = ReadModelCard(CardPath("Llama-3-8B"));
  EXPECT_THROW(LayerGemms(c, 3), CardError);
  EXPECT_THROW(LayerGemms(c, 0), CardError);
}

}  // namespace
}  // namespace kvprobe
