// app/admission and app/query_throttle: the bookkeeping behind the limits, without sockets.
#include <gtest/gtest.h>

#include <vector>

#include "pooler/app/admission.h"
#include "pooler/app/query_throttle.h"
#include "pooler/net/tcp_stream.h"

namespace pooler::app {
namespace {

TEST(Admission, AddressOfPeer) {
  EXPECT_EQ(net::peer_address("10.0.0.7:51234"), "10.0.0.7");
  EXPECT_EQ(net::peer_address("[::1]:5432"), "::1");
  EXPECT_EQ(net::peer_address("unix"), "unix");
}

TEST(Admission, ConnectionsRateAndFailuresPerAddress) {
  Admission a;
  AdmissionLimits limits{2, 0, 0};
  EXPECT_FALSE(a.admit_address("a", limits, 0));
  EXPECT_FALSE(a.admit_address("a", limits, 0));
  EXPECT_EQ(a.admit_address("a", limits, 0), Refusal::AddressConns);
  EXPECT_FALSE(a.admit_address("b", limits, 0)) << "another address is not affected";
  a.release_address("a");
  EXPECT_FALSE(a.admit_address("a", limits, 0));

  AdmissionLimits rate{0, 2, 0};
  EXPECT_FALSE(a.admit_address("r", rate, 1000));
  EXPECT_FALSE(a.admit_address("r", rate, 1000));
  EXPECT_EQ(a.admit_address("r", rate, 1000), Refusal::AddressRate);
  EXPECT_FALSE(a.admit_address("r", rate, 1500)) << "half a second refills one token";

  AdmissionLimits failures{0, 0, 2};
  a.note_login_failure("f", 10'000);
  EXPECT_FALSE(a.admit_address("f", failures, 10'001));
  a.note_login_failure("f", 10'002);
  EXPECT_EQ(a.admit_address("f", failures, 10'003), Refusal::LoginFailures);
  EXPECT_FALSE(a.admit_address("f", failures, 70'003)) << "a minute later";
}

TEST(Admission, UsersAreCountedUpToTheLimit) {
  Admission a;
  EXPECT_TRUE(a.admit_user("u", 2));
  EXPECT_TRUE(a.admit_user("u", 2));
  EXPECT_FALSE(a.admit_user("u", 2));
  a.release_user("u");
  EXPECT_TRUE(a.admit_user("u", 2));
}

TEST(QueryThrottle, BurstThenWaitInOrderThenTimeOut) {
  std::vector<std::pair<client::ClientSession*, bool>> released;
  QueryThrottle t([&](client::ClientSession& s, bool granted) { released.emplace_back(&s, granted); });
  auto* s1 = reinterpret_cast<client::ClientSession*>(0x1000);  // never dereferenced here
  auto* s2 = reinterpret_cast<client::ClientSession*>(0x2000);
  EXPECT_TRUE(t.admit(*s1, "u", 2, 0));
  EXPECT_TRUE(t.admit(*s1, "u", 2, 0));
  EXPECT_FALSE(t.admit(*s1, "u", 2, 0));
  EXPECT_FALSE(t.admit(*s2, "u", 2, 0));
  EXPECT_TRUE(t.has_waiters());
  t.tick(100, std::chrono::milliseconds(1000));
  EXPECT_TRUE(released.empty()) << "no token yet";
  t.tick(500, std::chrono::milliseconds(1000));
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(released[0], std::pair(s1, true)) << "first come, first served";
  t.tick(1200, std::chrono::milliseconds(600));
  ASSERT_EQ(released.size(), 2u);
  EXPECT_EQ(released[1].first, s2);
  EXPECT_FALSE(t.has_waiters());
  EXPECT_TRUE(t.admit(*s2, "other", 2, 1200)) << "buckets are per user";
  EXPECT_FALSE(t.admit(*s2, "u", 2, 1200));
  t.forget(*s2);
  EXPECT_FALSE(t.has_waiters());
}

}  // namespace
}  // namespace pooler::app
