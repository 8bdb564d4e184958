#include "pooler/advice/advice_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace pooler::advice {
namespace {

AdviceRecord record() {
  AdviceRecord r;
  r.database = "app";
  r.fingerprint = 0xabc;
  r.query = "SELECT * FROM \"Orders\" WHERE customer_id = $1";
  r.table = "public.Orders";
  r.columns = {"customer_id"};
  r.ddl = "CREATE INDEX CONCURRENTLY ON public.\"Orders\" (customer_id)";
  r.reason = "filter";
  r.plan_node = "Seq Scan";
  r.judged_by = "estimate";
  r.calls = 20;
  r.first_seen_ms = 1'764'000'000'000;
  r.last_seen_ms = 1'764'000'001'500;
  return r;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    out.push_back(line);
  }
  return out;
}

TEST(AdviceStore, JsonLineCarriesTheContractFields) {
  const std::string json = to_json(record());
  for (const char* field : {"\"query\":", "\"table\":", "\"columns\":[\"customer_id\"]", "\"ddl\":",
                            "\"calls\":20", "\"first_seen\":\"2025-11-24T", "\"last_seen\":",
                            "\"judged_by\":\"estimate\"", "\"fingerprint\":\"0000000000000abc\""}) {
    EXPECT_NE(json.find(field), std::string::npos) << field << " in " << json;
  }
  EXPECT_NE(json.find(R"(\"Orders\")"), std::string::npos);  // quotes escaped
  EXPECT_EQ(iso8601_utc(0), "1970-01-01T00:00:00.000Z");
}

TEST(AdviceStore, AppendsWhenCreatedOrChanged) {
  char dir[] = "/tmp/pgmux-advice-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/advice.jsonl";
  AdviceStore store(path);
  EXPECT_EQ(store.upsert(record()), AdviceStore::Change::Created);
  EXPECT_EQ(store.upsert(record()), AdviceStore::Change::None);
  store.update_counts("app", 0xabc, 20, 1.0, 0);  // same calls: no line
  store.update_counts("app", 0xabc, 25, 2.0, 1'764'000'009'000);
  EXPECT_EQ(lines_of(path).size(), 2u);
  ASSERT_TRUE(store.find("app", 0xabc).has_value());
  EXPECT_EQ(store.find("app", 0xabc)->calls, 25u);
  EXPECT_EQ(store.size(), 1u);
  store.remove("app", 0xabc);
  EXPECT_EQ(store.size(), 0u);
  std::remove(path.c_str());
  rmdir(dir);
}

TEST(AdviceStore, UnwritableFileIsCountedNotFatal) {
  AdviceStore store("/nonexistent-dir/advice.jsonl");
  EXPECT_EQ(store.upsert(record()), AdviceStore::Change::Created);
  EXPECT_EQ(store.write_errors(), 1u);
  EXPECT_EQ(store.size(), 1u);
}

}  // namespace
}  // namespace pooler::advice
