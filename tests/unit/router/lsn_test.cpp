#include "router/lsn.h"

#include <gtest/gtest.h>

namespace router {
namespace {

// pg_lsn text both ways; malformed text is rejected.
TEST(LsnTest, ParseAndFormat) {
  EXPECT_EQ(parse_lsn("16/B374D848"), 0x16B374D848ULL);
  EXPECT_EQ(parse_lsn("0/0"), 0u);
  EXPECT_EQ(parse_lsn("FFFFFFFF/FFFFFFFF"), 0xFFFFFFFFFFFFFFFFULL);
  EXPECT_EQ(parse_lsn("0/3000060"), 0x3000060u);
  EXPECT_EQ(parse_lsn("a/b"), 0xA0000000BULL);
  for (const char* bad : {"", "/", "16", "16/", "/B3", "16/B374D848X", "G/0", "123456789/0",
                          "1/2/3", " 1/2", "-1/2"}) {
    EXPECT_EQ(parse_lsn(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(format_lsn(0x16B374D848ULL), "16/B374D848");
  EXPECT_EQ(format_lsn(0), "0/0");
  EXPECT_EQ(parse_lsn(format_lsn(0x123456789ABCDEFULL)), 0x123456789ABCDEFULL);
}

// A replica shows a commit once it has replayed up to the commit's LSN.
TEST(LsnTest, CaughtUpAndLag) {
  EXPECT_TRUE(replica_caught_up(*parse_lsn("16/B374D848"), *parse_lsn("16/B374D848")));
  EXPECT_TRUE(replica_caught_up(*parse_lsn("17/0"), *parse_lsn("16/FFFFFFFF")));
  EXPECT_FALSE(replica_caught_up(*parse_lsn("16/B374D847"), *parse_lsn("16/B374D848")));
  EXPECT_FALSE(replica_caught_up(0, 0));  // unknown replay position
  EXPECT_EQ(lag_bytes(*parse_lsn("1/0"), *parse_lsn("0/FFFFFF00")), 0x100);
  EXPECT_EQ(lag_bytes(100, 200), 0);
}

}  // namespace
}  // namespace router
