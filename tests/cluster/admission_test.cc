// Tests for Admission: a request whose prompt fills the context window is refused,
// one whose output would run past it is cut to fit, and every decision is counted.
#include "sim/cluster/admission.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace kvsim {
namespace {

constexpr int64_t kWindowTokens = 1000;

RequestSpec Request(int64_t prompt_tokens, int64_t output_tokens) {
  RequestSpec r;
  r.prompt_tokens = prompt_tokens;
  r.output_tokens = output_tokens;
  return r;
}

class AdmissionTest : public ::testing::Test {
 protected:
  Metrics metrics_;
  Admission admission_{kWindowTokens, metrics_};
};

TEST_F(AdmissionTest, ARequestThatFitsIsAdmittedUnchanged) {
  RequestSpec r = Request(600, 400);  // exactly the window
  EXPECT_TRUE(admission_.Admit(r));
  EXPECT_EQ(r.output_tokens, 400);
  const Summary s = metrics_.Summarize();
  EXPECT_EQ(s.requests_total, 1);
  EXPECT_EQ(s.requests_rejected, 0);
  EXPECT_EQ(s.requests_truncated, 0);
}

TEST_F(AdmissionTest, AnOutputPastTheWindowIsCutToTheTokensLeft) {
  RequestSpec r = Request(700, 500);
  EXPECT_TRUE(admission_.Admit(r));
  EXPECT_EQ(r.output_tokens, kWindowTokens - 700);
  EXPECT_EQ(metrics_.Summarize().requests_truncated, 1);
}

TEST_F(AdmissionTest, APromptThatFillsTheWindowIsRejected) {
  RequestSpec full = Request(kWindowTokens, 1);
  RequestSpec over = Request(kWindowTokens + 1, 1);
  RequestSpec room_for_one = Request(kWindowTokens - 1, 8);
  EXPECT_FALSE(admission_.Admit(full));
  EXPECT_FALSE(admission_.Admit(over));
  EXPECT_TRUE(admission_.Admit(room_for_one));
  EXPECT_EQ(room_for_one.output_tokens, 1);
  const Summary s = metrics_.Summarize();
  EXPECT_EQ(s.requests_total, 3);
  EXPECT_EQ(s.requests_rejected, 2);
  EXPECT_EQ(s.requests_truncated, 1);
}

}  // namespace
}  // namespace kvsim
