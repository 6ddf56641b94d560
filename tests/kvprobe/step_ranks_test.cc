// Combining tensor-parallel ranks' [step] rows: each time is the slowest rank's, the
// passes must match, and malformed rank files are errors naming the file and line.
#include "tools/kvprobe/host/step_ranks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "tools/kvprobe/host/profile_writer.h"

namespace kvprobe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// model, tensor_parallel, layout, block_tokens, decode_seqs, context_tokens,
// prefill_tokens, time_us, graph, gemm_us, attention_us, other_us, decode_splits,
// allreduce_us.
StepFields Row(const std::string& seqs, const std::string& time_us, const std::string& gemm_us,
               const std::string& allreduce_us, const std::string& splits = "4") {
  return {"Llama-3-8B", "2", "contiguous", "0",   seqs, "512",  "0",
          time_us,      "1", gemm_us,      "100", "50", splits, allreduce_us};
}

std::string CombineError(const std::vector<std::string>& csvs) {
  std::vector<std::string> names;
  for (size_t r = 0; r < csvs.size(); ++r) names.push_back("tp2_rank" + std::to_string(r) + ".csv");
  try {
    CombineStepRanks(csvs, names);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a runtime_error";
  return "";
}

TEST(StepRankCsv, IsTheStepHeaderThenOneLinePerRow) {
  EXPECT_EQ(
      StepRankCsv({Row("1", "2000", "1500", "300")}),
      HeaderLine(schema::kStep) + "\nLlama-3-8B,2,contiguous,0,1,512,0,2000,1,1500,100,50,4,300\n");
  EXPECT_THROW(StepRankCsv({{"too", "few"}}), std::invalid_argument);
}

TEST(CombineStepRanks, TakesEachTimeFromTheSlowestRankAndTheSplitsFromRankZero) {
  const std::string rank0 =
      StepRankCsv({Row("1", "2000", "1500", "300", "4"), Row("8", "3000", "1600", "310", "2")});
  const std::string rank1 =
      StepRankCsv({Row("1", "2100", "1400", "320", "5"), Row("8", "2900", "1700", "290", "3")});
  const std::vector<StepFields> rows =
      CombineStepRanks({rank0, rank1}, {"tp2_rank0.csv", "tp2_rank1.csv"});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], Row("1", "2100", "1500", "320", "4"));
  EXPECT_EQ(rows[1], Row("8", "3000", "1700", "310", "2"));
}

TEST(CombineStepRanks, OneRankIsItsOwnRows) {
  const StepFields row = Row("1", "2000", "1500", "0");
  EXPECT_THAT(CombineStepRanks({StepRankCsv({row})}, {"r0"}), ElementsAre(row));
}

TEST(CombineStepRanks, RanksThatTimedDifferentPassesAreAnErrorNamingTheColumn) {
  const std::string rank0 = StepRankCsv({Row("1", "2000", "1500", "300")});
  EXPECT_THAT(CombineError({rank0, StepRankCsv({Row("8", "2000", "1500", "300")})}),
              HasSubstr("tp2_rank1.csv: pass 1 has decode_seqs 8, tp2_rank0.csv's has 1"));
  EXPECT_THAT(CombineError({rank0, StepRankCsv({})}),
              HasSubstr("tp2_rank1.csv: 0 passes, tp2_rank0.csv has 1"));
}

TEST(CombineStepRanks, MalformedRankFilesNameTheFileAndLine) {
  const std::string header = HeaderLine(schema::kStep) + "\n";
  EXPECT_THAT(CombineError({""}), HasSubstr("tp2_rank0.csv: empty (the rank wrote nothing)"));
  EXPECT_THAT(CombineError({"model,time_us\n"}), HasSubstr("tp2_rank0.csv:1: expected the header"));
  EXPECT_THAT(CombineError({header + "Llama-3-8B,2\n"}),
              HasSubstr("tp2_rank0.csv:2: a [step] row has 2 fields, expected 14"));
  EXPECT_THAT(CombineError({StepRankCsv({Row("1", "0", "1500", "300")})}),
              HasSubstr("tp2_rank0.csv:2: time_us must be a positive number, got '0'"));
  EXPECT_THAT(CombineError({StepRankCsv({Row("1", "2000", "x", "300")})}),
              HasSubstr("gemm_us must be a non-negative number, got 'x'"));
  EXPECT_THAT(CombineError({StepRankCsv({Row("1", "2000", "1500", "-1")})}),
              HasSubstr("allreduce_us must be a non-negative number, got '-1'"));
}

}  // namespace
}  // namespace kvprobe
