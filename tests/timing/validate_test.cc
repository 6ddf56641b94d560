// kvsim validate's core: [step] rows read strictly with "file:line", each turned into
// the iteration the simulator would time, and predicted by both timing models on the
// committed test profile, whose rows were set from the profiled model's own
// predictions (0.0%), and from them divided by 1.1 (+10.0%) and by 0.9 (-10.0%).
#include "sim/timing/validate.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "sim/core/check.h"
#include "sim/hardware/gpu_spec.h"
#include "sim/hardware/model_spec.h"
#include "sim/timing/execution_time_model.h"
#include "sim/timing/profile.h"

namespace kvsim {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kStepProfile = KVSIM_TEST_DATA_DIR "/timing/step_profile.txt";
constexpr const char* kModels = KVSIM_SOURCE_DIR "/models";
constexpr const char* kPath = "p.txt";  // the name parsed strings are read as

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The test profile up to and including its [step] header (line 116), then `rows`: the
// first of them is line 117.
std::string WithStepRows(const std::vector<std::string>& rows) {
  const std::string text = ReadText(kStepProfile);
  const std::string header = "[step]\n";
  std::string out = text.substr(0, text.find('\n', text.find(header) + header.size()) + 1);
  for (const std::string& row : rows) out += row + "\n";
  return out;
}

// The InputError message of reading the [step] rows of `text` ("" when none is thrown).
std::string StepError(const std::string& text) {
  try {
    ReadStepRows(ParseProfile(text, kPath));
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an InputError";
  return "";
}

ModelSpec Card(const std::string& name) {
  return LoadModelSpec(std::string(kModels) + "/llm/" + name + ".yaml");
}

GpuSpec H200() { return LoadGpuSpec(std::string(kModels) + "/gpu/H200.yaml"); }

ModelSpec LoadFromModels(const std::string& name) { return Card(name); }

double Us(Nanos t) { return static_cast<double>(t.count()) * 1e-3; }

// ---- Reading [step] rows -------------------------------------------------------

TEST(StepRows, EveryColumnOfTheTestProfileIsRead) {
  const std::vector<StepRow> rows = ReadStepRows(LoadProfile(kStepProfile));
  ASSERT_EQ(rows.size(), 5u);
  // Line 118: Llama-3-8B,1,paged,16,64,512,0,6347.355,1
  const StepRow& r = rows[1];
  EXPECT_EQ(r.line, 118);
  EXPECT_EQ(r.model, "Llama-3-8B");
  EXPECT_EQ(r.tensor_parallel, 1);
  EXPECT_EQ(r.layout, AttentionLayout::kPaged);
  EXPECT_EQ(r.block_tokens, 16);
  EXPECT_EQ(r.decode_seqs, 64);
  EXPECT_EQ(r.context_tokens, 512);
  EXPECT_EQ(r.prefill_tokens, 0);
  EXPECT_DOUBLE_EQ(r.time_us, 6347.355);
  EXPECT_TRUE(r.graph);
  EXPECT_EQ(r.kind(), StepKind::kDecode);
  EXPECT_EQ(rows[2].kind(), StepKind::kPrefill);  // 0 decodes, a 1,024-token chunk
  EXPECT_EQ(rows[3].kind(), StepKind::kMixed);    // 8 decodes and a 256-token chunk
  EXPECT_EQ(rows[3].layout, AttentionLayout::kPaged);
  EXPECT_FALSE(rows[3].graph);
  EXPECT_EQ(rows[4].model, "Llama-3-70B");
}

TEST(StepRows, AProfileWithoutAStepSectionHasNoRowsAndValidateRefusesIt) {
  const Profile p = LoadProfile(KVSIM_TEST_DATA_DIR "/timing/h200_kvprobe_quick_profile.txt");
  EXPECT_TRUE(ReadStepRows(p).empty());
  try {
    RequireStepRows(p);
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("h200_kvprobe_quick_profile.txt: no [step] rows; measure "
                                    "them with kvprobe --only step"));
  }
}

TEST(StepRows, AnEmptyStepSectionHasNoRows) {
  EXPECT_TRUE(ReadStepRows(ParseProfile(WithStepRows({}), kPath)).empty());
}

TEST(StepRows, AMissingColumnIsAnErrorAtTheHeader) {
  std::string text = WithStepRows({"Llama-3-8B,1,contiguous,0,16,2048,0,6266.63"});
  const std::string header = ",time_us,graph\n";
  text.replace(text.find(header), header.size(), ",time_us\n");
  try {
    ParseProfile(text, kPath);
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("p.txt:116: [step] header lacks required column 'graph'"));
  }
}

TEST(StepRows, ANonNumericCountIsAnErrorAtItsLine) {
  try {
    ParseProfile(WithStepRows({"Llama-3-8B,1,contiguous,0,many,2048,0,6266.63,1"}), kPath);
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("p.txt:117: [step] column 'decode_seqs': 'many' is not"));
  }
}

TEST(StepRows, ALayoutOtherThanContiguousOrPagedIsAnErrorAtItsLine) {
  EXPECT_THAT(StepError(WithStepRows({"Llama-3-8B,1,contiguous,0,16,2048,0,6266.63,1",
                                      "Llama-3-8B,1,radix,16,16,2048,0,6266.63,1"})),
              HasSubstr("p.txt:118: [step] layout 'radix' is not one of contiguous, paged"));
}

TEST(StepRows, BlockTokensMustMatchTheLayout) {
  EXPECT_THAT(StepError(WithStepRows({"Llama-3-8B,1,contiguous,16,16,2048,0,6266.63,1"})),
              HasSubstr("p.txt:117: [step] contiguous rows have block_tokens 0, got 16"));
  EXPECT_THAT(StepError(WithStepRows({"Llama-3-8B,1,paged,0,16,2048,0,6266.63,1"})),
              HasSubstr("p.txt:117: [step] block_tokens must be a positive integer"));
  EXPECT_THAT(StepError(WithStepRows({"Llama-3-8B,1,paged,16.5,16,2048,0,6266.63,1"})),
              HasSubstr("p.txt:117: [step] block_tokens must be a positive integer"));
}

TEST(StepRows, CountsMustBeNonNegativeIntegers) {
  EXPECT_THAT(StepError(WithStepRows({"Llama-3-8B,1,contiguous,0,-1,2048,0,6266.63,1"})),
              HasSubstr("p.txt:117: [step] decode_seqs must be a non-negative integer, got -1"));
  EXPECT_THAT(StepError(WithStepRows({"Llama-3-8B,1,contiguous,0,16,2048.5,0,6266.63,1"})),
              HasSubstr("p.txt:117: [step] context_tokens must be a non-negative integer"));
  EXPECT_THAT(StepError(WithStepRows({"Llama-3-8B,0,contiguous,0,16,2048,0,6266.63,1"})),
              HasSubstr("p.txt:117: [step] tensor_parallel must be a positive integer"));
}

TEST(StepRows, ARowThatComputesNothingIsAnError) {
  EXPECT_THAT(StepError(WithStepRows({"Llama-3-8B,1,contiguous,0,0,2048,0,6266.63,1"})),
              HasSubstr("p.txt:117: [step] the row computes nothing"));
}

TEST(StepRows, DecodingSequencesWithoutACachedContextAreAnError) {
  // A sequence decodes after its prompt: at least one token is cached.
  EXPECT_THAT(StepError(WithStepRows({"Llama-3-8B,1,contiguous,0,16,0,0,6266.63,1"})),
              HasSubstr("p.txt:117: [step] decoding sequences need context_tokens > 0, got 0"));
  EXPECT_THAT(StepError(WithStepRows({"Llama-3-8B,1,paged,16,8,0,256,9000,1"})),
              HasSubstr("p.txt:117: [step] decoding sequences need context_tokens > 0, got 0"));
  // A prefill chunk alone has no context: 0 is what kvprobe writes there.
  EXPECT_EQ(ReadStepRows(
                ParseProfile(WithStepRows({"Llama-3-8B,1,contiguous,0,0,0,1024,30000,0"}), kPath))
                .size(),
            1u);
}

TEST(StepRows, TimeMustBePositiveAndGraphZeroOrOne) {
  EXPECT_THAT(StepError(WithStepRows({"Llama-3-8B,1,contiguous,0,16,2048,0,0,1"})),
              HasSubstr("p.txt:117: [step] time_us must be positive, got 0"));
  EXPECT_THAT(StepError(WithStepRows({"Llama-3-8B,1,contiguous,0,16,2048,0,6266.63,2"})),
              HasSubstr("p.txt:117: [step] graph must be 0 or 1, got 2"));
}

TEST(StepRows, ARepeatedStepIsAnErrorNamingTheFirst) {
  EXPECT_THAT(StepError(WithStepRows({"Llama-3-8B,1,contiguous,0,16,2048,0,6266.63,1",
                                      "Llama-3-8B,1,paged,16,16,2048,0,6300,1",
                                      "Llama-3-8B,1,contiguous,0,16,2048,0,6270,1"})),
              HasSubstr("p.txt:119: [step] repeats the step of line 117"));
  // The same step run eagerly is another measurement.
  EXPECT_EQ(ReadStepRows(ParseProfile(WithStepRows({"Llama-3-8B,1,contiguous,0,16,2048,0,6266,1",
                                                    "Llama-3-8B,1,contiguous,0,16,2048,0,6400,0"}),
                                      kPath))
                .size(),
            2u);
}

// ---- The iteration of a step -----------------------------------------------------

TEST(StepBatchWork, SixteenDecodesOf2048CachedTokensEachReadTheirContextPlusThemselves) {
  StepRow r{.model = "m", .decode_seqs = 16, .context_tokens = 2048, .time_us = 1};
  const BatchWork w = StepBatchWork(r);
  EXPECT_EQ(w.num_seqs, 16);
  EXPECT_EQ(w.decode_tokens, 16);
  EXPECT_EQ(w.decode_context_tokens, 16 * 2049);  // 32,784
  EXPECT_EQ(w.prefill_tokens, 0);
  EXPECT_EQ(w.prefill_seqs, 0);
  EXPECT_EQ(w.prefill_attention_pairs, 0);
  EXPECT_EQ(w.logit_tokens, 16);
  EXPECT_EQ(w.max_context_tokens, 2049);
  EXPECT_EQ(w.layout, AttentionLayout::kContiguous);
}

TEST(StepBatchWork, APrefillChunkOf1024TokensIsOneSequenceWith524800CausalPairs) {
  StepRow r{.model = "m", .prefill_tokens = 1024, .time_us = 1};
  const BatchWork w = StepBatchWork(r);
  EXPECT_EQ(w.num_seqs, 1);
  EXPECT_EQ(w.prefill_seqs, 1);
  EXPECT_EQ(w.prefill_tokens, 1024);
  EXPECT_EQ(w.decode_tokens, 0);
  EXPECT_EQ(w.decode_context_tokens, 0);
  EXPECT_EQ(w.prefill_attention_pairs, 1024.0 * 1025 / 2);  // 524,800
  EXPECT_EQ(w.logit_tokens, 1);
  EXPECT_EQ(w.max_context_tokens, 1024);
}

TEST(StepBatchWork, AMixedPagedStepCarriesItsBlockSizeAndTheWiderContext) {
  StepRow r{.model = "m",
            .layout = AttentionLayout::kPaged,
            .block_tokens = 16,
            .decode_seqs = 8,
            .context_tokens = 1024,
            .prefill_tokens = 256,
            .time_us = 1};
  const BatchWork w = StepBatchWork(r);
  EXPECT_EQ(w.num_seqs, 9);  // 8 decodes + the chunk
  EXPECT_EQ(w.prefill_seqs, 1);
  EXPECT_EQ(w.decode_tokens, 8);
  EXPECT_EQ(w.decode_context_tokens, 8 * 1025);           // 8,200
  EXPECT_EQ(w.prefill_attention_pairs, 256.0 * 257 / 2);  // 32,896
  EXPECT_EQ(w.logit_tokens, 9);                           // one LM-head row per sequence
  EXPECT_EQ(w.max_context_tokens, 1025);                  // max(1024 + 1, 256)
  EXPECT_EQ(w.layout, AttentionLayout::kPaged);
  EXPECT_EQ(w.block_tokens, 16);
  r.prefill_tokens = 4096;  // a chunk longer than the decodes' contexts
  EXPECT_EQ(StepBatchWork(r).max_context_tokens, 4096);
}

TEST(ValidationEngine, HasNoCpuTimeButTheVllmV1KernelGap) {
  const EngineConfig e = ValidationEngine();
  EXPECT_EQ(e.preset, EngineConfig::Preset::kNone);
  EXPECT_EQ(e.per_iteration_s, 0);
  EXPECT_EQ(e.per_seq_s, 0);
  EXPECT_EQ(e.per_prefill_token_s, 0);
  EXPECT_EQ(e.block_table_entry_s, 0);
  EXPECT_EQ(e.launch_per_layer_s, 0);
  EXPECT_EQ(e.kernel_gap_s, 1e-6);  // vllm_v1's
}

// ---- Predicting the test profile ---------------------------------------------------

// The profiled model of the test profile for Llama-3-8B at TP 1, set up as validate
// sets it up: prefill attention measured, kvprobe's paged kernel, no CPU time.
std::unique_ptr<ExecutionTimeModel> ProfiledLlama8B(const Profile& p) {
  return NewProfiledModel(
      p, Card("Llama-3-8B"), H200(), 1,
      {.prefill_attention = ProfiledConfig::PrefillAttention::kMeasured},
      {.engine = ValidationEngine(), .allreduce = {}, .paged_kernel = PagedKernel::kProfiled});
}

TEST(ValidateProfile, EachRowIsPredictedAsTheProfiledModelTimesItsIteration) {
  const Profile p = LoadProfile(kStepProfile);
  const Validation v = ValidateProfile(p, H200(), LoadFromModels, {});
  const auto profiled = ProfiledLlama8B(p);
  const auto roofline = NewRooflineModel(
      Card("Llama-3-8B"), H200(), 1, {},
      {.engine = ValidationEngine(), .allreduce = {}, .paged_kernel = PagedKernel::kFlashPaged});
  ASSERT_EQ(v.rows.size(), 4u);
  for (const StepPrediction& s : v.rows) {
    const BatchWork w = StepBatchWork(s.row);
    EXPECT_EQ(s.profiled_us, Us(profiled->IterationTime(w))) << "line " << s.row.line;
    EXPECT_EQ(s.roofline_us, Us(roofline->IterationTime(w))) << "line " << s.row.line;
  }
  EXPECT_EQ(v.measured_on, "NVIDIA H200");
  EXPECT_EQ(v.gpu_card, "H200");
}

TEST(ValidateProfile, RowsSetToThePredictionHaveNoErrorAndTheOthersTenPercent) {
  const Validation v = ValidateProfile(LoadProfile(kStepProfile), H200(), LoadFromModels, {});
  ASSERT_EQ(v.rows.size(), 4u);
  // Lines 117 and 118 hold the prediction to the nanosecond (time_us with 3 decimals).
  EXPECT_NEAR(v.rows[0].profiled_us, v.rows[0].row.time_us, 5e-4);
  EXPECT_NEAR(v.rows[0].profiled_error(), 0.0, 1e-6);
  EXPECT_NEAR(v.rows[1].profiled_error(), 0.0, 1e-6);
  // Line 119 is the prediction / 1.1: the model predicts 10% longer than measured.
  EXPECT_NEAR(v.rows[2].profiled_us / v.rows[2].row.time_us, 1.1, 1e-6);
  EXPECT_NEAR(v.rows[2].profiled_error(), +0.10, 1e-6);
  // Line 120 is the prediction / 0.9: 10% shorter.
  EXPECT_NEAR(v.rows[3].profiled_error(), -0.10, 1e-6);
  // The roofline's error is against the same measurement.
  EXPECT_DOUBLE_EQ(v.rows[2].roofline_error(), v.rows[2].roofline_us / v.rows[2].row.time_us - 1);
}

TEST(ValidateProfile, AModelWithoutGemmRowsIsNotPredictableAndSaysWhy) {
  const Validation v = ValidateProfile(LoadProfile(kStepProfile), H200(), LoadFromModels, {});
  ASSERT_EQ(v.skipped.size(), 1u);
  EXPECT_EQ(v.skipped[0].model, "Llama-3-70B");
  EXPECT_EQ(v.skipped[0].tensor_parallel, 1);
  EXPECT_EQ(v.skipped[0].lines, std::vector<int>{121});
  EXPECT_THAT(v.skipped[0].reason,
              HasSubstr("the profile has no [gemm] rows for Llama-3-70B at tensor_parallel 1 (it "
                        "has: Llama-3-8B (tensor_parallel 1))"));
}

// Found by fuzzing (tests/fuzz/fuzz_profile): the reason a group is skipped listed the
// [gemm] tensor_parallel values cast to integers, undefined beyond int64.
TEST(ValidateProfile, TheSkipReasonListsAGemmTensorParallelBeyondAnyIntegerAsWritten) {
  std::string text = ReadText(kStepProfile);
  const std::string header = "model,layer,tensor_parallel,tokens,m,n,k,time_us,tflops\n";
  text.insert(text.find(header) + header.size(), "Llama-2-7B,qkv,1e300,16,16,1,1,1,1\n");
  const Validation v = ValidateProfile(ParseProfile(text, kPath), H200(), LoadFromModels, {});
  ASSERT_EQ(v.skipped.size(), 1u);
  EXPECT_THAT(v.skipped[0].reason,
              HasSubstr("(it has: Llama-2-7B (tensor_parallel 1e+300), Llama-3-8B "
                        "(tensor_parallel 1))"));
}

TEST(ValidateProfile, TheKernelGapAdds320UsToRooflineStepsOfLlama8BAnd160ToProfiledOnes) {
  // Roofline: 32 layers x 10 kernels x 1 us = 320 us. Profiled: the fixture has no
  // [small_kernels] rows, so only the five small kernels estimated from their bytes get
  // a gap (the graph-timed rows hold theirs): 32 x 5 x 1 us = 160 us.
  const Profile p = LoadProfile(kStepProfile);
  ValidateConfig no_gap;
  no_gap.engine.kernel_gap_s = 0;
  const Validation with = ValidateProfile(p, H200(), LoadFromModels, {});
  const Validation without = ValidateProfile(p, H200(), LoadFromModels, no_gap);
  for (size_t i = 0; i < with.rows.size(); ++i) {
    EXPECT_NEAR(with.rows[i].profiled_us - without.rows[i].profiled_us, 160.0, 0.002) << i;
    EXPECT_NEAR(with.rows[i].roofline_us - without.rows[i].roofline_us, 320.0, 0.002) << i;
  }
}

TEST(ValidateProfile, PrefillAttentionFromTheRooflineChangesOnlyStepsWithAPrefill) {
  const Profile p = LoadProfile(kStepProfile);
  ValidateConfig roofline_prefill;
  roofline_prefill.profiled.prefill_attention = ProfiledConfig::PrefillAttention::kRoofline;
  const Validation measured = ValidateProfile(p, H200(), LoadFromModels, {});
  const Validation flops = ValidateProfile(p, H200(), LoadFromModels, roofline_prefill);
  EXPECT_EQ(flops.rows[0].profiled_us, measured.rows[0].profiled_us);  // decode-only
  EXPECT_EQ(flops.rows[1].profiled_us, measured.rows[1].profiled_us);
  // kvprobe's prefill kernel is slower than the FLOP formula at the card's efficiency.
  EXPECT_LT(flops.rows[2].profiled_us, measured.rows[2].profiled_us);
  EXPECT_LT(flops.rows[3].profiled_us, measured.rows[3].profiled_us);
}

TEST(ValidateProfile, AModelCardThatCannotBeLoadedIsAnErrorAtItsFirstRow) {
  const std::string text = WithStepRows({"Llama-3-8B,1,contiguous,0,16,2048,0,6266.63,1",
                                         "Foo-1B,1,contiguous,0,16,2048,0,900,1",
                                         "Foo-1B,1,contiguous,0,32,2048,0,950,1"});
  const auto loader = [](const std::string& name) -> ModelSpec {
    if (name == "Foo-1B") throw InputError("unknown llm card 'Foo-1B'");
    return Card(name);
  };
  try {
    ValidateProfile(ParseProfile(text, kPath), H200(), loader, {});
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("p.txt:118: [step] model Foo-1B: unknown llm card 'Foo-1B'"));
  }
}

TEST(ValidateProfile, AProfileOfAnotherGpuIsRefused) {
  GpuSpec a100 = LoadGpuSpec(std::string(kModels) + "/gpu/A100-80GB.yaml");
  EXPECT_THROW(ValidateProfile(LoadProfile(kStepProfile), a100, LoadFromModels, {}), InputError);
}

// ---- Rows no GPU of the card can have measured -----------------------------------------

// The message of validating `text` on the H200 card ("" when it validates).
std::string ValidateError(const std::string& text) {
  try {
    ValidateProfile(ParseProfile(text, kPath), H200(), LoadFromModels, {});
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(Plausibility, TheLeastWeightBytesOfADenseModelAreItsLayersAndLmHeadSplitOverTheRanks) {
  const ModelSpec m = Card("Llama-3-8B");
  // Q and O 4096 x 4096, K and V 4096 x (8 x 128), gate, up and down 4096 x 14336: 218.1M
  // parameters a layer, 32 layers, and the LM head 128,256 x 4096, all 2 bytes.
  const double layer = 2.0 * 4096 * 4096 + 2.0 * 4096 * 8 * 128 + 3.0 * 4096 * 14336;
  const double bytes = (32 * layer + 128256.0 * 4096) * 2;  // 15.01 GB
  EXPECT_DOUBLE_EQ(MinWeightBytesPerRank(m, 1), bytes);
  EXPECT_DOUBLE_EQ(MinWeightBytesPerRank(m, 2), bytes / 2);
  // The input embedding, which a pass reads only its tokens' rows of, is all the rest.
  EXPECT_DOUBLE_EQ(static_cast<double>(m.WeightBytesPerRank(1)) - bytes, 128256.0 * 4096 * 2);
}

TEST(Plausibility, TheLeastWeightBytesOfAMixtureOfExpertsHoldOnlyTheExpertsATokenIsRoutedTo) {
  const ModelSpec m = Card("Mixtral-8x7B");
  ASSERT_EQ(m.experts_per_token, 2);
  ASSERT_EQ(m.num_experts, 8);
  // Attention and the router of 8 experts, and 2 of the 8 MLPs, in each of 32 layers.
  const double attention = 2.0 * 4096 * 4096 + 2.0 * 4096 * 8 * 128 + 4096.0 * 8;
  const double layer = attention + 2 * 3.0 * 4096 * 14336;
  EXPECT_DOUBLE_EQ(MinWeightBytesPerRank(m, 1), (32 * layer + 32000.0 * 4096) * 2);
}

TEST(Plausibility, APassFasterThanThePeakBandwidthReadsTheWeightsOnceIsPhysicallyImpossible) {
  const GpuSpec h200 = H200();
  const double bytes = MinWeightBytesPerRank(Card("Llama-3-8B"), 1);
  const double least_us = bytes / h200.hbm_bandwidth_bytes_per_s * 1e6;  // 3,127 us
  const auto row = [](double time_us) {
    return WithStepRows({fmt::format("Llama-3-8B,1,contiguous,0,16,2048,0,{},1", time_us)});
  };
  EXPECT_THAT(ValidateError(row(1e-9)),
              AllOf(HasSubstr(fmt::format("p.txt:117: [step] time_us 1e-09 is below {:.1f} us, "
                                          "the least in which the H200 card's peak bandwidth of "
                                          "4800 GB/s reads the {:.2f} GB of Llama-3-8B's weights",
                                          least_us, bytes * 1e-9)),
                    HasSubstr("at tensor_parallel 1: physically impossible")));
  EXPECT_THAT(ValidateError(row(0.999 * least_us)), HasSubstr("p.txt:117: [step] time_us"));
  EXPECT_EQ(ValidateError(row(1.001 * least_us)), "");
}

TEST(Plausibility, AtTwoGpusEachReadsHalfTheWeightsSoHalfTheTimeIsPossible) {
  const double least_us =
      MinWeightBytesPerRank(Card("Llama-3-8B"), 2) / H200().hbm_bandwidth_bytes_per_s * 1e6;
  const auto row = [](double time_us) {
    return WithStepRows({fmt::format("Llama-3-8B,2,contiguous,0,16,2048,0,{},1", time_us)});
  };
  // No [gemm] rows at TP 2: the row is not predicted, but still checked.
  EXPECT_THAT(ValidateError(row(0.999 * least_us)), HasSubstr("p.txt:117: [step] time_us "));
  EXPECT_EQ(ValidateError(row(1.001 * least_us)), "");
}

TEST(Plausibility, AContextWhoseKeysAndValuesOfOneLayerExceedTheGpusMemoryIsAnError) {
  // One layer's K and V of a token: 2 x 8 KV heads x 128 x 2 bytes = 4 KiB. The H200
  // card's memory holds them for memory_bytes / 4096 tokens; a sequence decoding with
  // that many cached tokens (itself one more) exceeds it.
  const GpuSpec h200 = H200();
  const int64_t fit_tokens = h200.memory_bytes / (2 * 8 * 128 * 2);
  const std::string message = ValidateError(
      WithStepRows({fmt::format("Llama-3-8B,1,contiguous,0,1,{},0,1e6,1", fit_tokens)}));
  EXPECT_THAT(message, HasSubstr(fmt::format(
                           "p.txt:117: [step] the K and V of its tokens in one layer of Llama-3-8B "
                           "take {:.1f} GB on each GPU, beyond the H200 card's {:.1f} GB",
                           static_cast<double>(fit_tokens + 1) * 4096 * 1e-9,
                           static_cast<double>(h200.memory_bytes) * 1e-9)));
  // A chunk of as many tokens, and sequences that together hold them, likewise.
  EXPECT_THAT(ValidateError(WithStepRows(
                  {fmt::format("Llama-3-8B,1,contiguous,0,0,0,{},1e6,1", fit_tokens + 1)})),
              HasSubstr("p.txt:117: [step] the K and V of its tokens"));
  EXPECT_THAT(ValidateError(WithStepRows(
                  {fmt::format("Llama-3-8B,1,paged,16,2,{},0,1e6,1", fit_tokens / 2)})),
              HasSubstr("p.txt:117: [step] the K and V of its tokens"));
}

TEST(Plausibility, ContextsBeyondTheModelsMaxContextAreMeasuredPassesAndAccepted) {
  // kvprobe's step grid runs 8,192-token contexts and chunks of up to 16,384 tokens for
  // every card; the committed H200 profiles hold such rows of Llama-3-8B (8,192 max).
  ASSERT_EQ(Card("Llama-3-8B").max_context_tokens, 8192);
  const Validation v =
      ValidateProfile(ParseProfile(WithStepRows({"Llama-3-8B,1,contiguous,0,1,8192,0,4806.4,1",
                                                 "Llama-3-8B,1,contiguous,0,0,0,16384,571518,1"}),
                                   kPath),
                      H200(), LoadFromModels, {});
  EXPECT_EQ(v.rows.size(), 2u);
}

// ---- Summaries and the printed table -------------------------------------------------

// Another run's passes alone, as kvprobe --only step writes them: the test profile's
// 16 [meta] lines (its lines 7-22, with gpu_name `gpu`), then the [step] header and
// `rows`, the first of them at line 19.
std::string StepsOnly(const std::vector<std::string>& rows,
                      const std::string& gpu = "NVIDIA H200") {
  const std::string text = ReadText(kStepProfile);
  const size_t meta = text.find("[meta]\n");
  std::string out = text.substr(meta, text.find("\n\n", meta) + 1 - meta);
  const std::string name = "gpu_name: NVIDIA H200";
  out.replace(out.find(name), name.size(), "gpu_name: " + gpu);
  out +=
      "[step]\nmodel,tensor_parallel,layout,block_tokens,decode_seqs,context_tokens,"
      "prefill_tokens,time_us,graph\n";
  for (const std::string& row : rows) out += row + "\n";
  return out;
}

TEST(ValidateProfile, AnotherRunsPassesArePredictedFromTheKernelRowsOfTheProfile) {
  const Profile kernels = LoadProfile(kStepProfile);
  // The test profile's line 117 took 6,062.218 us there; here the same pass took 10%
  // longer, and the prefill of line 119 exactly its prediction (30,889.374 us).
  const Profile steps = ParseProfile(StepsOnly({"Llama-3-8B,1,contiguous,0,16,2048,0,6668.440,1",
                                                "Llama-3-8B,1,contiguous,0,0,0,1024,30889.374,0"}),
                                     "steps.txt", RequiredSections::kMetaOnly);
  const Validation own = ValidateProfile(kernels, H200(), LoadFromModels, {});
  const Validation v = ValidateProfile(kernels, steps, H200(), LoadFromModels, {});
  EXPECT_EQ(v.profile_path, kernels.path());
  EXPECT_EQ(v.steps_path, "steps.txt");
  ASSERT_EQ(v.rows.size(), 2u);
  // The same predictions as for the profile's own rows of those passes ...
  EXPECT_EQ(v.rows[0].profiled_us, own.rows[0].profiled_us);
  EXPECT_EQ(v.rows[1].profiled_us, own.rows[2].profiled_us);
  EXPECT_EQ(v.rows[0].roofline_us, own.rows[0].roofline_us);
  // ... against this run's times, at this file's lines (its [step] rows follow 16
  // [meta] lines and two of the section).
  EXPECT_NEAR(v.rows[0].profiled_error(), 6062.218 / 6668.440 - 1, 1e-9);
  EXPECT_NEAR(v.rows[1].profiled_error(), 0.0, 1e-6);
  EXPECT_EQ(v.rows[0].row.line, 19);
  EXPECT_EQ(v.rows[1].row.line, 20);
  EXPECT_THAT(FormatValidation(v),
              AllOf(HasSubstr("steps.txt: 2 [step] rows measured on 'NVIDIA H200'"),
                    HasSubstr(fmt::format("profiled: the kernel rows of {}, ", kernels.path()))));
  EXPECT_THAT(FormatValidation(own), HasSubstr("profiled: this profile's kernel rows, "));
}

TEST(ValidateProfile, AnotherRunOnAGpuOfAnotherNameIsRefusedNamingBothFiles) {
  const Profile steps =
      ParseProfile(StepsOnly({"Llama-3-8B,1,contiguous,0,16,2048,0,6668.440,1"}, "NVIDIA H100"),
                   "steps.txt", RequiredSections::kMetaOnly);
  try {
    ValidateProfile(LoadProfile(kStepProfile), steps, H200(), LoadFromModels, {});
    ADD_FAILURE() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("steps.txt: its [step] rows were measured on "
                                          "'NVIDIA H100', but the kernel rows of "),
                                HasSubstr("step_profile.txt on 'NVIDIA H200'")));
  }
}

TEST(ValidateProfile, AnotherRunWithoutStepRowsIsRefusedNamingItsFile) {
  const Profile steps = ParseProfile(StepsOnly({}), "steps.txt", RequiredSections::kMetaOnly);
  try {
    ValidateProfile(LoadProfile(kStepProfile), steps, H200(), LoadFromModels, {});
    ADD_FAILURE() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("steps.txt: no [step] rows"));
  }
}

TEST(Plausibility, ARowOfAnotherRunIsCheckedAtItsOwnFileAndLine) {
  const Profile steps = ParseProfile(StepsOnly({"Llama-3-8B,1,contiguous,0,16,2048,0,6668.440,1",
                                                "Llama-3-8B,1,contiguous,0,16,4096,0,0.5,1"}),
                                     "steps.txt", RequiredSections::kMetaOnly);
  try {
    ValidateProfile(LoadProfile(kStepProfile), steps, H200(), LoadFromModels, {});
    ADD_FAILURE() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("steps.txt:20: [step] time_us 0.5 is below"));
  }
}

// ---- Kernel classes ----------------------------------------------------------------

TEST(KernelClasses, BothModelsSplitTheirPassIntoClassesThatSumToItsTime) {
  const Profile p = LoadProfile(kStepProfile);
  const auto profiled = ProfiledLlama8B(p);
  const auto roofline = NewRooflineModel(
      Card("Llama-3-8B"), H200(), 1, {},
      {.engine = ValidationEngine(), .allreduce = {}, .paged_kernel = PagedKernel::kFlashPaged});
  for (const StepRow& r : ReadStepRows(p)) {
    if (r.model != "Llama-3-8B") continue;
    const BatchWork w = StepBatchWork(r);
    for (const ExecutionTimeModel* m : {profiled.get(), roofline.get()}) {
      const KernelClassSeconds c = m->GpuSecondsByClass(w).value();
      // No CPU time in validation: the iteration is the GPU time, to the nanosecond.
      EXPECT_NEAR(c.Sum() * 1e6, Us(m->IterationTime(w)), 1e-3) << m->Name() << r.line;
      EXPECT_GT(c.gemm_s, 0);
      EXPECT_GT(c.attention_s, 0);
      EXPECT_GT(c.other_s, 0);
      EXPECT_EQ(c.collective_s, 0) << "TP 1 has no collectives";
    }
  }
  // The roofline's decode attention of line 117, 16 x 2048 contiguous: 32 layers x
  // 16 x 2049 tokens x 2 (K, V) x 8 KV heads x 128 x 2 bytes / (4.8e12 x e_decode).
  const GpuSpec h200 = H200();
  const double bytes = 32.0 * 16 * 2049 * 2 * 8 * 128 * 2;
  EXPECT_NEAR(roofline->GpuSecondsByClass(StepBatchWork(ReadStepRows(p)[0]))->attention_s,
              bytes / (h200.hbm_bandwidth_bytes_per_s * h200.efficiency.attention_decode), 1e-12);
}

// The test profile with [step] columns that include the classes, and one row: line
// 117's step with `classes` (gemm_us, attention_us, other_us) and `time_us`.
std::string WithClassRow(double time_us, double gemm_us, double attention_us, double other_us) {
  std::string text = WithStepRows(
      {fmt::format("Llama-3-8B,1,contiguous,0,16,2048,0,{:.6f},1,{:.6f},{:.6f},{:.6f},0,0", time_us,
                   gemm_us, attention_us, other_us)});
  const std::string header =
      "model,tensor_parallel,layout,block_tokens,decode_seqs,context_tokens,prefill_tokens,"
      "time_us,graph";
  text.replace(text.find(header), header.size(),
               header + ",gemm_us,attention_us,other_us,decode_splits,allreduce_us");
  return text;
}

TEST(KernelClasses, StepRowsReadTheClassesTimedAloneInSeconds) {
  const std::vector<StepRow> rows =
      ReadStepRows(ParseProfile(WithClassRow(6000, 4000, 1500, 400), kPath));
  ASSERT_EQ(rows.size(), 1u);
  ASSERT_TRUE(rows[0].measured_classes.has_value());
  EXPECT_DOUBLE_EQ(rows[0].measured_classes->gemm_s, 4000e-6);
  EXPECT_DOUBLE_EQ(rows[0].measured_classes->attention_s, 1500e-6);
  EXPECT_DOUBLE_EQ(rows[0].measured_classes->other_s, 400e-6);
  EXPECT_EQ(rows[0].measured_classes->collective_s, 0);  // TP 1
  // A class of 0 was not measured; the committed test profile has no class columns.
  EXPECT_FALSE(ReadStepRows(ParseProfile(WithClassRow(6000, 0, 1500, 400), kPath))[0]
                   .measured_classes.has_value());
  EXPECT_FALSE(ReadStepRows(LoadProfile(kStepProfile))[0].measured_classes.has_value());
}

TEST(KernelClasses, ANegativeClassTimeIsAnErrorAtItsLine) {
  EXPECT_THAT(StepError(WithClassRow(6000, 4000, -1, 400)),
              HasSubstr("p.txt:117: [step] column 'attention_us': -1.000000 is not a time in "
                        "[0, 1e+09] us"));
}

TEST(KernelClasses, TheClassSummarySaysWhichClassTheProfiledModelMissesAndByHowMuch) {
  const Profile p = LoadProfile(kStepProfile);
  const KernelClassSeconds c =
      ProfiledLlama8B(p)->GpuSecondsByClass(StepBatchWork(ReadStepRows(p)[0])).value();
  // Measured: the GEMMs 10% faster than predicted (prediction +10%), attention 20%
  // slower (-20%: predicted / measured = 0.8), the rest as predicted; the pass 5%
  // longer than its classes' sum.
  const double gemm_us = c.gemm_s * 1e6 / 1.1, attention_us = c.attention_s * 1e6 / 0.8;
  const double other_us = c.other_s * 1e6;
  const double time_us = 1.05 * (gemm_us + attention_us + other_us);
  const Validation v =
      ValidateProfile(ParseProfile(WithClassRow(time_us, gemm_us, attention_us, other_us), kPath),
                      H200(), LoadFromModels, {});
  const std::vector<ClassErrorSummary> s = SummarizeClassErrors(v);
  ASSERT_EQ(s.size(), 2u);  // decode-only, Llama-3-8B
  EXPECT_EQ(s[0].group, "decode-only");
  EXPECT_EQ(s[0].rows, 1u);
  EXPECT_NEAR(s[0].gemm.mean, +0.10, 1e-6);
  EXPECT_NEAR(s[0].attention.mean, -0.20, 1e-6);
  EXPECT_NEAR(s[0].attention.mean_abs, 0.20, 1e-6);
  EXPECT_NEAR(s[0].other.mean, 0.0, 1e-6);
  EXPECT_EQ(s[0].collective.rows, 0u);  // TP 1: not measured, left out
  EXPECT_NEAR(s[0].pass_vs_classes, +0.05, 1e-6);
  const std::string out = FormatValidation(v);
  EXPECT_THAT(out, HasSubstr("profiled by class"));
  EXPECT_THAT(out, HasSubstr("+10.0% (10.0%)"));
  EXPECT_THAT(out, HasSubstr("-20.0% (20.0%)"));
  EXPECT_THAT(out, HasSubstr("+5.0%"));
}

// The test profile with [small_kernels] rows for Llama-3-8B at `tensor_parallel` before
// its [step] section (whose rows are all at TP 1), with or without kvprobe 0.3.6's
// warm_time_us column.
std::string WithSmallKernelRows(bool warm_column, int tensor_parallel = 1) {
  const std::string text = ReadText(kStepProfile);
  const std::string rows =
      warm_column ? fmt::format(
                        "[small_kernels]\nmodel,tensor_parallel,tokens,time_us,warm_time_us\n"
                        "Llama-3-8B,{0},1,14,10\nLlama-3-8B,{0},4096,200,200\n\n",
                        tensor_parallel)
                  : fmt::format(
                        "[small_kernels]\nmodel,tensor_parallel,tokens,time_us\n"
                        "Llama-3-8B,{0},1,14\nLlama-3-8B,{0},4096,200\n\n",
                        tensor_parallel);
  const size_t at = text.find("[step]\n");
  return text.substr(0, at) + rows + text.substr(at);
}

TEST(KernelClasses, SmallKernelsTimedAsInAPassAreSaidToHoldWhatInterleavingAdds) {
  const auto caveats = [](bool warm_column, int tensor_parallel) {
    return ValidateProfile(ParseProfile(WithSmallKernelRows(warm_column, tensor_parallel), kPath),
                           H200(), LoadFromModels, {})
        .caveats;
  };
  // The test profile is a quick one (mode: quick), which the first caveat says.
  const auto quick = HasSubstr("a quick profile (mode: quick");
  EXPECT_THAT(caveats(true, 1),
              ElementsAre(quick, AllOf(HasSubstr("class 'other'"),
                                       HasSubstr("timed among stand-ins of the layer's GEMMs"))));
  // Rows of an earlier kvprobe: the profiled model's own caveat instead.
  EXPECT_THAT(caveats(false, 1), ElementsAre(quick, HasSubstr("time the kernels back to back")));
  // Rows only for another tensor_parallel than the passes': the model estimates the small
  // kernels from their bytes, and the class caveat would not be true.
  EXPECT_THAT(caveats(true, 2), ElementsAre(quick));
}

TEST(KernelClasses, WithoutMeasuredClassesThereIsNoClassSummary) {
  const Validation v = ValidateProfile(LoadProfile(kStepProfile), H200(), LoadFromModels, {});
  EXPECT_TRUE(SummarizeClassErrors(v).empty());
  EXPECT_THAT(FormatValidation(v), Not(HasSubstr("profiled by class")));
}

}  // namespace
}  // namespace kvsim
