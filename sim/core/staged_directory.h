// StagedDirectory: a command's output directory, replaced whole or not at all.
#pragma once

#include <filesystem>
#include <string>

namespace kvsim {

// A command writes its outputs under path(), a staging directory beside the
// target DIR (PARENT/.NAME.kvsim-staging). Commit() makes them DIR in one atomic
// step: renameat2(RENAME_EXCHANGE) swaps the staging directory with an existing
// DIR (a plain rename when DIR is absent or empty), then the earlier outputs are
// removed. At every instant, a kill -9 included, DIR holds either the earlier
// complete outputs or the new complete ones, never a mix; a staging directory a
// killed run leaves behind is removed by the next run into DIR. Files a user added
// to DIR (a report, notes) go with the outputs they sat beside.
//
// While it lives it holds an exclusive lock on PARENT/.NAME.kvsim-lock (flock,
// released however the process ends), so a second run into DIR is refused rather
// than interleaved. The lock file stays (empty); removing it would let two runs
// lock two different files.
//
// DIR must be absent, an empty directory or, with `replace_earlier`, an earlier
// kvsim output (holding manifest.json): kvsim never replaces a directory of other
// files, nor an earlier run's outputs unless asked to. Every refusal and failure is
// an InputError naming DIR.
class StagedDirectory {
 public:
  StagedDirectory(const std::filesystem::path& dir, bool replace_earlier);
  // Without Commit(): removes the staging directory; DIR is left as it was.
  ~StagedDirectory();
  StagedDirectory(const StagedDirectory&) = delete;
  StagedDirectory& operator=(const StagedDirectory&) = delete;

  // Where the outputs are written until Commit().
  const std::filesystem::path& path() const { return staging_; }
  // DIR, as given.
  const std::filesystem::path& target() const { return target_; }

  // Moves the staged outputs to DIR (see above) and syncs the parent directory.
  // Once only; the files in path() must be complete (FileWriter::Commit).
  void Commit();

 private:
  std::filesystem::path target_;   // as given, for messages
  std::filesystem::path dir_;      // absolute, normalised
  std::filesystem::path staging_;  // PARENT/.NAME.kvsim-staging
  std::filesystem::path retired_;  // PARENT/.NAME.kvsim-old: the earlier outputs, briefly
  int lock_fd_ = -1;
  bool committed_ = false;
};

// `message` with every staging path in it (".../.NAME.kvsim-staging/...") written as
// the path under DIR it stands for (".../NAME/..."), for errors shown to users.
std::string NameStagedAsTarget(std::string message);

}  // namespace kvsim
