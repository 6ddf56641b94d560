// Tests for EventQueue: events pop by time, then phase (arrival < completion <
// schedule), then insertion order; no event may be pushed into the past.
#include "sim/core/event_queue.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sim/core/check.h"

namespace kvsim {
namespace {

using Queue = EventQueue<std::string>;

std::vector<std::string> DrainPayloads(Queue& q) {
  std::vector<std::string> out;
  while (!q.empty()) out.push_back(q.Pop().payload);
  return out;
}

TEST(EventQueue, StartsEmptyAtTimeZero) {
  Queue q;
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.now(), Nanos(0));
  EXPECT_EQ(q.pushed(), 0u);
}

TEST(EventQueue, PopsEventsInTimeOrder) {
  Queue q;
  q.Push(Nanos(30), EventPhase::kArrival, "c");
  q.Push(Nanos(10), EventPhase::kSchedule, "a");
  q.Push(Nanos(20), EventPhase::kCompletion, "b");
  q.Push(Nanos(1'000'000'000), EventPhase::kArrival, "d");
  EXPECT_EQ(q.size(), 4u);
  EXPECT_EQ(DrainPayloads(q), (std::vector<std::string>{"a", "b", "c", "d"}));
}

TEST(EventQueue, AtEqualTimesArrivalsRunBeforeCompletionsBeforeScheduling) {
  Queue q;
  q.Push(Nanos(5), EventPhase::kSchedule, "schedule");
  q.Push(Nanos(5), EventPhase::kCompletion, "completion");
  q.Push(Nanos(5), EventPhase::kArrival, "arrival");
  EXPECT_EQ(DrainPayloads(q), (std::vector<std::string>{"arrival", "completion", "schedule"}));
}

TEST(EventQueue, AnEarlierTimeWinsOverALowerPhase) {
  Queue q;
  q.Push(Nanos(6), EventPhase::kArrival, "later arrival");
  q.Push(Nanos(5), EventPhase::kSchedule, "earlier schedule");
  EXPECT_EQ(DrainPayloads(q), (std::vector<std::string>{"earlier schedule", "later arrival"}));
}

TEST(EventQueue, AtEqualTimeAndPhaseEventsPopInInsertionOrder) {
  Queue q;
  std::vector<std::string> expected;
  for (int i = 0; i < 100; ++i) {
    expected.push_back(std::to_string(i));
    q.Push(Nanos(7), EventPhase::kCompletion, expected.back());
  }
  EXPECT_EQ(DrainPayloads(q), expected);
}

TEST(EventQueue, OrdersByTimeThenPhaseThenInsertion) {
  Queue q;
  q.Push(Nanos(2), EventPhase::kSchedule, "2S#1");
  q.Push(Nanos(1), EventPhase::kCompletion, "1C#1");
  q.Push(Nanos(2), EventPhase::kArrival, "2A#1");
  q.Push(Nanos(1), EventPhase::kCompletion, "1C#2");
  q.Push(Nanos(2), EventPhase::kSchedule, "2S#2");
  q.Push(Nanos(1), EventPhase::kArrival, "1A#1");
  q.Push(Nanos(2), EventPhase::kArrival, "2A#2");
  EXPECT_EQ(DrainPayloads(q),
            (std::vector<std::string>{"1A#1", "1C#1", "1C#2", "2A#1", "2A#2", "2S#1", "2S#2"}));
}

TEST(EventQueue, PopReportsTimePhaseAndSequence) {
  Queue q;
  q.Push(Nanos(9), EventPhase::kSchedule, "x");
  q.Push(Nanos(3), EventPhase::kCompletion, "y");
  const Queue::Event e = q.Pop();
  EXPECT_EQ(e.time, Nanos(3));
  EXPECT_EQ(e.phase, EventPhase::kCompletion);
  EXPECT_EQ(e.seq, 1u);  // the second push
  EXPECT_EQ(e.payload, "y");
  EXPECT_EQ(q.pushed(), 2u);
}

TEST(EventQueue, NowAdvancesToTheTimeOfTheLastPoppedEvent) {
  Queue q;
  q.Push(Nanos(100), EventPhase::kArrival, "a");
  q.Push(Nanos(250), EventPhase::kArrival, "b");
  EXPECT_EQ(q.now(), Nanos(0));  // pushing does not move time
  q.Pop();
  EXPECT_EQ(q.now(), Nanos(100));
  q.Pop();
  EXPECT_EQ(q.now(), Nanos(250));
}

TEST(EventQueue, EventsPushedWhileRunningAreOrderedWithTheRest) {
  Queue q;
  q.Push(Nanos(10), EventPhase::kCompletion, "done");
  q.Push(Nanos(20), EventPhase::kArrival, "next");
  EXPECT_EQ(q.Pop().payload, "done");
  // At now = 10: an event at the current time still runs before later ones, and a
  // schedule at the current time after the completion just handled.
  q.Push(Nanos(10), EventPhase::kSchedule, "plan");
  q.Push(Nanos(15), EventPhase::kCompletion, "iteration end");
  EXPECT_EQ(DrainPayloads(q), (std::vector<std::string>{"plan", "iteration end", "next"}));
}

TEST(EventQueue, PushingIntoThePastThrows) {
  Queue q;
  q.Push(Nanos(50), EventPhase::kArrival, "a");
  q.Pop();
  EXPECT_THROW(q.Push(Nanos(49), EventPhase::kArrival, "late"), InvariantError);
  EXPECT_THROW(q.Push(Nanos(-1), EventPhase::kSchedule, "late"), InvariantError);
  EXPECT_TRUE(q.empty());
  // The current time itself is allowed.
  EXPECT_NO_THROW(q.Push(Nanos(50), EventPhase::kArrival, "now"));
  EXPECT_EQ(q.size(), 1u);
}

TEST(EventQueue, PoppingAnEmptyQueueThrows) {
  Queue q;
  EXPECT_THROW(q.Pop(), InvariantError);
}

TEST(EventQueue, CarriesAnyPayloadType) {
  struct Arrival {
    int request;
  };
  EventQueue<Arrival> q;
  q.Push(Nanos(2), EventPhase::kArrival, Arrival{7});
  q.Push(Nanos(1), EventPhase::kArrival, Arrival{3});
  EXPECT_EQ(q.Pop().payload.request, 3);
  EXPECT_EQ(q.Pop().payload.request, 7);
}

}  // namespace
}  // namespace kvsim
