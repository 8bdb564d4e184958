#include "pooler/advice/shape_stats.h"

#include <gtest/gtest.h>

namespace pooler::advice {
namespace {

TEST(ShapeStats, CountsFinishesAndKeysPerDatabase) {
  ShapeStats stats({});
  const auto a = shape_key("app", 42);
  EXPECT_NE(a, shape_key("other", 42));
  EXPECT_EQ(stats.find(a), -1);
  const auto slot = stats.insert(a, 42, "app", "SELECT $1", 1000);
  EXPECT_EQ(stats.find(a), static_cast<std::int64_t>(slot));
  stats.count(slot, false, 1000);
  stats.count(slot, true, 1500);
  stats.finish(slot, a, 2'000'000, 5, false);
  stats.finish(slot, a, 6'000'000, 1, true);
  stats.finish(slot, a + 1, 9'000'000, 1, true);  // another shape's key: ignored
  const ShapeRow& r = stats.row(slot);
  EXPECT_EQ(r.calls, 2u);
  EXPECT_EQ(r.primary, 1u);
  EXPECT_EQ(r.replica, 1u);
  EXPECT_EQ(r.total_ns, 8'000'000u);
  EXPECT_EQ(r.max_ns, 6'000'000u);
  EXPECT_EQ(r.rows, 6u);
  EXPECT_EQ(r.errors, 1u);
  EXPECT_EQ(r.last_seen_ms, 1500u);
  const auto snap = stats.snapshot(1'000'000);
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap[0].first_seen_ms, 1'001'000u);
}

TEST(ShapeStats, BoundedEvictsTheLeastCalled) {
  ShapeStats::Options o;
  o.capacity = 4;
  ShapeStats stats(o);
  for (std::uint64_t fp = 1; fp <= 4; ++fp) {
    const auto slot = stats.insert(shape_key("app", fp), fp, "app", "q", 0);
    for (std::uint64_t i = 0; i < fp * 10; ++i) {
      stats.count(slot, false, 0);
    }
  }
  stats.insert(shape_key("app", 5), 5, "app", "q5", 0);
  EXPECT_EQ(stats.size(), 4u);
  EXPECT_EQ(stats.evictions(), 1u);
  EXPECT_EQ(stats.find(shape_key("app", 1)), -1);  // 10 calls: the least
  EXPECT_GE(stats.find(shape_key("app", 4)), 0);
  EXPECT_GE(stats.find(shape_key("app", 5)), 0);
}

TEST(ShapeStats, SampleTurnsWhenFrequentOrSlowOncePerInterval) {
  ShapeStats::Options o;
  o.sampling = true;
  o.min_calls = 3;
  o.min_duration_ns = 50'000'000;
  o.recheck_ms = 1000;
  ShapeStats stats(o);
  const auto k = shape_key("app", 1);
  const auto slot = stats.insert(k, 1, "app", "q", 0);
  stats.count(slot, false, 0);
  stats.count(slot, false, 0);
  EXPECT_FALSE(stats.take_sample_turn(slot, 10));
  stats.count(slot, false, 0);
  EXPECT_TRUE(stats.take_sample_turn(slot, 10));
  EXPECT_FALSE(stats.take_sample_turn(slot, 500));
  EXPECT_TRUE(stats.take_sample_turn(slot, 1010));

  const auto k2 = shape_key("app", 2);
  const auto slow = stats.insert(k2, 2, "app", "slow", 0);
  stats.count(slow, false, 0);
  EXPECT_FALSE(stats.take_sample_turn(slow, 0));
  stats.finish(slow, k2, 60'000'000, 0, false);
  EXPECT_TRUE(stats.take_sample_turn(slow, 0));

  o.sampling = false;
  stats.set_options(o);
  EXPECT_FALSE(stats.take_sample_turn(slot, 100'000));
}

}  // namespace
}  // namespace pooler::advice
