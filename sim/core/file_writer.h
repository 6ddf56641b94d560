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

  // Appending throws InputError "PATH: cannot write: why" when flushing the buffer
  // fails (a full disk, a file size limit): the first failure ends the writing.
  FileWriter& Text(std::string_view s);
  FileWriter& Char(char c);
  FileWriter& Int(int64_t v);
  // Seconds with nine decimals, exactly from integer nanoseconds ("-0.000000001",
  // "12.500000000"); the same text as "{:.9f}" of ToSeconds(t) below 1e6 s, where
  // the double still holds every nanosecond.
  FileWriter& Seconds(Nanos t);
  // A double in the shortest form that reads back to the same value.
  FileWriter& Double(double v);

  // Flushes, syncs to the device (fsync), closes and renames PATH.partial to PATH.
  // Throws InputError "PATH: cannot write: why" on any failure, a full disk
  // included (then nothing is renamed). Once only.
  void Commit();

  const std::filesystem::path& path() const { return path_; }
  // Bytes written so far, and their CRC-32 (IEEE 802.3, as zlib's crc32).
  int64_t bytes() const { return bytes_; }
  uint32_t crc32() const { return crc_ ^ 0xFFFFFFFFu; }

 private:
  void Reserve(size_t n);    // room for n more bytes in the buffer (flushes if needed)
  void Flush();              // throws InputError when the write fails
  [[noreturn]] void Fail();  // closes the file and throws InputError with errno's reason

  std::filesystem::path path_, partial_;
  std::unique_ptr<char[]> buffer_;
  size_t capacity_, used_ = 0;
  std::FILE* file_ = nullptr;
  bool committed_ = false;
  int64_t bytes_ = 0;
  uint32_t crc_ = 0xFFFFFFFFu;  // running, pre-inverted
};

// Updates a pre-inverted CRC-32 (IEEE 802.3) with `data`: Crc32Update(0xFFFFFFFF,
// d) ^ 0xFFFFFFFF is zlib's crc32 of d.
uint32_t Crc32Update(uint32_t crc, std::string_view data);

// Writes `text` to PATH through a FileWriter (PATH.partial, then renamed).
void WriteFileAtomically(const std::filesystem::path& path, std::string_view text);

}  // namespace kvsim
