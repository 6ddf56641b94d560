// ConfigTree: a YAML document read from a file, with `--set key.path=value`
// overrides applied to the tree before it is decoded into typed structs.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "sim/core/units.h"

namespace YAML {
class Node;
}

namespace kvsim {

class ConfigTree {
 public:
  // Reads and parses `path`. Throws InputError "path:line: ..." on a missing file
  // or invalid YAML; the root must be a mapping.
  static ConfigTree Load(const std::string& path);
  // Parses YAML text as if it were the file `origin` (for tests and strings).
  static ConfigTree Parse(const std::string& yaml_text, const std::string& origin);

  // A copy is parsed again from the file's text with the overrides replayed, so that
  // its nodes keep their file positions (a YAML clone would reset them to line 1).
  ConfigTree(const ConfigTree& other);
  ConfigTree& operator=(const ConfigTree& other);
  ~ConfigTree();

  // Applies "a.b.c=value": walks (creating) maps along the dotted path and sets
  // the leaf to `value` parsed as YAML (so numbers, booleans and lists work).
  // Throws InputError naming the assignment when it is malformed or a path step
  // is not a mapping.
  void Set(const std::string& assignment);
  // `origin`, when given, says where the override was written ("plan.yaml:2: set"),
  // for messages about the key (override_origins()).
  void Set(const std::string& key_path, const std::string& value_yaml,
           const std::string& origin = "");

  // The file the tree came from, and its directory (relative paths resolve there).
  const std::string& origin() const { return origin_; }
  std::string base_dir() const;

  // The document as YAML text (the resolved config written next to outputs).
  std::string Dump() const;

  const YAML::Node& root() const;
  // Key paths set by Set(), so messages can say a value came from an override.
  const std::set<std::string>& overridden() const { return overridden_; }
  // Where each override that Set() was told of was written, by key path.
  const std::map<std::string, std::string>& override_origins() const { return origins_; }

 private:
  // One Set() call, as made.
  struct Override {
    std::string key_path, value_yaml, origin;
  };
  ConfigTree(std::unique_ptr<YAML::Node> root, std::string text, std::string origin);
  std::unique_ptr<YAML::Node> root_;
  std::string text_;                 // the document as parsed
  std::vector<Override> overrides_;  // in the order applied
  std::string origin_;
  std::set<std::string> overridden_;
  std::map<std::string, std::string> origins_;
};

// `s` as a double-quoted YAML scalar, for YAML that kvsim writes (names and paths may
// hold ',', '#' or ': ').
std::string QuotedYamlScalar(const std::string& s);

// ParseByteSize (a byte size such as "2MiB") is in sim/core/units.h.

}  // namespace kvsim
