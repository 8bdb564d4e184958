#include "pooler/client/prepared_registry.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "tests/support/wire_builder.h"

namespace pooler::client {
namespace {

using test::Body;
using test::Bytes;

// Parse's raw parameter-type block: u16 count, then one u32 OID each.
Bytes types(const std::vector<std::uint32_t>& oids) {
  Body b;
  b.u16(static_cast<std::uint16_t>(oids.size()));
  for (const auto oid : oids) {
    b.u32(oid);
  }
  return b.take();
}

std::string name_of(std::uint64_t id) {
  char buf[32];
  return std::string(server_statement_name(id, buf));
}

// The same text with the same types is one statement, shared by every client name.
TEST(PreparedRegistryTest, SameTextAndTypesSameId) {
  PreparedRegistry reg;
  const Bytes t = types({23});
  const std::uint64_t a = reg.acquire("SELECT $1", t).id;
  const std::uint64_t b = reg.acquire("SELECT $1", types({23})).id;
  EXPECT_EQ(a, b);
  EXPECT_EQ(reg.size(), 1u);
  ASSERT_NE(reg.find(a), nullptr);
  EXPECT_EQ(reg.find(a)->clients, 2);
  EXPECT_EQ(reg.find(a)->sql, "SELECT $1");
  EXPECT_EQ(reg.find(a)->param_types, std::string("\0\1\0\0\0\x17", 6));
}

// Different parameter types (or none given vs one given) make different statements.
TEST(PreparedRegistryTest, DifferentTypesDifferentId) {
  PreparedRegistry reg;
  const std::uint64_t int4 = reg.acquire("SELECT $1", types({23})).id;
  const std::uint64_t text = reg.acquire("SELECT $1", types({25})).id;
  const std::uint64_t unspecified = reg.acquire("SELECT $1", types({})).id;
  const std::uint64_t zero_oid = reg.acquire("SELECT $1", types({0})).id;
  const std::set<std::uint64_t> ids = {int4, text, unspecified, zero_oid};
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_EQ(reg.size(), 4u);
}

// Different texts make different statements; the text is compared exactly.
TEST(PreparedRegistryTest, DifferentTextDifferentId) {
  PreparedRegistry reg;
  const Bytes t = types({});
  const std::uint64_t a = reg.acquire("SELECT 1", t).id;
  const std::uint64_t b = reg.acquire("select 1", t).id;
  const std::uint64_t c = reg.acquire("SELECT 1 ", t).id;
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(b, c);
}

// A statement lives while any client name refers to it and is forgotten at zero.
TEST(PreparedRegistryTest, RefcountAndForgetAtZero) {
  PreparedRegistry reg;
  const Bytes t = types({});
  const std::uint64_t id = reg.acquire("SELECT 1", t).id;
  reg.acquire("SELECT 1", t);
  reg.acquire("SELECT 1", t);
  EXPECT_EQ(reg.find(id)->clients, 3);
  reg.release(id);
  reg.release(id);
  ASSERT_NE(reg.find(id), nullptr);
  EXPECT_EQ(reg.find(id)->clients, 1);
  reg.release(id);
  EXPECT_EQ(reg.find(id), nullptr);
  EXPECT_EQ(reg.size(), 0u);
  reg.release(id);  // releasing a forgotten id is harmless
  EXPECT_EQ(reg.size(), 0u);
}

// After a statement is forgotten, the same text gets a new id: backends may still hold the
// old server-side name, so ids are never reused.
TEST(PreparedRegistryTest, IdsNeverReused) {
  PreparedRegistry reg;
  const Bytes t = types({});
  const std::uint64_t first = reg.acquire("SELECT 1", t).id;
  reg.release(first);
  const std::uint64_t second = reg.acquire("SELECT 1", t).id;
  EXPECT_NE(first, second);
  EXPECT_EQ(reg.find(first), nullptr);
  ASSERT_NE(reg.find(second), nullptr);
  EXPECT_EQ(reg.find(second)->clients, 1);
}

// Releasing one statement leaves the others alone; unknown ids find nothing.
TEST(PreparedRegistryTest, ReleaseIsPerStatement) {
  PreparedRegistry reg;
  const Bytes t = types({});
  const std::uint64_t a = reg.acquire("SELECT 1", t).id;
  const std::uint64_t b = reg.acquire("SELECT 2", t).id;
  reg.release(a);
  EXPECT_EQ(reg.find(a), nullptr);
  ASSERT_NE(reg.find(b), nullptr);
  EXPECT_EQ(reg.find(b)->sql, "SELECT 2");
  EXPECT_EQ(reg.find(12345), nullptr);
  EXPECT_EQ(reg.find(0), nullptr);
}

// Ids start at 1 (0 means "no statement" elsewhere) and increase.
TEST(PreparedRegistryTest, IdsStartAtOne) {
  PreparedRegistry reg;
  const Bytes t = types({});
  EXPECT_EQ(reg.acquire("SELECT 1", t).id, 1u);
  EXPECT_EQ(reg.acquire("SELECT 2", t).id, 2u);
}

// The server-side name is "pgmux_<id>", up to the largest id.
TEST(PreparedRegistryTest, ServerStatementName) {
  EXPECT_EQ(name_of(1), "pgmux_1");
  EXPECT_EQ(name_of(42), "pgmux_42");
  EXPECT_EQ(name_of(UINT64_MAX), "pgmux_18446744073709551615");
  char buf[32];
  const std::string_view v = server_statement_name(7, buf);
  EXPECT_EQ(v.data(), buf);  // a view into the caller's buffer
}

}  // namespace
}  // namespace pooler::client
