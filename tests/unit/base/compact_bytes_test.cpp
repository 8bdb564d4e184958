#include "pooler/base/compact_bytes.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace pooler {
namespace {

std::span<const std::byte> bytes_of(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

std::string text_of(const CompactBytes& b) {
  const auto v = b.view();
  return std::string(reinterpret_cast<const char*>(v.data()), v.size());
}

TEST(CompactBytesTest, EmptyCostsOnePointerAndNoAllocation) {
  static_assert(sizeof(CompactBytes) == sizeof(void*));
  CompactBytes b;
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.size(), 0u);
  EXPECT_TRUE(b.view().empty());
  b.append({});
  EXPECT_TRUE(b.empty());
}

TEST(CompactBytesTest, AppendsGrowAndKeepOrder) {
  CompactBytes b;
  std::string expected = std::string("Q\0\0\0", 4);  // NULs are bytes like any other
  b.append(bytes_of(expected));
  for (int i = 0; i < 1000; ++i) {
    const std::string piece = std::to_string(i) + ",";
    b.append(bytes_of(piece));
    expected += piece;
  }
  EXPECT_EQ(b.size(), expected.size());
  EXPECT_EQ(text_of(b), expected);
}

TEST(CompactBytesTest, EraseFrontKeepsTheRest) {
  CompactBytes b;
  b.append(bytes_of("frame-one|frame-two|"));
  b.erase_front(10);
  EXPECT_EQ(text_of(b), "frame-two|");
  b.append(bytes_of("three"));
  EXPECT_EQ(text_of(b), "frame-two|three");
  b.erase_front(0);
  EXPECT_EQ(text_of(b), "frame-two|three");
  b.erase_front(b.size());
  EXPECT_TRUE(b.empty());
}

TEST(CompactBytesTest, MoveLeavesTheSourceEmpty) {
  CompactBytes a;
  a.append(bytes_of("abc"));
  CompactBytes b = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  EXPECT_EQ(text_of(b), "abc");
  a.append(bytes_of("x"));
  b = std::move(a);
  EXPECT_EQ(text_of(b), "x");
  b.clear();
  EXPECT_TRUE(b.empty());
}

}  // namespace
}  // namespace pooler
