// The model-card fields kvprobe needs for GEMM shapes, read from models/llm/*.yaml
// without a YAML library (cards are flat "key: value" files).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace kvprobe {

class CardError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CardShapes {
  std::string name;
  int64_t num_layers = 0;
  int64_t hidden_size = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t ffn_size = 0;  // per expert
  int64_t vocab_size = 0;
  int64_t num_experts = 1;
};

// Reads the integer fields above (and name) from a card. Other keys, comments and
// folded values (a '>-' block) are skipped. A value is read as kvsim's YAML reader
// reads it: a single- or double-quoted name loses its quotes ('' and the escapes \",
// \\ and \/ are read); an integer is a plain decimal scalar (a quoted one is refused,
// as kvsim refuses it). Throws CardError naming the file (and the line, for a bad
// value: not a positive integer, an empty name, an unclosed quote, text after a
// closing quote, another escape) for a missing or bad field or a file that cannot be
// read.
CardShapes ReadModelCard(const std::string& path);

// The cards named `names` in `dir` (NAME.yaml), or every *.yaml card there in name
// order when `names` is empty. Throws CardError as ReadModelCard does, and when `dir`
// holds no card.
std::vector<CardShapes> ReadModelCards(const std::string& dir,
                                       const std::vector<std::string>& names);

// One GEMM of a transformer layer on one tensor-parallel rank:
// C[tokens, n] = X[tokens, k] x W[k, n].
struct GemmShape {
  std::string layer;  // qkv, o, gate_up, down, lm_head
  int64_t n = 0;
  int64_t k = 0;
};

// Whether `tp` ranks can split the model (query heads divide evenly).
bool SplitsOver(const CardShapes& card, int64_t tp);

// The five GEMMs of a layer (and the LM head) at tensor parallelism `tp`, with
// per-rank widths: qkv n = (heads/tp + 2 max(1, kv_heads/tp)) head_dim, k = hidden;
// o n = hidden, k = heads head_dim / tp; gate_up n = 2 ffn / tp, k = hidden;
// down n = hidden, k = ffn / tp; lm_head n = vocab / tp, k = hidden.
// REQUIRES: SplitsOver(card, tp).
std::vector<GemmShape> LayerGemms(const CardShapes& card, int64_t tp);

}  // namespace kvprobe
