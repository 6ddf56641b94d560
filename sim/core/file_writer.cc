// FileWriter: buffered, renamed into place when complete.
#include "sim/core/file_writer.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <utility>

#include "sim/core/check.h"

namespace kvsim {

FileWriter::FileWriter(std::filesystem::path path, size_t buffer_bytes)
    : path_(std::move(path)),
      partial_(path_.string() + ".partial"),
      buffer_(new char[std::max<size_t>(buffer_bytes, 64)]),
      capacity_(std::max<size_t>(buffer_bytes, 64)) {
  file_ = std::fopen(partial_.c_str(), "wb");
  if (file_ == nullptr) {
    throw InputError(fmt::format("{}: cannot write: {}", path_.string(), std::strerror(errno)));
  }
}

FileWriter::~FileWriter() {
  if (file_ != nullptr) std::fclose(file_);
  if (!committed_) {
    std::error_code ec;
    std::filesystem::remove(partial_, ec);  // best effort: nothing to report from here
  }
}

namespace {

// Slicing-by-8 tables of the reflected CRC-32 polynomial 0xEDB88320.
struct Crc32Tables {
  uint32_t t[8][256];
  constexpr Crc32Tables() : t() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i) {
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
    }
  }
};

}  // namespace

uint32_t Crc32Update(uint32_t crc, std::string_view data) {
  static constexpr Crc32Tables kTables;
  const auto& t = kTables.t;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t n = data.size();
  while (n >= 8) {
    const uint32_t lo =
        crc ^ (uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24);
    crc = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
          t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = t[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
  return crc;
}

void FileWriter::Flush() {
  if (used_ > 0) {
    crc_ = Crc32Update(crc_, std::string_view(buffer_.get(), used_));
    bytes_ += static_cast<int64_t>(used_);
    errno = 0;
    if (file_ == nullptr || std::fwrite(buffer_.get(), 1, used_, file_) != used_) Fail();
  }
  used_ = 0;
}

void FileWriter::Fail() {
  const int why = errno != 0 && file_ != nullptr ? errno : EIO;
  if (file_ != nullptr) std::fclose(file_);
  file_ = nullptr;
  throw InputError(fmt::format("{}: cannot write: {}", path_.string(), std::strerror(why)));
}

void FileWriter::Reserve(size_t n) {
  if (capacity_ - used_ < n) Flush();
}

FileWriter& FileWriter::Text(std::string_view s) {
  if (s.size() > capacity_) {
    Flush();
    crc_ = Crc32Update(crc_, s);
    bytes_ += static_cast<int64_t>(s.size());
    errno = 0;
    if (file_ == nullptr || std::fwrite(s.data(), 1, s.size(), file_) != s.size()) Fail();
    return *this;
  }
  Reserve(s.size());
  std::memcpy(buffer_.get() + used_, s.data(), s.size());
  used_ += s.size();
  return *this;
}

FileWriter& FileWriter::Char(char c) {
  Reserve(1);
  buffer_[used_++] = c;
  return *this;
}

FileWriter& FileWriter::Int(int64_t v) {
  Reserve(24);
  char* end = std::to_chars(buffer_.get() + used_, buffer_.get() + capacity_, v).ptr;
  used_ = static_cast<size_t>(end - buffer_.get());
  return *this;
}

FileWriter& FileWriter::Seconds(Nanos t) {
  Reserve(32);
  int64_t ns = t.count();
  char* p = buffer_.get() + used_;
  // |INT64_MIN| has no int64 negation: work on the unsigned magnitude.
  uint64_t magnitude = static_cast<uint64_t>(ns);
  if (ns < 0) {
    *p++ = '-';
    magnitude = ~magnitude + 1;
  }
  p = std::to_chars(p, p + 24, magnitude / 1000000000u).ptr;
  *p++ = '.';
  uint64_t frac = magnitude % 1000000000u;
  for (int i = 8; i >= 0; --i) {
    p[i] = static_cast<char>('0' + frac % 10);
    frac /= 10;
  }
  used_ = static_cast<size_t>(p + 9 - buffer_.get());
  return *this;
}

FileWriter& FileWriter::Double(double v) {
  Reserve(32);
  char* end = std::to_chars(buffer_.get() + used_, buffer_.get() + capacity_, v).ptr;
  used_ = static_cast<size_t>(end - buffer_.get());
  return *this;
}

void FileWriter::Commit() {
  KVSIM_CHECK(!committed_ && file_ != nullptr, "FileWriter::Commit once, after no error");
  Flush();
  errno = 0;
  const bool flushed = std::fflush(file_) == 0 && fsync(fileno(file_)) == 0;
  const int saved = errno;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!flushed || !closed) {
    throw InputError(fmt::format("{}: cannot write: {}", path_.string(),
                                 std::strerror(saved != 0 ? saved : EIO)));
  }
  std::error_code ec;
  std::filesystem::rename(partial_, path_, ec);
  if (ec) throw InputError(fmt::format("{}: cannot write: {}", path_.string(), ec.message()));
  committed_ = true;
}

void WriteFileAtomically(const std::filesystem::path& path, std::string_view text) {
  FileWriter w(path, std::min<size_t>(text.size() + 64, size_t{1} << 20));
  w.Text(text);
  w.Commit();
}

}  // namespace kvsim
