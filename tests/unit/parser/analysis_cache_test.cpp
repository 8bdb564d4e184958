#include "parser/analysis_cache.h"

#include <gtest/gtest.h>

#include <string>

namespace parser {
namespace {

AnalysisCache::Options options(std::size_t capacity, bool fast = true) {
  AnalysisCache::Options o;
  o.capacity = capacity;
  o.fast_classify = fast;
  return o;
}

// Simple-protocol queries differing only in literals share one entry; counters count.
TEST(AnalysisCacheTest, SameShapeHits) {
  AnalysisCache cache(options(8));
  const Analysis& a = cache.get("SELECT * FROM users WHERE id = 7", false);
  EXPECT_TRUE(a.read_only());
  EXPECT_EQ(cache.misses(), 1u);
  EXPECT_EQ(cache.hits(), 0u);
  const Analysis& b = cache.get("SELECT * FROM users  WHERE id = 8", false);
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(cache.stats().parses, 1u);
  cache.get("SELECT * FROM users WHERE id = 9 FOR UPDATE", false);
  EXPECT_EQ(cache.misses(), 2u);
  EXPECT_EQ(cache.size(), 2u);
}

// Extended-protocol keys are the exact text, and never match a simple-protocol key.
// The same text twice in a row (routing, then statistics) is answered from the last result;
// a different text in between, or an eviction, never returns a stale one.
TEST(AnalysisCacheTest, SameTextAgainIsTheLastAnswer) {
  AnalysisCache cache(AnalysisCache::Options{.capacity = 1});
  const Analysis& a = cache.get("SELECT * FROM t WHERE id = 1", false);
  EXPECT_EQ(&cache.get("SELECT * FROM t WHERE id = 1", false), &a);
  EXPECT_EQ(cache.hits(), 1u);
  const std::uint64_t fp = a.fingerprint;
  const Analysis& b = cache.get("INSERT INTO u VALUES (1)", false);  // evicts the SELECT
  EXPECT_NE(b.fingerprint, fp);
  EXPECT_EQ(cache.get("SELECT * FROM t WHERE id = 1", false).fingerprint, fp);
  EXPECT_EQ(cache.get("SELECT * FROM t WHERE id = 1", true).statements.size(), 1u)
      << "the extended key is another entry";
}

TEST(AnalysisCacheTest, ExtendedKeyedByText) {
  AnalysisCache cache(options(8));
  cache.get("SELECT * FROM t WHERE id = $1", true);
  cache.get("SELECT * FROM t WHERE id = $1", true);
  EXPECT_EQ(cache.hits(), 1u);
  cache.get("SELECT * FROM t WHERE id = 7", true);  // literal in a Parse: its own entry
  cache.get("SELECT * FROM t WHERE id = 8", true);
  EXPECT_EQ(cache.misses(), 3u);
  cache.get("SELECT * FROM t WHERE id = $1", false);  // same text, simple protocol
  EXPECT_EQ(cache.misses(), 4u);
  EXPECT_EQ(cache.size(), 4u);
}

// SET values and hints are part of the key: each gets its own analysis.
TEST(AnalysisCacheTest, ValuesThatMatterAreNotShared) {
  AnalysisCache cache(options(8));
  EXPECT_EQ(cache.get("SET pgmux.route = 'primary'", false).statements[0].set_value, "primary");
  EXPECT_EQ(cache.get("SET pgmux.route = 'replica'", false).statements[0].set_value, "replica");
  EXPECT_EQ(cache.get("/* pgmux:primary */ SELECT 1", false).hint, Hint::Primary);
  EXPECT_EQ(cache.get("/* pgmux:replica */ SELECT 2", false).hint, Hint::Replica);
  EXPECT_EQ(cache.get("SELECT 3", false).hint, std::nullopt);
  EXPECT_EQ(cache.hits(), 0u);
}

// CLOCK: a full cache evicts an entry not used since the hand passed; used ones survive.
TEST(AnalysisCacheTest, EvictionKeepsRecentlyUsed) {
  AnalysisCache cache(options(3));
  cache.get("SELECT a FROM t", false);
  cache.get("SELECT b FROM t", false);
  cache.get("SELECT c FROM t", false);
  cache.get("SELECT a FROM t", false);  // hit: referenced
  EXPECT_EQ(cache.hits(), 1u);
  cache.get("SELECT d FROM t", false);  // evicts b (a is referenced, gets a second chance)
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.stats().evictions, 1u);
  cache.get("SELECT a FROM t", false);
  EXPECT_EQ(cache.hits(), 2u);
  cache.get("SELECT b FROM t", false);
  EXPECT_EQ(cache.hits(), 2u);  // b was evicted
  EXPECT_EQ(cache.stats().evictions, 2u);
  EXPECT_LE(cache.size(), cache.capacity());
}

// Many shapes through a small cache: bounded, and every answer is still right.
TEST(AnalysisCacheTest, StaysBounded) {
  AnalysisCache cache(options(16));
  for (int i = 0; i < 500; ++i) {
    const std::string sql = "SELECT c" + std::to_string(i % 40) + " FROM t WHERE id = " +
                            std::to_string(i);
    const Analysis& a = cache.get(sql, false);
    ASSERT_EQ(a.statements.size(), 1u);
    EXPECT_TRUE(a.read_only()) << sql;
    EXPECT_LE(cache.size(), 16u);
  }
  EXPECT_EQ(cache.hits() + cache.misses(), 500u);
  cache.clear();
  EXPECT_EQ(cache.size(), 0u);
}

// Obvious writes are classified without a parse (and cached); off, they are parsed.
TEST(AnalysisCacheTest, FastClassify) {
  AnalysisCache cache(options(8));
  const Analysis& a = cache.get("INSERT INTO t (a) VALUES (1) RETURNING id", false);
  EXPECT_TRUE(a.shallow);
  ASSERT_EQ(a.statements.size(), 1u);
  EXPECT_EQ(a.statements[0].kind, StatementKind::Insert);
  EXPECT_FALSE(a.read_only());
  EXPECT_EQ(a.normalized, "INSERT INTO t(a)VALUES(?)RETURNING id");
  EXPECT_EQ(cache.stats().fast_classified, 1u);
  EXPECT_EQ(cache.stats().parses, 0u);
  cache.get("INSERT INTO t (a) VALUES (2), (3) RETURNING id", false);
  EXPECT_EQ(cache.hits(), 1u);

  AnalysisCache parsing(options(8, false));
  const Analysis& p = parsing.get("INSERT INTO t (a) VALUES (1) RETURNING id", false);
  EXPECT_FALSE(p.shallow);
  EXPECT_EQ(p.statements[0].tables, std::vector<std::string>{"t"});
  EXPECT_EQ(parsing.stats().parses, 1u);
}

// Parse errors are returned but not cached; a valid query of the same shape is analysed.
TEST(AnalysisCacheTest, ParseErrorsNotCached) {
  AnalysisCache cache(options(8));
  EXPECT_TRUE(cache.get("SELECT 1abc", false).parse_error);
  EXPECT_EQ(cache.size(), 0u);
  const Analysis& ok = cache.get("SELECT 1", false);  // same key "SELECT ?"
  EXPECT_FALSE(ok.parse_error);
  EXPECT_TRUE(ok.read_only());
  EXPECT_EQ(cache.stats().uncached, 1u);
  EXPECT_TRUE(cache.get("SELEC 1", true).parse_error);
  EXPECT_TRUE(cache.get("", false).statements.empty());
}

// Texts above max_sql_bytes are not parsed: shallow, not read-only, hint kept.
TEST(AnalysisCacheTest, TooLongIsNotParsed) {
  AnalysisCache::Options o = options(8);
  o.max_sql_bytes = 64;
  AnalysisCache cache(o);
  const std::string select = "/* pgmux:replica */ SELECT * FROM t WHERE id IN (" +
                             std::string(100, '1') + ")";
  const Analysis& a = cache.get(select, false);
  EXPECT_TRUE(a.shallow);
  EXPECT_FALSE(a.read_only());
  EXPECT_EQ(a.statements[0].kind, StatementKind::Other);
  EXPECT_EQ(a.hint, Hint::Replica);
  const std::string insert = "INSERT INTO t VALUES ('" + std::string(100, 'x') + "')";
  EXPECT_EQ(cache.get(insert, true).statements[0].kind, StatementKind::Insert);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.stats().parses, 0u);
}

// Capacity 0 caches nothing but still answers.
TEST(AnalysisCacheTest, ZeroCapacity) {
  AnalysisCache cache(options(0));
  EXPECT_TRUE(cache.get("SELECT 1", false).read_only());
  EXPECT_TRUE(cache.get("SELECT 1", false).read_only());
  EXPECT_EQ(cache.hits(), 0u);
  EXPECT_EQ(cache.size(), 0u);
}

}  // namespace
}  // namespace parser
