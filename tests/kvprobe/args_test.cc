// kvprobe's command line: the defaults, every flag, the errors for unknown flags and
// sections, missing and malformed values, and device names turned into folder names.
#include "tools/kvprobe/host/args.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/testing/temp_dir.h"

namespace kvprobe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Parses `args` as if they followed the program name on the command line.
ProbeOptions Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "kvprobe");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  return ParseArgs(static_cast<int>(argv.size()), argv.data());
}

// The ArgsError message of parsing `args`; fails the test when they parse.
std::string ErrorOf(const std::vector<std::string>& args) {
  try {
    Parse(args);
  } catch (const ArgsError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an ArgsError";
  return "";
}

TEST(ParseArgsTest, NoArgumentsGiveTheDefaults) {
  const ProbeOptions o = Parse({});
  EXPECT_EQ(o.out_dir, "");
  EXPECT_EQ(o.models_dir, "models/llm");
  EXPECT_THAT(o.models, IsEmpty());
  EXPECT_THAT(o.sections, IsEmpty());
  EXPECT_EQ(o.gpu_name, "");
  EXPECT_EQ(o.device, 0);
  EXPECT_EQ(o.vmm_samples, 1000);
  EXPECT_FALSE(o.quick);
  EXPECT_FALSE(o.force);
  EXPECT_FALSE(o.help);
  EXPECT_THAT(o.allreduce_gpus, IsEmpty());
  EXPECT_FALSE(o.rank.has_value());
}

TEST(ParseArgsTest, EveryFlagSetsItsOption) {
  const ProbeOptions o =
      Parse({"--out", "/tmp/p", "--models", "cards", "--model", "Llama-3-8B", "--model", "Yi-6B",
             "--only", "gemm,copy", "--gpu-name", "H100-SXM", "--device", "3", "--vmm-samples",
             "50", "--quick", "--force", "--help"});
  EXPECT_EQ(o.out_dir, "/tmp/p");
  EXPECT_EQ(o.models_dir, "cards");
  EXPECT_THAT(o.models, ElementsAre("Llama-3-8B", "Yi-6B"));
  EXPECT_THAT(o.sections, ElementsAre("gemm", "copy"));
  EXPECT_EQ(o.gpu_name, "H100-SXM");
  EXPECT_EQ(o.device, 3);
  EXPECT_EQ(o.vmm_samples, 50);
  EXPECT_TRUE(o.quick);
  EXPECT_TRUE(o.force);
  EXPECT_TRUE(o.help);
}

TEST(ParseArgsTest, ShortHelpFlagAsksForHelp) { EXPECT_TRUE(Parse({"-h"}).help); }

TEST(ParseArgsTest, LaterValuesOfASingleValuedFlagReplaceEarlierOnes) {
  const ProbeOptions o = Parse({"--out", "a", "--out", "b", "--device", "1", "--device", "2"});
  EXPECT_EQ(o.out_dir, "b");
  EXPECT_EQ(o.device, 2);
}

TEST(ParseArgsTest, OnlyAcceptsEverySectionName) {
  std::string all;
  for (const std::string& s : AllSections()) all += (all.empty() ? "" : ",") + s;
  EXPECT_EQ(Parse({"--only", all}).sections, AllSections());
}

TEST(ParseArgsTest, AllSectionsListsTheSectionsInTheOrderTheyRun) {
  EXPECT_THAT(AllSections(), ElementsAre("vmm", "overlap", "copy", "gemm", "small_kernels",
                                         "attention", "step", "allreduce", "vattention"));
}

TEST(ParseArgsTest, OnlyStepRunsTheStepSectionAlone) {
  const ProbeOptions o = Parse({"--only", "step", "--model", "Llama-3-8B"});
  EXPECT_THAT(o.sections, ElementsAre("step"));
  EXPECT_THAT(o.models, ElementsAre("Llama-3-8B"));
  EXPECT_TRUE(o.Runs("step"));
  EXPECT_FALSE(o.Runs("attention"));
  EXPECT_FALSE(o.Runs("gemm"));
}

TEST(ParseArgsTest, TheDefaultRunIncludesStep) { EXPECT_TRUE(Parse({}).Runs("step")); }

TEST(ParseArgsTest, OnlySkipsEmptyNamesBetweenCommas) {
  EXPECT_THAT(Parse({"--only", ",vmm,,copy,"}).sections, ElementsAre("vmm", "copy"));
}

TEST(ParseArgsTest, RepeatedOnlyFlagsAddUp) {
  EXPECT_THAT(Parse({"--only", "vmm", "--only", "gemm"}).sections, ElementsAre("vmm", "gemm"));
}

TEST(ParseArgsTest, OnlyRejectsAnUnknownSectionAndListsTheValidOnes) {
  const std::string message = ErrorOf({"--only", "vmm,gemms"});
  EXPECT_THAT(message, HasSubstr("--only"));
  EXPECT_THAT(message, HasSubstr("'gemms'"));
  EXPECT_THAT(message,
              HasSubstr("vmm, overlap, copy, gemm, small_kernels, attention, step, allreduce, "
                        "vattention"));
}

TEST(ParseArgsTest, OnlyIsCaseSensitive) {
  EXPECT_THAT(ErrorOf({"--only", "VMM"}), HasSubstr("'VMM'"));
}

TEST(ParseArgsTest, OnlyWithNoSectionNamedIsAnError) {
  EXPECT_THAT(ErrorOf({"--only", ","}), HasSubstr("no section"));
  EXPECT_THAT(ErrorOf({"--only", ""}), HasSubstr("no section"));
}

TEST(ParseArgsTest, UnknownFlagIsAnErrorNamingIt) {
  EXPECT_THAT(ErrorOf({"--bogus"}), HasSubstr("'--bogus'"));
  EXPECT_THAT(ErrorOf({"out"}), HasSubstr("'out'"));
  EXPECT_THAT(ErrorOf({"--out=dir"}), HasSubstr("'--out=dir'"));
}

TEST(ParseArgsTest, EveryValuedFlagWithoutItsValueIsAnError) {
  for (const char* flag : {"--out", "--models", "--model", "--only", "--gpu-name", "--device",
                           "--vmm-samples", "--allreduce-gpus", "--rank", "--ranks", "--nccl-id",
                           "--rank-out", "--rank-task", "--merge-allreduce-into", "--step-tp"}) {
    SCOPED_TRACE(flag);
    const std::string message = ErrorOf({"--quick", flag});
    EXPECT_THAT(message, HasSubstr(flag));
    EXPECT_THAT(message, HasSubstr("missing value"));
  }
}

TEST(ParseArgsTest, MalformedIntegersAreErrorsNamingFlagAndText) {
  for (const char* text : {"", "abc", "3x", "1.5", " 3", "3 ", "+3", "0x10", "99999999999"}) {
    SCOPED_TRACE(std::string("'") + text + "'");
    const std::string device = ErrorOf({"--device", text});
    EXPECT_THAT(device, HasSubstr("--device"));
    EXPECT_THAT(device, HasSubstr("expected an integer"));
    EXPECT_THAT(device, HasSubstr(std::string("'") + text + "'"));
    EXPECT_THAT(ErrorOf({"--vmm-samples", text}), HasSubstr("--vmm-samples"));
  }
}

TEST(ParseArgsTest, NegativeDeviceIsAnError) {
  EXPECT_THAT(ErrorOf({"--device", "-1"}), HasSubstr("must be >= 0"));
}

TEST(ParseArgsTest, AllreduceGpusTakesACommaListOfCountsOfTwoOrMore) {
  EXPECT_THAT(Parse({"--allreduce-gpus", "2,4,8"}).allreduce_gpus, ElementsAre(2, 4, 8));
  EXPECT_THAT(Parse({"--allreduce-gpus", "8,3"}).allreduce_gpus, ElementsAre(8, 3));
  EXPECT_THAT(Parse({"--allreduce-gpus", "2", "--allreduce-gpus", "4"}).allreduce_gpus,
              ElementsAre(4));
  EXPECT_THAT(ErrorOf({"--allreduce-gpus", "1,2"}), HasSubstr("--allreduce-gpus: must be >= 2"));
  EXPECT_THAT(ErrorOf({"--allreduce-gpus", "2,x"}), HasSubstr("expected an integer, got 'x'"));
  EXPECT_THAT(ErrorOf({"--allreduce-gpus", ","}), HasSubstr("no GPU count"));
  EXPECT_THAT(ErrorOf({"--allreduce-gpus", "4,2,4"}), HasSubstr("4 given twice"));
}

TEST(ParseArgsTest, MergeAllreduceIntoNamesAProfileAndNeedsTheAllreduceSection) {
  EXPECT_EQ(Parse({"--merge-allreduce-into", "p/profile.txt"}).merge_allreduce_into,
            "p/profile.txt");
  EXPECT_EQ(Parse({"--only", "copy,allreduce", "--merge-allreduce-into", "x"}).merge_allreduce_into,
            "x");
  EXPECT_THAT(ErrorOf({"--only", "gemm", "--merge-allreduce-into", "x"}),
              HasSubstr("--merge-allreduce-into: --only leaves out the allreduce section"));
  EXPECT_THAT(ErrorOf({"--merge-allreduce-into", ""}), HasSubstr("empty path"));
}

TEST(ParseArgsTest, StepTpTakesACommaListOfDegreesOfOneOrMoreAndNeedsTheStepSection) {
  EXPECT_THAT(Parse({"--step-tp", "1,2"}).step_tp, ElementsAre(1, 2));
  EXPECT_THAT(Parse({"--only", "step", "--step-tp", "2"}).step_tp, ElementsAre(2));
  EXPECT_THAT(Parse({}).step_tp, IsEmpty());
  EXPECT_THAT(ErrorOf({"--step-tp", "0"}), HasSubstr("--step-tp: must be >= 1"));
  EXPECT_THAT(ErrorOf({"--step-tp", "2,2"}), HasSubstr("--step-tp: 2 given twice"));
  EXPECT_THAT(ErrorOf({"--only", "gemm", "--step-tp", "2"}),
              HasSubstr("--step-tp: --only leaves out the step section"));
}

TEST(DefaultStepTensorParallel, IsOneThenPowersOfTwoUpToTheGpusPresent) {
  EXPECT_THAT(DefaultStepTensorParallel(1), ElementsAre(1));
  EXPECT_THAT(DefaultStepTensorParallel(2), ElementsAre(1, 2));
  EXPECT_THAT(DefaultStepTensorParallel(6), ElementsAre(1, 2, 4));
  EXPECT_THAT(DefaultStepTensorParallel(8), ElementsAre(1, 2, 4, 8));
}

TEST(ParseArgsTest, TheFiveRankFlagsTogetherMakeARankProcess) {
  const ProbeOptions o = Parse({"--rank", "3", "--ranks", "8", "--nccl-id", "00ff", "--rank-out",
                                "/tmp/r3.csv", "--rank-task", "step", "--quick"});
  ASSERT_TRUE(o.rank.has_value());
  EXPECT_EQ(o.rank->task, RankProcess::Task::kStep);
  EXPECT_EQ(o.rank->rank, 3);
  EXPECT_EQ(o.rank->ranks, 8);
  EXPECT_EQ(o.rank->nccl_id_hex, "00ff");
  EXPECT_EQ(o.rank->out_path, "/tmp/r3.csv");
  EXPECT_TRUE(o.quick);
  EXPECT_EQ(Parse({"--rank", "0", "--ranks", "2", "--nccl-id", "ab", "--rank-out", "f",
                   "--rank-task", "allreduce"})
                .rank->task,
            RankProcess::Task::kAllreduce);
}

TEST(ParseArgsTest, SomeRankFlagsWithoutTheOthersOrARankBeyondTheRanksAreErrors) {
  EXPECT_THAT(ErrorOf({"--rank", "0"}), HasSubstr("go together"));
  EXPECT_THAT(ErrorOf({"--rank", "0", "--ranks", "2", "--nccl-id", "ab", "--rank-out", "f"}),
              HasSubstr("go together"));
  EXPECT_THAT(ErrorOf({"--rank", "2", "--ranks", "2", "--nccl-id", "ab", "--rank-out", "f",
                       "--rank-task", "step"}),
              HasSubstr("--rank: must be below --ranks (2), got 2"));
  EXPECT_THAT(ErrorOf({"--ranks", "1"}), HasSubstr("must be >= 2"));
  EXPECT_THAT(ErrorOf({"--rank-task", "gemm"}),
              HasSubstr("--rank-task: expected allreduce or step, got 'gemm'"));
}

TEST(ParseArgsTest, DeviceZeroIsAccepted) { EXPECT_EQ(Parse({"--device", "0"}).device, 0); }

TEST(ParseArgsTest, VmmSamplesBelowTenAreAnError) {
  const std::string message = ErrorOf({"--vmm-samples", "9"});
  EXPECT_THAT(message, HasSubstr("--vmm-samples"));
  EXPECT_THAT(message, HasSubstr("must be >= 10"));
  EXPECT_THAT(message, HasSubstr("9"));
  EXPECT_THAT(ErrorOf({"--vmm-samples", "0"}), HasSubstr("must be >= 10"));
  EXPECT_THAT(ErrorOf({"--vmm-samples", "-100"}), HasSubstr("must be >= 10"));
}

TEST(ParseArgsTest, VmmSamplesOfTenIsTheSmallestAccepted) {
  EXPECT_EQ(Parse({"--vmm-samples", "10"}).vmm_samples, 10);
}

TEST(ParseArgsTest, GpuNameAcceptsLettersDigitsDotsUnderscoresAndDashes) {
  EXPECT_EQ(Parse({"--gpu-name", "NVIDIA-H100_80GB.v2"}).gpu_name, "NVIDIA-H100_80GB.v2");
}

TEST(ParseArgsTest, GpuNameWithOtherCharactersIsAnError) {
  for (const char* name : {"NVIDIA H100", "h100/sxm", "../h100", "h100:a", ""}) {
    SCOPED_TRACE(std::string("'") + name + "'");
    EXPECT_THAT(ErrorOf({"--gpu-name", name}), HasSubstr("--gpu-name"));
  }
}

TEST(ParseArgsTest, RunsEverySectionWhenNoneIsNamed) {
  const ProbeOptions o = Parse({});
  for (const std::string& s : AllSections()) EXPECT_TRUE(o.Runs(s)) << s;
}

TEST(ParseArgsTest, RunsOnlyTheNamedSections) {
  const ProbeOptions o = Parse({"--only", "gemm,attention"});
  EXPECT_TRUE(o.Runs("gemm"));
  EXPECT_TRUE(o.Runs("attention"));
  EXPECT_FALSE(o.Runs("vmm"));
  EXPECT_FALSE(o.Runs("copy"));
  EXPECT_FALSE(o.Runs("vattention"));
}

TEST(UsageTest, MentionsEveryFlagAndSection) {
  const std::string usage = Usage();
  for (const char* flag :
       {"--out", "--gpu-name", "--models", "--model", "--only", "--device", "--vmm-samples",
        "--quick", "--force", "--allreduce-gpus", "--merge-allreduce-into"}) {
    EXPECT_THAT(usage, HasSubstr(flag));
  }
  for (const std::string& s : AllSections()) EXPECT_THAT(usage, HasSubstr(s));
}

TEST(OutputDirTest, IsOutWhenGiven) {
  EXPECT_EQ(OutputDir(Parse({"--out", "/tmp/p", "--gpu-name", "H100-SXM"}), "NVIDIA H100"),
            "/tmp/p");
}

TEST(OutputDirTest, IsTheGpuNameFolderUnderModelsProfilesWithoutOut) {
  EXPECT_EQ(OutputDir(Parse({"--gpu-name", "H100-SXM"}), "NVIDIA H100"),
            "models/profiles/H100-SXM");
}

TEST(OutputDirTest, IsTheDeviceNameAsAFolderWithoutOutOrGpuName) {
  EXPECT_EQ(OutputDir(Parse({}), "NVIDIA H100 80GB HBM3"), "models/profiles/NVIDIA-H100-80GB-HBM3");
}

// A folder holding a profile.txt, as a full calibration leaves it.
struct FolderWithProfile {
  kvsim::testing::TempDir dir;
  std::string profile = dir.Write("profile.txt", "[meta]\nmode: full\n");
  std::string path = dir.path().string();
};

TEST(OutputConflictTest, AQuickRunRefusesToReplaceAnExistingProfile) {
  FolderWithProfile f;
  EXPECT_EQ(OutputConflict(Parse({"--quick"}), f.path),
            f.profile +
                " exists, and this --quick run would replace it with a smoke-test profile (mode: "
                "quick); write elsewhere with --out DIR, or pass --force to replace it");
}

TEST(OutputConflictTest, AnOnlyRunRefusesToReplaceAnExistingProfileNamingItsSections) {
  FolderWithProfile f;
  EXPECT_EQ(OutputConflict(Parse({"--only", "step,allreduce"}), f.path),
            f.profile +
                " exists, and this --only step,allreduce run would replace it with a profile of "
                "those sections alone; write elsewhere with --out DIR, or pass --force to replace "
                "it");
  EXPECT_THAT(OutputConflict(Parse({"--quick", "--only", "vmm"}), f.path),
              HasSubstr("this --quick --only vmm run would replace it with a smoke-test profile of "
                        "those sections alone"));
}

TEST(OutputConflictTest, ForceLetsAQuickOrOnlyRunReplaceAnExistingProfile) {
  FolderWithProfile f;
  EXPECT_EQ(OutputConflict(Parse({"--quick", "--force"}), f.path), "");
  EXPECT_EQ(OutputConflict(Parse({"--only", "step", "--force"}), f.path), "");
}

TEST(OutputConflictTest, AFullRunReplacesAnExistingProfileAsCalibratingAgainDoes) {
  FolderWithProfile f;
  EXPECT_EQ(OutputConflict(Parse({}), f.path), "");
  // --only naming every section is a full run too.
  std::string all;
  for (const std::string& s : AllSections()) all += s + ",";
  EXPECT_EQ(OutputConflict(Parse({"--only", all}), f.path), "");
}

TEST(OutputConflictTest, AQuickOrOnlyRunMayWriteIntoAFolderWithoutAProfile) {
  kvsim::testing::TempDir dir;
  dir.Write("kvprobe.log", "an earlier log\n");
  EXPECT_EQ(OutputConflict(Parse({"--quick"}), dir.path().string()), "");
  EXPECT_EQ(OutputConflict(Parse({"--only", "step"}), dir.PathOf("new")), "");
}

TEST(OutputConflictTest, MergingIntoThisRunsOwnProfileIsRefusedEvenWithForce) {
  FolderWithProfile f;
  const std::string expected = "--merge-allreduce-into: " + f.profile +
                               " is this run's own profile (" + f.profile +
                               "), written after the merge, so the merged rows would be lost; "
                               "write this run elsewhere with --out DIR";
  EXPECT_EQ(
      OutputConflict(Parse({"--only", "allreduce", "--merge-allreduce-into", f.profile}), f.path),
      expected);
  EXPECT_THAT(
      OutputConflict(Parse({"--only", "allreduce", "--force", "--merge-allreduce-into", f.profile}),
                     f.path),
      HasSubstr("is this run's own profile"));
  EXPECT_THAT(OutputConflict(Parse({"--merge-allreduce-into", f.profile}), f.path),
              HasSubstr("is this run's own profile"));
}

TEST(OutputConflictTest, MergingIntoThisRunsOwnProfileIsRefusedWhateverThePathsSpelling) {
  FolderWithProfile f;
  const std::filesystem::path folder(f.path);
  const std::string roundabout = (folder / ".." / folder.filename() / "." / "profile.txt").string();
  EXPECT_THAT(
      OutputConflict(Parse({"--only", "allreduce", "--merge-allreduce-into", roundabout}), f.path),
      HasSubstr("is this run's own profile"));
  // Before the folder exists, too (the run would create it).
  const std::string absent = f.dir.PathOf("new");
  EXPECT_THAT(OutputConflict(Parse({"--only", "allreduce", "--merge-allreduce-into",
                                    absent + "/./profile.txt"}),
                             absent),
              HasSubstr("is this run's own profile"));
}

TEST(OutputConflictTest, MergingIntoAnotherFolderWhileWritingElsewhereIsAllowed) {
  FolderWithProfile target;
  kvsim::testing::TempDir out;
  EXPECT_EQ(OutputConflict(Parse({"--only", "allreduce", "--merge-allreduce-into", target.profile}),
                           out.PathOf("allreduce8")),
            "");
}

TEST(FolderNameTest, TurnsSpacesIntoDashes) {
  EXPECT_EQ(FolderName("NVIDIA H100 80GB HBM3"), "NVIDIA-H100-80GB-HBM3");
}

TEST(FolderNameTest, KeepsLettersDigitsDotsUnderscoresAndDashes) {
  EXPECT_EQ(FolderName("NVIDIA-A100_SXM4.80GB"), "NVIDIA-A100_SXM4.80GB");
}

TEST(FolderNameTest, TurnsARunOfOtherCharactersIntoOneDash) {
  EXPECT_EQ(FolderName("NVIDIA  H100 / (PCIe)"), "NVIDIA-H100-PCIe");
}

TEST(FolderNameTest, DropsLeadingAndTrailingSeparators) {
  EXPECT_EQ(FolderName("  NVIDIA H100  "), "NVIDIA-H100");
  EXPECT_EQ(FolderName("(H100)"), "H100");
}

TEST(FolderNameTest, NameOfOnlySeparatorsBecomesEmpty) {
  EXPECT_EQ(FolderName(" /:* "), "");
  EXPECT_EQ(FolderName(""), "");
}

TEST(FolderNameTest, IsUnchangedWhenAppliedTwice) {
  const std::string once = FolderName("Tesla V100-SXM2-16GB (rev a1)");
  EXPECT_EQ(once, "Tesla-V100-SXM2-16GB-rev-a1");
  EXPECT_EQ(FolderName(once), once);
}

}  // namespace
}  // namespace kvprobe
