// Admission: what the serving engine's front end does with a request before any
// replica sees it. An engine refuses a prompt that leaves no room to generate within
// its context window (max_model_len, tokens) and cuts an output that would run past
// it, as vLLM's request validation does.
#pragma once

#include <cstdint>

#include "sim/metrics/metrics.h"
#include "sim/workload/request.h"

namespace kvsim {

class Admission {
 public:
  // `max_model_len_tokens` > 0: the context window (prompt + output), tokens.
  // `metrics` must outlive the admission; every decision is counted there.
  Admission(int64_t max_model_len_tokens, Metrics& metrics);

  // Counts `spec` as offered. Rejects it (counted rejected, false) when its prompt
  // fills the whole window; else admits it (true), its output cut to fit the window
  // (counted truncated) when prompt + output exceed it.
  bool Admit(RequestSpec& spec);

 private:
  int64_t max_model_len_tokens_;
  Metrics& metrics_;
};

}  // namespace kvsim
