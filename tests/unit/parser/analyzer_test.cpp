#include "parser/analyzer.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace parser {
namespace {

using K = StatementKind;

Analysis analysed(std::string_view sql) {
  auto a = analyze(sql);
  EXPECT_TRUE(a.has_value()) << sql << ": " << (a ? "" : a.error().message);
  return a ? std::move(*a) : Analysis{};
}

StatementInfo first(std::string_view sql) {
  Analysis a = analysed(sql);
  EXPECT_FALSE(a.parse_error) << sql << ": " << a.error;
  EXPECT_FALSE(a.statements.empty()) << sql;
  return a.statements.empty() ? StatementInfo{} : a.statements.front();
}

struct ReadOnlyCase {
  const char* sql;
  StatementKind kind;
  bool read_only;
};

// The read-only rules, one row each: only what provably writes nothing may leave the
// primary (functions are the router's business).
TEST(AnalyzerTest, ReadOnlyRules) {
  const std::vector<ReadOnlyCase> cases = {
      {"SELECT * FROM users WHERE id = 7", K::Select, true},
      {"SHOW search_path", K::Show, true},
      {"VALUES (1), (2)", K::Select, true},
      {"TABLE users", K::Select, true},
      {"SELECT 1 UNION ALL SELECT 2", K::Select, true},
      {"EXPLAIN SELECT * FROM users", K::Explain, true},
      {"EXPLAIN ANALYZE SELECT * FROM users", K::Explain, true},
      {"EXPLAIN INSERT INTO t VALUES (1)", K::Explain, true},  // not executed
      {"EXPLAIN (ANALYZE false) DELETE FROM t", K::Explain, true},
      {"EXPLAIN (ANALYZE 0) DELETE FROM t", K::Explain, true},
      {"COPY users TO STDOUT", K::Copy, true},
      {"COPY (SELECT * FROM users) TO STDOUT", K::Copy, true},
      {"DECLARE c CURSOR FOR SELECT 1", K::Declare, true},
      {"PREPARE p(int) AS SELECT * FROM t WHERE id = $1", K::Prepare, true},
      {"BEGIN", K::Begin, true},
      {"COMMIT", K::Commit, true},
      {"ROLLBACK", K::Rollback, true},
      {"SAVEPOINT s", K::Savepoint, true},
      {"SET TRANSACTION READ ONLY", K::Set, true},
      {"SELECT * FROM t FOR UPDATE", K::Select, false},
      {"SELECT * FROM t FOR NO KEY UPDATE", K::Select, false},
      {"SELECT * FROM t FOR SHARE", K::Select, false},
      {"SELECT * FROM t FOR KEY SHARE", K::Select, false},
      {"SELECT * FROM (SELECT * FROM t FOR UPDATE) s", K::Select, false},
      {"SELECT * INTO copy_of_t FROM t", K::Select, false},
      {"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", K::Select, false},
      {"WITH a AS (WITH i AS (INSERT INTO t VALUES (1) RETURNING id) SELECT * FROM i) "
       "SELECT * FROM a",
       K::Select, false},
      {"SELECT * FROM (WITH u AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM u) s", K::Select,
       false},
      {"EXPLAIN ANALYZE INSERT INTO t VALUES (1)", K::Explain, false},
      {"EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1", K::Explain, false},
      {"EXPLAIN (ANALYZE on) DELETE FROM t", K::Explain, false},
      {"INSERT INTO t VALUES (1)", K::Insert, false},
      {"UPDATE t SET a = 1", K::Update, false},
      {"DELETE FROM t", K::Delete, false},
      {"MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", K::Merge, false},
      {"LOCK TABLE t IN ACCESS SHARE MODE", K::Lock, false},
      {"DO $$ BEGIN PERFORM 1; END $$", K::Do, false},
      {"CALL p(1)", K::Call, false},
      {"COPY t FROM STDIN", K::Copy, false},
      {"COPY (INSERT INTO t VALUES (1) RETURNING *) TO STDOUT", K::Copy, false},
      {"COPY t TO '/tmp/t.csv'", K::Copy, false},
      {"COPY t TO PROGRAM 'cat'", K::Copy, false},
      {"LISTEN ch", K::Listen, false},
      {"UNLISTEN *", K::Unlisten, false},
      {"NOTIFY ch, 'x'", K::Notify, false},
      {"SET search_path = app", K::Set, false},
      {"SET LOCAL statement_timeout = 0", K::Set, false},
      {"RESET ALL", K::Reset, false},
      {"PREPARE p AS UPDATE t SET a = $1", K::Prepare, false},
      {"EXECUTE p(1)", K::Execute, false},
      {"DEALLOCATE p", K::Deallocate, false},
      {"DISCARD ALL", K::Discard, false},
      {"DECLARE c CURSOR FOR SELECT * FROM t FOR UPDATE", K::Declare, false},
      {"FETCH 10 FROM c", K::Fetch, false},
      {"CLOSE c", K::ClosePortal, false},
      {"PREPARE TRANSACTION 'x'", K::TwoPhase, false},
      {"COMMIT PREPARED 'x'", K::TwoPhase, false},
      {"CREATE TABLE x (a int)", K::Ddl, false},
      {"CREATE TABLE x AS SELECT 1", K::Ddl, false},
      {"ALTER TABLE x ADD b int", K::Ddl, false},
      {"DROP TABLE x", K::Ddl, false},
      {"TRUNCATE x", K::Ddl, false},
      {"GRANT SELECT ON x TO y", K::Ddl, false},
      {"REFRESH MATERIALIZED VIEW m", K::Ddl, false},
      {"VACUUM t", K::Utility, false},
      {"CHECKPOINT", K::Utility, false},
  };
  for (const auto& c : cases) {
    const StatementInfo s = first(c.sql);
    EXPECT_EQ(s.kind, c.kind) << c.sql << ": " << to_string(s.kind);
    EXPECT_EQ(s.read_only, c.read_only) << c.sql;
  }
}

// The flags behind the rules are reported on their own too.
TEST(AnalyzerTest, Flags) {
  EXPECT_TRUE(first("SELECT 1 FROM t FOR UPDATE OF t").locking_clause);
  EXPECT_TRUE(first("SELECT a INTO new_t FROM t").select_into);
  EXPECT_TRUE(first("WITH x AS (UPDATE t SET a = 1 RETURNING *) SELECT 1").data_modifying_cte);
  EXPECT_FALSE(first("WITH x AS (SELECT 1) SELECT * FROM x").data_modifying_cte);
  EXPECT_TRUE(first("EXPLAIN ANALYZE SELECT 1").explain_analyze);
  EXPECT_FALSE(first("EXPLAIN SELECT 1").explain_analyze);
  EXPECT_TRUE(first("DECLARE c CURSOR WITH HOLD FOR SELECT 1").with_hold);
  EXPECT_TRUE(first("COMMIT AND CHAIN").chain);
}

// Relations as written, schema-qualified when written so; CTE names are not relations.
TEST(AnalyzerTest, Tables) {
  EXPECT_EQ(first("SELECT * FROM app.users u JOIN orders o ON o.uid = u.id, app.users x").tables,
            (std::vector<std::string>{"app.users", "orders"}));
  EXPECT_EQ(first("WITH x AS (SELECT * FROM t) SELECT * FROM x JOIN \"Mixed\" m ON true").tables,
            (std::vector<std::string>{"Mixed", "t"}));
  EXPECT_EQ(first("INSERT INTO t SELECT * FROM s").tables, (std::vector<std::string>{"t", "s"}));
  EXPECT_EQ(first("UPDATE t SET a = (SELECT max(b) FROM u)").tables,
            (std::vector<std::string>{"t", "u"}));
  EXPECT_EQ(first("SELECT 1 WHERE EXISTS (SELECT 1 FROM s.t)").tables,
            (std::vector<std::string>{"s.t"}));
}

// Function calls anywhere, lower-cased, schema-qualified as written.
TEST(AnalyzerTest, Functions) {
  EXPECT_EQ(first("SELECT nextval('s'), pg_catalog.NOW(), \"MyFn\"(1) FROM generate_series(1, 2)")
                .functions,
            (std::vector<std::string>{"nextval", "pg_catalog.now", "myfn", "generate_series"}));
  EXPECT_EQ(first("SELECT * FROM t WHERE a = (SELECT f(x) FROM u)").functions,
            (std::vector<std::string>{"f"}));
  EXPECT_EQ(first("CALL app.do_it(1)").functions, (std::vector<std::string>{"app.do_it"}));
  EXPECT_EQ(first("INSERT INTO t VALUES (g())").functions, (std::vector<std::string>{"g"}));
  EXPECT_TRUE(first("SELECT count(*) FROM t").functions == std::vector<std::string>{"count"});
}

// Transaction modes, SET and RESET details the session and router track.
TEST(AnalyzerTest, TransactionAndSettings) {
  EXPECT_EQ(first("BEGIN READ ONLY").begin_read_only, true);
  EXPECT_EQ(first("START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE").begin_read_only,
            false);
  EXPECT_EQ(first("BEGIN").begin_read_only, std::nullopt);
  EXPECT_EQ(first("SET TRANSACTION READ ONLY").begin_read_only, true);
  EXPECT_EQ(first("SET TRANSACTION READ ONLY").set_name, "transaction");

  StatementInfo s = first("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY");
  EXPECT_EQ(s.set_name, "default_transaction_read_only");
  EXPECT_EQ(s.set_value, "on");
  EXPECT_FALSE(s.read_only);

  s = first("SET default_transaction_read_only = on");
  EXPECT_EQ(s.set_name, "default_transaction_read_only");
  EXPECT_EQ(s.set_value, "on");

  s = first("SET LOCAL pgmux.route = 'replica'");
  EXPECT_EQ(s.set_name, "pgmux.route");
  EXPECT_EQ(s.set_value, "replica");
  EXPECT_TRUE(s.set_local);

  EXPECT_EQ(first("SET search_path = a, \"B\"").set_value, "a, B");
  EXPECT_EQ(first("SET statement_timeout TO 1500").set_value, "1500");
  EXPECT_EQ(first("SET TIME ZONE 'UTC'").set_name, "timezone");
  EXPECT_EQ(first("RESET ALL").set_name, "all");
  EXPECT_EQ(first("RESET Search_Path").set_name, "search_path");
  s = first("SET work_mem TO DEFAULT");
  EXPECT_EQ(s.kind, K::Reset);
  EXPECT_EQ(s.set_name, "work_mem");
  EXPECT_EQ(first("SHOW ALL").set_name, "all");
}

// Names of prepared statements, cursors, channels and DISCARD targets.
TEST(AnalyzerTest, ObjectNames) {
  EXPECT_EQ(first("PREPARE q AS SELECT 1").object_name, "q");
  EXPECT_EQ(first("EXECUTE q").object_name, "q");
  EXPECT_EQ(first("DEALLOCATE q").object_name, "q");
  EXPECT_EQ(first("DEALLOCATE ALL").object_name, "");
  EXPECT_EQ(first("LISTEN jobs").object_name, "jobs");
  EXPECT_EQ(first("UNLISTEN *").object_name, "");
  EXPECT_EQ(first("DISCARD TEMP").object_name, "temp");
  EXPECT_EQ(first("FETCH NEXT FROM cur").object_name, "cur");
  EXPECT_EQ(first("CLOSE ALL").object_name, "");
}

// A multi-statement query yields one StatementInfo per statement.
TEST(AnalyzerTest, MultiStatement) {
  const Analysis a = analysed("SELECT 1; INSERT INTO t VALUES (1); SELECT 2");
  ASSERT_EQ(a.statements.size(), 3u);
  EXPECT_TRUE(a.statements[0].read_only);
  EXPECT_FALSE(a.statements[1].read_only);
  EXPECT_FALSE(a.read_only());
  EXPECT_TRUE(analysed("SELECT 1; SELECT 2").read_only());
  EXPECT_TRUE(analysed("").statements.empty());
  EXPECT_FALSE(analysed("").read_only());
}

// Fingerprint and normalised text ignore literal values; the hint is read from comments.
TEST(AnalyzerTest, FingerprintNormalizedHint) {
  const Analysis a = analysed("/* pgmux:replica */ SELECT * FROM t WHERE id = 7 AND s = 'x'");
  const Analysis b = analysed("SELECT * FROM t WHERE id = 8 AND s = 'y'");
  EXPECT_EQ(a.fingerprint, b.fingerprint);
  EXPECT_NE(a.fingerprint, analysed("SELECT * FROM u WHERE id = 8").fingerprint);
  EXPECT_EQ(b.normalized, "SELECT * FROM t WHERE id = $1 AND s = $2");
  EXPECT_EQ(a.normalized.find('7'), std::string::npos);
  EXPECT_EQ(a.hint, Hint::Replica);
  EXPECT_EQ(b.hint, std::nullopt);
  EXPECT_EQ(analysed("SELECT 1 -- pgmux:primary").hint, Hint::Primary);
}

// Index-advisor inputs: comparisons with operators, aliases resolved, ORDER BY columns.
TEST(AnalyzerTest, Predicates) {
  const StatementInfo s = first(
      "SELECT u.id FROM users u JOIN orders o ON o.user_id = u.id "
      "WHERE u.id IN (1, 2) AND o.status = 'paid' AND u.email LIKE 'x%' AND u.name ILIKE 'a%' "
      "AND o.total BETWEEN 1 AND 2 AND o.x >= $1 AND u.y = ANY($2) AND u.z IS NULL "
      "AND (7 < o.q OR o.r <> 3) ORDER BY o.created_at DESC, u.name, 1");
  const std::vector<ColumnPredicate> expected = {
      {"orders", "user_id", CompareOp::Eq}, {"users", "id", CompareOp::Eq},
      {"users", "id", CompareOp::In},        {"orders", "status", CompareOp::Eq},
      {"users", "email", CompareOp::Like},   {"users", "name", CompareOp::ILike},
      {"orders", "total", CompareOp::Between}, {"orders", "x", CompareOp::Ge},
      {"users", "y", CompareOp::In},         {"users", "z", CompareOp::IsNull},
      {"orders", "q", CompareOp::Gt},        {"orders", "r", CompareOp::Ne},
  };
  EXPECT_EQ(s.predicates, expected);
  EXPECT_EQ(s.order_by, (std::vector<OrderColumn>{{"orders", "created_at", true},
                                                  {"users", "name", false}}));
}

// Predicates at every query level, each resolved through its own FROM list (and outer
// ones for correlated references); unqualified columns need a single relation.
TEST(AnalyzerTest, PredicatesNestedAndWrites) {
  EXPECT_EQ(first("SELECT * FROM (SELECT * FROM t WHERE a = 1) s "
                  "WHERE EXISTS (SELECT 1 FROM u WHERE u.b < s.a AND c = 2)")
                .predicates,
            (std::vector<ColumnPredicate>{{"t", "a", CompareOp::Eq},
                                          {"u", "b", CompareOp::Lt},
                                          {"u", "c", CompareOp::Eq}}));
  EXPECT_EQ(first("SELECT * FROM a, b WHERE x = 1").predicates,
            (std::vector<ColumnPredicate>{{"", "x", CompareOp::Eq}}));
  EXPECT_EQ(first("UPDATE app.t SET a = 1 WHERE id = $1").predicates,
            (std::vector<ColumnPredicate>{{"app.t", "id", CompareOp::Eq}}));
  EXPECT_EQ(first("DELETE FROM t USING u WHERE t.id = u.tid").predicates,
            (std::vector<ColumnPredicate>{{"t", "id", CompareOp::Eq},
                                          {"u", "tid", CompareOp::Eq}}));
  EXPECT_EQ(first("SELECT * FROM t WHERE a = 1 UNION SELECT * FROM u WHERE b > 2").predicates,
            (std::vector<ColumnPredicate>{{"t", "a", CompareOp::Eq}, {"u", "b", CompareOp::Gt}}));
  EXPECT_EQ(first("WITH c AS (SELECT * FROM t) SELECT * FROM c WHERE c.a = 1").predicates,
            std::vector<ColumnPredicate>{});
}

// Malformed SQL is a parse error with the grammar's message, never a crash.
TEST(AnalyzerTest, MalformedSql) {
  for (const char* sql : {"SELEC 1", "SELECT * FROM", "SELECT 'abc", "SELECT 1 +", ")", "SELECT $$",
                          "INSERT INTO", "SELECT 0x1F", "\xff\xfe", "SELECT 1; SELEC 2"}) {
    const Analysis a = analysed(sql);
    EXPECT_TRUE(a.parse_error) << sql;
    EXPECT_FALSE(a.error.empty()) << sql;
    EXPECT_FALSE(a.read_only()) << sql;
  }
  EXPECT_FALSE(analyze(std::string_view("SELECT 1\0; DELETE FROM t", 24)).has_value());
}

// A parse tree deeper than the JSON reader accepts is an error Result, not a crash.
TEST(AnalyzerTest, DeepNesting) {
  std::string sql = "SELECT ";
  for (int i = 0; i < 2000; ++i) {
    sql += "1+(";
  }
  sql += "1" + std::string(2000, ')');
  const auto a = analyze(sql);
  EXPECT_TRUE(!a.has_value() || a->parse_error);
}

// Random bytes and mutated queries never crash the analyser (fixed seed, printed).
TEST(AnalyzerTest, RandomInput) {
  const unsigned seed = 20240504;
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  const std::string base =
      "SELECT u.id, 'x''y', $$z$$ FROM users u WHERE u.id IN (1, 2) /* c */ FOR UPDATE; COMMIT";
  const std::string alphabet = "'\"$();,-/*\\ eEuU&0x1.aZ\n";
  for (int i = 0; i < 400; ++i) {
    std::string sql = base;
    for (int m = 0; m < 4; ++m) {
      sql[rng() % sql.size()] = alphabet[rng() % alphabet.size()];
    }
    auto a = analyze(sql);
    if (a && !a->parse_error) {
      EXPECT_FALSE(a->statements.empty()) << sql;
    }
  }
}

}  // namespace
}  // namespace parser
