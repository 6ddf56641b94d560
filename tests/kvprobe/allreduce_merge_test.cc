// Merging freshly measured all-reduce rows into an existing profile: the counts
// measured replace theirs, the others stay, the rest of the file is untouched, a
// section is appended where there was none, and a malformed target names its line.
#include "tools/kvprobe/host/allreduce_merge.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "sim/timing/profile.h"

namespace kvprobe {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kHead =
    "# kvprobe profile\n"
    "[meta]\n"
    "gpu_name: test\n"
    "\n"
    "[copy]\n"
    "bytes,time_us,gbps\n"
    "1048576,6,344\n";

constexpr const char* kSection =
    "# [allreduce]: measured on a 4-GPU host\n"
    "[allreduce]\n"
    "gpus,bytes,time_us,algbw_gbps,busbw_gbps,in_graph_us,alone_in_graph_us\n"
    "2,65536,7.5,8.7,8.7,9,7\n"
    "2,262144,9,29,29,11,9\n"
    "4,65536,11.3,5.8,8.7,13,11\n"
    "4,262144,11.7,22,34,14,12\n";

// The same section as an earlier kvprobe wrote it, without in_graph_us.
constexpr const char* kEarlierSection =
    "[allreduce]\n"
    "gpus,bytes,time_us,algbw_gbps,busbw_gbps\n"
    "2,65536,7.5,8.7,8.7\n"
    "4,65536,11.3,5.8,8.7\n";

constexpr const char* kTail =
    "\n"
    "[vattention]\n"
    "overlap,page_bytes\n"
    "0,2097152\n";

std::vector<AllreduceRow> EightGpuRows() {
  return {{"8", "65536", "14", "4.7", "8.2", "16", "14"},
          {"8", "262144", "14.5", "18", "32", "17", "15"}};
}

// The MergeAllreduceRows error of merging into `target`; fails the test if it merges.
std::string MergeError(const std::string& target) {
  try {
    MergeAllreduceRows(target, "p.txt", EightGpuRows(), "");
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a runtime_error";
  return "";
}

TEST(MergeAllreduceRows, AddsANewGpuCountAfterTheKeptOnesWithItsNote) {
  const std::string merged = MergeAllreduceRows(std::string(kHead) + "\n" + kSection + kTail,
                                                "p.txt", EightGpuRows(), "gpus=8 rows: 8-GPU host");
  EXPECT_EQ(merged, std::string(kHead) + "\n" +
                        "# [allreduce]: measured on a 4-GPU host\n"
                        "# [allreduce] gpus=8 rows: 8-GPU host\n"
                        "[allreduce]\n"
                        "gpus,bytes,time_us,algbw_gbps,busbw_gbps,in_graph_us,alone_in_graph_us\n"
                        "2,65536,7.5,8.7,8.7,9,7\n"
                        "2,262144,9,29,29,11,9\n"
                        "4,65536,11.3,5.8,8.7,13,11\n"
                        "4,262144,11.7,22,34,14,12\n"
                        "8,65536,14,4.7,8.2,16,14\n"
                        "8,262144,14.5,18,32,17,15\n" +
                        kTail);
}

TEST(MergeAllreduceRows, ReplacesOnlyTheGpuCountsMeasuredAgain) {
  const std::string merged = MergeAllreduceRows(
      std::string(kHead) + kSection, "p.txt",
      {{"4", "65536", "12", "5", "8", "13", "11"}, {"4", "1048576", "20", "50", "75", "24", "22"}},
      "");
  EXPECT_THAT(merged, HasSubstr("2,65536,7.5,8.7,8.7,9,7\n2,262144,9,29,29,11,9\n"
                                "4,65536,12,5,8,13,11\n4,1048576,20,50,75,24,22\n"));
  EXPECT_THAT(merged, Not(HasSubstr("4,262144,11.7")));
  EXPECT_THAT(merged, Not(HasSubstr("# [allreduce] \n")));  // no empty note
}

TEST(MergeAllreduceRows, AppendsTheSectionToAProfileWithoutOne) {
  const std::string merged = MergeAllreduceRows(kHead, "p.txt", EightGpuRows(), "new");
  EXPECT_EQ(merged, std::string(kHead) + "\n# [allreduce] new\n[allreduce]\n" +
                        "gpus,bytes,time_us,algbw_gbps,busbw_gbps,in_graph_us,alone_in_graph_us\n"
                        "8,65536,14,4.7,8.2,16,14\n8,262144,14.5,18,32,17,15\n");
}

TEST(MergeAllreduceRows, ASectionOfAnEarlierKvprobeTakesTheNewHeaderWhenEveryCountIsMeasuredAgain) {
  const std::string merged = MergeAllreduceRows(
      std::string(kHead) + kEarlierSection, "p.txt",
      {{"2", "65536", "7", "9", "9", "10", "8"}, {"4", "65536", "11", "6", "9", "12", "10"}}, "");
  EXPECT_THAT(
      merged,
      HasSubstr(
          "[allreduce]\ngpus,bytes,time_us,algbw_gbps,busbw_gbps,in_graph_us,alone_in_graph_us\n"
          "2,65536,7,9,9,10,8\n4,65536,11,6,9,12,10\n"));
}

TEST(MergeAllreduceRows, ARowOfAnEarlierKvprobeThatWouldStayIsAnErrorNamingTheMissingColumn) {
  EXPECT_THAT(
      MergeError(std::string(kHead) + kEarlierSection),
      HasSubstr("p.txt:10: [allreduce] rows for 2 GPUs have no in_graph_us column (an earlier "
                "kvprobe's); measure 2 GPUs again too (--allreduce-gpus) to merge"));
}

TEST(MergeAllreduceRows, ARowWithoutTheAloneInGraphColumnThatWouldStayIsAnErrorNamingIt) {
  EXPECT_THAT(MergeError(std::string(kHead) +
                         "[allreduce]\ngpus,bytes,time_us,algbw_gbps,busbw_gbps,in_graph_us\n"
                         "2,65536,7.5,8.7,8.7,9\n"),
              HasSubstr("p.txt:10: [allreduce] rows for 2 GPUs have no alone_in_graph_us column"));
}

TEST(MergeAllreduceRows, MergedIntoTheCommittedH100ProfileKvsimReadsTheNewRows) {
  // The committed H100 profile has 2, 3 and 4-GPU rows without in_graph_us: merging
  // 8-GPU rows alone is refused, merging all four counts reads back.
  const char* path = KVSIM_SOURCE_DIR "/models/profiles/H100-SXM/profile.txt";
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_THROW(MergeAllreduceRows(text.str(), path, EightGpuRows(), "n"), std::runtime_error);
  std::vector<AllreduceRow> rows = EightGpuRows();
  for (const char* gpus : {"2", "3", "4"}) {
    rows.push_back({gpus, "65536", "9", "7", "7", "11", "8"});
    rows.push_back({gpus, "1048576", "15", "70", "70", "19", "14"});
  }
  const kvsim::Profile before = kvsim::ParseProfile(text.str(), path);
  const kvsim::Profile after =
      kvsim::ParseProfile(MergeAllreduceRows(text.str(), path, rows, "n"), path);
  const kvsim::ProfileTable& merged = after.Table("allreduce");
  ASSERT_EQ(merged.size(), 8u);
  EXPECT_EQ(merged.Number(0, "gpus"), 2);
  EXPECT_EQ(merged.Number(merged.size() - 1, "gpus"), 8);
  EXPECT_EQ(merged.Number(merged.size() - 1, "in_graph_us"), 17);
  EXPECT_EQ(after.Table("gemm").size(), before.Table("gemm").size());
}

// The CheckAllreduceMergeTarget error for the committed H100 profile and `counts`; ""
// when the check passes.
std::string CommittedH100CheckError(const std::vector<int>& counts) {
  const char* path = KVSIM_SOURCE_DIR "/models/profiles/H100-SXM/profile.txt";
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  try {
    CheckAllreduceMergeTarget(text.str(), path, counts);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(CheckAllreduceMergeTarget, RefusesTheCommittedH100ProfileForTheDefaultCountsOfAnEightGpuHost) {
  // kvprobe's default on 8 GPUs is 2, 4 and 8; the 3-GPU rows that would stay lack in_graph_us.
  EXPECT_THAT(CommittedH100CheckError({2, 4, 8}),
              HasSubstr("[allreduce] rows for 3 GPUs have no in_graph_us column"));
}

TEST(CheckAllreduceMergeTarget, AcceptsTheCommittedH100ProfileWhenEveryCountItHasIsMeasuredAgain) {
  // The README's command for an 8-GPU host: --allreduce-gpus 2,3,4,8.
  EXPECT_EQ(CommittedH100CheckError({2, 3, 4, 8}), "");
}

TEST(CheckAllreduceMergeTarget, ChecksEveryCountNotOnlyTheFirst) {
  // The 4-GPU rows are measured again, the 2-GPU ones of the earlier header would stay.
  EXPECT_THROW(CheckAllreduceMergeTarget(std::string(kHead) + kEarlierSection, "p.txt", {4, 8}),
               std::runtime_error);
  EXPECT_NO_THROW(CheckAllreduceMergeTarget(std::string(kHead) + kEarlierSection, "p.txt", {2, 4}));
}

// A profile's last lines as kvprobe writes them: a blank line and the end marker.
std::string EndLines() { return "\n" + std::string(kvsim::kProfileEndMarker) + "\n"; }

TEST(MergeAllreduceRows, TheEndMarkerStaysLastAfterASectionAppended) {
  const std::string merged =
      MergeAllreduceRows(std::string(kHead) + EndLines(), "p.txt", EightGpuRows(), "new");
  // As merged into a profile without the marker, then the marker.
  EXPECT_EQ(merged, MergeAllreduceRows(kHead, "p.txt", EightGpuRows(), "new") + EndLines());
}

TEST(MergeAllreduceRows, TheEndMarkerStaysLastAfterTheLastSectionMerged) {
  const std::string merged = MergeAllreduceRows(std::string(kHead) + "\n" + kSection + EndLines(),
                                                "p.txt", EightGpuRows(), "");
  EXPECT_EQ(merged,
            MergeAllreduceRows(std::string(kHead) + "\n" + kSection, "p.txt", EightGpuRows(), "") +
                EndLines());
}

TEST(MergeAllreduceRows, TheEndMarkerStaysLastAfterASectionInTheMiddleMerged) {
  const std::string merged = MergeAllreduceRows(
      std::string(kHead) + "\n" + kSection + kTail + EndLines(), "p.txt", EightGpuRows(), "");
  EXPECT_EQ(merged, MergeAllreduceRows(std::string(kHead) + "\n" + kSection + kTail, "p.txt",
                                       EightGpuRows(), "") +
                        EndLines());
}

TEST(MergeAllreduceRows, AProfileWithoutTheEndMarkerGetsNone) {
  // An earlier kvprobe's profile stays as its version wrote it.
  EXPECT_THAT(MergeAllreduceRows(std::string(kHead) + "\n" + kSection, "p.txt", EightGpuRows(), ""),
              Not(HasSubstr(std::string(kvsim::kProfileEndMarker))));
}

TEST(MergeAllreduceRows, AMalformedTargetSectionNamesItsLine) {
  const std::string head = kHead;  // 7 lines
  EXPECT_THAT(MergeError(head + "[allreduce]\ngpus,bytes\n"),
              HasSubstr("p.txt:9: [allreduce] header is 'gpus,bytes'"));
  EXPECT_THAT(MergeError(head + "[allreduce]\ngpus,bytes,time_us,algbw_gbps,busbw_gbps\n2,1,2\n"),
              HasSubstr("p.txt:10: [allreduce] row has 3 fields, expected 5"));
  EXPECT_THAT(
      MergeError(
          head +
          "[allreduce]\ngpus,bytes,time_us,algbw_gbps,busbw_gbps,in_graph_us,alone_in_graph_us\n"
          "2,1,2,3,4\n"),
      HasSubstr("p.txt:10: [allreduce] row has 5 fields, expected 7"));
  EXPECT_THAT(
      MergeError(head + "[allreduce]\ngpus,bytes,time_us,algbw_gbps,busbw_gbps\nx,1,2,3,4\n"),
      HasSubstr("p.txt:10: [allreduce] row has a non-numeric gpus or bytes field"));
}

TEST(ProfileGpuName, IsTheMetaSectionsGpuName) {
  EXPECT_EQ(ProfileGpuName(kHead), "test");
  EXPECT_EQ(ProfileGpuName("[meta]\ngpu_name:  NVIDIA H100 80GB HBM3 \n[copy]\n"),
            "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(ProfileGpuName("[copy]\ngpu_name: not meta\n"), "");
  EXPECT_EQ(ProfileGpuName(""), "");
}

TEST(MergeAllreduceRows, MalformedRowsToMergeAreRejected) {
  EXPECT_THROW(MergeAllreduceRows(kHead, "p.txt", {}, ""), std::invalid_argument);
  EXPECT_THROW(MergeAllreduceRows(kHead, "p.txt", {{"8", "65536", "14"}}, ""),
               std::invalid_argument);
  EXPECT_THROW(MergeAllreduceRows(kHead, "p.txt", {{"8", "65536", "14", "1", "1"}}, ""),
               std::invalid_argument);
  EXPECT_THROW(
      MergeAllreduceRows(kHead, "p.txt", {{"eight", "65536", "14", "1", "1", "1", "-1"}}, ""),
      std::invalid_argument);
}

}  // namespace
}  // namespace kvprobe
