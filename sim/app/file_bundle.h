// File bundles: the files of a directory as one byte string, to carry a run's output
// folder from the process that ran it (an MPI rank, maybe on another machine without
// a shared filesystem) to the one that writes the command's outputs, which unpacks
// it into its own directory byte for byte.
//
// The encoding ("kvsim-bundle 1"): the line "kvsim-bundle 1\n", the number of files
// and "\n", then per file the line "PATH_BYTES CONTENT_BYTES\n" (decimal) followed by
// the path's bytes and the content's bytes; nothing after the last file. Paths are
// relative, their parts separated by '/'.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace kvsim {

struct BundledFile {
  std::string path;   // relative to the bundled directory, e.g. "summary.json", "a/b.csv"
  std::string bytes;  // the file's contents
};

// Whether `path` may name a file in a bundle: relative, non-empty, made of non-empty
// '/'-separated parts none of which is "." or "..", with no NUL or backslash; so that
// it names a file inside the directory it is unpacked into, on any machine.
bool IsBundlePath(std::string_view path);

// Every regular file under `dir`, at any depth, in path order. Throws InputError
// naming the entry when something under `dir` is neither a regular file nor a
// directory (a symbolic link, a socket), or when a file cannot be read.
std::vector<BundledFile> ReadBundleFiles(const std::filesystem::path& dir);

// `files` encoded as above. REQUIRES: each path IsBundlePath (checked).
std::string EncodeBundle(const std::vector<BundledFile>& files);

// The files EncodeBundle encoded as `bytes`. `where` names the sender for messages
// ("rank 2"). Throws InputError "where: file bundle: what" when the bundle is cut
// short, has bytes after its last file, or names a path that is not IsBundlePath or
// is given twice.
std::vector<BundledFile> DecodeBundle(std::string_view bytes, const std::string& where);

// Writes each of `files` under `dir`, creating the folders it needs; each file is
// written whole or not at all (WriteFileAtomically). Throws InputError when a file
// exists already or cannot be written. REQUIRES: each path IsBundlePath (checked).
void WriteBundleFiles(const std::vector<BundledFile>& files, const std::filesystem::path& dir);

// A directory of this process's own under the system's temporary directory
// (TMPDIR, else /tmp), created empty; removed with its contents when this object goes.
class ScratchDirectory {
 public:
  // Throws InputError when it cannot be created. `stem` begins its name.
  explicit ScratchDirectory(std::string_view stem);
  ~ScratchDirectory();
  ScratchDirectory(const ScratchDirectory&) = delete;
  ScratchDirectory& operator=(const ScratchDirectory&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace kvsim
