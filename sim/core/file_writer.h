// FileWriter: a file written through a fixed-size buffer under a temporary name
// and renamed into place by Commit(), so a run that stops part-way never leaves a
// file that looks whole. Numbers are formatted with std::to_chars (no locale).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "sim/core/time.h"

namespace kvsim {

class FileWriter {
 public:
  // Opens PATH.partial for writing (truncating it). Memory use is `buffer_bytes`
  // whatever the file's size. Throws InputError "PATH: cannot write: why".
  explicit FileWriter(std::filesystem::path path, size_t buffer_bytes = size_t{1} << 20);
  // Without Commit(): closes and removes PATH.partial (PATH is left as it was).
  ~FileWriter();
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  FileWriter& Text(std::string_view s);
  FileWriter& Char(char c);
  FileWriter& Int(int64_t v);
  // Seconds with nine decimals, exactly from integer nanoseconds ("-0.000000001",
  // "12.500000000"); the same text as "{:.9f}" of ToSeconds(t) below 1e6 s, where
  // the double still holds every nanosecond.
  FileWriter& Seconds(Nanos t);
  // A double in the shortest form that reads back to the same value.
  FileWriter& Double(double v);

  // Flushes, closes and renames PATH.partial to PATH. Throws InputError
  // "PATH: cannot write: why" on any failure (then nothing is renamed). Once only.
  void Commit();

  const std::filesystem::path& path() const { return path_; }

 private:
  void Reserve(size_t n);  // room for n more bytes in the buffer (flushes if needed)
  void Flush();

  std::filesystem::path path_, partial_;
  std::unique_ptr<char[]> buffer_;
  size_t capacity_, used_ = 0;
  std::FILE* file_ = nullptr;
  bool failed_ = false, committed_ = false;
};

// Writes `text` to PATH through a FileWriter (PATH.partial, then renamed).
void WriteFileAtomically(const std::filesystem::path& path, std::string_view text);

}  // namespace kvsim
