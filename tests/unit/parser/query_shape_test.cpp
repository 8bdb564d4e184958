#include "parser/query_shape.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace parser {
namespace {

std::string key_of(std::string_view sql) {
  std::string key;
  scan_shape(sql, key);
  return key;
}

Shape shape_of(std::string_view sql) {
  std::string key;
  return scan_shape(sql, key);
}

struct KeyCase {
  const char* sql;
  const char* key;
};

// Every literal form PostgreSQL accepts becomes '?'; the rest stays as written.
TEST(QueryShapeTest, KeysOfEveryLiteralForm) {
  const std::vector<KeyCase> cases = {
      {"SELECT 'abc'", "SELECT ?"},
      {"SELECT 'it''s'", "SELECT ?"},
      {"SELECT 'a\\' FROM t", "SELECT ? FROM t"},  // no backslash escapes in '...'
      {"SELECT E'it\\'s'", "SELECT ?"},
      {"SELECT e'a\\\\' FROM t", "SELECT ? FROM t"},
      {"SELECT E'x''y'", "SELECT ?"},
      {"SELECT U&'d\\0061t' UESCAPE '!'", "SELECT ? UESCAPE ?"},
      {"SELECT u&'it''s'", "SELECT ?"},
      {"SELECT B'1010', X'1F'", "SELECT ?"},
      {"SELECT N'national'", "SELECT ?"},
      {"SELECT $$it's$$", "SELECT ?"},
      {"SELECT $fn$ a $$ b $fn$", "SELECT ?"},
      {"SELECT 42", "SELECT ?"},
      {"SELECT 1.5e-3", "SELECT ?"},
      {"SELECT .5", "SELECT ?"},
      {"SELECT 1E+10", "SELECT ?"},
      {"SELECT 0x1F", "SELECT ?"},
      {"SELECT 1_000_000", "SELECT ?"},
      {"SELECT 1 - 1", "SELECT ? - ?"},
      {"SELECT x FROM t -- comment 'x'\nWHERE a = 1", "SELECT x FROM t WHERE a = ?"},
      {"SELECT /* a /* nested */ comment */ 1", "SELECT ?"},
      {"SELECT a/**/FROM t", "SELECT a FROM t"},
      {"SELECT \"Col\"\"1\" FROM \"T\"", "SELECT \"Col\"\"1\" FROM \"T\""},
      {"SELECT U&\"d\\0061t\" FROM t", "SELECT U&\"d\\0061t\" FROM t"},
      {"SELECT a$b, t1.c2 FROM t1", "SELECT a$b,t1.c2 FROM t1"},
      {"SELECT $1, $2::int", "SELECT $1,$2::int"},
      {"SELECT 'a'::text, interval '1 day'", "SELECT ?::text,interval ?"},
      {"select  *\n\tfrom t", "select * from t"},
      {"SELECT 1;", "SELECT ?"},
      {";; SELECT 1 ;; SELECT 2;", "SELECT ?;SELECT ?"},
      {"SELECT a[1:2] FROM t", "SELECT a[?:?]FROM t"},
      {"SELECT 'a' 'b'", "SELECT ? ?"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(key_of(c.sql), c.key) << c.sql;
  }
}

// Queries that differ only in literal values (or list lengths) share a key.
TEST(QueryShapeTest, SameKeyForDifferentLiterals) {
  const std::vector<std::pair<const char*, const char*>> same = {
      {"SELECT * FROM users WHERE id = 7", "SELECT * FROM users WHERE id = 8"},
      {"SELECT * FROM users WHERE id = 7", "SELECT * FROM users WHERE id = '7'"},
      {"SELECT * FROM t WHERE name = 'bob'", "SELECT * FROM t WHERE name = E'o\\'neil'"},
      {"SELECT * FROM t WHERE id IN (1, 2, 3)", "SELECT * FROM t WHERE id IN (4)"},
      {"SELECT * FROM t WHERE s IN ('a','b')", "SELECT * FROM t WHERE s IN ($$x$$, 'y', 'z')"},
      {"INSERT INTO t (a, b) VALUES (1, 'x')", "INSERT INTO t (a, b) VALUES (2, 'y'), (3, 'z')"},
      {"SELECT 1 /* app=web trace=abc */", "SELECT 2 /* app=api trace=def */"},
      {"SELECT f(1.5e3)", "SELECT f(0x10)"},
      {"SELECT 1", "  SELECT 1 ;  "},
  };
  for (const auto& [a, b] : same) {
    EXPECT_EQ(key_of(a), key_of(b)) << a << " | " << b;
  }
}

// Different identifiers, keywords, operators or parameters give different keys.
TEST(QueryShapeTest, DifferentKeyForDifferentStructure) {
  const std::vector<std::pair<const char*, const char*>> different = {
      {"SELECT * FROM users WHERE id = 7", "SELECT * FROM orders WHERE id = 7"},
      {"SELECT * FROM users WHERE id = 7", "SELECT * FROM users WHERE id < 7"},
      {"SELECT * FROM t", "SELECT * FROM t FOR UPDATE"},
      {"SELECT f(1)", "SELECT nextval(1)"},
      {"SELECT \"a\" FROM t", "SELECT \"A\" FROM t"},
      {"SELECT $1", "SELECT $2"},
      {"SELECT 1", "SELECT 1; SELECT 1"},
      {"SELECT a b", "SELECT ab"},
      {"SELECT - -1", "SELECT --1"},
      {"COPY t FROM STDIN", "COPY t TO STDOUT"},
      {"SELECT 1", "/* pgmux:primary */ SELECT 1"},
      {"/* pgmux:replica */ SELECT 1", "/* pgmux:primary */ SELECT 1"},
      {"SELECT 'abc'", "SELECT 'abc"},  // unterminated
  };
  for (const auto& [a, b] : different) {
    EXPECT_NE(key_of(a), key_of(b)) << a << " | " << b;
  }
}

// SET and EXPLAIN keep their literals: there the values change the analysis.
TEST(QueryShapeTest, SetAndExplainKeepLiterals) {
  EXPECT_NE(key_of("SET pgmux.route = 'primary'"), key_of("SET pgmux.route = 'replica'"));
  EXPECT_EQ(key_of("set search_path = 'a', 'b'"), "set search_path = 'a','b'");
  EXPECT_NE(key_of("EXPLAIN (ANALYZE 0) DELETE FROM t"),
            key_of("EXPLAIN (ANALYZE 1) DELETE FROM t"));
  // Only for that statement: the next one is stripped again.
  EXPECT_EQ(key_of("SET x = 1; SELECT 2"), "SET x = 1;SELECT ?");
}

// Hints come from block or line comments, anywhere; Primary wins over Replica.
TEST(QueryShapeTest, Hints) {
  EXPECT_EQ(shape_of("/* pgmux:primary */ SELECT 1").hint, Hint::Primary);
  EXPECT_EQ(shape_of("SELECT 1 -- pgmux:replica").hint, Hint::Replica);
  EXPECT_EQ(shape_of("/* app=x, PGMUX: Replica */ SELECT 1").hint, Hint::Replica);
  EXPECT_EQ(shape_of("/* pgmux:replica */ SELECT /* pgmux:primary */ 1").hint, Hint::Primary);
  EXPECT_EQ(shape_of("SELECT 1").hint, std::nullopt);
  EXPECT_EQ(shape_of("SELECT 'pgmux:primary'").hint, std::nullopt);  // in a literal
  EXPECT_EQ(shape_of("/* pgmux:elsewhere */ SELECT 1").hint, std::nullopt);
}

// Statements are counted outside quotes and comments; empty ones do not count.
TEST(QueryShapeTest, StatementCount) {
  EXPECT_EQ(shape_of("").statements, 0);
  EXPECT_EQ(shape_of(" ; -- x").statements, 0);
  EXPECT_EQ(shape_of("SELECT 1").statements, 1);
  EXPECT_EQ(shape_of("SELECT ';'; SELECT $$;$$; /* ; */").statements, 2);
  EXPECT_EQ(shape_of("INSERT INTO t VALUES (1);;UPDATE t SET a = 2").statements, 2);
}

// A quote, dollar quote, quoted identifier or comment that never ends is flagged.
TEST(QueryShapeTest, Unterminated) {
  for (const char* sql : {"SELECT 'abc", "SELECT E'abc\\'", "SELECT $x$ abc $y$", "SELECT \"abc",
                          "SELECT 1 /* /* */", "SELECT U&'x"}) {
    EXPECT_TRUE(shape_of(sql).unterminated) << sql;
  }
  for (const char* sql : {"SELECT 'a''b'", "SELECT 1 -- no newline", "SELECT $a", "SELECT a$$"}) {
    EXPECT_FALSE(shape_of(sql).unterminated) << sql;
  }
}

struct ClassifyCase {
  const char* sql;
  std::optional<StatementKind> kind;
};

// Obvious writes skip the parse; anything that needs a look inside does not.
TEST(QueryShapeTest, FastClassify) {
  const std::vector<ClassifyCase> cases = {
      {"INSERT INTO t VALUES (1) RETURNING id", StatementKind::Insert},
      {"  /* c */ update t set a = 1", StatementKind::Update},
      {"DELETE FROM t WHERE id = 1;", StatementKind::Delete},
      {"MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", StatementKind::Merge},
      {"CREATE TABLE x (a int)", StatementKind::Ddl},
      {"ALTER TABLE x ADD b int", StatementKind::Ddl},
      {"DROP TABLE x", StatementKind::Ddl},
      {"TRUNCATE x", StatementKind::Ddl},
      {"GRANT SELECT ON x TO y", StatementKind::Ddl},
      {"REVOKE SELECT ON x FROM y", StatementKind::Ddl},
      {"COPY t (a, b) FROM STDIN", StatementKind::Copy},
      {"COPY t TO STDOUT", std::nullopt},
      {"COPY (SELECT * FROM t) TO STDOUT", std::nullopt},
      {"SELECT 1", std::nullopt},
      {"WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", std::nullopt},
      {"INSERT INTO t VALUES (1); SET x = 1", std::nullopt},  // several statements
      {"EXPLAIN INSERT INTO t VALUES (1)", std::nullopt},
      {"INSERT INTO t VALUES ('abc", std::nullopt},  // unterminated
      {"(SELECT 1)", std::nullopt},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(fast_classify(std::string_view(c.sql)), c.kind) << c.sql;
  }
}

// Equal keys hash equally; the seed and the bytes matter.
TEST(QueryShapeTest, HashKey) {
  EXPECT_EQ(hash_key("SELECT ?", 1), hash_key(std::string("SELECT ?"), 1));
  EXPECT_NE(hash_key("SELECT ?", 1), hash_key("SELECT ?", 2));
  EXPECT_NE(hash_key("SELECT ?", 1), hash_key("SELECT !", 1));
  for (std::size_t n = 0; n < 40; ++n) {  // every tail length
    const std::string a(n, 'a');
    std::string b = a + 'b';
    EXPECT_NE(hash_key(a, 0), hash_key(b, 0)) << n;
  }
}

}  // namespace
}  // namespace parser
