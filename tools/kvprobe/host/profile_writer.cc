// ProfileWriter implementation.
#include "tools/kvprobe/host/profile_writer.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "sim/timing/profile.h"

namespace kvprobe {
namespace {

bool IsIdentifier(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

}  // namespace

std::string SectionLine(const schema::Section& section) {
  return "[" + std::string(section.name) + "]";
}

std::string HeaderLine(const schema::Section& table) {
  std::string out;
  for (const schema::Field& f : table.fields) {
    if (!out.empty()) out += ',';
    out += f.name;
  }
  return out;
}

std::string HeaderLine(const schema::RawFile& file) {
  std::string out;
  for (std::string_view column : file.columns) {
    if (!out.empty()) out += ',';
    out += column;
  }
  return out;
}

std::string RawFilePath(const std::string& dir, const schema::RawFile& file, int n, int r) {
  std::string path = dir + "/" + std::string(file.path);
  for (const auto& [placeholder, value] :
       {std::pair<std::string_view, int>{"<N>", n}, {"<R>", r}}) {
    const size_t at = path.find(placeholder);
    if (at != std::string::npos) path.replace(at, placeholder.size(), std::to_string(value));
  }
  return path;
}

std::string Num(double value, int significant) {
  if (!std::isfinite(value)) throw std::invalid_argument("profile numbers must be finite");
  if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) {  // 2^53
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", value);
    return buf;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*g", significant, value);
  return buf;
}

void ProfileWriter::Table::Row(const std::vector<std::string>& fields) {
  if (fields.size() != columns_.size()) {
    throw std::invalid_argument("table [" + name_ + "]: row has " + std::to_string(fields.size()) +
                                " fields, header has " + std::to_string(columns_.size()));
  }
  for (const std::string& f : fields) {
    if (f.empty() || f.find_first_of(",\"\n\r") != std::string::npos) {
      throw std::invalid_argument("table [" + name_ + "]: bad field '" + f + "'");
    }
  }
  rows_.push_back(fields);
}

void ProfileWriter::Meta(std::string_view key, const std::string& value) {
  if (key.empty() || key.find_first_of(": \t\n") != std::string_view::npos ||
      value.find_first_of("\n\r") != std::string::npos) {
    throw std::invalid_argument("bad meta entry '" + std::string(key) + "'");
  }
  for (auto& [k, v] : meta_) {
    if (k == key) {
      v = value;
      return;
    }
  }
  meta_.emplace_back(key, value);
}

ProfileWriter::Table& ProfileWriter::AddTable(const std::string& name,
                                              const std::vector<std::string>& columns) {
  if (!IsIdentifier(name) || name == schema::kMeta.name) {
    throw std::invalid_argument("bad table name " + name);
  }
  for (const auto& t : tables_) {
    if (t->name_ == name) throw std::invalid_argument("duplicate table " + name);
  }
  if (columns.empty()) throw std::invalid_argument("table " + name + " has no columns");
  for (const std::string& c : columns) {
    if (!IsIdentifier(c)) throw std::invalid_argument("bad column name '" + c + "'");
  }
  auto table = std::make_unique<Table>();
  table->name_ = name;
  table->columns_ = columns;
  tables_.push_back(std::move(table));
  return *tables_.back();
}

ProfileWriter::Table& ProfileWriter::AddTable(const schema::Section& table) {
  if (table.layout != schema::Layout::kTable) {
    throw std::invalid_argument("[" + std::string(table.name) + "] is not a table");
  }
  std::vector<std::string> columns;
  for (const schema::Field& f : table.fields) columns.emplace_back(f.name);
  return AddTable(std::string(table.name), columns);
}

std::string ProfileWriter::Render() const {
  std::string out = "# kvprobe profile (format: tools/kvprobe/PROFILE_FORMAT.md)\n" +
                    SectionLine(schema::kMeta) + "\n";
  for (const auto& [k, v] : meta_) {
    out += k;
    out += ": ";
    out += v;
    out += '\n';
  }
  for (const auto& t : tables_) {
    out += "\n[" + t->name_ + "]\n";
    for (size_t i = 0; i < t->columns_.size(); ++i) out += (i ? "," : "") + t->columns_[i];
    out += "\n";
    for (const auto& row : t->rows_) {
      for (size_t i = 0; i < row.size(); ++i) out += (i ? "," : "") + row[i];
      out += "\n";
    }
  }
  // Last, what tells a reader the file is whole (kvsim requires it from this version on).
  out += "\n";
  out += kvsim::kProfileEndMarker;
  out += "\n";
  return out;
}

void ProfileWriter::WriteTo(const std::string& path) const {
  std::ofstream out(path, std::ios::binary);
  out << Render();
  if (!out) throw std::runtime_error(path + ": cannot write profile");
}

}  // namespace kvprobe
