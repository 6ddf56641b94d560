// Fuzz target: scenario configs. ConfigTree::Parse (sim/config/yaml_tree.h), the
// `--set` overrides (ConfigTree::Set) and DecodeScenario (sim/config/scenario_config.h),
// then each compare entry's overrides decoded as `kvsim compare` does.
//
// Input: scenario YAML, optionally followed by a line "#--set" and one key.path=value
// per line. The config is read as if it were configs/fuzz.yaml, so the bundled cards,
// traces and profiles resolve as they do for the configs in configs/.
#include "sim/config/scenario_config.h"
#include "sim/simulator/builder.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvsim;
  using namespace kvsim::fuzz;
  if (size > kMaxInputBytes) return 0;
  const std::string_view text = AsText(data, size);
  if (MayNameSpecialFile(text)) return 0;
  const ConfigInput input = SplitConfigInput(text);
  ExpectOnlyInputErrors("scenario", [&] {
    ConfigTree tree = ConfigTree::Parse(input.yaml, SourceDir() + "/configs/fuzz.yaml");
    for (const std::string& assignment : input.overrides) tree.Set(assignment);
    const ScenarioConfig config = DecodeScenario(tree, DefaultModelsDir());
    KVSIM_FUZZ_EXPECT(config.config_file == tree.origin(), "config_file is not the origin");
    KVSIM_FUZZ_EXPECT(config.deployment.tensor_parallel >= 1 && config.deployment.replicas >= 1,
                      "deployment counts below 1");
    KVSIM_FUZZ_EXPECT(config.scheduler.max_num_seqs >= 1, "max_num_seqs below 1");
    KVSIM_FUZZ_EXPECT(config.kv_cache.paged.block_tokens >= 1, "block_tokens below 1");
    // The dump of the tree (what `kvsim run` writes as config.yaml) parses again.
    try {
      ConfigTree::Parse(tree.Dump(), tree.origin());
    } catch (const InputError& e) {
      Die(std::string("the dumped config does not parse again: ") + e.what());
    }
    for (const CompareEntry& entry : config.compare) {
      ExpectOnlyInputErrors("compare entry", [&] {
        ConfigTree variant = tree;
        for (const auto& [key, value] : entry.overrides) variant.Set(key, value);
        DecodeScenario(variant, DefaultModelsDir());
      });
    }
  });
  return 0;
}
