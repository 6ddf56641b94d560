// kvsim validate's summaries and printed table: mean and worst errors per kind, per
// model and per tensor-parallel degree, the count within tolerance, and the text, on the
// committed test profile (rows at 0.0%, +10.0% and -10.0% of the profiled model's own
// predictions; validate_test.cc says how they were set).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "sim/hardware/gpu_spec.h"
#include "sim/hardware/model_spec.h"
#include "sim/timing/profile.h"
#include "sim/timing/validate.h"

namespace kvsim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kStepProfile = KVSIM_TEST_DATA_DIR "/timing/step_profile.txt";
constexpr const char* kModels = KVSIM_SOURCE_DIR "/models";

GpuSpec H200() { return LoadGpuSpec(std::string(kModels) + "/gpu/H200.yaml"); }

ModelSpec LoadFromModels(const std::string& name) {
  return LoadModelSpec(std::string(kModels) + "/llm/" + name + ".yaml");
}

TEST(SummarizeErrors, MeanAbsoluteErrorsPerKindAndPerModel) {
  const Validation v = ValidateProfile(LoadProfile(kStepProfile), H200(), LoadFromModels, {});
  const std::vector<ErrorSummary> s = SummarizeErrors(v);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].group, "decode-only");
  EXPECT_EQ(s[0].rows, 2u);
  EXPECT_NEAR(s[0].profiled_mean_abs, 0.0, 1e-6);
  EXPECT_EQ(s[1].group, "prefill-only");
  EXPECT_EQ(s[1].rows, 1u);
  EXPECT_NEAR(s[1].profiled_mean_abs, 0.10, 1e-6);
  EXPECT_EQ(s[1].profiled_worst, 2u);
  EXPECT_EQ(s[2].group, "mixed");
  EXPECT_NEAR(s[2].profiled_mean_abs, 0.10, 1e-6);
  EXPECT_EQ(s[2].profiled_worst, 3u);
  // Llama-3-8B: (0 + 0 + 10 + 10) / 4 = 5%; the 70B rows are not predicted.
  EXPECT_EQ(s[3].group, "Llama-3-8B");
  EXPECT_EQ(s[3].rows, 4u);
  EXPECT_NEAR(s[3].profiled_mean_abs, 0.05, 1e-6);
  EXPECT_NEAR(std::abs(v.rows[s[3].profiled_worst].profiled_error()), 0.10, 1e-6);
  // The roofline's mean over the two decode rows and its worst of them.
  const double r0 = std::abs(v.rows[0].roofline_error());
  const double r1 = std::abs(v.rows[1].roofline_error());
  EXPECT_DOUBLE_EQ(s[0].roofline_mean_abs, (r0 + r1) / 2);
  EXPECT_EQ(s[0].roofline_worst, r1 > r0 ? 1u : 0u);
}

TEST(SummarizeErrors, RowsOfSeveralTensorParallelDegreesAreSummarizedPerDegree) {
  // Two decode rows at TP 1 (errors +2%, -4%) and one decode and one prefill row at
  // TP 2 (+6%, -8%): every group is split by degree, TP 1 first.
  auto prediction = [](int64_t tp, int64_t seqs, int64_t prefill, double error) {
    StepPrediction p;
    p.row.model = "Llama-3-8B";
    p.row.tensor_parallel = tp;
    p.row.decode_seqs = seqs;
    p.row.context_tokens = seqs > 0 ? 512 : 0;
    p.row.prefill_tokens = prefill;
    p.row.time_us = 1000;
    p.profiled_us = 1000 * (1 + error);
    p.roofline_us = 1000;
    return p;
  };
  Validation v;
  v.rows = {prediction(2, 1, 0, 0.06), prediction(1, 1, 0, 0.02), prediction(1, 8, 0, -0.04),
            prediction(2, 0, 512, -0.08)};
  const std::vector<ErrorSummary> s = SummarizeErrors(v);
  std::vector<std::string> groups;
  for (const ErrorSummary& e : s) groups.push_back(e.group);
  EXPECT_THAT(groups, ElementsAre("decode-only TP 1", "decode-only TP 2", "prefill-only TP 2",
                                  "Llama-3-8B TP 1", "Llama-3-8B TP 2"));
  EXPECT_EQ(s[0].rows, 2u);
  EXPECT_NEAR(s[0].profiled_mean_abs, 0.03, 1e-9);
  EXPECT_EQ(s[0].profiled_worst, 2u);
  EXPECT_NEAR(s[1].profiled_mean_abs, 0.06, 1e-9);
  EXPECT_NEAR(s[4].profiled_mean_abs, 0.07, 1e-9);
  EXPECT_EQ(s[4].profiled_worst, 3u);
}

TEST(SummarizeErrors, CountsTheRowsWithinTheToleranceOfTheirKind) {
  // Errors 0, 0 (decode), +10% (prefill), -10% (mixed): with 5% for passes and 12%
  // for mixed batches, the decode rows and the mixed row are within; with 4% for
  // mixed batches, only the decode rows.
  ValidateConfig config;
  config.tolerance = 0.05;
  config.mixed_tolerance = 0.12;
  Validation v = ValidateProfile(LoadProfile(kStepProfile), H200(), LoadFromModels, config);
  std::vector<ErrorSummary> s = SummarizeErrors(v);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].profiled_within, 2u);  // decode-only
  EXPECT_EQ(s[1].profiled_within, 0u);  // prefill-only
  EXPECT_EQ(s[2].profiled_within, 1u);  // mixed
  EXPECT_EQ(s[3].profiled_within, 3u);  // Llama-3-8B
  ToleranceCount n = CountWithinTolerance(v);
  EXPECT_EQ(n.rows, 4u);
  EXPECT_EQ(n.profiled_within, 3u);
  // The roofline predicts every row 16-35% short: none within these tolerances; within 17%
  // for passes, its two decode rows (-16.4%, -16.7%), not the prefill (-17.5%).
  EXPECT_EQ(n.roofline_within, 0u);
  v.config.tolerance = 0.17;
  EXPECT_EQ(CountWithinTolerance(v).roofline_within, 2u);
  EXPECT_EQ(SummarizeErrors(v)[0].roofline_within, 2u);
  EXPECT_EQ(CountWithinTolerance(v).profiled_within, 4u);

  v.config.tolerance = 0.05;
  v.config.mixed_tolerance = 0.04;
  EXPECT_EQ(CountWithinTolerance(v).profiled_within, 2u);
  EXPECT_EQ(SummarizeErrors(v)[2].profiled_within, 0u);
}

TEST(FormatValidation, PrintsEveryRowTheSummaryAndTheSkippedModel) {
  const std::string out =
      FormatValidation(ValidateProfile(LoadProfile(kStepProfile), H200(), LoadFromModels, {}));
  EXPECT_THAT(out, HasSubstr("5 [step] rows measured on 'NVIDIA H200', 4 predicted for the H200"));
  EXPECT_THAT(out, HasSubstr("measured us"));
  EXPECT_THAT(out, HasSubstr("16 x 2048"));
  EXPECT_THAT(out, HasSubstr("paged/16"));
  EXPECT_THAT(out, HasSubstr("+10.0%"));
  EXPECT_THAT(out, HasSubstr("-10.0%"));
  EXPECT_THAT(out, HasSubstr("  decode-only (2 rows)"));
  EXPECT_THAT(out, HasSubstr("  Llama-3-8B (4 rows)"));
  EXPECT_THAT(out, HasSubstr("not predictable: Llama-3-70B at TP 1, 1 row (line 121): "));
  // The count within the default tolerances, which it names.
  EXPECT_THAT(out, HasSubstr("within tolerance (|error| <= 5% for decode-only and prefill-only "
                             "passes, 10% for mixed batches): profiled "));
}

}  // namespace
}  // namespace kvsim
