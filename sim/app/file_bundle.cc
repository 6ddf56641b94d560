// File bundles (file_bundle.h).
#include "sim/app/file_bundle.h"

#include <fmt/format.h>
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <iterator>
#include <set>
#include <system_error>

#include "sim/core/check.h"
#include "sim/core/file_writer.h"
#include "sim/metrics/json_writer.h"

namespace kvsim {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kMagic = "kvsim-bundle 1\n";

// Reads a bundle from its start: each call takes the next piece or throws.
class BundleReader {
 public:
  BundleReader(std::string_view bytes, const std::string& where) : bytes_(bytes), where_(where) {}

  // A decimal number ended by `end` (' ' or '\n').
  size_t Number(char end) {
    size_t value = 0;
    const char* first = bytes_.data() + at_;
    const char* last = bytes_.data() + bytes_.size();
    const auto [ptr, ec] = std::from_chars(first, last, value);
    if (ptr == last) Fail("cut short");
    if (ec != std::errc() || ptr == first || *ptr != end) {
      Fail(fmt::format("expected a number and {} at byte {}",
                       end == ' ' ? "a space" : "a line break", at_));
    }
    at_ = static_cast<size_t>(ptr - bytes_.data()) + 1;
    return value;
  }

  // The next `size` bytes.
  std::string_view Take(size_t size) {
    if (size > bytes_.size() - at_) Fail("cut short");
    const std::string_view piece = bytes_.substr(at_, size);
    at_ += size;
    return piece;
  }

  bool AtEnd() const { return at_ == bytes_.size(); }
  size_t at() const { return at_; }

  [[noreturn]] void Fail(const std::string& what) const {
    throw InputError(fmt::format("{}: file bundle: {}", where_, what));
  }

 private:
  std::string_view bytes_;
  const std::string& where_;
  size_t at_ = 0;
};

std::string ReadWhole(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(file.string() + ": cannot open");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw InputError(file.string() + ": cannot read");
  return bytes;
}

}  // namespace

bool IsBundlePath(std::string_view path) {
  if (path.empty() || path.front() == '/') return false;
  if (path.find('\0') != std::string_view::npos || path.find('\\') != std::string_view::npos) {
    return false;
  }
  for (size_t start = 0; start <= path.size();) {
    const size_t slash = std::min(path.find('/', start), path.size());
    const std::string_view part = path.substr(start, slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = slash + 1;
  }
  return true;
}

std::vector<BundledFile> ReadBundleFiles(const fs::path& dir) {
  std::vector<BundledFile> files;
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_directory() && !e.is_symlink()) continue;
    if (!e.is_regular_file() || e.is_symlink()) {
      throw InputError(
          fmt::format("{}: not a regular file; a bundle carries files only", e.path().string()));
    }
    files.push_back({fs::relative(e.path(), dir).generic_string(), ReadWhole(e.path())});
  }
  std::sort(files.begin(), files.end(),
            [](const BundledFile& a, const BundledFile& b) { return a.path < b.path; });
  return files;
}

std::string EncodeBundle(const std::vector<BundledFile>& files) {
  std::string out(kMagic);
  out += fmt::format("{}\n", files.size());
  for (const BundledFile& f : files) {
    KVSIM_CHECK(IsBundlePath(f.path), "a bundled file's path is not relative and plain");
    out += fmt::format("{} {}\n", f.path.size(), f.bytes.size());
    out += f.path;
    out += f.bytes;
  }
  return out;
}

std::vector<BundledFile> DecodeBundle(std::string_view bytes, const std::string& where) {
  BundleReader in(bytes, where);
  if (bytes.substr(0, kMagic.size()) != kMagic) {
    in.Fail(bytes.size() < kMagic.size() && kMagic.starts_with(bytes)
                ? "cut short"
                : "does not begin with \"kvsim-bundle 1\"");
  }
  in.Take(kMagic.size());
  const size_t count = in.Number('\n');
  std::vector<BundledFile> files;
  std::set<std::string_view> seen;
  for (size_t i = 0; i < count; ++i) {
    const size_t path_bytes = in.Number(' ');
    const size_t content_bytes = in.Number('\n');
    const std::string_view path = in.Take(path_bytes);
    if (!IsBundlePath(path)) {
      in.Fail(
          fmt::format("file {} has the path {}, which is not relative and plain (no '..', "
                      "'.', empty part, backslash or leading '/')",
                      i, JsonWriter::Quote(path)));
    }
    if (!seen.insert(path).second) in.Fail(fmt::format("'{}' is given twice", path));
    files.push_back({std::string(path), std::string(in.Take(content_bytes))});
  }
  if (!in.AtEnd()) {
    in.Fail(fmt::format("{} bytes after the last of its {} files", bytes.size() - in.at(), count));
  }
  return files;
}

void WriteBundleFiles(const std::vector<BundledFile>& files, const fs::path& dir) {
  for (const BundledFile& f : files) {
    KVSIM_CHECK(IsBundlePath(f.path), "a bundled file's path is not relative and plain");
    const fs::path file = dir / fs::path(f.path);
    std::error_code ec;
    fs::create_directories(file.parent_path(), ec);
    if (ec) {
      throw InputError(fmt::format("{}: cannot create directory: {}", file.parent_path().string(),
                                   ec.message()));
    }
    if (fs::exists(file, ec)) throw InputError(file.string() + ": exists already");
    WriteFileAtomically(file, f.bytes);
  }
}

ScratchDirectory::ScratchDirectory(std::string_view stem) {
  std::error_code ec;
  const fs::path base = fs::temp_directory_path(ec);
  if (ec) throw InputError(fmt::format("no temporary directory: {}", ec.message()));
  std::string name = (base / fmt::format("{}-XXXXXX", stem)).string();
  if (::mkdtemp(name.data()) == nullptr) {
    throw InputError(fmt::format("{}: cannot create a temporary directory: {}", base.string(),
                                 std::generic_category().message(errno)));
  }
  path_ = name;
}

ScratchDirectory::~ScratchDirectory() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

}  // namespace kvsim
