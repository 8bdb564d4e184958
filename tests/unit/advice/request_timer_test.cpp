#include "pooler/backend/request_timer.h"

#include <gtest/gtest.h>

#include <vector>

namespace pooler::backend {
namespace {

std::vector<RequestTimer::Entry> ready(RequestTimer& t) {
  std::vector<RequestTimer::Entry> out;
  t.on_ready([&](const RequestTimer::Entry& e) { out.push_back(e); });
  return out;
}

TEST(RequestTimer, RowsFromTags) {
  EXPECT_EQ(RequestTimer::rows_of("SELECT 5"), 5u);
  EXPECT_EQ(RequestTimer::rows_of("INSERT 0 12"), 12u);
  EXPECT_EQ(RequestTimer::rows_of("BEGIN"), 0u);
  EXPECT_EQ(RequestTimer::rows_of("SET x"), 0u);
}

TEST(RequestTimer, SimpleQueryOwnsEveryCompleteUntilReady) {
  RequestTimer t;
  t.start(7, 70, 100, /*ends_at_ready=*/true);
  t.start(8, 80, 200, true);
  t.on_command_complete("SELECT 2");
  t.on_command_complete("UPDATE 3");
  auto first = ready(t);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].slot, 7u);
  EXPECT_EQ(first[0].rows, 5u);
  t.on_error();
  auto second = ready(t);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_TRUE(second[0].error);
  EXPECT_TRUE(t.empty());
}

TEST(RequestTimer, ExtendedRequestsEndAtTheSyncsReady) {
  RequestTimer t;
  t.start(1, 10, 0, /*ends_at_ready=*/false);
  t.start(2, 20, 0, false);
  t.on_command_complete("SELECT 1");
  t.on_command_complete("SELECT 4");
  auto done = ready(t);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].rows, 1u);
  EXPECT_EQ(done[1].rows, 4u);
}

TEST(RequestTimer, BoundedAndCleared) {
  RequestTimer t;
  for (std::uint32_t i = 0; i < 10; ++i) {
    t.start(i, i, 0, false);
  }
  EXPECT_EQ(ready(t).size(), RequestTimer::kCapacity);
  t.start(1, 1, 0, true);
  t.clear();
  EXPECT_TRUE(t.empty());
  EXPECT_TRUE(ready(t).empty());
}

}  // namespace
}  // namespace pooler::backend
