#include "pooler/client/query_scan.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pooler::client {
namespace {

const char* effect_name(SessionEffect e) {
  switch (e) {
    case SessionEffect::None: return "None";
    case SessionEffect::Set: return "Set";
    case SessionEffect::Reset: return "Reset";
    case SessionEffect::ResetAll: return "ResetAll";
    case SessionEffect::DiscardAll: return "DiscardAll";
    case SessionEffect::DeallocateAll: return "DeallocateAll";
    case SessionEffect::Deallocate: return "Deallocate";
    case SessionEffect::SqlPrepare: return "SqlPrepare";
    case SessionEffect::SqlExecute: return "SqlExecute";
  }
  return "?";
}

struct EffectCase {
  std::string sql;
  SessionEffect effect;
  std::string name;       // expected name ("" when none)
  std::string statement;  // expected replay statement for Set ("" = not checked)
};

void check_effects(const std::vector<EffectCase>& cases) {
  for (const auto& c : cases) {
    const QueryScan s = scan_query(c.sql);
    EXPECT_EQ(effect_name(s.effect), std::string(effect_name(c.effect))) << "sql: " << c.sql;
    EXPECT_EQ(s.name, c.name) << "sql: " << c.sql;
    if (!c.statement.empty()) {
      EXPECT_EQ(s.statement, c.statement) << "sql: " << c.sql;
    }
  }
}

// ---- Session effects ----

// SET forms at session level are tracked with their (lower-case) name and replay text.
TEST(QueryScanTest, SetForms) {
  check_effects({
      {"SET x = 1", SessionEffect::Set, "x", "SET x = 1"},
      {"SET x TO 'a'", SessionEffect::Set, "x", "SET x TO 'a'"},
      {"set search_path to app, public", SessionEffect::Set, "search_path", ""},
      {"SET SESSION x = 1", SessionEffect::Set, "x", "SET SESSION x = 1"},
      {"SET Application_Name = 'MyApp'", SessionEffect::Set, "application_name", ""},
      {"SET my.custom_var = 'v'", SessionEffect::Set, "my.custom_var", ""},
      {"SET TIME ZONE 'UTC'", SessionEffect::Set, "timezone", "SET TIME ZONE 'UTC'"},
      {"SET SESSION TIME ZONE 'UTC'", SessionEffect::Set, "timezone", ""},
      {"SET timezone = 'UTC'", SessionEffect::Set, "timezone", ""},
      {"SET ROLE app_reader", SessionEffect::Set, "role", ""},
      {"SET SESSION AUTHORIZATION bob", SessionEffect::Set, "session authorization",
       "SET SESSION AUTHORIZATION bob"},
      {"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", SessionEffect::Set,
       "session characteristics", ""},
      // Trailing semicolons and blanks are not part of the replay statement.
      {"  SET x = 1 ;  \n", SessionEffect::Set, "x", "SET x = 1"},
  });
}

// Transaction-scoped SET forms are not session settings.
TEST(QueryScanTest, TransactionScopedSetIgnored) {
  check_effects({
      {"SET LOCAL x = 1", SessionEffect::None, "", ""},
      {"set local statement_timeout = 0", SessionEffect::None, "", ""},
      {"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", SessionEffect::None, "", ""},
      {"set transaction read only", SessionEffect::None, "", ""},
      {"SET CONSTRAINTS ALL DEFERRED", SessionEffect::None, "", ""},
      {"SET", SessionEffect::None, "", ""},
  });
}

// RESET forms.
TEST(QueryScanTest, ResetForms) {
  check_effects({
      {"RESET x", SessionEffect::Reset, "x", ""},
      {"reset Search_Path;", SessionEffect::Reset, "search_path", ""},
      {"RESET TIME ZONE", SessionEffect::Reset, "timezone", ""},
      {"RESET ROLE", SessionEffect::Reset, "role", ""},
      {"RESET ALL", SessionEffect::ResetAll, "", ""},
      {"reset all;", SessionEffect::ResetAll, "", ""},
  });
}

// Regression (was a bug): RESET SESSION AUTHORIZATION scans to name "session", but SET SESSION AUTHORIZATION
// scans to "session authorization"; ClientSession::apply_setting erases by name, so after
// RESET the client's tracked "SET SESSION AUTHORIZATION bob" is still replayed on the next
// backend (the client runs as bob again after having reset its identity).
// RESET SESSION AUTHORIZATION undoes exactly what SET SESSION AUTHORIZATION tracked.
TEST(QueryScanTest, ResetSessionAuthorizationMatchesSet) {
  const QueryScan set = scan_query("SET SESSION AUTHORIZATION bob");
  const QueryScan reset = scan_query("RESET SESSION AUTHORIZATION");
  EXPECT_EQ(reset.effect, SessionEffect::Reset);
  EXPECT_EQ(reset.name, set.name);
}

// Regression (was a bug): SET NAMES and SET SCHEMA are PostgreSQL's spellings of client_encoding and
// search_path (gram.y: SET NAMES -> client_encoding, SET SCHEMA -> search_path), but the
// scanner names them "names" and "schema", so RESET client_encoding / RESET search_path
// leave the tracked SET in place and it is replayed on the next backend.
// SET NAMES / SET SCHEMA are tracked under the names RESET uses for them.
TEST(QueryScanTest, SetAliasesUseParameterNames) {
  EXPECT_EQ(scan_query("SET NAMES 'LATIN1'").name, scan_query("RESET client_encoding").name);
  EXPECT_EQ(scan_query("SET SCHEMA 'app'").name, scan_query("RESET search_path").name);
}

// DISCARD ALL is answered by pgmux; DISCARD TEMP undoes the temp-table pin; the others do nothing.
TEST(QueryScanTest, DiscardForms) {
  check_effects({
      {"DISCARD ALL", SessionEffect::DiscardAll, "", ""},
      {"discard all;", SessionEffect::DiscardAll, "", ""},
      {"DISCARD PLANS", SessionEffect::None, "", ""},
      {"DISCARD SEQUENCES", SessionEffect::None, "", ""},
  });
  EXPECT_EQ(scan_query("DISCARD TEMP").unpins, kPinTempTable);
  EXPECT_EQ(scan_query("discard temporary").unpins, kPinTempTable);
  EXPECT_EQ(scan_query("DISCARD ALL").unpins, 0);
}

// DEALLOCATE [PREPARE] name / ALL; unquoted names fold to lower case, quoted ones do not.
TEST(QueryScanTest, DeallocateForms) {
  check_effects({
      {"DEALLOCATE s1", SessionEffect::Deallocate, "s1", ""},
      {"DEALLOCATE PREPARE s1", SessionEffect::Deallocate, "s1", ""},
      {"deallocate prepare S1;", SessionEffect::Deallocate, "s1", ""},
      {"DEALLOCATE \"MyStmt\"", SessionEffect::Deallocate, "MyStmt", ""},
      {"DEALLOCATE ALL", SessionEffect::DeallocateAll, "", ""},
      {"DEALLOCATE PREPARE ALL", SessionEffect::DeallocateAll, "", ""},
      {"deallocate all;", SessionEffect::DeallocateAll, "", ""},
  });
}

// Statements that do not concern session state scan to nothing.
TEST(QueryScanTest, OrdinaryStatementsScanToNothing) {
  for (const char* sql :
       {"SELECT 1", "INSERT INTO t VALUES (1)", "UPDATE settings SET x = 1", "BEGIN", "COMMIT",
        "SHOW search_path", "", "   ", "-- only a comment", "SELECT 'SET x = 1'",
        "CREATE TABLE t (a int)", "CREATE UNLOGGED TABLE t (a int)"}) {
    const QueryScan s = scan_query(sql);
    EXPECT_EQ(s.effect, SessionEffect::None) << sql;
    EXPECT_EQ(s.pins, 0) << sql;
    EXPECT_EQ(s.unpins, 0) << sql;
    EXPECT_FALSE(s.untracked_settings) << sql;
  }
}

// Leading comments and whitespace are skipped before the first keyword.
TEST(QueryScanTest, LeadingCommentsAndWhitespace) {
  check_effects({
      {"\n\t  SET x = 1", SessionEffect::Set, "x", ""},
      {"-- set the zone\nSET TIME ZONE 'UTC'", SessionEffect::Set, "timezone", ""},
      {"/* app=web */ SET x = 1", SessionEffect::Set, "x", ""},
      {"/* a */ -- b\n /* c */ RESET ALL", SessionEffect::ResetAll, "", ""},
      {"/*unterminated SET x = 1", SessionEffect::None, "", ""},
  });
  EXPECT_EQ(scan_query("/* hold */ LISTEN ch").pins, kPinListen);
}

// Regression (was a bug): PostgreSQL block comments nest ("/* a /* b */ c */" is one comment), but
// Words::skip_space ends the comment at the first "*/", so the first word becomes "c"
// and the SET goes untracked.
// A nested block comment before SET is skipped as a whole.
TEST(QueryScanTest, NestedBlockComment) {
  check_effects({{"/* a /* b */ c */ SET x = 1", SessionEffect::Set, "x", ""}});
}

// Keywords are recognised in any case.
TEST(QueryScanTest, CaseInsensitive) {
  check_effects({
      {"sEt X = 1", SessionEffect::Set, "x", ""},
      {"Reset ALL", SessionEffect::ResetAll, "", ""},
      {"DiScArD aLl", SessionEffect::DiscardAll, "", ""},
      {"Set Local x = 1", SessionEffect::None, "", ""},
  });
  EXPECT_EQ(scan_query("listen ch").pins, kPinListen);
  EXPECT_EQ(scan_query("SELECT PG_ADVISORY_LOCK(1)").pins, kPinAdvisoryLock);
  EXPECT_TRUE(scan_query("SELECT SET_CONFIG('x', '1', false)").untracked_settings);
}

// ---- Multi-statement queries ----

// Several statements are never tracked; a SET/RESET/DISCARD among them marks settings unknown.
TEST(QueryScanTest, MultiStatement) {
  struct Case {
    std::string sql;
    bool untracked;
  };
  const std::vector<Case> cases = {
      {"SELECT 1; SELECT 2", false},
      {"SELECT 1; SET x = 1", true},
      {"SELECT 1;SET x = 1", true},
      {"SELECT 1; /* c */ set x = 1", true},
      {"SELECT 1; RESET x", true},
      {"SELECT 1; DISCARD ALL", true},
      {"SET x = 1; SELECT 1", true},
      {"RESET ALL; SELECT 1", true},
      {"DISCARD ALL; SELECT 1", true},
      {"BEGIN; SET LOCAL x = 1; COMMIT", true},  // conservative
      {"BEGIN; SELECT 1; COMMIT;", false},
  };
  for (const auto& c : cases) {
    const QueryScan s = scan_query(c.sql);
    EXPECT_EQ(s.effect, SessionEffect::None) << c.sql;
    EXPECT_EQ(s.untracked_settings, c.untracked) << c.sql;
  }
}

// A single statement with a trailing semicolon is not multi-statement.
TEST(QueryScanTest, TrailingSemicolonIsSingleStatement) {
  EXPECT_EQ(scan_query("SET x = 1;").effect, SessionEffect::Set);
  EXPECT_EQ(scan_query("SET x = 1;  \n ").effect, SessionEffect::Set);
  EXPECT_EQ(scan_query("DEALLOCATE ALL;;").effect, SessionEffect::DeallocateAll);
  EXPECT_FALSE(scan_query("SET x = 1;").untracked_settings);
}

// A semicolon inside a literal makes the query look multi-statement: untracked, never wrong.
TEST(QueryScanTest, SemicolonInLiteralIsConservative) {
  const QueryScan s = scan_query("SET application_name = 'a;b'");
  EXPECT_EQ(s.effect, SessionEffect::None);
  EXPECT_TRUE(s.untracked_settings);
}

// set_config() anywhere changes settings pgmux cannot follow.
TEST(QueryScanTest, SetConfigAnywhereIsUntracked) {
  for (const char* sql : {"SELECT set_config('search_path', 'app', false)",
                          "select 1, set_config('x.y', '2', true) from t",
                          "WITH c AS (SELECT set_config('a.b', 'c', false)) SELECT * FROM c",
                          "SELECT 1; SELECT set_config('x.y', '1', false)"}) {
    EXPECT_TRUE(scan_query(sql).untracked_settings) << sql;
  }
}

// ---- Pins ----

struct PinCase {
  std::string sql;
  std::uint8_t pins;
  std::uint8_t unpins;
};

void check_pins(const std::vector<PinCase>& cases) {
  for (const auto& c : cases) {
    const QueryScan s = scan_query(c.sql);
    EXPECT_EQ(int(s.pins), int(c.pins)) << "sql: " << c.sql;
    EXPECT_EQ(int(s.unpins), int(c.unpins)) << "sql: " << c.sql;
    EXPECT_EQ(int(scan_pins(c.sql)), int(c.pins)) << "scan_pins sql: " << c.sql;
  }
}

// LISTEN pins; UNLISTEN * unpins; UNLISTEN of one channel does not.
TEST(QueryScanTest, ListenPins) {
  check_pins({
      {"LISTEN jobs", kPinListen, 0},
      {"listen \"Jobs\";", kPinListen, 0},
      {"UNLISTEN *", 0, kPinListen},
      {"unlisten  *;", 0, kPinListen},
      {"UNLISTEN jobs", 0, 0},
      {"NOTIFY jobs", 0, 0},
  });
}

// Session advisory locks pin; the _xact_ variants (released at commit) do not.
TEST(QueryScanTest, AdvisoryLockPins) {
  check_pins({
      {"SELECT pg_advisory_lock(1)", kPinAdvisoryLock, 0},
      {"SELECT pg_advisory_lock(1, 2)", kPinAdvisoryLock, 0},
      {"SELECT pg_advisory_lock_shared(1)", kPinAdvisoryLock, 0},
      {"SELECT pg_try_advisory_lock(1)", kPinAdvisoryLock, 0},
      {"select pg_try_advisory_lock_shared(1)", kPinAdvisoryLock, 0},
      {"SELECT x FROM t WHERE pg_try_advisory_lock(t.id)", kPinAdvisoryLock, 0},
      {"SELECT pg_advisory_xact_lock(1)", 0, 0},
      {"SELECT pg_advisory_xact_lock_shared(1)", 0, 0},
      {"SELECT pg_try_advisory_xact_lock(1)", 0, 0},
      {"SELECT pg_try_advisory_xact_lock_shared(1)", 0, 0},
      {"SELECT pg_advisory_unlock(1)", 0, 0},
      {"SELECT pg_advisory_unlock_all()", 0, kPinAdvisoryLock},
      {"SELECT 1; SELECT pg_advisory_lock(1)", kPinAdvisoryLock, 0},
  });
}

// Temporary tables (any CREATE ... TEMP/TEMPORARY form) pin.
TEST(QueryScanTest, TempTablePins) {
  check_pins({
      {"CREATE TEMP TABLE t (a int)", kPinTempTable, 0},
      {"create temporary table t (a int)", kPinTempTable, 0},
      {"CREATE GLOBAL TEMP TABLE t (a int)", kPinTempTable, 0},
      {"CREATE LOCAL TEMPORARY TABLE t (a int)", kPinTempTable, 0},
      {"CREATE TEMP TABLE t AS SELECT 1", kPinTempTable, 0},
      {"CREATE OR REPLACE TEMP VIEW v AS SELECT 1", kPinTempTable, 0},
      {"CREATE TEMP SEQUENCE s", kPinTempTable, 0},
      {"CREATE TABLE temp (a int)", 0, 0},
      {"DISCARD TEMP", 0, kPinTempTable},
  });
}

// Regression (was a bug): SELECT ... INTO TEMP creates a temporary table (documented in SELECT INTO) but is
// not recognised: the client is not pinned and loses its table at the next transaction.
// SELECT ... INTO TEMP[ORARY] [TABLE] pins like CREATE TEMP TABLE.
TEST(QueryScanTest, SelectIntoTempPins) {
  check_pins({
      {"SELECT * INTO TEMP TABLE t FROM src", kPinTempTable, 0},
      {"SELECT a INTO TEMPORARY t FROM src", kPinTempTable, 0},
  });
}

// DECLARE ... WITH HOLD pins; CLOSE ALL unpins; a cursor without hold does not pin.
TEST(QueryScanTest, HoldCursorPins) {
  check_pins({
      {"DECLARE c CURSOR WITH HOLD FOR SELECT 1", kPinHoldCursor, 0},
      {"declare c no scroll cursor with hold for select 1", kPinHoldCursor, 0},
      {"DECLARE c CURSOR FOR SELECT 1", 0, 0},
      {"DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1", 0, 0},
      {"CLOSE ALL", 0, kPinHoldCursor},
      {"close all;", 0, kPinHoldCursor},
      {"CLOSE c", 0, 0},
  });
}

// Regression (was a bug): DECLARE ... WITH HOLD is matched as the literal text "with hold", so any other
// whitespace between the keywords (a newline, a tab, two spaces) is missed and the
// client is not pinned; the cursor then vanishes under transaction pooling.
// WITH HOLD separated by any whitespace pins.
TEST(QueryScanTest, HoldCursorAnyWhitespace) {
  check_pins({
      {"DECLARE c CURSOR WITH\n  HOLD FOR SELECT 1", kPinHoldCursor, 0},
      {"DECLARE c CURSOR WITH\tHOLD FOR SELECT 1", kPinHoldCursor, 0},
      {"DECLARE c CURSOR WITH  HOLD FOR SELECT 1", kPinHoldCursor, 0},
  });
}

// A single SQL PREPARE/EXECUTE is tracked (name, and the text after the name) for renaming.
TEST(QueryScanTest, SqlPrepareAndExecuteTracked) {
  check_effects({
      {"PREPARE q(int) AS SELECT $1", SessionEffect::SqlPrepare, "q", "(int) AS SELECT $1"},
      {"prepare Q as select 1;", SessionEffect::SqlPrepare, "q", "as select 1"},
      {"PREPARE \"MyQ\" AS SELECT 1", SessionEffect::SqlPrepare, "MyQ", "AS SELECT 1"},
      {"/* c */ PREPARE q AS SELECT 1", SessionEffect::SqlPrepare, "q", "AS SELECT 1"},
      {"EXECUTE q(1, 'x')", SessionEffect::SqlExecute, "q", "(1, 'x')"},
      {"execute q", SessionEffect::SqlExecute, "q", ""},
  });
  EXPECT_EQ(scan_query("PREPARE q AS SELECT 1").pins, 0);
  EXPECT_EQ(scan_query("EXECUTE q(1)").pins, 0);
}

// SQL PREPARE/EXECUTE that cannot be renamed (inside a multi-statement query, or without
// a name) pins instead.
TEST(QueryScanTest, SqlPrepareUntrackablePins) {
  check_pins({
      {"PREPARE q AS SELECT 1; EXECUTE q", kPinSqlPrepare, 0},
      {"EXECUTE q; SELECT 1", kPinSqlPrepare, 0},
      {"PREPARE", kPinSqlPrepare, 0},
  });
  EXPECT_EQ(scan_query("PREPARE q AS SELECT 1; EXECUTE q").effect, SessionEffect::None);
}

// Regression (was a bug): "PREPARE TRANSACTION 'gid'" (two-phase commit) scans as SqlPrepare of a statement
// named "transaction" with text "'gid'"; ClientSession::handle_sql_prepared then sends
// "PREPARE pgmux_<id> 'gid'" (a syntax error) instead of the client's statement, and a
// second PREPARE TRANSACTION is refused with "prepared statement "transaction" already exists".
// PREPARE TRANSACTION is not a prepared statement and is passed through untouched.
TEST(QueryScanTest, PrepareTransactionIsNotSqlPrepare) {
  for (const char* sql : {"PREPARE TRANSACTION 'gid-1'", "prepare transaction 'x';"}) {
    const QueryScan s = scan_query(sql);
    EXPECT_EQ(effect_name(s.effect), std::string("None")) << sql;
    EXPECT_EQ(s.pins, 0) << sql;
  }
}

// Regression (was a bug): only the first statement of a multi-statement Query is checked for LISTEN,
// CREATE TEMP, DECLARE ... WITH HOLD and PREPARE, though the scanner promises to err on
// the side of pinning; "SELECT 1; LISTEN jobs" leaves the client unpinned.
// A pinning statement after the first one in a multi-statement Query still pins.
TEST(QueryScanTest, MultiStatementLaterStatementPins) {
  check_pins({
      {"SELECT 1; LISTEN jobs", kPinListen, 0},
      {"BEGIN; CREATE TEMP TABLE t (a int); COMMIT", kPinTempTable, 0},
      {"SELECT 1; PREPARE q AS SELECT 1", kPinSqlPrepare, 0},
  });
}

// Several reasons in one query are all reported.
TEST(QueryScanTest, SeveralPinsAtOnce) {
  const QueryScan s = scan_query("LISTEN a; SELECT pg_advisory_lock(1)");
  EXPECT_EQ(s.pins, kPinListen | kPinAdvisoryLock);
}

// to_string_pins names one reason for logs.
TEST(QueryScanTest, PinNames) {
  EXPECT_EQ(to_string_pins(kPinListen), "listen");
  EXPECT_EQ(to_string_pins(kPinAdvisoryLock), "advisory_lock");
  EXPECT_EQ(to_string_pins(kPinTempTable), "temp_table");
  EXPECT_EQ(to_string_pins(kPinHoldCursor), "hold_cursor");
  EXPECT_EQ(to_string_pins(kPinSqlPrepare), "sql_prepare");
  EXPECT_EQ(to_string_pins(0), "");
}

}  // namespace
}  // namespace pooler::client
