// ProfileWriter: builds a kvprobe profile (tools/kvprobe/PROFILE_FORMAT.md) in
// memory and writes it: a [meta] section, then one CSV table per measurement. The
// sections, keys and columns kvprobe writes come from the profile schema
// (sim/timing/profile_schema.h).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sim/timing/profile_schema.h"

namespace kvprobe {

namespace schema = kvsim::profile_schema;

// "[name]": the line that starts `section`.
std::string SectionLine(const schema::Section& section);

// The header line of a table of the schema, or of a raw CSV file: its column names in
// order, comma-separated, without a newline.
std::string HeaderLine(const schema::Section& table);
std::string HeaderLine(const schema::RawFile& file);

// Where kvprobe writes `file` in the folder `dir`: dir/path, with the placeholders
// <N> and <R> of the path (one file per GPU count and rank) replaced by `n` and `r`.
std::string RawFilePath(const std::string& dir, const schema::RawFile& file, int n = 0, int r = 0);

// A number as profile text: integers below 2^53 exactly, others with `significant`
// significant digits.
std::string Num(double value, int significant = 6);

class ProfileWriter {
 public:
  class Table {
   public:
    // Adds one row. Throws std::invalid_argument when the field count differs from
    // the header or a field contains a comma, quote or newline.
    void Row(const std::vector<std::string>& fields);
    const std::string& name() const { return name_; }
    size_t size() const { return rows_.size(); }

   private:
    friend class ProfileWriter;
    std::string name_;
    std::vector<std::string> columns_;
    std::vector<std::vector<std::string>> rows_;
  };

  // Sets a [meta] key (later sets replace earlier ones). Throws std::invalid_argument
  // for a key with ':' or whitespace, or a value with a newline.
  void Meta(std::string_view key, const std::string& value);

  // Starts a table. Throws std::invalid_argument for a duplicate or malformed name
  // or a malformed column. The reference stays valid until the writer is destroyed.
  Table& AddTable(const std::string& name, const std::vector<std::string>& columns);
  // Starts the schema's table `table` with every column it names, in its order.
  Table& AddTable(const schema::Section& table);

  // The profile text: [meta], then the tables in the order they were added (empty
  // tables are written as a header only), then a blank line and the end marker
  // (kvsim::kProfileEndMarker, sim/timing/profile.h), the last line.
  std::string Render() const;

  // Writes Render() to `path`. Throws std::runtime_error if it cannot.
  void WriteTo(const std::string& path) const;

 private:
  std::vector<std::pair<std::string, std::string>> meta_;
  std::vector<std::unique_ptr<Table>> tables_;
};

}  // namespace kvprobe
