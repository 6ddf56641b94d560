// FileWriter: buffered, renamed into place when complete.
#include "sim/core/file_writer.h"

#include <fmt/format.h>

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

void FileWriter::Flush() {
  if (used_ > 0 && !failed_ && std::fwrite(buffer_.get(), 1, used_, file_) != used_) {
    failed_ = true;
  }
  used_ = 0;
}

void FileWriter::Reserve(size_t n) {
  if (capacity_ - used_ < n) Flush();
}

FileWriter& FileWriter::Text(std::string_view s) {
  if (s.size() > capacity_) {
    Flush();
    if (!failed_ && std::fwrite(s.data(), 1, s.size(), file_) != s.size()) failed_ = true;
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
  KVSIM_CHECK(!committed_ && file_ != nullptr, "FileWriter::Commit once");
  Flush();
  const bool flushed = std::fflush(file_) == 0;
  const int saved = errno;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (failed_ || !flushed || !closed) {
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
