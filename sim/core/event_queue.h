// EventQueue: a min-heap of timed events with a deterministic order at equal times:
// (time, phase, order key, insertion sequence). Payload is a closed std::variant chosen by the
// caller; dispatch is the caller's std::visit.
#pragma once

#include <cstdint>
#include <queue>
#include <vector>

#include "sim/core/check.h"
#include "sim/core/time.h"

namespace kvsim {

// At equal times, lower phases run first.
enum class EventPhase : int {
  kArrival = 0,     // requests enter the system
  kCompletion = 1,  // iterations end: tokens emitted, requests finish
  kSchedule = 2,    // replicas plan their next iteration
};

template <typename Payload>
class EventQueue {
 public:
  struct Event {
    Nanos time;
    EventPhase phase;
    uint64_t order;  // the caller's tie-break at equal (time, phase), e.g. a replica index
    uint64_t seq;
    Payload payload;
  };

  // REQUIRES: time >= the time of the last popped event (no scheduling in the past).
  void Push(Nanos time, EventPhase phase, Payload payload, uint64_t order = 0) {
    KVSIM_CHECK(time >= now_, "event scheduled in the past");
    heap_.push(Event{time, phase, order, next_seq_++, std::move(payload)});
  }

  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  Nanos now() const { return now_; }
  uint64_t pushed() const { return next_seq_; }

  // Removes and returns the earliest event. REQUIRES: !empty().
  Event Pop() {
    KVSIM_CHECK(!heap_.empty(), "pop from an empty event queue");
    Event e = heap_.top();
    heap_.pop();
    now_ = e.time;
    return e;
  }

 private:
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      if (a.time != b.time) return a.time > b.time;
      if (a.phase != b.phase) return a.phase > b.phase;
      if (a.order != b.order) return a.order > b.order;
      return a.seq > b.seq;
    }
  };
  std::priority_queue<Event, std::vector<Event>, Later> heap_;
  uint64_t next_seq_ = 0;
  Nanos now_{0};
};

}  // namespace kvsim
