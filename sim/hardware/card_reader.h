// CardReader: strict reading of one flat YAML card (models/llm, models/gpu).
// Every error names the file, the key and, where known, the 1-based line.
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "sim/core/check.h"
#include "sim/core/units.h"
#include "sim/core/utf8.h"

namespace kvsim {

// A key that earlier cards carried and that is no longer read: a card still giving
// it is refused with `why` (what changed and what to do), not silently accepted.
struct RemovedCardKey {
  std::string_view key;
  std::string_view why;
};

// Reads the flat mapping of one card file. Every read names the file, the key and
// (where yaml-cpp knows it) the 1-based line in its InputError.
class CardReader {
 public:
  // Loads `path` and checks that its top level is a mapping whose keys are all in
  // `allowed` and appear once. Throws InputError otherwise; a key of `removed` is
  // refused as removed, with its line and why.
  CardReader(std::string path, std::span<const std::string_view> allowed,
             std::span<const RemovedCardKey> removed = {})
      : path_(std::move(path)) {
    std::error_code ec;  // a path the file system refuses is no regular file either
    if (!std::filesystem::is_regular_file(path_, ec)) {
      throw InputError(fmt::format("{}: cannot open card file (no such regular file)", path_));
    }
    std::ifstream in(path_, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in) throw InputError(fmt::format("{}: cannot read card file", path_));
    // Card names go into calibration.yaml and JSON, which hold only UTF-8 (and yaml-cpp
    // misreads a raw NUL).
    if (const std::optional<TextError> bad = FindNonUtf8Text(text.view())) {
      throw InputError(
          fmt::format("{}:{}: byte 0x{:02X} at column {} is not UTF-8 text (cards "
                      "must be UTF-8)",
                      path_, bad->line, bad->byte, bad->column));
    }
    YAML::Node root;
    try {
      root = YAML::Load(text.str());
    } catch (const YAML::ParserException& e) {
      throw InputError(fmt::format("{}:{}: not valid YAML: {}", path_, e.mark.line + 1, e.msg));
    } catch (const YAML::Exception& e) {
      throw InputError(fmt::format("{}: cannot read card: {}", path_, e.what()));
    }
    if (!root.IsMap()) {
      throw InputError(fmt::format("{}: expected a mapping of keys at the top level", path_));
    }
    for (auto it = root.begin(); it != root.end(); ++it) {
      const int key_line = LineOf(it->first);
      if (!it->first.IsScalar()) {
        throw InputError(fmt::format("{}:{}: expected a plain key", path_, key_line));
      }
      const std::string key = it->first.Scalar();
      for (const RemovedCardKey& gone : removed) {
        if (gone.key == key) {
          throw InputError(
              fmt::format("{}:{}: key '{}': removed: {}", path_, key_line, key, gone.why));
        }
      }
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        throw InputError(fmt::format("{}:{}: key '{}': unknown key (expected one of: {})", path_,
                                     key_line, key, fmt::join(allowed, ", ")));
      }
      if (entries_.count(key) != 0) {
        throw InputError(fmt::format("{}:{}: key '{}': given twice (first at line {})", path_,
                                     key_line, key, entries_.at(key).key_line));
      }
      entries_.emplace(key, Entry{it->second, key_line});
    }
  }

  // A positive integer written as a plain decimal scalar.
  int64_t PositiveInt(const std::string& key) const {
    const Entry& e = Get(key);
    const std::optional<int64_t> v = ParseInt(e);
    if (!v || *v <= 0) Fail(key, e, "expected a positive integer");
    return *v;
  }

  // An integer written as a plain decimal scalar that is one of `allowed`; else an
  // error "expected `expected`, got 'v'".
  int64_t IntOneOf(const std::string& key, std::span<const int64_t> allowed,
                   std::string_view expected) const {
    const Entry& e = Get(key);
    const std::optional<int64_t> v = ParseInt(e);
    if (!v || std::find(allowed.begin(), allowed.end(), *v) == allowed.end()) {
      Fail(key, e, fmt::format("expected {}", expected));
    }
    return *v;
  }

  // A finite double (integers accepted) that is > 0, or >= 0 when `allow_zero`.
  double PositiveDouble(const std::string& key, bool allow_zero = false) const {
    const Entry& e = Get(key);
    const std::optional<double> v = ParseDouble(e);
    if (allow_zero) {
      if (!v || *v < 0) Fail(key, e, "expected a non-negative number");
    } else if (!v || *v <= 0) {
      Fail(key, e, "expected a positive number");
    }
    return *v;
  }

  // A finite double in [min_value, max_value] (integers accepted).
  double DoubleIn(const std::string& key, double min_value, double max_value,
                  std::string_view unit) const {
    const Entry& e = Get(key);
    const std::optional<double> v = ParseDouble(e);
    if (!v || *v < min_value || *v > max_value) {
      Fail(key, e,
           fmt::format("expected a number of {} in [{:g}, {:g}]", unit, min_value, max_value));
    }
    return *v;
  }

  // A quantity in [min_value, max_value] of `kind`'s base unit, written as a plain
  // number or with a unit ("3.35 TB/s", "989.4 TFLOPS"; sim/core/units.h).
  double QuantityIn(const std::string& key, Quantity kind, double min_value,
                    double max_value) const {
    const Entry& e = Get(key);
    const std::optional<std::string_view> text = NumberText(e);
    const std::optional<double> v = text ? ParseQuantity(*text, kind) : std::nullopt;
    if (!v || *v < min_value || *v > max_value) {
      const char* base = kind == Quantity::kFlopsPerSecond   ? "FLOP/s"
                         : kind == Quantity::kBytesPerSecond ? "bytes/s"
                                                             : "bytes";
      Fail(key, e,
           fmt::format("expected {} in [{:g}, {:g}], a plain number or with a unit ({})", base,
                       min_value, max_value, QuantityUnits(kind)));
    }
    return *v;
  }

  // A positive whole number of bytes: an integer or a size with a unit ("80GiB", "24GB").
  int64_t ByteSize(const std::string& key) const {
    const double bytes = QuantityIn(key, Quantity::kBytes, 1, 9.2e18);
    if (bytes != std::floor(bytes)) Fail(key, Get(key), "expected a whole number of bytes");
    return static_cast<int64_t>(bytes);
  }

  // true/false (YAML 1.2 core spellings), unquoted.
  bool Bool(const std::string& key) const {
    const Entry& e = Get(key);
    if (e.value.IsScalar() && e.value.Tag() != "!") {
      const std::string& s = e.value.Scalar();
      if (s == "true" || s == "True" || s == "TRUE") return true;
      if (s == "false" || s == "False" || s == "FALSE") return false;
    }
    Fail(key, e, "expected true or false");
  }

  // A non-empty string scalar (quoted or plain).
  std::string String(const std::string& key) const {
    const Entry& e = Get(key);
    if (!e.value.IsScalar() || e.value.Scalar().empty())
      Fail(key, e, "expected a non-empty string");
    return e.value.Scalar();
  }

  // Whether the card has `key` (for optional keys).
  bool Has(const std::string& key) const { return entries_.count(key) != 0; }

  // The raw YAML value of a key the caller decodes itself. REQUIRES: Has(key).
  const YAML::Node& Node(const std::string& key) const { return Get(key).value; }

  // A non-empty list of non-empty string scalars, e.g. [a, "b c"].
  std::vector<std::string> StringList(const std::string& key) const {
    const Entry& e = Get(key);
    if (!e.value.IsSequence() || e.value.size() == 0) Fail(key, e, "expected a non-empty list");
    std::vector<std::string> out;
    for (const YAML::Node& item : e.value) {
      if (!item.IsScalar() || item.Scalar().empty()) {
        Fail(key, e, "expected a list of non-empty strings");
      }
      out.push_back(item.Scalar());
    }
    return out;
  }

  // 1-based line of `key` in the file.
  int LineOfKey(const std::string& key) const { return Get(key).key_line; }

  // `key`'s value as written (a scalar), for messages.
  std::string Text(const std::string& key) const {
    const YAML::Node& v = Get(key).value;
    return v.IsScalar() ? v.Scalar() : "a non-scalar";
  }

  const std::string& path() const { return path_; }

 private:
  struct Entry {
    YAML::Node value;
    int key_line = 0;  // 1-based; 0 when unknown
  };

  static int LineOf(const YAML::Node& node) {
    const YAML::Mark mark = node.Mark();
    return mark.is_null() ? 0 : mark.line + 1;
  }

  const Entry& Get(const std::string& key) const {
    const auto it = entries_.find(key);
    if (it == entries_.end()) {
      throw InputError(fmt::format("{}: key '{}': missing (required)", path_, key));
    }
    return it->second;
  }

  [[noreturn]] void Fail(const std::string& key, const Entry& e, std::string_view what) const {
    // A null value's mark points past it, so the key's line is the reliable one.
    std::string got = "nothing";
    if (e.value.IsScalar()) {
      got = fmt::format("'{}'", e.value.Scalar());
    } else if (e.value.IsSequence()) {
      got = "a list";
    } else if (e.value.IsMap()) {
      got = "a mapping";
    }
    throw InputError(fmt::format("{}:{}: key '{}': {}, got {}", path_, e.key_line, key, what, got));
  }

  // Text of a plain (unquoted) scalar with a leading '+' removed; nullopt otherwise.
  static std::optional<std::string_view> NumberText(const Entry& e) {
    if (!e.value.IsScalar() || e.value.Tag() == "!") return std::nullopt;
    std::string_view s = e.value.Scalar();
    if (!s.empty() && s.front() == '+') s.remove_prefix(1);
    if (s.empty()) return std::nullopt;
    return s;
  }

  static std::optional<int64_t> ParseInt(const Entry& e) {
    const std::optional<std::string_view> s = NumberText(e);
    if (!s) return std::nullopt;
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
    if (ec != std::errc() || end != s->data() + s->size()) return std::nullopt;
    return v;
  }

  static std::optional<double> ParseDouble(const Entry& e) {
    const std::optional<std::string_view> s = NumberText(e);
    if (!s) return std::nullopt;
    double v = 0;
    const auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
    if (ec != std::errc() || end != s->data() + s->size() || !std::isfinite(v)) return std::nullopt;
    return v;
  }

  std::string path_;
  std::map<std::string, Entry> entries_;
};

}  // namespace kvsim
