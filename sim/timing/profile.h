// Profile: a GPU measurement file written by kvprobe (format version 1 of
// tools/kvprobe/PROFILE_FORMAT.md), read strictly, and the VMM call latencies it holds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "sim/core/time.h"

namespace kvsim {

class Profile;

// Which sections a profile must hold: every section the format requires (a profile
// kvsim times from), or [meta] alone (a file read only for its [step] rows).
enum class RequiredSections { kAll, kMetaOnly };

// One table section of a profile: a header of column names and rows of exactly
// as many fields. The required columns that the schema (profile_schema.h) types as
// numbers hold finite numbers; its text columns hold strings. Optional columns and
// columns the schema does not know are kept as text and never interpreted.
class ProfileTable {
 public:
  const std::string& name() const { return name_; }   // section name, e.g. "gemm"
  int section_line() const { return section_line_; }  // 1-based line of "[name]"
  int header_line() const { return header_line_; }    // 1-based line of the column names
  const std::vector<std::string>& columns() const { return columns_; }
  size_t size() const { return lines_.size(); }  // number of rows
  // 1-based file line of row `row`. REQUIRES: row < size().
  int line(size_t row) const;
  bool HasColumn(std::string_view column) const;
  // The number in a numeric column of the format (numeric columns, required or
  // optional, are checked at load). REQUIRES: row < size(); `column` is a numeric
  // column of this table (InvariantError otherwise).
  double Number(size_t row, std::string_view column) const;
  // The text of any column, trimmed. REQUIRES: row < size(); HasColumn(column).
  const std::string& Text(size_t row, std::string_view column) const;

 private:
  friend Profile ParseProfile(std::string_view text, const std::string& path,
                              RequiredSections required);
  size_t ColumnIndex(std::string_view column) const;

  std::string name_;
  int section_line_ = 0;
  int header_line_ = 0;
  std::vector<std::string> columns_;
  std::vector<bool> numeric_;      // per column: a numeric column of the format
  std::vector<std::string> text_;  // row-major, size() x columns_.size()
  std::vector<double> numbers_;    // row-major; NaN in text and unknown columns
  std::vector<int> lines_;         // per row
};

// A whole profile: [meta] key/values and the table sections present.
class Profile {
 public:
  const std::string& path() const { return path_; }  // the file it was read from
  const std::map<std::string, std::string>& meta() const { return meta_; }
  // The value of a [meta] key. REQUIRES: the key is present (every key the format
  // lists is required at load; InvariantError otherwise).
  const std::string& MetaText(const std::string& key) const;
  // A [meta] value of a required key that the schema types as a number
  // (format_version, gpu_memory_bytes, sm_count, sm_clock_mhz,
  // allocation_granularity_bytes). REQUIRES: such a key (InvariantError otherwise).
  double MetaNumber(const std::string& key) const;
  // 1-based line of a [meta] key. REQUIRES: the key is present.
  int MetaLine(const std::string& key) const;
  // The table section `name`, or nullptr when the (optional) section is absent.
  const ProfileTable* Find(std::string_view name) const;
  // The table section `name`. REQUIRES: present (required sections always are).
  const ProfileTable& Table(std::string_view name) const;

 private:
  friend Profile ParseProfile(std::string_view text, const std::string& path,
                              RequiredSections required);

  std::string path_;
  std::map<std::string, std::string> meta_;
  std::map<std::string, int> meta_lines_;
  std::map<std::string, double> meta_numbers_;
  std::vector<ProfileTable> tables_;
};

// The line kvprobe writes last in every profile, from kvprobe kFirstKvprobeWithEndMarker
// on: a comment, which earlier readers skip, that tells a whole file from one cut short
// (a copy interrupted, a disk filled) at a line boundary or inside a number.
inline constexpr std::string_view kProfileEndMarker = "# end of kvprobe profile";
inline constexpr std::string_view kFirstKvprobeWithEndMarker = "0.3.16";

// Whether a [meta] kvprobe_version of `version` ("0.3.16", "1.0.0-rc1": the leading
// dot-separated numbers count) is kFirstKvprobeWithEndMarker or later; false for a
// version that starts with no number.
bool KvprobeWritesEndMarker(std::string_view version);

// Parses profile text as if read from `path` (the name used in messages; a leading
// UTF-8 byte order mark is skipped); with
// RequiredSections::kMetaOnly only [meta] must be present (a file read for its [step]
// rows alone, as kvprobe --only step writes it), else every required section.
// Throws InputError "path:line: what" for: a line outside any section, a malformed
// or unknown section name, a duplicate section, a [meta] line that is not
// "key: value" or repeats a key, a missing or non-numeric [meta] key, a
// format_version other than 1, a table without a header, a duplicate or missing
// required column, a row with the wrong number of fields, a non-numeric (or
// non-finite) value in a numeric column, and a missing required section or a
// required section without rows (reported at the file's last line). A profile whose
// [meta] kvprobe_version writes the end marker (KvprobeWritesEndMarker) and whose last
// non-blank line is not kProfileEndMarker is an InputError "path: ends without the end
// marker kvprobe writes last: the file is cut short ...", which takes precedence over
// the errors above that a cut can cause (a short last row, a missing required section).
Profile ParseProfile(std::string_view text, const std::string& path,
                     RequiredSections required = RequiredSections::kAll);

// Reads and parses the file `path`. Throws InputError "path: ..." when it cannot
// be read, and as ParseProfile otherwise.
Profile LoadProfile(const std::string& path, RequiredSections required = RequiredSections::kAll);

// Per-call CUDA VMM latencies of one page of the allocation granularity.
struct VmmLatencies {
  Nanos map{0};         // cuMemMap
  Nanos set_access{0};  // cuMemSetAccess
  Nanos unmap{0};       // cuMemUnmap
};

// The p50 latencies of the [vmm] rows cuMemMap, cuMemSetAccess and cuMemUnmap at
// handle_bytes == [meta] allocation_granularity_bytes; where the profile has the pooled
// rows (map_set_access_pooled, unmap_pooled: the pattern vAttention uses), set_access
// becomes pooled - map and unmap the pooled unmap. Throws InputError "path:line: ..."
// when a required row is missing, or a row is repeated or not positive.
VmmLatencies VmmLatencyFromProfile(const Profile& profile);

}  // namespace kvsim
