// How long kvprobe replays a kernel or a graph before timing it. Under its power cap a
// GPU's clock keeps moving for seconds after its load changes (on the lent H200,
// passes timed 0.8 s after a change of load ran up to 12% off their time 3 s later;
// models/profiles/H200/README.md), so a timing taken too early carries the clock of
// what ran before. SteadyWarm decides from the times of consecutive chunks of
// replays when the clock has settled. Host logic only: the CUDA side times the chunks.
#pragma once

namespace kvprobe {

struct SteadyWarmLimits {
  double min_ms = 0;  // replay at least this long
  // At most this long. From min_ms on, replays stop once two consecutive chunks agree
  // within `tolerance` (relative, per launch). max_ms <= min_ms: stop at min_ms with no
  // such test.
  double max_ms = 0;
  double tolerance = 0.015;
};

class SteadyWarm {
 public:
  // `warmed_us`: replays already run (a trial) that count towards min_ms and max_ms.
  explicit SteadyWarm(const SteadyWarmLimits& limits, double warmed_us = 0);

  // Whether this replayer wants another chunk.
  bool More() const { return more_; }
  // Records a chunk of `launches` launches that took `per_launch_us` each. Throws
  // std::invalid_argument unless launches >= 1 and per_launch_us > 0 (a chunk that took no
  // time would never reach the limits).
  void Record(double per_launch_us, int launches);
  // Everything replayed so far, trial included, in milliseconds.
  double warmed_ms() const { return warmed_us_ / 1000.0; }

 private:
  bool WantsMore(bool steady) const;

  SteadyWarmLimits limits_;
  double warmed_us_ = 0;
  double last_per_launch_us_ = 0;  // the previous chunk's; 0 before the first
  bool more_ = true;
};

}  // namespace kvprobe
