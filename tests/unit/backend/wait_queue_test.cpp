#include "pooler/backend/wait_queue.h"

#include <gtest/gtest.h>

namespace pooler::backend {
namespace {

struct W {
  int id;
};

TEST(WaitQueueTest, FirstComeFirstServedWithWaitStart) {
  WaitQueue<W> q;
  W a{1}, b{2}, c{3};
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.longest_wait_ms(5000), 0u);
  q.push(&a, 100);
  q.push(&b, 150);
  q.push(&c, 151);
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.longest_wait_ms(2099), 1u);
  EXPECT_EQ(q.longest_wait_ms(50), 0u);  // a clock read before the wait began
  EXPECT_EQ(q.front().waiter, &a);
  EXPECT_EQ(q.front().since_us, 100u);
  const auto first = q.pop_front();
  EXPECT_EQ(first.waiter, &a);
  EXPECT_EQ(first.since_us, 100u);
  EXPECT_EQ(q.pop_front().waiter, &b);
  EXPECT_EQ(q.pop_front().waiter, &c);
  EXPECT_TRUE(q.empty());
}

TEST(WaitQueueTest, RemovedWaitersAreNeverHandedOut) {
  WaitQueue<W> q;
  W a{1}, b{2}, c{3}, d{4};
  q.push(&a, 1);
  q.push(&b, 2);
  q.push(&c, 3);
  q.push(&d, 4);
  q.remove(&b);  // from the middle: a hole
  EXPECT_EQ(q.size(), 3u);
  q.remove(&a);  // the front: the hole behind it goes too
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.front().waiter, &c);
  EXPECT_EQ(q.front().since_us, 3u);
  q.remove(&a);  // not waiting any more: nothing happens
  EXPECT_EQ(q.size(), 2u);
  q.remove(&d);
  EXPECT_EQ(q.pop_front().waiter, &c);
  EXPECT_TRUE(q.empty());
}

TEST(WaitQueueTest, TakeAllKeepsOrderAndSkipsHoles) {
  WaitQueue<W> q;
  W w[40];
  for (int i = 0; i < 40; ++i) {  // more than one deque block
    w[i].id = i;
    q.push(&w[i], static_cast<std::uint64_t>(i));
  }
  q.remove(&w[7]);
  q.remove(&w[39]);
  const auto all = q.take_all();
  ASSERT_EQ(all.size(), 38u);
  EXPECT_EQ(all.front(), &w[0]);
  EXPECT_EQ(all[7], &w[8]);
  EXPECT_EQ(all.back(), &w[38]);
  EXPECT_TRUE(q.empty());
  q.push(&w[1], 5);
  EXPECT_EQ(q.front().waiter, &w[1]);
}

}  // namespace
}  // namespace pooler::backend
