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

CardShapes ReadModelCard(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw CardError(path + ": cannot open model card");
  std::map<std::string, std::pair<std::string, int>> values;  // key -> (value, line)
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line[0] == '#' || line[0] == ' ' || line[0] == '\t') continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = Trim(line.substr(colon + 1));
    const size_t hash = value.find(" #");
    if (hash != std::string::npos) value = Trim(value.substr(0, hash));
    values[Trim(line.substr(0, colon))] = {value, n};
  }
  CardShapes c;
  auto text = [&](const char* key) -> const std::pair<std::string, int>& {
    auto it = values.find(key);
    if (it == values.end()) throw CardError(path + ": missing key '" + key + "'");
    return it->second;
  };
  auto integer = [&](const char* key) {
    const auto& [value, n] = text(key);
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc() || end != value.data() + value.size() || v <= 0) {
      throw CardError(path + ":" + std::to_string(n) + ": key '" + key +
                      "': expected a positive integer, got '" + value + "'");
    }
    return v;
  };
  c.name = text("name").first;
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
