// MapReader: strict reading of one YAML mapping of a config document, shared by the
// scenario and plan decoders. Every key read is remembered so Finish() can name the
// first unknown key with its full path and line. Only config/ sees YAML.
#pragma once

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sim/config/yaml_tree.h"
#include "sim/core/check.h"
#include "sim/core/enum_table.h"
#include "sim/core/time.h"

namespace kvsim {

// What every reader of one document shares: its file and the key paths that
// overrides set.
struct DecodeContext {
  const std::string& file;
  const std::set<std::string>& overridden;
  // Where overrides were written, by key path (ConfigTree::override_origins); none:
  // an override is named as the file's.
  const std::map<std::string, std::string>* origins = nullptr;
};

// The node at a dotted key path under `root` ("timing.engine.per_seq_s"), or an
// undefined node when a step is missing or not a mapping. Never inserts keys.
inline YAML::Node NodeAtPath(const YAML::Node& root, const std::string& key_path) {
  YAML::Node node;
  node.reset(root);
  size_t start = 0;
  while (true) {
    const size_t dot = key_path.find('.', start);
    const std::string step =
        key_path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!node.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    const YAML::Node& map = node;
    const YAML::Node next = map[step];
    if (!next.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
    node.reset(next);
    if (dot == std::string::npos) return node;
    start = dot + 1;
  }
}

// Reads one YAML mapping, remembering which keys were read, so that Finish() can
// name every key nobody asked for.
class MapReader {
 public:
  MapReader(const YAML::Node& node, std::string path, const DecodeContext& ctx)
      : node_(node), path_(std::move(path)), ctx_(ctx) {
    if (node_.IsDefined() && !node_.IsNull() && !node_.IsMap()) {
      throw InputError(Where(node_, path_) + ": expected a mapping");
    }
    if (IsMap()) {
      std::map<std::string, int> lines;
      for (const auto& kv : node_) {
        if (!kv.first.IsScalar()) {
          throw InputError(Where(kv.first, path_) + ": a key must be a plain name, not a " +
                           (kv.first.IsSequence() ? "list" : "mapping"));
        }
        const std::string key = kv.first.as<std::string>();
        const int line = kv.first.Mark().line + 1;
        if (!lines.emplace(key, line).second) {
          throw InputError(Where(kv.first, KeyPath(key)) +
                           fmt::format(": duplicate key (first at line {})", lines[key]));
        }
      }
    }
  }

  bool IsMap() const { return node_.IsDefined() && node_.IsMap(); }

  std::string KeyPath(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }

  // Whether `key` (or a mapping enclosing it) was put there by an override (--set, a
  // plan's or a compare entry's `set:`) rather than written in the file.
  bool Overridden(const std::string& key) const {
    for (std::string p = KeyPath(key);;) {
      if (ctx_.overridden.contains(p)) return true;
      const size_t dot = p.rfind('.');
      if (dot == std::string::npos) return false;
      p.resize(dot);
    }
  }

  // "file:line: key.path" (line from the YAML node; overrides have none).
  // "file:line: key.path", or for values an override put there (their nodes carry
  // no file position) "ORIGIN (applied to file): key.path" when the tree knows where
  // it was written (a plan's or compare entry's `set:`), else "file: key.path (set by
  // an override)" (--set).
  std::string Where(const YAML::Node& node, const std::string& key_path) const {
    for (std::string p = key_path;;) {  // the key and each enclosing map
      if (ctx_.overridden.contains(p)) {
        if (ctx_.origins != nullptr) {
          if (const auto origin = ctx_.origins->find(p); origin != ctx_.origins->end()) {
            return fmt::format("{} (applied to {}): {}", origin->second, ctx_.file, key_path);
          }
        }
        return fmt::format("{}: {} (set by an override)", ctx_.file, key_path);
      }
      const size_t dot = p.rfind('.');
      if (dot == std::string::npos) break;
      p.resize(dot);
    }
    const int line = node.IsDefined() ? node.Mark().line : -1;  // -1: no source position
    if (line >= 0) return fmt::format("{}:{}: {}", ctx_.file, line + 1, key_path);
    return fmt::format("{}: {}", ctx_.file, key_path);
  }

  // Throws "file:line: key.path: what". A null value is placed on its key's line (an
  // empty value has no position of its own; yaml-cpp gives the next token's).
  [[noreturn]] void Fail(const std::string& key, const std::string& what) const {
    const YAML::Node v = Value(key);
    throw InputError(Where(v.IsDefined() && v.IsNull() ? KeyNode(key) : v, KeyPath(key)) + ": " +
                     what);
  }

  // The value under `key`, or an undefined node. Looks up through a const node:
  // yaml-cpp's non-const operator[] would insert the key.
  YAML::Node Value(const std::string& key) const {
    if (!node_.IsDefined() || !node_.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    const YAML::Node& map = node_;
    return map[key];
  }

  // Whether `key` holds a value (absent and null read as no); the key counts as read.
  // For a section (mapping) a null value is as good as absent; the scalar readers below
  // refuse one (HasScalar).
  bool Has(const std::string& key) {
    known_.insert(key);
    const YAML::Node v = Value(key);
    return v.IsDefined() && !v.IsNull();
  }

  // Whether `key`, which takes a scalar described by `expected` ("an integer"), is
  // present; the key counts as read. A null value (`key:` with nothing after it, `~`,
  // `null`, or an empty `--set key=`) fails "expected EXPECTED, got no value" at the
  // key's line: it would otherwise read as the default, silently.
  bool HasScalar(const std::string& key, std::string_view expected) {
    known_.insert(key);
    const YAML::Node v = Value(key);
    if (!v.IsDefined()) return false;
    if (v.IsNull()) {
      // An empty value has no position of its own (yaml-cpp gives the next token's).
      throw InputError(Where(KeyNode(key), KeyPath(key)) +
                       fmt::format(": expected {}, got no value (empty, ~ or null)", expected));
    }
    return true;
  }

  // HasScalar for a key that takes a list or a mapping (`expected`: "a non-empty
  // list"), which must not be null either.
  bool HasValue(const std::string& key, std::string_view expected) {
    return HasScalar(key, expected);
  }

  // Whether `key` is written at all, its value null or not; the key counts as read.
  // For a key refused whatever its value, and a section whose `key:` alone means
  // `key: {}`.
  bool Present(const std::string& key) {
    known_.insert(key);
    return Value(key).IsDefined();
  }

  int64_t Int(const std::string& key, int64_t def, int64_t min_value,
              int64_t max_value = std::numeric_limits<int64_t>::max()) {
    if (!HasScalar(key, "an integer")) return def;
    RefuseLeadingZero(key);
    int64_t v = 0;
    try {
      v = Value(key).as<int64_t>();
    } catch (const YAML::Exception&) {
      Fail(key, fmt::format("expected an integer, got '{}'", Scalar(key)));
    }
    if (v < min_value) Fail(key, fmt::format("must be >= {}, got {}", min_value, v));
    if (v > max_value) Fail(key, fmt::format("must be <= {}, got {}", max_value, v));
    return v;
  }

  // Fails on an integer written with a leading zero ("010"): YAML 1.1, which
  // yaml-cpp follows, reads it as octal (8), never what a config means.
  void RefuseLeadingZero(const std::string& key) {
    const std::string text = Scalar(key);
    std::string_view digits = text;
    const bool negative = digits.starts_with('-');
    if (negative || digits.starts_with('+')) digits.remove_prefix(1);
    const bool all_digits =
        !digits.empty() &&
        std::all_of(digits.begin(), digits.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    if (!all_digits || digits.size() < 2 || digits.front() != '0') return;
    const size_t first = std::min(digits.find_first_not_of('0'), digits.size() - 1);
    Fail(key, fmt::format("'{}' has a leading zero; write {}{} (YAML reads a leading 0 as octal)",
                          text, negative ? "-" : "", digits.substr(first)));
  }

  double Double(const std::string& key, double def, double min_value, double max_value) {
    if (!HasScalar(key, "a number")) return def;
    double v = 0;
    try {
      v = Value(key).as<double>();
    } catch (const YAML::Exception&) {
      Fail(key, fmt::format("expected a number, got '{}'", Scalar(key)));
    }
    if (!(v >= min_value && v <= max_value)) {
      Fail(key, fmt::format("must be in [{}, {}], got {}", min_value, max_value, v));
    }
    return v;
  }

  bool Bool(const std::string& key, bool def) {
    if (!HasScalar(key, "true or false")) return def;
    try {
      return Value(key).as<bool>();
    } catch (const YAML::Exception&) {
      Fail(key, fmt::format("expected true or false, got '{}'", Scalar(key)));
    }
  }

  std::string String(const std::string& key, const std::string& def) {
    if (!HasScalar(key, "a string")) return def;
    if (!Value(key).IsScalar()) Fail(key, "expected a string");
    return Value(key).as<std::string>();
  }

  int64_t Bytes(const std::string& key, int64_t def) {
    if (!HasScalar(key, "a byte size")) return def;
    if (!Value(key).IsScalar()) Fail(key, "expected a byte size");
    const YAML::Node v = Value(key);
    return ParseByteSize(v.as<std::string>(), Where(v, KeyPath(key)));
  }

  // A duration in seconds, in [0, max_s] (default 1e6 s).
  Nanos Seconds(const std::string& key, Nanos def, double max_s = 1e6) {
    if (!HasScalar(key, "a number of seconds")) return def;
    return SecondsToNanos(Double(key, 0, 0, max_s));
  }

  // The value `table` names under `key`, or `def` when the key is absent (null fails
  // as in HasScalar). A name not in the table fails "unknown value 'x'; valid: " and
  // the table's names.
  template <typename E, size_t N>
  E Enum(const std::string& key, E def, const EnumTable<E, N>& table) {
    if (!HasScalar(key, "one of " + table.NameList())) return def;
    return Enum(key, table);
  }

  // The value `table` names under `key`, which must be there: an absent key reads as
  // '' and fails as an unknown value (null fails as in HasScalar).
  template <typename E, size_t N>
  E Enum(const std::string& key, const EnumTable<E, N>& table) {
    const std::string s = HasScalar(key, "one of " + table.NameList()) ? String(key, "") : "";
    if (const std::optional<E> value = table.Parse(s)) return *value;
    Fail(key, fmt::format("unknown value '{}'; valid: {}", s, table.NameList()));
  }

  // The same with the names given here, for values without an enum.
  template <typename E>
  E Enum(const std::string& key, E def, std::initializer_list<std::pair<const char*, E>> names) {
    std::string valid;
    for (const auto& [name, value] : names)
      valid += valid.empty() ? name : std::string(", ") + name;
    if (!HasScalar(key, "one of " + valid)) return def;
    const std::string s = String(key, "");
    for (const auto& [name, value] : names) {
      if (s == name) return value;
    }
    Fail(key, fmt::format("unknown value '{}'; valid: {}", s, valid));
  }

  // Every entry of this mapping as a "key.path" = YAML value (flow style) override,
  // in file order; each key counts as read. Empty when the mapping is absent.
  std::vector<std::pair<std::string, std::string>> Overrides() {
    std::vector<std::pair<std::string, std::string>> overrides;
    if (!IsMap()) return overrides;
    for (const auto& kv : node_) {
      const std::string key = kv.first.as<std::string>();
      known_.insert(key);
      YAML::Emitter out;
      out << YAML::Flow << kv.second;
      overrides.emplace_back(key, out.c_str());
    }
    return overrides;
  }

  MapReader Child(const std::string& key) {
    known_.insert(key);
    return MapReader(Value(key), KeyPath(key), ctx_);
  }

  // Throws on the first key that was never read, listing the valid ones.
  void Finish() const {
    if (!IsMap()) return;
    for (const auto& kv : node_) {
      const std::string key = kv.first.as<std::string>();
      if (known_.contains(key)) continue;
      std::string valid;
      for (const std::string& k : known_) valid += valid.empty() ? k : ", " + k;
      throw InputError(Where(kv.first, KeyPath(key)) + ": unknown key; valid keys here: " + valid);
    }
  }

  const YAML::Node& node() const { return node_; }
  const DecodeContext& context() const { return ctx_; }

 private:
  // The key node of `key` in this mapping (its position is the key's line), or an
  // undefined node.
  YAML::Node KeyNode(const std::string& key) const {
    if (IsMap()) {
      for (const auto& kv : node_) {
        if (kv.first.as<std::string>() == key) return kv.first;
      }
    }
    return YAML::Node(YAML::NodeType::Undefined);
  }

  std::string Scalar(const std::string& key) const {
    const YAML::Node v = Value(key);
    return v.IsScalar() ? v.Scalar() : "a non-scalar";
  }

  YAML::Node node_;
  std::string path_;
  const DecodeContext& ctx_;
  std::set<std::string> known_;
};

// An absolute path for `path` given relative to `base_dir` (the config's directory).
inline std::string Resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || std::filesystem::path(path).is_absolute()) return path;
  return std::filesystem::absolute(std::filesystem::path(base_dir) / path)
      .lexically_normal()
      .string();
}

}  // namespace kvsim
