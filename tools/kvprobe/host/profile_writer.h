// ProfileWriter: builds a kvprobe profile (tools/kvprobe/PROFILE_FORMAT.md) in
// memory and writes it: a [meta] section, then one CSV table per measurement.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace kvprobe {

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
  void Meta(const std::string& key, const std::string& value);

  // Starts a table. Throws std::invalid_argument for a duplicate or malformed name
  // or a malformed column. The reference stays valid until the writer is destroyed.
  Table& AddTable(const std::string& name, const std::vector<std::string>& columns);

  // The profile text: [meta], then the tables in the order they were added (empty
  // tables are written as a header only).
  std::string Render() const;

  // Writes Render() to `path`. Throws std::runtime_error if it cannot.
  void WriteTo(const std::string& path) const;

 private:
  std::vector<std::pair<std::string, std::string>> meta_;
  std::vector<std::unique_ptr<Table>> tables_;
};

}  // namespace kvprobe
