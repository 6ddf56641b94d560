// Tests for file bundles: a directory's files come back byte for byte in another
// directory; a bundle cut short, with bytes after its end, or naming a path outside the
// directory it is unpacked into is an InputError naming the sender.
#include "sim/app/file_bundle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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
using ::kvsim::testing::ReadFileText;
using ::kvsim::testing::TempDir;
using ::testing::HasSubstr;

// Contents with every byte value, line breaks and what looks like a bundle's header.
std::string AwkwardBytes() {
  std::string bytes = "3 14\nkvsim-bundle 1\n";
  for (int b = 0; b < 256; ++b) bytes += static_cast<char>(b);
  return bytes;
}

std::vector<BundledFile> SomeFiles() {
  return {
      {"summary.json", "{\"a\": 1}\n"}, {"empty.txt", ""}, {"deep/er/data.bin", AwkwardBytes()}};
}

TEST(FileBundle, DirectoryComesBackByteForByteElsewhere) {
  const TempDir from, to;
  WriteBundleFiles(SomeFiles(), from.path());
  const std::string bundle = EncodeBundle(ReadBundleFiles(from.path()));
  WriteBundleFiles(DecodeBundle(bundle, "rank 1"), to.path() / "run");
  EXPECT_EQ(ReadFileText(to.path() / "run" / "summary.json"), "{\"a\": 1}\n");
  EXPECT_TRUE(fs::is_regular_file(to.path() / "run" / "empty.txt"));
  EXPECT_EQ(ReadFileText(to.path() / "run" / "empty.txt"), "");
  EXPECT_EQ(ReadFileText(to.path() / "run" / "deep" / "er" / "data.bin"), AwkwardBytes());
}

TEST(FileBundle, ReadsFilesInPathOrder) {
  const TempDir dir;
  WriteBundleFiles(SomeFiles(), dir.path());
  std::vector<std::string> paths;
  for (const BundledFile& f : ReadBundleFiles(dir.path())) paths.push_back(f.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"deep/er/data.bin", "empty.txt", "summary.json"}));
}

TEST(FileBundle, DecodesWhatItEncoded) {
  const std::vector<BundledFile> files = SomeFiles();
  const std::vector<BundledFile> decoded = DecodeBundle(EncodeBundle(files), "rank 1");
  ASSERT_EQ(decoded.size(), files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    EXPECT_EQ(decoded[i].path, files[i].path);
    EXPECT_EQ(decoded[i].bytes, files[i].bytes);
  }
  EXPECT_TRUE(DecodeBundle(EncodeBundle({}), "rank 1").empty());
}

TEST(FileBundle, RejectsABundleCutShortAtAnyByte) {
  const std::string bundle = EncodeBundle(SomeFiles());
  for (size_t size = 0; size < bundle.size(); ++size) {
    SCOPED_TRACE(size);
    EXPECT_THAT(InputErrorMessage([&] { DecodeBundle(bundle.substr(0, size), "rank 2"); }),
                HasSubstr("rank 2: file bundle: cut short"));
  }
}

TEST(FileBundle, RejectsBytesAfterTheLastFile) {
  const std::string bundle = EncodeBundle(SomeFiles()) + "x";
  EXPECT_THAT(InputErrorMessage([&] { DecodeBundle(bundle, "rank 2"); }),
              HasSubstr("rank 2: file bundle: 1 bytes after the last of its 3 files"));
}

TEST(FileBundle, RejectsSomethingThatIsNoBundle) {
  EXPECT_THAT(InputErrorMessage([&] { DecodeBundle("{\"version\":1}", "rank 2"); }),
              HasSubstr("does not begin with \"kvsim-bundle 1\""));
  EXPECT_THAT(InputErrorMessage([&] { DecodeBundle("kvsim-bundle 1\nmany\n", "rank 2"); }),
              HasSubstr("expected a number"));
}

// A bundle naming `path` once, written by hand (EncodeBundle refuses such paths).
std::string BundleNaming(const std::string& path) {
  return "kvsim-bundle 1\n1\n" + std::to_string(path.size()) + " 1\n" + path + "x";
}

TEST(FileBundle, RejectsPathsThatLeaveTheDirectory) {
  const std::vector<std::string> escaping = {"../x", "a/../../x", "/etc/passwd",
                                             "a//b", "./a",       "a/",
                                             "",     "a\\..\\b",  std::string("a\0b", 3)};
  for (const std::string& path : escaping) {
    SCOPED_TRACE(path);
    EXPECT_FALSE(IsBundlePath(path));
    EXPECT_THAT(InputErrorMessage([&] { DecodeBundle(BundleNaming(path), "rank 3"); }),
                HasSubstr("which is not relative and plain"));
  }
  EXPECT_TRUE(IsBundlePath("a/b..c/.hidden/summary.json"));
  EXPECT_EQ(DecodeBundle(BundleNaming("a/b..c/.d"), "rank 3").front().path, "a/b..c/.d");
}

TEST(FileBundle, RejectsAPathGivenTwice) {
  const std::string bundle = "kvsim-bundle 1\n2\n1 1\nax1 1\nay";
  EXPECT_THAT(InputErrorMessage([&] { DecodeBundle(bundle, "rank 3"); }),
              HasSubstr("'a' is given twice"));
}

TEST(FileBundle, EncodingAnEscapingPathIsABug) {
  EXPECT_THROW(EncodeBundle({{"../x", ""}}), InvariantError);
}

TEST(FileBundle, WritingOverAnExistingFileIsRefused) {
  const TempDir dir;
  WriteBundleFiles({{"summary.json", "first"}}, dir.path());
  EXPECT_THAT(InputErrorMessage([&] {
                WriteBundleFiles({{"summary.json", "second"}}, dir.path());
              }),
              HasSubstr("summary.json: exists already"));
  EXPECT_EQ(ReadFileText(dir.path() / "summary.json"), "first");
}

TEST(FileBundle, ReadingASymbolicLinkIsRefused) {
  const TempDir dir;
  WriteBundleFiles({{"a.txt", "a"}}, dir.path());
  fs::create_symlink(dir.path() / "a.txt", dir.path() / "link.txt");
  EXPECT_THAT(InputErrorMessage([&] { ReadBundleFiles(dir.path()); }),
              HasSubstr("link.txt: not a regular file"));
}

TEST(ScratchDirectory, IsCreatedEmptyAndRemovedWithItsFiles) {
  fs::path kept;
  {
    const ScratchDirectory scratch("kvsim-test-scratch");
    kept = scratch.path();
    EXPECT_TRUE(fs::is_directory(kept));
    EXPECT_TRUE(fs::is_empty(kept));
    EXPECT_THAT(kept.filename().string(), ::testing::StartsWith("kvsim-test-scratch-"));
    WriteBundleFiles({{"a/b.txt", "b"}}, kept);
  }
  EXPECT_FALSE(fs::exists(kept));
}

}  // namespace
}  // namespace kvsim
