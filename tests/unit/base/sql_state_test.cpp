#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "pooler/base/result.h"

namespace pooler {
namespace {

// An Error built from a temporary keeps its SQLSTATE: the code is held by value.
TEST(SqlStateTest, OutlivesTheTextItWasBuiltFrom) {
  Error e;
  {
    std::string code = "53300";
    e = Error{Errc::PoolFull, "too many connections", std::string_view(code)};
    code.assign("XXXXX");
  }
  EXPECT_EQ(e.sqlstate.view(), "53300");
  EXPECT_FALSE(e.sqlstate.empty());
}

TEST(SqlStateTest, EmptyByDefaultAndFromLiteralsAndConstants) {
  EXPECT_TRUE(Error{}.sqlstate.empty());
  EXPECT_TRUE(fail(Errc::Io, "x").error().sqlstate.empty());
  EXPECT_EQ(fail(Errc::Protocol, "bad", "08P01").error().sqlstate.view(), "08P01");
  constexpr std::string_view kCanceled = "57014";
  constexpr SqlState s = kCanceled;
  static_assert(s.view() == "57014");
  const std::string_view as_text = s;
  EXPECT_EQ(as_text, "57014");
}

}  // namespace
}  // namespace pooler
