// FileWriter: what it writes, that it formats seconds exactly from nanoseconds, and
// that a file appears under its name only once complete.
#include "sim/core/file_writer.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "sim/core/check.h"
#include "sim/core/rng.h"
#include "tests/testing/temp_dir.h"

namespace kvsim {
namespace {

namespace fs = std::filesystem;
using testing::ReadFileText;
using testing::TempDir;

TEST(FileWriter, WritesTextIntegersSecondsAndDoublesAndRenamesOnCommit) {
  TempDir dir;
  const fs::path path = dir.path() / "out.csv";
  {
    FileWriter w(path);
    w.Text("a,b\n").Int(-42).Char(',').Int(std::numeric_limits<int64_t>::max()).Char('\n');
    w.Seconds(Nanos(1'500'000'000)).Char(',').Seconds(Nanos(-1)).Char(',').Seconds(Nanos(0));
    w.Char('\n').Double(0.1).Char(',').Double(2.0).Char(',').Double(1e-5).Char('\n');
    EXPECT_FALSE(fs::exists(path));  // not yet: only out.csv.partial exists
    EXPECT_TRUE(fs::exists(dir.path() / "out.csv.partial"));
    w.Commit();
  }
  EXPECT_EQ(ReadFileText(path),
            "a,b\n-42,9223372036854775807\n1.500000000,-0.000000001,0.000000000\n0.1,2,1e-05\n");
  EXPECT_FALSE(fs::exists(dir.path() / "out.csv.partial"));
}

TEST(FileWriter, SecondsAreTheExactNineDecimalTextOfTheNanoseconds) {
  // What "{:.9f}" of ToSeconds prints, wherever the double holds the nanoseconds
  // (below 1e6 s: 15 significant digits); beyond, the exact decimal of the integer,
  // which the double rounds. Drawn at random across magnitudes up to ~116 days.
  Rng rng(7, RngStream::kArrivals);
  TempDir dir;
  std::string expected;
  {
    FileWriter w(dir.path() / "t");
    for (int i = 0; i < 20000; ++i) {
      const int digits = 1 + static_cast<int>(rng.UniformInt(0, 15));
      int64_t bound = 1;
      for (int d = 0; d < digits; ++d) bound *= 10;
      const int64_t ns = rng.UniformInt(0, bound - 1) * (i % 7 == 0 ? -1 : 1);
      w.Seconds(Nanos(ns)).Char('\n');
      const int64_t mag = ns < 0 ? -ns : ns;
      expected += mag < 1'000'000'000'000'000
                      ? fmt::format("{:.9f}\n", ToSeconds(Nanos(ns)))
                      : fmt::format("{}{}.{:09}\n", ns < 0 ? "-" : "", mag / 1'000'000'000,
                                    mag % 1'000'000'000);
    }
    w.Commit();
  }
  EXPECT_EQ(ReadFileText(dir.path() / "t"), expected);
}

TEST(FileWriter, FlushesThroughASmallBufferWithoutLosingOrReorderingBytes) {
  TempDir dir;
  std::string expected;
  {
    FileWriter w(dir.path() / "big", /*buffer_bytes=*/64);  // far smaller than the file
    for (int64_t i = 0; i < 5000; ++i) {
      w.Int(i).Char(',').Seconds(Nanos(i * 1000)).Char('\n');
      expected += fmt::format("{},{:.9f}\n", i, ToSeconds(Nanos(i * 1000)));
    }
    const std::string long_text(300, 'x');  // longer than the buffer: written through
    w.Text(long_text);
    expected += long_text;
    w.Commit();
  }
  EXPECT_EQ(ReadFileText(dir.path() / "big"), expected);
}

TEST(FileWriter, AWriterDroppedBeforeCommitLeavesNoFileAndKeepsTheOldOne) {
  TempDir dir;
  const fs::path path = dir.path() / "requests.csv";
  WriteFileAtomically(path, "the earlier run's\n");
  {
    FileWriter w(path);
    w.Text("half a row,");
  }  // e.g. an error part-way through a run
  EXPECT_EQ(ReadFileText(path), "the earlier run's\n");
  EXPECT_FALSE(fs::exists(dir.path() / "requests.csv.partial"));
}

TEST(Crc32, IsTheIeeeCrcOfTheCheckString) {
  // The standard check value: CRC-32 of "123456789" is 0xCBF43926 (zlib's crc32).
  EXPECT_EQ(Crc32Update(0xFFFFFFFFu, "123456789") ^ 0xFFFFFFFFu, 0xCBF43926u);
  EXPECT_EQ(Crc32Update(0xFFFFFFFFu, "") ^ 0xFFFFFFFFu, 0u);
  // In pieces as at once (the slicing-by-8 path and the byte path agree).
  const std::string text(1000, 'k');
  const uint32_t whole = Crc32Update(0xFFFFFFFFu, text);
  EXPECT_EQ(Crc32Update(Crc32Update(0xFFFFFFFFu, std::string_view(text).substr(0, 13)),
                        std::string_view(text).substr(13)),
            whole);
}

TEST(FileWriter, CountsTheBytesAndTheCrcOfWhatItWrote) {
  TempDir dir;
  FileWriter w(dir.path() / "x", /*buffer_bytes=*/64);
  std::string expected;
  for (int i = 0; i < 300; ++i) {
    w.Int(i).Char('\n');
    expected += std::to_string(i) + "\n";
  }
  w.Commit();
  EXPECT_EQ(w.bytes(), static_cast<int64_t>(expected.size()));
  EXPECT_EQ(w.crc32(), Crc32Update(0xFFFFFFFFu, expected) ^ 0xFFFFFFFFu);
}

TEST(FileWriter, AnUnwritableDirectoryIsAnInputErrorNamingThePath) {
  TempDir dir;
  const fs::path path = dir.path() / "missing" / "out.csv";
  try {
    FileWriter w(path);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr(path.string() + ": cannot write"));
  }
}

}  // namespace
}  // namespace kvsim
