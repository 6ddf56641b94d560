// ConfigTree: loading YAML files, dotted-path overrides, dumping.
#include "sim/config/yaml_tree.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <string>
#include <vector>

#include "sim/core/check.h"
#include "tests/testing/input_error.h"
#include "tests/testing/temp_dir.h"

namespace kvsim {
namespace {

namespace fs = std::filesystem;
using ::kvsim::testing::InputErrorMessage;
using ::kvsim::testing::TempDir;
using ::testing::HasSubstr;

ConfigTree Tree(const std::string& yaml) { return ConfigTree::Parse(yaml, "/configs/test.yaml"); }

// ---------------------------------------------------------------------------
// Parse and Load

TEST(ConfigTree, ParseReadsNestedMappings) {
  const ConfigTree tree = Tree("seed: 7\nscheduler:\n  type: vllm\n  max_num_seqs: 64\n");
  EXPECT_EQ(tree.root()["seed"].as<int>(), 7);
  EXPECT_EQ(tree.root()["scheduler"]["type"].as<std::string>(), "vllm");
  EXPECT_EQ(tree.root()["scheduler"]["max_num_seqs"].as<int>(), 64);
  EXPECT_EQ(tree.origin(), "/configs/test.yaml");
  EXPECT_EQ(tree.base_dir(), "/configs");
}

TEST(ConfigTree, ACopyKeepsItsNodesFilePositionsAndItsOverrides) {
  // A compare entry's tree is a copy: its errors must still name the file's line.
  ConfigTree tree = ConfigTree::Parse("a: 1\nb:\n  c: 2\n", "f.yaml");
  tree.Set("b.d", "3", "plan.yaml:4: set");
  const ConfigTree copy(tree);
  EXPECT_EQ(copy.root()["b"]["c"].Mark().line, 2);  // 0-based: the file's line 3
  EXPECT_EQ(copy.root()["b"]["d"].as<int>(), 3);
  EXPECT_EQ(copy.overridden(), tree.overridden());
  EXPECT_EQ(copy.override_origins(), tree.override_origins());
  ConfigTree assigned = ConfigTree::Parse("x: 1\n", "g.yaml");
  assigned = copy;
  EXPECT_EQ(assigned.root()["b"]["c"].Mark().line, 2);
  EXPECT_EQ(assigned.origin(), "f.yaml");
  // The copy is its own: a Set on it leaves the original as it was.
  assigned.Set("a", "5");
  EXPECT_EQ(tree.root()["a"].as<int>(), 1);
}

TEST(ConfigTree, LoadReadsAFileAndRemembersWhereItCameFrom) {
  TempDir dir;
  const std::string path = dir.Write("scenario.yaml", "model: Llama-3-8B\nreplicas: 2\n");
  const ConfigTree tree = ConfigTree::Load(path);
  EXPECT_EQ(tree.root()["model"].as<std::string>(), "Llama-3-8B");
  EXPECT_EQ(tree.root()["replicas"].as<int>(), 2);
  EXPECT_EQ(tree.origin(), path);
  EXPECT_EQ(fs::path(tree.base_dir()), dir.path());
}

TEST(ConfigTree, LoadOfAMissingFileIsAnInputErrorNamingTheFile) {
  TempDir dir;
  const std::string path = dir.PathOf("no_such_config.yaml");
  const std::string message = InputErrorMessage([&] { ConfigTree::Load(path); });
  EXPECT_THAT(message, HasSubstr(path));
}

TEST(ConfigTree, ADirectoryGivenAsTheConfigIsNamedAsOne) {
  TempDir dir;
  EXPECT_THAT(InputErrorMessage([&] { ConfigTree::Load(dir.path().string()); }),
              HasSubstr(": a directory, not a config file"));
}

TEST(ConfigTree, ASecondYamlDocumentIsAnErrorAtItsLine) {
  EXPECT_THAT(
      InputErrorMessage([] { ConfigTree::Parse("seed: 1\nmodel: x\n---\nseed: 3\n", "two.yaml"); }),
      HasSubstr("two.yaml:3: a second YAML document (after '---')"));  // the separator's line
  // Text on which yaml-cpp's LoadAll never returns (found by fuzzing): an error, or after
  // the first document a second that holds nothing, as a trailing '---' does.
  EXPECT_THAT(InputErrorMessage([] { ConfigTree::Parse(",", "comma.yaml"); }),
              HasSubstr("comma.yaml: the config must be a YAML mapping"));
  EXPECT_EQ(ConfigTree::Parse("seed: 1\n---\n,\n", "after.yaml").root()["seed"].as<int>(), 1);
  // A document start marker before the only document is fine, and so is a trailing one.
  EXPECT_EQ(ConfigTree::Parse("seed: 1\n---\n", "end.yaml").root()["seed"].as<int>(), 1);
  EXPECT_EQ(ConfigTree::Parse("---\nseed: 1\n", "one.yaml").root()["seed"].as<int>(), 1);
}

TEST(ConfigTree, InvalidYamlIsAnInputErrorWithFileAndLine) {
  const std::string message = InputErrorMessage(
      [] { ConfigTree::Parse("seed: 1\nmodel: x\nlist: [1, 2\nother: 3\n", "bad.yaml"); });
  EXPECT_THAT(message, ::testing::ContainsRegex("bad\\.yaml:[0-9]+: "));
  EXPECT_THAT(message, HasSubstr("invalid YAML"));
}

TEST(ConfigTree, InvalidYamlReportsTheLineOfTheProblem) {
  // A second ': ' on line 3 is not a valid map value.
  const std::string message =
      InputErrorMessage([] { ConfigTree::Parse("a: 1\nb: 2\nc: d: e\n", "bad.yaml"); });
  EXPECT_THAT(message, HasSubstr("bad.yaml:3:"));
}

TEST(ConfigTree, LoadOfInvalidYamlNamesTheFileAndLine) {
  TempDir dir;
  const std::string path = dir.Write("broken.yaml", "a: 1\nb: 2\nc: d: e\n");
  const std::string message = InputErrorMessage([&] { ConfigTree::Load(path); });
  EXPECT_THAT(message, HasSubstr(path + ":3:"));
}

// Found by fuzzing (tests/fuzz/fuzz_calibration): yaml-cpp reads any bytes, but writes
// what is not UTF-8 as U+FFFD, so names read from a non-UTF-8 file came back changed in
// what kvsim wrote (calibration.yaml's GPU names, compare and --set values).
TEST(ConfigTree, TextThatIsNotUtf8IsAnInputErrorNamingItsLineAndColumn) {
  const std::string message =
      InputErrorMessage([] { ConfigTree::Parse("seed: 1\ngpu: RTX-409\xE9\xC0\n", "bad.yaml"); });
  EXPECT_THAT(message, HasSubstr("bad.yaml:2: byte 0xE9 at column 13 is not UTF-8 text"));
}

// Found by fuzzing (tests/fuzz/fuzz_scenario): yaml-cpp reads a raw NUL in a plain scalar
// as other bytes ("thre<NUL>_rows" became "thre", 0xA0, "rows"), so the config kvsim
// wrote back (Dump) was not UTF-8 and did not parse again.
TEST(ConfigTree, ANulByteIsAnInputErrorNamingItsLineAndColumn) {
  const std::string text = std::string("seed: 1\nworkload: {trace: thre") + '\0' + "_rows.csv}\n";
  EXPECT_THAT(InputErrorMessage([&] { ConfigTree::Parse(text, "nul.yaml"); }),
              HasSubstr("nul.yaml:2: byte 0x00 at column 23 is not UTF-8 text"));
}

TEST(ConfigTree, Utf8TextIsAccepted) {
  const ConfigTree tree = Tree("# caf\xC3\xA9 \xE2\x82\xAC\nlabel: \"\xF0\x9F\x98\x80\"\n");
  EXPECT_EQ(tree.root()["label"].as<std::string>(), "\xF0\x9F\x98\x80");
}

TEST(ConfigTree, AnOverrideThatIsNotUtf8IsAnInputErrorNamingItsKey) {
  ConfigTree tree = Tree("seed: 1\n");
  EXPECT_THAT(InputErrorMessage([&] { tree.Set("gpu=H100\xFF"); }),
              HasSubstr("--set gpu: the value holds byte 0xFF, which is not UTF-8 text"));
  EXPECT_THAT(InputErrorMessage([&] { tree.Set("g\x80pu=H100"); }),
              HasSubstr("--set: the key path holds byte 0x80, which is not UTF-8 text"));
  EXPECT_FALSE(tree.root()["gpu"].IsDefined());
}

TEST(ConfigTree, ARootThatIsNotAMappingIsAnInputError) {
  EXPECT_THAT(InputErrorMessage([] { ConfigTree::Parse("- a\n- b\n", "list.yaml"); }),
              HasSubstr("list.yaml"));
  EXPECT_THAT(InputErrorMessage([] { ConfigTree::Parse("just a string\n", "scalar.yaml"); }),
              HasSubstr("mapping"));
  EXPECT_THROW(ConfigTree::Parse("", "empty.yaml"), InputError);
}

// ---------------------------------------------------------------------------
// Set

TEST(ConfigTree, SetCreatesNestedMapsAlongTheDottedPath) {
  ConfigTree tree = Tree("seed: 1\n");
  tree.Set("a.b.c=value");
  ASSERT_TRUE(tree.root()["a"].IsMap());
  ASSERT_TRUE(tree.root()["a"]["b"].IsMap());
  EXPECT_EQ(tree.root()["a"]["b"]["c"].as<std::string>(), "value");
  EXPECT_EQ(tree.root()["seed"].as<int>(), 1);
}

TEST(ConfigTree, SetOverridesAnExistingScalarAndKeepsItsSiblings) {
  ConfigTree tree = Tree("scheduler:\n  type: vllm\n  max_num_seqs: 256\n");
  tree.Set("scheduler.max_num_seqs=32");
  EXPECT_EQ(tree.root()["scheduler"]["max_num_seqs"].as<int>(), 32);
  EXPECT_EQ(tree.root()["scheduler"]["type"].as<std::string>(), "vllm");
}

TEST(ConfigTree, SetAddsAKeyToAnExistingMap) {
  ConfigTree tree = Tree("kv_cache:\n  type: paged\n");
  tree.Set("kv_cache.block_tokens=32");
  EXPECT_EQ(tree.root()["kv_cache"]["type"].as<std::string>(), "paged");
  EXPECT_EQ(tree.root()["kv_cache"]["block_tokens"].as<int>(), 32);
}

TEST(ConfigTree, SetReplacesANullValueWithAMap) {
  ConfigTree tree = Tree("timing:\n");
  tree.Set("timing.type=fixed");
  EXPECT_EQ(tree.root()["timing"]["type"].as<std::string>(), "fixed");
}

TEST(ConfigTree, SetParsesTheValueAsYaml) {
  ConfigTree tree = Tree("seed: 1\n");
  tree.Set("n=42");
  tree.Set("x=0.25");
  tree.Set("flag=true");
  tree.Set("list=[1, 2, 3]");
  tree.Set("map={a: 1, b: two}");
  tree.Set("text=hello world");

  EXPECT_TRUE(tree.root()["n"].IsScalar());
  EXPECT_EQ(tree.root()["n"].as<int64_t>(), 42);
  EXPECT_DOUBLE_EQ(tree.root()["x"].as<double>(), 0.25);
  EXPECT_TRUE(tree.root()["flag"].as<bool>());
  ASSERT_TRUE(tree.root()["list"].IsSequence());
  EXPECT_EQ(tree.root()["list"].as<std::vector<int>>(), (std::vector<int>{1, 2, 3}));
  ASSERT_TRUE(tree.root()["map"].IsMap());
  EXPECT_EQ(tree.root()["map"]["a"].as<int>(), 1);
  EXPECT_EQ(tree.root()["map"]["b"].as<std::string>(), "two");
  EXPECT_EQ(tree.root()["text"].as<std::string>(), "hello world");
}

TEST(ConfigTree, SetSplitsOnTheFirstEqualsSignOnly) {
  ConfigTree tree = Tree("seed: 1\n");
  tree.Set("a.b=x=y");
  EXPECT_EQ(tree.root()["a"]["b"].as<std::string>(), "x=y");
}

TEST(ConfigTree, SetWithKeyPathAndValueTakesThemSeparately) {
  ConfigTree tree = Tree("seed: 1\n");
  tree.Set("kv_cache.page_bytes", "64KiB");
  EXPECT_EQ(tree.root()["kv_cache"]["page_bytes"].as<std::string>(), "64KiB");
}

TEST(ConfigTree, LaterSetsOverrideEarlierOnes) {
  ConfigTree tree = Tree("seed: 1\n");
  tree.Set("seed=2");
  tree.Set("seed=3");
  EXPECT_EQ(tree.root()["seed"].as<int>(), 3);
}

TEST(ConfigTree, AnAssignmentWithoutEqualsSignIsMalformed) {
  ConfigTree tree = Tree("seed: 1\n");
  EXPECT_THAT(InputErrorMessage([&] { tree.Set("novalue"); }), HasSubstr("novalue"));
}

TEST(ConfigTree, AnAssignmentWithoutKeyIsMalformed) {
  ConfigTree tree = Tree("seed: 1\n");
  EXPECT_THAT(InputErrorMessage([&] { tree.Set("=x"); }), HasSubstr("=x"));
}

TEST(ConfigTree, AnAssignmentWithAnEmptyPathStepIsMalformed) {
  ConfigTree tree = Tree("seed: 1\n");
  EXPECT_THAT(InputErrorMessage([&] { tree.Set("a..b=1"); }), HasSubstr("a..b"));
  EXPECT_THAT(InputErrorMessage([&] { tree.Set(".a=1"); }), HasSubstr(".a"));
  EXPECT_FALSE(tree.root()["a"].IsDefined());
}

TEST(ConfigTree, AnAssignmentWithATrailingDotIsMalformed) {
  ConfigTree tree = Tree("seed: 1\n");
  EXPECT_THAT(InputErrorMessage([&] { tree.Set("a.b.=1"); }), HasSubstr("a.b."));
}

TEST(ConfigTree, SettingThroughAScalarIsAnErrorNamingTheStep) {
  ConfigTree tree = Tree("seed: 1\nmodel: Llama-3-8B\n");
  const std::string message = InputErrorMessage([&] { tree.Set("model.name=x"); });
  EXPECT_THAT(message, HasSubstr("model.name"));
  EXPECT_THAT(message, HasSubstr("'model' is not a mapping"));
  EXPECT_EQ(tree.root()["model"].as<std::string>(), "Llama-3-8B");
}

TEST(ConfigTree, SettingThroughAListIsAnError) {
  ConfigTree tree = Tree("compare: [1, 2]\n");
  EXPECT_THROW(tree.Set("compare.label=x"), InputError);
}

TEST(ConfigTree, AnInvalidYamlValueIsAnInputErrorNamingTheAssignment) {
  ConfigTree tree = Tree("seed: 1\n");
  EXPECT_THAT(InputErrorMessage([&] { tree.Set("a.b=[1, 2"); }), HasSubstr("a.b"));
}

TEST(ConfigTree, CopiesAreIndependent) {
  const ConfigTree original = Tree("scheduler:\n  max_num_seqs: 8\n");
  ConfigTree copy = original;
  copy.Set("scheduler.max_num_seqs=16");
  EXPECT_EQ(original.root()["scheduler"]["max_num_seqs"].as<int>(), 8);
  EXPECT_EQ(copy.root()["scheduler"]["max_num_seqs"].as<int>(), 16);

  ConfigTree assigned = Tree("seed: 5\n");
  assigned = original;
  assigned.Set("scheduler.max_num_seqs=4");
  EXPECT_EQ(original.root()["scheduler"]["max_num_seqs"].as<int>(), 8);
  EXPECT_EQ(assigned.origin(), original.origin());
}

// ---------------------------------------------------------------------------
// Dump

TEST(ConfigTree, DumpRoundTripsThroughParse) {
  ConfigTree tree = Tree(
      "seed: 42\nmodel: Llama-3-8B\ndeployment:\n  replicas: 2\n  gpu_memory_utilization: 0.9\n"
      "kv_cache:\n  type: vattention\n  page_bytes: 64KiB\n  overlap: true\n"
      "compare:\n  - label: a\n    set: {kv_cache.type: static}\n");
  tree.Set("scheduler.max_num_seqs=16");
  const std::string dumped = tree.Dump();
  const ConfigTree reparsed = ConfigTree::Parse(dumped, "dumped.yaml");

  EXPECT_EQ(reparsed.Dump(), dumped);
  EXPECT_EQ(reparsed.root()["seed"].as<int>(), 42);
  EXPECT_EQ(reparsed.root()["model"].as<std::string>(), "Llama-3-8B");
  EXPECT_EQ(reparsed.root()["deployment"]["replicas"].as<int>(), 2);
  EXPECT_DOUBLE_EQ(reparsed.root()["deployment"]["gpu_memory_utilization"].as<double>(), 0.9);
  EXPECT_EQ(reparsed.root()["kv_cache"]["page_bytes"].as<std::string>(), "64KiB");
  EXPECT_TRUE(reparsed.root()["kv_cache"]["overlap"].as<bool>());
  EXPECT_EQ(reparsed.root()["scheduler"]["max_num_seqs"].as<int>(), 16);
  EXPECT_EQ(reparsed.root()["compare"][0]["label"].as<std::string>(), "a");
  EXPECT_EQ(reparsed.root()["compare"][0]["set"]["kv_cache.type"].as<std::string>(), "static");
}

TEST(ConfigTree, DumpEndsWithANewline) {
  const std::string dumped = Tree("seed: 1\n").Dump();
  ASSERT_FALSE(dumped.empty());
  EXPECT_EQ(dumped.back(), '\n');
}

}  // namespace
}  // namespace kvsim
