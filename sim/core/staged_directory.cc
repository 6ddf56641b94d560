#include "sim/core/staged_directory.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

#include "sim/core/check.h"

namespace kvsim {

namespace fs = std::filesystem;

namespace {

// The longest directory name whose staging name (".NAME.kvsim-staging") still fits
// the 255-byte limit of a file name on Linux file systems.
constexpr size_t kMaxNameBytes = 255 - std::char_traits<char>::length(".kvsim-staging") - 1;

// fsync of the directory PATH, so the renames in it survive a power loss. Best
// effort: some file systems refuse fsync on a directory.
void SyncDirectory(const fs::path& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  fsync(fd);
  close(fd);
}

// Syncs ROOT and every directory below it.
void SyncTree(const fs::path& root) {
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) SyncDirectory(it->path());
  }
  SyncDirectory(root);
}

// DIR made absolute and normal, through any symlinks to the real directory (it is
// what gets replaced, and a link to it keeps pointing at the new outputs). Throws
// InputError naming `shown` (DIR as given) when it is a root, cannot be resolved or
// its name is too long to stage.
fs::path ResolveOutputDirectory(const fs::path& dir, const std::string& shown) {
  std::error_code ec;
  fs::path named = fs::absolute(dir, ec).lexically_normal();
  if (!named.has_filename()) named = named.parent_path();
  if (named.filename().string().size() > kMaxNameBytes) {
    throw InputError(fmt::format("{}: the directory name is {} bytes; at most {} can be used",
                                 shown, named.filename().string().size(), kMaxNameBytes));
  }
  fs::path real = fs::weakly_canonical(named, ec);
  if (ec || real.empty()) {
    throw InputError(fmt::format("{}: not a usable output directory: {}", shown, ec.message()));
  }
  if (!real.has_filename()) real = real.parent_path();
  if (real == real.root_path() || !real.has_filename()) {
    throw InputError(fmt::format("{}: an output directory cannot be a file system root", shown));
  }
  const std::string name = real.filename().string();
  if (name.size() > kMaxNameBytes) {
    throw InputError(fmt::format("{}: the directory name is {} bytes; at most {} can be used",
                                 shown, name.size(), kMaxNameBytes));
  }
  return real;
}

// Creates PARENT and takes the exclusive lock PARENT/.NAME.kvsim-lock; returns its
// file descriptor. Throws InputError when another run holds it or it cannot be taken.
int LockOutputDirectory(const fs::path& parent, const std::string& name, const std::string& shown) {
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) {
    throw InputError(fmt::format("{}: cannot create output directory: {}", shown, ec.message()));
  }
  const fs::path lock = parent / ("." + name + ".kvsim-lock");
  const int fd = open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw InputError(fmt::format("{}: cannot write: {}", lock.string(), std::strerror(errno)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int why = errno;
    close(fd);
    if (why == EWOULDBLOCK) {
      throw InputError(fmt::format(
          "{}: another kvsim run is writing its outputs here; wait for it or choose another --out",
          shown));
    }
    throw InputError(fmt::format("{}: cannot lock: {}", lock.string(), std::strerror(why)));
  }
  return fd;
}

// Clears what a killed run left: earlier outputs moved aside to `retired` (restored
// as `dir` when it is missing, the two-rename fallback of Commit having been cut
// between its renames, else removed), and its `staging` directory.
void RecoverKilledRun(const fs::path& dir, const fs::path& retired, const fs::path& staging) {
  std::error_code ec;
  const bool had_dir = fs::exists(fs::symlink_status(dir, ec));
  if (fs::exists(fs::symlink_status(retired, ec))) {
    if (!had_dir) {
      fs::rename(retired, dir, ec);
    } else {
      fs::remove_all(retired, ec);
    }
  }
  fs::remove_all(staging, ec);
}

// Throws InputError naming `shown` unless `dir` is absent, an empty directory or, with
// `replace_earlier`, an earlier kvsim output (holding manifest.json).
void CheckReplaceable(const fs::path& dir, const std::string& shown, bool replace_earlier) {
  std::error_code ec;
  // Inside another kvsim output (a compare's run folder, a sweep's rate, a plan's probe:
  // at most two levels down): writing there would leave that output's parts disagreeing
  // with its manifest and summaries. A manifest.json is kvsim's when it records a
  // kvsim_version (other tools name files so too).
  const auto kvsim_output = [&](const fs::path& d) {
    std::ifstream in(d / "manifest.json");
    std::string head(256, '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<size_t>(in.gcount()));
    return head.find("\"kvsim_version\"") != std::string::npos;
  };
  fs::path up = dir.parent_path();
  for (int level = 0; level < 2 && !up.empty() && up != up.root_path();
       ++level, up = up.parent_path()) {
    if (kvsim_output(up)) {
      throw InputError(fmt::format(
          "{}: lies inside {}, the outputs of an earlier kvsim command (it holds "
          "manifest.json); writing there would leave them inconsistent: choose an --out "
          "outside it",
          shown, up.string()));
    }
  }
  const fs::file_status status = fs::symlink_status(dir, ec);
  if (!fs::exists(status)) return;
  if (!fs::is_directory(status)) {
    throw InputError(fmt::format("{}: exists and is not a directory", shown));
  }
  if (fs::is_empty(dir, ec)) return;
  if (!fs::exists(dir / "manifest.json", ec)) {
    throw InputError(fmt::format(
        "{}: exists and holds files kvsim did not write (no manifest.json); kvsim replaces "
        "only its own outputs: remove it or choose another --out",
        shown));
  }
  if (!replace_earlier) {
    throw InputError(fmt::format(
        "{}: holds the outputs of an earlier kvsim run; pass --force to replace them, or "
        "choose another --out",
        shown));
  }
}

}  // namespace

StagedDirectory::StagedDirectory(const fs::path& dir, bool replace_earlier) : target_(dir) {
  const std::string shown = target_.string();
  dir_ = ResolveOutputDirectory(dir, shown);
  const std::string name = dir_.filename().string();
  const fs::path parent = dir_.parent_path();
  staging_ = parent / ("." + name + ".kvsim-staging");
  retired_ = parent / ("." + name + ".kvsim-old");
  lock_fd_ = LockOutputDirectory(parent, name, shown);
  RecoverKilledRun(dir_, retired_, staging_);
  try {
    CheckReplaceable(dir_, shown, replace_earlier);
  } catch (...) {
    close(lock_fd_);  // no destructor runs for a constructor that throws
    throw;
  }
  std::error_code ec;
  fs::create_directory(staging_, ec);
  if (ec) {
    close(lock_fd_);
    throw InputError(
        fmt::format("{}: cannot create output directory: {}", staging_.string(), ec.message()));
  }
}

StagedDirectory::~StagedDirectory() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(staging_, ec);
  }
  if (lock_fd_ >= 0) close(lock_fd_);  // releases the lock
}

void StagedDirectory::Commit() {
  KVSIM_CHECK(!committed_, "StagedDirectory::Commit twice");
  SyncTree(staging_);
  std::error_code ec;
  const bool replace = fs::exists(fs::symlink_status(dir_, ec)) && !fs::is_empty(dir_, ec);
  auto fail = [&](const char* what, int why) {
    throw InputError(fmt::format("{}: cannot {}: {}", target_.string(), what, std::strerror(why)));
  };
  if (!replace) {
    // Onto an absent or empty directory a rename is atomic by itself.
    if (std::rename(staging_.c_str(), dir_.c_str()) != 0)
      fail("move the outputs into place", errno);
  } else if (renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, dir_.c_str(), RENAME_EXCHANGE) == 0) {
    fs::remove_all(staging_, ec);  // now the earlier outputs; a failure leaves them hidden
  } else {
    const int why = errno;
    if (why != EINVAL && why != ENOSYS && why != EOPNOTSUPP)
      fail("replace the earlier outputs", why);
    // A file system without RENAME_EXCHANGE: two renames. Cut between them, DIR is
    // missing and the next run into it restores the earlier outputs first.
    if (std::rename(dir_.c_str(), retired_.c_str()) != 0) fail("move the earlier outputs", errno);
    if (std::rename(staging_.c_str(), dir_.c_str()) != 0) {
      const int err = errno;
      std::rename(retired_.c_str(), dir_.c_str());
      fail("move the outputs into place", err);
    }
    fs::remove_all(retired_, ec);
  }
  SyncDirectory(dir_.parent_path());
  committed_ = true;
}

std::string NameStagedAsTarget(std::string message) {
  static constexpr std::string_view kSuffix = ".kvsim-staging";
  for (size_t at = message.find(kSuffix); at != std::string::npos; at = message.find(kSuffix, at)) {
    // The name starts after "/." (or at a leading "."), before the suffix.
    const size_t slash = message.rfind('/', at);
    const size_t dot = slash == std::string::npos ? 0 : slash + 1;
    const size_t end = at + kSuffix.size();
    const bool component = end == message.size() || message[end] == '/';
    if (message[dot] != '.' || dot + 1 >= at || !component) {
      at = end;
      continue;
    }
    message.erase(at, kSuffix.size());
    message.erase(dot, 1);
    at = at - 1;
  }
  return message;
}

}  // namespace kvsim
