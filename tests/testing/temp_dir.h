// TempDir: a fresh directory under the system temporary directory, for tests that
// write files (configs, cards, traces) or point kvsim's outputs somewhere. It is
// removed with its contents when the TempDir goes out of scope. Its name carries the
// running test's name, the process id and a counter, so no two TempDirs share a
// directory, whether in one test, in one process or in tests run side by side.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>

namespace kvsim::testing {

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const std::string stem = "kvsim_" + RunningTestName() + "_" + std::to_string(::getpid()) + "_";
    // A name left behind by an earlier process with the same id is skipped.
    do {
      path_ = std::filesystem::temp_directory_path() / (stem + std::to_string(counter++));
    } while (!std::filesystem::create_directory(path_));
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

  // The path of `name` inside the directory; nothing is created.
  std::string PathOf(const std::string& name) const { return (path_ / name).string(); }

  // Writes `text` verbatim (no newline translation) to `name` inside the directory,
  // replacing any earlier file of that name, and returns the file's path.
  std::string Write(const std::string& name, const std::string& text) const {
    const std::filesystem::path file = path_ / name;
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    EXPECT_TRUE(out) << "cannot write " << file;
    return file.string();
  }

 private:
  // "Suite_Test" of the running test (the suite alone in a suite's set-up), reduced to
  // characters that are safe in a file name.
  static std::string RunningTestName() {
    const ::testing::UnitTest* unit = ::testing::UnitTest::GetInstance();
    std::string name = "test";
    if (const ::testing::TestInfo* info = unit->current_test_info()) {
      name = std::string(info->test_suite_name()) + "_" + info->name();
    } else if (const ::testing::TestSuite* suite = unit->current_test_suite()) {
      name = suite->name();
    }
    for (char& c : name) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') c = '_';
    }
    return name.substr(0, 120);
  }

  std::filesystem::path path_;
};

// The bytes of the file at `path` ("" when it cannot be read).
inline std::string ReadFileText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace kvsim::testing
