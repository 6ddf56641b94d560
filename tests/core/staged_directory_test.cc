// StagedDirectory: outputs appear in DIR whole and at once, replace an earlier
// kvsim output whole, never replace other files, and a second writer is refused.
#include "sim/core/staged_directory.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "sim/core/check.h"
#include "tests/testing/temp_dir.h"

namespace kvsim {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::ReadFileText;
using testing::TempDir;

// The names in `dir`, hidden ones included.
std::set<std::string> Names(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

void Put(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string ErrorOf(const fs::path& dir) {
  try {
    StagedDirectory staged(dir, /*replace_earlier=*/true);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(StagedDirectory, WritesBesideTheTargetAndMovesEverythingInOnCommit) {
  TempDir root;
  const fs::path dir = root.path() / "out";
  StagedDirectory staged(dir, /*replace_earlier=*/true);
  EXPECT_EQ(staged.path().parent_path(), root.path());
  EXPECT_EQ(staged.path().filename(), ".out.kvsim-staging");
  Put(staged.path() / "summary.json", "{}\n");
  fs::create_directory(staged.path() / "paged");
  Put(staged.path() / "paged" / "manifest.json", "{}\n");
  EXPECT_FALSE(fs::exists(dir));  // nothing shows before the commit
  staged.Commit();
  EXPECT_EQ(ReadFileText(dir / "summary.json"), "{}\n");
  EXPECT_TRUE(fs::exists(dir / "paged" / "manifest.json"));
  // Beside DIR only the (empty) lock file stays.
  EXPECT_EQ(Names(root.path()), (std::set<std::string>{".out.kvsim-lock", "out"}));
}

TEST(StagedDirectory, ReplacesAnEarlierOutputWholeSoNoFileOfItStaysBesideTheNewOnes) {
  TempDir root;
  const fs::path dir = root.path() / "out";
  fs::create_directory(dir);
  Put(dir / "manifest.json", "old\n");
  Put(dir / "requests.csv", "old\n");
  Put(dir / "report.html", "old\n");
  StagedDirectory staged(dir, /*replace_earlier=*/true);
  EXPECT_EQ(ReadFileText(dir / "requests.csv"), "old\n");  // untouched until the commit
  Put(staged.path() / "manifest.json", "new\n");
  Put(staged.path() / "summary.json", "new\n");
  staged.Commit();
  EXPECT_EQ(Names(dir), (std::set<std::string>{"manifest.json", "summary.json"}));
  EXPECT_EQ(ReadFileText(dir / "manifest.json"), "new\n");
  EXPECT_EQ(Names(root.path()), (std::set<std::string>{".out.kvsim-lock", "out"}));
}

TEST(StagedDirectory, AnEarlierOutputIsReplacedOnlyWhenAskedTo) {
  TempDir root;
  const fs::path dir = root.path() / "out";
  fs::create_directory(dir);
  Put(dir / "manifest.json", "old\n");
  try {
    StagedDirectory staged(dir, /*replace_earlier=*/false);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("holds the outputs of an earlier kvsim run; pass --force"));
  }
  EXPECT_EQ(ReadFileText(dir / "manifest.json"), "old\n");
  // An empty directory holds no outputs to protect.
  fs::create_directory(root.path() / "empty");
  StagedDirectory staged(root.path() / "empty", /*replace_earlier=*/false);
  staged.Commit();
}

TEST(StagedDirectory, AnOutputInsideAnotherKvsimOutputIsRefused) {
  TempDir root;
  const fs::path compare = root.path() / "cmp";
  fs::create_directories(compare / "paged");
  Put(compare / "manifest.json", "{\n  \"kvsim_version\": \"0.1.0\",\n  \"files\": []\n}\n");
  Put(compare / "paged" / "manifest.json", "{\"kvsim_version\": \"0.1.0\"}\n");
  for (const fs::path& inside : {compare / "paged", compare / "new", compare / "paged" / "x"}) {
    EXPECT_THAT(ErrorOf(inside), HasSubstr(": lies inside " + compare.string()));
  }
  EXPECT_TRUE(fs::exists(compare / "paged" / "manifest.json"));
  // Another tool's manifest.json is not kvsim's.
  const fs::path other = root.path() / "web";
  fs::create_directory(other);
  Put(other / "manifest.json", "{\"name\": \"app\"}\n");
  EXPECT_EQ(ErrorOf(other / "out"), "");
}

TEST(StagedDirectory, DroppedWithoutCommitLeavesTheEarlierOutputAndNoStaging) {
  TempDir root;
  const fs::path dir = root.path() / "out";
  fs::create_directory(dir);
  Put(dir / "manifest.json", "old\n");
  {
    StagedDirectory staged(dir, /*replace_earlier=*/true);
    Put(staged.path() / "manifest.json", "new\n");
  }
  EXPECT_EQ(ReadFileText(dir / "manifest.json"), "old\n");
  EXPECT_EQ(Names(root.path()), (std::set<std::string>{".out.kvsim-lock", "out"}));
}

TEST(StagedDirectory, ASecondWriterIsRefusedUntilTheFirstIsDone) {
  TempDir root;
  const fs::path dir = root.path() / "out";
  {
    StagedDirectory first(dir, /*replace_earlier=*/true);
    EXPECT_THAT(ErrorOf(dir), HasSubstr("another kvsim run is writing its outputs here"));
  }
  EXPECT_EQ(ErrorOf(dir), "");
}

TEST(StagedDirectory, NeverReplacesADirectoryOfOtherFiles) {
  TempDir root;
  const fs::path dir = root.path() / "home";
  fs::create_directory(dir);
  Put(dir / "thesis.tex", "mine\n");
  EXPECT_THAT(ErrorOf(dir), HasSubstr("holds files kvsim did not write (no manifest.json)"));
  EXPECT_EQ(ReadFileText(dir / "thesis.tex"), "mine\n");
  // An empty directory is fine, and so is a file's parent that is not DIR itself.
  fs::create_directory(root.path() / "empty");
  EXPECT_EQ(ErrorOf(root.path() / "empty"), "");
  EXPECT_EQ(ErrorOf(dir / "runs" / "a"), "");
}

TEST(StagedDirectory, RefusesAFileARootAndANameTooLongForItsStaging) {
  TempDir root;
  Put(root.path() / "file", "x");
  EXPECT_THAT(ErrorOf(root.path() / "file"), HasSubstr("exists and is not a directory"));
  EXPECT_THAT(ErrorOf("/"), HasSubstr("cannot be a file system root"));
  EXPECT_THAT(ErrorOf(root.path() / std::string(250, 'a')), HasSubstr("at most 240 can be used"));
}

TEST(StagedDirectory, ClearsWhatAKilledRunLeftAndRestoresOutputsMovedAside) {
  TempDir root;
  const fs::path dir = root.path() / "out";
  // A killed run's staging directory goes.
  fs::create_directories(root.path() / ".out.kvsim-staging" / "paged");
  Put(root.path() / ".out.kvsim-staging" / "paged" / "requests.csv.partial", "1,");
  {
    StagedDirectory staged(dir, /*replace_earlier=*/true);
    EXPECT_TRUE(fs::is_empty(staged.path()));
  }
  // Earlier outputs moved aside by a run cut between its two renames come back.
  fs::create_directory(root.path() / ".out.kvsim-old");
  Put(root.path() / ".out.kvsim-old" / "manifest.json", "old\n");
  { StagedDirectory staged(dir, /*replace_earlier=*/true); }
  EXPECT_EQ(ReadFileText(dir / "manifest.json"), "old\n");
  EXPECT_FALSE(fs::exists(root.path() / ".out.kvsim-old"));
}

TEST(StagedDirectory, ThroughASymlinkReplacesTheDirectoryItPointsTo) {
  TempDir root;
  fs::create_directory(root.path() / "real");
  Put(root.path() / "real" / "manifest.json", "old\n");
  fs::create_directory_symlink(root.path() / "real", root.path() / "link");
  StagedDirectory staged(root.path() / "link", /*replace_earlier=*/true);
  Put(staged.path() / "manifest.json", "new\n");
  staged.Commit();
  EXPECT_TRUE(fs::is_symlink(root.path() / "link"));
  EXPECT_EQ(ReadFileText(root.path() / "link" / "manifest.json"), "new\n");
}

TEST(StagedDirectory, ATrailingSlashNamesTheSameDirectory) {
  TempDir root;
  StagedDirectory staged(root.path().string() + "/out/", /*replace_earlier=*/true);
  EXPECT_EQ(staged.path(), root.path() / ".out.kvsim-staging");
  staged.Commit();
  EXPECT_TRUE(fs::is_directory(root.path() / "out"));
}

TEST(NameStagedAsTarget, WritesStagingPathsAsTheDirectoriesTheyStandFor) {
  EXPECT_EQ(NameStagedAsTarget("/r/.out.kvsim-staging/paged/requests.csv: cannot write: x"),
            "/r/out/paged/requests.csv: cannot write: x");
  EXPECT_EQ(NameStagedAsTarget(".o.kvsim-staging/a and /b/.o.kvsim-staging"), "o/a and /b/o");
  // Not a staging directory: left as it is.
  EXPECT_EQ(NameStagedAsTarget("/r/x.kvsim-staging/a"), "/r/x.kvsim-staging/a");
  EXPECT_EQ(NameStagedAsTarget("/r/..kvsim-staging/a"), "/r/..kvsim-staging/a");
  EXPECT_EQ(NameStagedAsTarget("/r/.o.kvsim-stagingx/a"), "/r/.o.kvsim-stagingx/a");
}

}  // namespace
}  // namespace kvsim
