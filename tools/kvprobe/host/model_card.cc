// Minimal model-card reader for kvprobe.
#include "tools/kvprobe/host/model_card.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>

#include "sim/hardware/layer_gemms.h"
#include "tools/kvprobe/host/text.h"

namespace kvprobe {

namespace {

// One "key: value" line's value.
struct CardValue {
  std::string text;  // the scalar, unquoted
  std::string raw;   // as written (without a trailing comment), for messages
  bool quoted = false;
  int line = 0;
};

// `rest`, the text after a key's colon, as a YAML scalar, as kvsim's YAML reader
// (yaml-cpp) reads it: a plain scalar ends at a " #" comment and is trimmed; a
// single-quoted one reads '' as one quote; a double-quoted one reads the escapes \",
// \\ and \/. Throws CardError "PATH:LINE: ..." for a quoted scalar that does not end
// on its line, text other than a comment after one, or another escape (kvprobe's
// reader knows no others).
CardValue ReadScalar(const std::string& rest, const std::string& path, int line) {
  CardValue v;
  v.line = line;
  const std::string text = Trim(rest);
  auto fail = [&](const std::string& what) {
    throw CardError(path + ":" + std::to_string(line) + ": " + what);
  };
  if (text.empty() || (text[0] != '"' && text[0] != '\'')) {
    // A comment starts the value or follows a space or tab (no value: empty).
    size_t hash = text.rfind('#', 0) == 0 ? 0 : std::string::npos;
    for (size_t i = 1; i < text.size() && hash == std::string::npos; ++i) {
      if (text[i] == '#' && (text[i - 1] == ' ' || text[i - 1] == '\t')) hash = i;
    }
    v.text = v.raw = hash == std::string::npos ? text : Trim(text.substr(0, hash));
    return v;
  }
  const char quote = text[0];
  v.quoted = true;
  size_t i = 1;
  for (;; ++i) {
    if (i >= text.size())
      fail(std::string("a value opened with ") + quote + " does not end on its line");
    const char c = text[i];
    if (quote == '\'' && c == '\'') {
      if (i + 1 < text.size() && text[i + 1] == '\'') {
        v.text += '\'';
        ++i;
        continue;
      }
      break;
    }
    if (quote == '"' && c == '"') break;
    if (quote == '"' && c == '\\') {
      if (i + 1 >= text.size()) continue;  // the next pass fails: no closing quote
      const char e = text[i + 1];
      if (e != '"' && e != '\\' && e != '/') {
        fail(std::string("the escape '\\") + e +
             "' in a double-quoted value is not read by kvprobe " +
             "(only \\\", \\\\ and \\/ are); write the value without it");
      }
      v.text += e;
      ++i;
      continue;
    }
    v.text += c;
  }
  v.raw = text.substr(0, i + 1);
  const std::string after = Trim(text.substr(i + 1));
  if (!after.empty() && after[0] != '#') {
    fail("text '" + after + "' after the quoted value " + v.raw + " (only a # comment may follow)");
  }
  return v;
}

}  // namespace

CardShapes ReadModelCard(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw CardError(path + ": cannot open model card");
  // key -> (text after the colon, line); read as a scalar only for the keys used, so
  // the values of other keys are never refused.
  std::map<std::string, std::pair<std::string, int>> values;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line[0] == '#' || line[0] == ' ' || line[0] == '\t') continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    values[Trim(line.substr(0, colon))] = {line.substr(colon + 1), n};
  }
  CardShapes c;
  auto get = [&](const char* key) {
    auto it = values.find(key);
    if (it == values.end()) throw CardError(path + ": missing key '" + key + "'");
    return ReadScalar(it->second.first, path, it->second.second);
  };
  // A plain decimal scalar, as kvsim requires (a quoted number is a string to it).
  auto integer = [&](const char* key) {
    const CardValue value = get(key);
    const std::string& t = value.text;
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (value.quoted || ec != std::errc() || end != t.data() + t.size() || v <= 0) {
      throw CardError(path + ":" + std::to_string(value.line) + ": key '" + key +
                      "': expected a positive integer, got '" + value.raw + "'");
    }
    return v;
  };
  const CardValue name = get("name");
  if (name.text.empty()) {
    throw CardError(path + ":" + std::to_string(name.line) +
                    ": key 'name': expected a non-empty string");
  }
  c.name = name.text;
  c.num_layers = integer("num_layers");
  c.hidden_size = integer("hidden_size");
  c.num_heads = integer("num_heads");
  c.num_kv_heads = integer("num_kv_heads");
  c.head_dim = integer("head_dim");
  c.ffn_size = integer("ffn_size");
  c.vocab_size = integer("vocab_size");
  c.num_experts = integer("num_experts");
  return c;
}

std::vector<CardShapes> ReadModelCards(const std::string& dir,
                                       const std::vector<std::string>& names) {
  std::vector<std::string> paths;
  if (names.empty()) {
    std::error_code error;
    for (const auto& e : std::filesystem::directory_iterator(dir, error)) {
      if (e.path().extension() == ".yaml") paths.push_back(e.path().string());
    }
    if (error) throw CardError(dir + ": cannot list the model cards: " + error.message());
    std::sort(paths.begin(), paths.end());
  } else {
    for (const std::string& n : names) paths.push_back(dir + "/" + n + ".yaml");
  }
  if (paths.empty()) throw CardError(dir + ": no model cards (*.yaml)");
  std::vector<CardShapes> cards;
  for (const std::string& p : paths) cards.push_back(ReadModelCard(p));
  return cards;
}

bool SplitsOver(const CardShapes& card, int64_t tp) {
  return tp >= 1 && card.num_heads % tp == 0 && card.ffn_size % tp == 0 &&
         card.vocab_size % tp == 0;
}

std::vector<GemmShape> LayerGemms(const CardShapes& c, int64_t tp) {
  if (!SplitsOver(c, tp)) throw CardError(c.name + ": does not split over " + std::to_string(tp));
  const kvsim::LayerDims dims{.hidden = c.hidden_size,
                              .heads = c.num_heads,
                              .kv_heads = c.num_kv_heads,
                              .head_dim = c.head_dim,
                              .ffn = c.ffn_size,
                              .vocab = c.vocab_size};
  std::vector<GemmShape> shapes;
  for (const kvsim::LayerGemm& g : kvsim::LayerGemmShapes(dims, tp)) {
    shapes.push_back({std::string(g.layer), g.n, g.k});
  }
  return shapes;
}

}  // namespace kvprobe
