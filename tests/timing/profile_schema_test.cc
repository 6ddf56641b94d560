// The profile schema (sim/timing/profile_schema.h) against its documentation,
// tools/kvprobe/PROFILE_FORMAT.md: every section, key, column and raw file the schema
// declares is documented there with the same order, presence and type, and the document
// lists nothing the schema lacks. Also the schema's own consistency.
#include "sim/timing/profile_schema.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace kvsim {
namespace {

namespace schema = profile_schema;
using ::testing::Contains;
using ::testing::IsEmpty;

constexpr const char* kFormatDoc = KVSIM_SOURCE_DIR "/tools/kvprobe/PROFILE_FORMAT.md";

// ---- The schema and the document as comparable facts ------------------------
//
// Both sides become one set of lines, each line one fact: "[gemm] required",
// "[gemm] column model", "[gemm] text column model", "[gemm] column order model,...",
// "[meta] optional key mode", "[meta] numeric key sm_count", "file vmm_samples.csv
// column us", and so on. Two equal sets mean the document states the schema exactly.

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

std::set<std::string> SchemaFacts() {
  std::set<std::string> facts;
  for (const schema::Section& s : schema::kSections) {
    const std::string head = "[" + std::string(s.name) + "]";
    const bool table = s.layout == schema::Layout::kTable;
    const std::string noun = table ? "column" : "key";
    facts.insert(head + (s.presence == schema::Presence::kRequired ? " required" : " optional"));
    std::vector<std::string> order;
    for (const schema::Field& f : s.fields) {
      const std::string name(f.name);
      const bool optional = f.presence == schema::Presence::kOptional;
      facts.insert(head + (optional ? " optional " : " ") + noun + " " + name);
      if (table && f.type == schema::Type::kText) facts.insert(head + " text column " + name);
      if (!table && f.type == schema::Type::kNumber) facts.insert(head + " numeric key " + name);
      order.push_back(name);
    }
    facts.insert(head + " " + noun + " order " + Join(order));
  }
  for (const schema::RawFile& file : schema::kRawFiles) {
    const std::string head = "file " + std::string(file.path);
    std::vector<std::string> order;
    for (std::string_view c : file.columns) {
      facts.insert(head + " column " + std::string(c));
      order.emplace_back(c);
    }
    facts.insert(head + " column order " + Join(order));
  }
  return facts;
}

// What the document states, and the lines it could not read ("line N: what").
struct DocFacts {
  std::set<std::string> facts;
  std::vector<std::string> errors;
};

// One documented section ("[name]") or raw file ("file path") and its name lists by
// label ("Columns", "Optional columns", ...).
struct DocEntry {
  std::string head;
  std::map<std::string, std::vector<std::string>> lists;
};

// The labels of the name lists, each with the words its names take in a fact.
const std::map<std::string, std::string>& ListLabels() {
  static const std::map<std::string, std::string> kLabels = {
      {"Columns", "column"},
      {"Optional columns", "optional column"},
      {"Text columns", "text column"},
      {"Keys", "key"},
      {"Optional keys", "optional key"},
      {"Numeric keys", "numeric key"},
  };
  return kLabels;
}

// The text of the first code span of `line`, or nothing.
std::string FirstCodeSpan(std::string_view line) {
  const size_t open = line.find('`');
  if (open == std::string_view::npos) return "";
  const size_t close = line.find('`', open + 1);
  if (close == std::string_view::npos) return "";
  return std::string(line.substr(open + 1, close - open - 1));
}

std::vector<std::string> SplitNames(const std::string& list) {
  std::vector<std::string> names;
  std::istringstream in(list);
  for (std::string name; std::getline(in, name, ',');) names.push_back(name);
  return names;
}

void AddEntryFacts(const DocEntry& e, DocFacts& out) {
  const auto names = [&e](const char* label) {
    const auto it = e.lists.find(label);
    return it == e.lists.end() ? std::vector<std::string>{} : it->second;
  };
  for (const auto& [label, list] : e.lists) {
    for (const std::string& name : list)
      out.facts.insert(e.head + " " + ListLabels().at(label) + " " + name);
  }
  for (const auto& [first, second, noun] :
       {std::tuple{"Columns", "Optional columns", "column"}, {"Keys", "Optional keys", "key"}}) {
    std::vector<std::string> order = names(first);
    for (const std::string& n : names(second)) order.push_back(n);
    if (!order.empty()) out.facts.insert(e.head + " " + noun + " order " + Join(order));
  }
}

// Reads the entries of the document's format (its "Sections" part says how they are
// written): "`[name]` (required...)" or "`[name]` (optional...)" starts a section,
// "`path.csv`: ..." a raw file, a "## " heading ends either, and lines starting with a
// label of ListLabels() and ": " list names in one code span.
DocFacts ReadDocFacts(const std::string& text) {
  DocFacts out;
  std::vector<DocEntry> entries;
  DocEntry* entry = nullptr;
  std::istringstream in(text);
  int line_no = 0;
  const auto error = [&](const std::string& what) {
    out.errors.push_back("line " + std::to_string(line_no) + ": " + what);
  };
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    const std::string span = FirstCodeSpan(line);
    if (line.starts_with("## ")) {
      entry = nullptr;
    } else if (line.starts_with("`[") && span.size() > 2 && span.back() == ']') {
      const std::string rest = line.substr(span.size() + 2);
      entry = &entries.emplace_back(DocEntry{span, {}});
      if (rest.starts_with(" (required")) {
        out.facts.insert(span + " required");
      } else if (rest.starts_with(" (optional")) {
        out.facts.insert(span + " optional");
      } else {
        error(span + " is neither (required) nor (optional)");
      }
    } else if (line.starts_with("`") && span.ends_with(".csv") &&
               line.substr(span.size() + 2).starts_with(":")) {
      entry = &entries.emplace_back(DocEntry{"file " + span, {}});
    } else if (const size_t colon = line.find(": ");
               colon != std::string::npos && ListLabels().contains(line.substr(0, colon))) {
      const std::string label = line.substr(0, colon);
      if (entry == nullptr) {
        error(label + ": outside any section or file");
      } else if (span.empty() || span.find(' ') != std::string::npos) {
        error(label + ": expected one code span of comma-separated names");
      } else if (!entry->lists.emplace(label, SplitNames(span)).second) {
        error(entry->head + " lists " + label + " twice");
      }
    }
  }
  std::set<std::string> heads;
  for (const DocEntry& e : entries) {
    if (!heads.insert(e.head).second) out.errors.push_back(e.head + " is documented twice");
    AddEntryFacts(e, out);
  }
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The facts in `a` that `b` lacks.
std::vector<std::string> Missing(const std::set<std::string>& a, const std::set<std::string>& b) {
  std::vector<std::string> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

std::string Lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += "  " + l + "\n";
  return out;
}

// `text` with its first `from` replaced by `to`. REQUIRES: `text` contains `from`.
std::string Replaced(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << "the document no longer contains: " << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

// ---- The document states the schema -------------------------------------------

TEST(ProfileSchemaDoc, DocumentsExactlyTheSchema) {
  const std::string text = ReadFile(kFormatDoc);
  ASSERT_FALSE(text.empty()) << kFormatDoc << " could not be read";
  const DocFacts doc = ReadDocFacts(text);
  EXPECT_THAT(doc.errors, IsEmpty()) << "unreadable lines in " << kFormatDoc;
  const std::set<std::string> declared = SchemaFacts();
  const std::vector<std::string> undocumented = Missing(declared, doc.facts);
  const std::vector<std::string> undeclared = Missing(doc.facts, declared);
  EXPECT_THAT(undocumented, IsEmpty())
      << "sim/timing/profile_schema.h declares what " << kFormatDoc << " does not state:\n"
      << Lines(undocumented);
  EXPECT_THAT(undeclared, IsEmpty()) << kFormatDoc
                                     << " states what sim/timing/profile_schema.h does not "
                                        "declare:\n"
                                     << Lines(undeclared);
}

// The comparison fails when the two differ: each edit of the document below shows up
// as the fact it changes.

TEST(ProfileSchemaDoc, AColumnTheDocumentLacksIsReported) {
  const std::string text = Replaced(ReadFile(kFormatDoc), ",time_us,kv_gbps`", ",time_us`");
  const std::vector<std::string> undocumented = Missing(SchemaFacts(), ReadDocFacts(text).facts);
  EXPECT_THAT(undocumented, Contains("[decode_attention] column kv_gbps"));
}

TEST(ProfileSchemaDoc, ASectionTheSchemaLacksIsReported) {
  const std::string text =
      ReadFile(kFormatDoc) + "\n`[extra]` (optional): more.\nColumns: `a_us,b`.\n";
  const std::vector<std::string> undeclared = Missing(ReadDocFacts(text).facts, SchemaFacts());
  EXPECT_THAT(undeclared, Contains("[extra] optional"));
  EXPECT_THAT(undeclared, Contains("[extra] column a_us"));
}

TEST(ProfileSchemaDoc, AnotherTypeOrPresenceIsReported) {
  std::string text = Replaced(ReadFile(kFormatDoc), "Text columns: `call`.\n", "");
  text = Replaced(text, "Optional columns: `splits`.", "Optional columns: `splits,extra_us`.");
  const DocFacts doc = ReadDocFacts(text);
  EXPECT_THAT(Missing(SchemaFacts(), doc.facts), Contains("[vmm] text column call"));
  EXPECT_THAT(Missing(doc.facts, SchemaFacts()),
              Contains("[decode_attention] optional column extra_us"));
}

TEST(ProfileSchemaDoc, AnotherColumnOrderIsReported) {
  const std::string text = Replaced(ReadFile(kFormatDoc), "Columns: `bytes,time_us,gbps`.",
                                    "Columns: `time_us,bytes,gbps`.");
  const std::vector<std::string> undeclared = Missing(ReadDocFacts(text).facts, SchemaFacts());
  EXPECT_THAT(undeclared, Contains("[copy] column order time_us,bytes,gbps"));
}

TEST(ProfileSchemaDoc, UnreadableListsAreErrors) {
  const DocFacts doc = ReadDocFacts(
      "Columns: `a,b`.\n"
      "`[gemm]` (sometimes): x.\n"
      "Columns: `a, b`.\n"
      "`[copy]` (required): y.\n"
      "Columns: `a`.\n"
      "Columns: `b`.\n"
      "`[copy]` (required): z.\n");
  EXPECT_THAT(doc.errors, Contains("line 1: Columns: outside any section or file"));
  EXPECT_THAT(doc.errors, Contains("line 2: [gemm] is neither (required) nor (optional)"));
  EXPECT_THAT(doc.errors,
              Contains("line 3: Columns: expected one code span of comma-separated names"));
  EXPECT_THAT(doc.errors, Contains("line 6: [copy] lists Columns twice"));
  EXPECT_THAT(doc.errors, Contains("[copy] is documented twice"));
}

// ---- The schema itself ------------------------------------------------------------

bool IsIdentifier(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

TEST(ProfileSchema, NamesAreUniqueLowerCaseIdentifiers) {
  std::set<std::string_view> sections;
  for (const schema::Section& s : schema::kSections) {
    EXPECT_TRUE(IsIdentifier(s.name)) << s.name;
    EXPECT_TRUE(sections.insert(s.name).second) << "[" << s.name << "] twice";
    EXPECT_EQ(schema::FindSection(s.name), &s) << s.name;
    std::set<std::string_view> fields;
    for (const schema::Field& f : s.fields) {
      EXPECT_TRUE(IsIdentifier(f.name)) << "[" << s.name << "] " << f.name;
      EXPECT_TRUE(fields.insert(f.name).second) << "[" << s.name << "] " << f.name << " twice";
      EXPECT_EQ(schema::FindField(s, f.name), &f) << f.name;
    }
  }
  EXPECT_EQ(schema::FindSection("nothing"), nullptr);
  for (const schema::RawFile& file : schema::kRawFiles) {
    std::set<std::string_view> columns;
    for (std::string_view c : file.columns) {
      EXPECT_TRUE(IsIdentifier(c)) << file.path << " " << c;
      EXPECT_TRUE(columns.insert(c).second) << file.path << " " << c << " twice";
    }
  }
}

TEST(ProfileSchema, MetaIsTheOnlyKeyValueSectionAndComesFirst) {
  EXPECT_EQ(schema::kSections[0].name, schema::kMeta.name);
  for (const schema::Section& s : schema::kSections) {
    EXPECT_EQ(s.layout == schema::Layout::kKeyValue, s.name == schema::kMeta.name) << s.name;
  }
}

TEST(ProfileSchema, TablesWriteTheirOptionalColumnsLast) {
  // Earlier profiles end where the optional columns begin.
  for (const schema::Section& s : schema::kSections) {
    bool optional_seen = false;
    for (const schema::Field& f : s.fields) {
      const bool optional = f.presence == schema::Presence::kOptional;
      EXPECT_FALSE(optional_seen && !optional) << "[" << s.name << "] " << f.name;
      optional_seen = optional_seen || optional;
    }
  }
}

}  // namespace
}  // namespace kvsim
