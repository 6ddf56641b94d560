// LoadHuggingFaceConfig: a Hugging Face config.json read as a model card gives the same
// model as kvsim's own card of it; a directory names the model; what kvsim does not
// model is refused naming the key and line.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "sim/core/check.h"
#include "sim/hardware/model_spec.h"
#include "tests/testing/input_error.h"
#include "tests/testing/temp_dir.h"

namespace kvsim {
namespace {

using ::testing::HasSubstr;
using testing::InputErrorMessage;
using testing::TempDir;

const std::string kHf = std::string(KVSIM_SOURCE_DIR) + "/models/hf/";
const std::string kCards = std::string(KVSIM_SOURCE_DIR) + "/models/llm/";

void ExpectSameModel(const ModelSpec& a, const ModelSpec& b) {
  EXPECT_EQ(a.num_layers, b.num_layers);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.num_heads, b.num_heads);
  EXPECT_EQ(a.num_kv_heads, b.num_kv_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.ffn_size, b.ffn_size);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.max_context_tokens, b.max_context_tokens);
  EXPECT_EQ(a.dtype_bytes, b.dtype_bytes);
  EXPECT_EQ(a.num_experts, b.num_experts);
  EXPECT_EQ(a.experts_per_token, b.experts_per_token);
  EXPECT_EQ(a.tied_embeddings, b.tied_embeddings);
  EXPECT_EQ(a.TotalParams(), b.TotalParams());
  EXPECT_EQ(a.KvBytesPerTokenPerRank(1), b.KvBytesPerTokenPerRank(1));
}

TEST(HuggingFaceConfig, Llama3ConfigIsTheSameModelAsKvsimsCardAndTheFolderNamesIt) {
  const ModelSpec hf = LoadModelSpec(kHf + "Meta-Llama-3-8B/config.json");
  ExpectSameModel(hf, LoadModelSpec(kCards + "Llama-3-8B.yaml"));
  EXPECT_EQ(hf.name, "Meta-Llama-3-8B");
  // 2 x 32 layers x 8 KV heads x 128 x 2 bytes = 128 KiB per token.
  EXPECT_EQ(hf.KvBytesPerTokenPerRank(1), 131072);
  // The model directory is as good as the file in it.
  ExpectSameModel(LoadModelSpec(kHf + "Meta-Llama-3-8B"), hf);
}

TEST(HuggingFaceConfig, MixtralConfigCarriesItsExpertsAndTopK) {
  const ModelSpec hf = LoadModelSpec(kHf + "Mixtral-8x7B-v0.1");
  ExpectSameModel(hf, LoadModelSpec(kCards + "Mixtral-8x7B.yaml"));
  EXPECT_EQ(hf.num_experts, 8);
  EXPECT_EQ(hf.experts_per_token, 2);
}

// A config written in the test, its fields edited.
class HfConfigTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& json) { return dir_.Write("config.json", json); }
  static std::string Llama(const std::string& extra) {
    return "{\n"
           "  \"model_type\": \"llama\",\n"
           "  \"num_hidden_layers\": 2,\n"
           "  \"hidden_size\": 256,\n"
           "  \"num_attention_heads\": 4,\n"
           "  \"intermediate_size\": 512,\n"
           "  \"vocab_size\": 1000,\n"
           "  \"max_position_embeddings\": 2048" +
           extra + "\n}\n";
  }
  TempDir dir_;
};

TEST_F(HfConfigTest, DefaultsFollowTransformersKvHeadsHeadDimAndDtype) {
  const ModelSpec m = LoadModelSpec(Write(Llama("")));
  EXPECT_EQ(m.num_kv_heads, 4);  // num_key_value_heads absent: as many as query heads
  EXPECT_EQ(m.head_dim, 64);     // 256 / 4
  EXPECT_EQ(m.dtype_bytes, 2);   // torch_dtype absent: served in 16 bits
  EXPECT_FALSE(m.tied_embeddings);
  EXPECT_EQ(m.num_experts, 1);
  const ModelSpec gemma = LoadModelSpec(Write(
      "{\"model_type\": \"gemma\", \"num_hidden_layers\": 2, \"hidden_size\": 256, "
      "\"num_attention_heads\": 2, \"head_dim\": 256, \"intermediate_size\": 512, "
      "\"vocab_size\": 1000, \"max_position_embeddings\": 2048, \"torch_dtype\": \"float32\"}"));
  EXPECT_TRUE(gemma.tied_embeddings);  // Gemma's default
  EXPECT_EQ(gemma.head_dim, 256);      // given, not hidden / heads
  EXPECT_EQ(gemma.dtype_bytes, 2);     // float32 checkpoints are served in 16 bits
}

TEST_F(HfConfigTest, WhatKvsimDoesNotModelIsRefusedNamingTheKeyAndLine) {
  EXPECT_THAT(InputErrorMessage([&] {
                LoadModelSpec(Write("{\"model_type\": \"deepseek_v3\", \"hidden_size\": 1}"));
              }),
              HasSubstr("config.json:1: 'model_type': model_type 'deepseek_v3' is not a family"));
  EXPECT_THAT(
      InputErrorMessage([&] { LoadModelSpec(Write(Llama(",\n  \"sliding_window\": 1024"))); }),
      HasSubstr("config.json:9: 'sliding_window': sliding-window attention"));
  EXPECT_THAT(
      InputErrorMessage([&] { LoadModelSpec(Write(Llama(",\n  \"sliding_window\": 1024"))); }),
      HasSubstr("set sliding_window to null in a copy of this config.json"));
  // A window as long as the context bounds nothing.
  EXPECT_NO_THROW(LoadModelSpec(Write(Llama(",\n  \"sliding_window\": 2048"))));
  // Nor does Qwen2's when max_window_layers reaches the layer count (the window applies
  // from that layer on); from layer 1 of 2 it bounds the second layer's cache.
  EXPECT_NO_THROW(
      LoadModelSpec(Write(Llama(",\n  \"sliding_window\": 1024, \"use_sliding_window\": true, "
                                "\"max_window_layers\": 2"))));
  EXPECT_THAT(InputErrorMessage([&] {
                LoadModelSpec(
                    Write(Llama(",\n  \"sliding_window\": 1024, \"use_sliding_window\": true, "
                                "\"max_window_layers\": 1")));
              }),
              HasSubstr("'sliding_window': sliding-window attention"));
  EXPECT_THAT(
      InputErrorMessage([&] {
        LoadModelSpec(Write(Llama(",\n  \"quantization_config\": {\"quant_method\": \"fp8\"}")));
      }),
      HasSubstr("'quantization_config': quantized checkpoints"));
  EXPECT_THAT(
      InputErrorMessage([&] { LoadModelSpec(Write(Llama(",\n  \"num_key_value_heads\": 3"))); }),
      HasSubstr("'num_key_value_heads': 3 does not divide num_attention_heads (4)"));
  EXPECT_THAT(InputErrorMessage([&] {
                LoadModelSpec(Write("{\"model_type\": \"llama\", \"hidden_size\": 256}"));
              }),
              HasSubstr("missing key 'num_hidden_layers'"));
  EXPECT_THAT(
      InputErrorMessage([&] { LoadModelSpec(Write(Llama(",\n  \"torch_dtype\": \"int4\""))); }),
      HasSubstr("'torch_dtype': 'int4' is not a dtype kvsim models"));
  EXPECT_THAT(InputErrorMessage([&] { LoadModelSpec(Write("[1, 2]")); }),
              HasSubstr("expected an object (a Hugging Face config.json)"));
  EXPECT_THAT(InputErrorMessage([&] { LoadModelSpec(dir_.PathOf("missing/config.json")); }),
              HasSubstr("cannot open the model's config.json"));
}

}  // namespace
}  // namespace kvsim
