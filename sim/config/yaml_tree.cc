// ConfigTree: YAML loading and dotted-path overrides.
#include "sim/config/yaml_tree.h"

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

#include "sim/core/check.h"
#include "sim/core/utf8.h"

namespace kvsim {
namespace {

// "a.b.c" -> {"a", "b", "c"}; empty pieces (as in "a..b" or "a.") are kept.
std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts(1);
  for (char ch : path) {
    if (ch == '.') {
      parts.emplace_back();
    } else {
      parts.back() += ch;
    }
  }
  return parts;
}

// Counts what the parser reports of a document: whether it holds anything but null.
class DocumentProbe final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { line_ = mark.line + 1; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override { content_ = true; }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {
    content_ = true;
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    content_ = true;
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    content_ = true;
  }
  void OnMapEnd() override {}
  bool content() const { return content_; }
  int line() const { return line_; }

 private:
  bool content_ = false;
  int line_ = 0;
};

// The 1-based line of a second document of `text` that holds anything, or nullopt. The
// parser is asked for two documents at most (yaml-cpp's LoadAll loops without end on
// some malformed text, such as a lone ',').
std::optional<int> SecondDocumentLine(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentProbe first, second;
  try {
    if (!parser.HandleNextDocument(first) || !parser.HandleNextDocument(second)) {
      return std::nullopt;
    }
  } catch (const YAML::Exception&) {
    return std::nullopt;  // Load took the first document; a broken rest is not a document
  }
  if (!second.content()) return std::nullopt;
  return second.line();
}

YAML::Node ParseRoot(const std::string& text, const std::string& origin) {
  // yaml-cpp takes any bytes, but what kvsim writes back (config.yaml, calibration.yaml,
  // compare and --set values, JSON) can hold only UTF-8, and yaml-cpp misreads a raw
  // NUL: such bytes would come back changed, e.g. a GPU name that no longer matches its
  // card.
  if (const std::optional<TextError> bad = FindNonUtf8Text(text)) {
    throw InputError(
        fmt::format("{}:{}: byte 0x{:02X} at column {} is not UTF-8 text (YAML files "
                    "must be UTF-8)",
                    origin, bad->line, bad->byte, bad->column));
  }
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw InputError(fmt::format("{}:{}: invalid YAML: {}", origin, e.mark.line + 1, e.msg));
  }
  if (!root.IsMap()) throw InputError(fmt::format("{}: the config must be a YAML mapping", origin));
  // A second document (after '---') would be read by nothing: an error, not ignored. An
  // empty one (a trailing '---') holds nothing to lose.
  if (const std::optional<int> line = SecondDocumentLine(text)) {
    throw InputError(
        fmt::format("{}:{}: a second YAML document (after '---'): a config is one "
                    "document; merge them or remove the separator",
                    origin, *line));
  }
  return root;
}

}  // namespace

ConfigTree::ConfigTree(std::unique_ptr<YAML::Node> root, std::string text, std::string origin)
    : root_(std::move(root)), text_(std::move(text)), origin_(std::move(origin)) {}
ConfigTree::ConfigTree(const ConfigTree& other)
    : root_(std::make_unique<YAML::Node>(ParseRoot(other.text_, other.origin_))),
      text_(other.text_),
      origin_(other.origin_) {
  // Replayed as applied to `other`, whose Set() calls all succeeded.
  for (const Override& o : other.overrides_) Set(o.key_path, o.value_yaml, o.origin);
  KVSIM_CHECK(overridden_ == other.overridden_ && origins_ == other.origins_,
              "a copied config tree must hold the same overrides");
}
ConfigTree& ConfigTree::operator=(const ConfigTree& other) {
  if (this != &other) {
    ConfigTree copy(other);
    root_ = std::move(copy.root_);
    text_ = std::move(copy.text_);
    overrides_ = std::move(copy.overrides_);
    origin_ = std::move(copy.origin_);
    overridden_ = std::move(copy.overridden_);
    origins_ = std::move(copy.origins_);
  }
  return *this;
}
ConfigTree::~ConfigTree() = default;

ConfigTree ConfigTree::Load(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw InputError(fmt::format("{}: a directory, not a config file", path));
  }
  std::ifstream in(path);
  if (!in) throw InputError(fmt::format("{}: cannot open config file", path));
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path);
}

ConfigTree ConfigTree::Parse(const std::string& yaml_text, const std::string& origin) {
  return ConfigTree(std::make_unique<YAML::Node>(ParseRoot(yaml_text, origin)), yaml_text, origin);
}

void ConfigTree::Set(const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw InputError(fmt::format("--set '{}': expected key.path=value", assignment));
  }
  Set(assignment.substr(0, eq), assignment.substr(eq + 1));
}

void ConfigTree::Set(const std::string& key_path, const std::string& value_yaml,
                     const std::string& origin) {
  const std::vector<std::string> parts = SplitPath(key_path);
  if (const std::optional<TextError> bad = FindNonUtf8Text(key_path)) {
    throw InputError(
        fmt::format("--set: the key path holds byte 0x{:02X}, which is not UTF-8 text", bad->byte));
  }
  for (const std::string& p : parts) {
    if (p.empty()) throw InputError(fmt::format("--set '{}': empty key in the path", key_path));
  }
  if (const std::optional<TextError> bad = FindNonUtf8Text(value_yaml)) {
    throw InputError(fmt::format("--set {}: the value holds byte 0x{:02X}, which is not UTF-8 text",
                                 key_path, bad->byte));
  }
  YAML::Node value;
  try {
    value = YAML::Load(value_yaml);
  } catch (const YAML::Exception& e) {
    throw InputError(fmt::format("--set {}={}: invalid value: {}", key_path, value_yaml, e.msg));
  }
  // yaml-cpp nodes are handles: assignment writes through them, reset() rebinds.
  YAML::Node node;
  node.reset(*root_);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    const YAML::Node existing = node[parts[i]];
    if (!existing || existing.IsNull()) {
      node[parts[i]] = YAML::Node(YAML::NodeType::Map);
    } else if (!existing.IsMap()) {
      throw InputError(fmt::format("--set {}: '{}' is not a mapping", key_path, parts[i]));
    }
    YAML::Node next = node[parts[i]];
    node.reset(next);
  }
  node[parts.back()] = value;
  overrides_.push_back({key_path, value_yaml, origin});
  overridden_.insert(key_path);
  if (!origin.empty()) {
    origins_[key_path] = origin;
  } else {
    origins_.erase(key_path);
  }
}

std::string ConfigTree::base_dir() const {
  return std::filesystem::path(origin_).parent_path().string();
}

std::string ConfigTree::Dump() const {
  YAML::Emitter out;
  out << *root_;
  return std::string(out.c_str()) + "\n";
}

const YAML::Node& ConfigTree::root() const { return *root_; }

std::string QuotedYamlScalar(const std::string& s) {
  YAML::Emitter e;
  e << YAML::DoubleQuoted << s;
  return e.c_str();
}

}  // namespace kvsim
