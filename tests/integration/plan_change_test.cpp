// A named statement whose table changed shape under it (issue 3): PostgreSQL answers
// "cached plan must not change result type" for ever on that connection; through pgmux the
// statement is prepared again and the request retried, so the client sees its result.

#include <gtest/gtest.h>

#include "tests/integration/pg_client.h"
#include "tests/integration/pgmux_process.h"
#include "tests/integration/postgres_environment.h"
#include "tests/integration/test_util.h"

namespace pooler::integration {
namespace {

// Several clients with the same named statement over one backend; the table gains a column.
TEST(PlanChangeTest, StaleCachedPlanIsPreparedAgain) {
  auto su = connect(pg().superuser_conninfo(Node::Primary, "app"));
  ASSERT_TRUE(su);
  ASSERT_TRUE(exec(su.conn, "DROP TABLE IF EXISTS plan_t; CREATE TABLE plan_t (a int);"
                            "INSERT INTO plan_t VALUES (1); GRANT ALL ON plan_t TO app")
                  .ok());
  PgmuxConfigOptions o;
  o.pool_size = 1;
  PgmuxProcess pgmux;
  ASSERT_TRUE(pgmux.start(PgmuxProcess::typical_config(o)));
  auto a = connect(pgmux.conninfo()), b = connect(pgmux.conninfo());
  ASSERT_TRUE(a && b);
  for (auto* c : {&a, &b}) {
    PGresult* r = PQprepare(c->conn.get(), "plan_s", "SELECT * FROM plan_t", 0, nullptr);
    ASSERT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
    PQclear(r);
    r = PQexecPrepared(c->conn.get(), "plan_s", 0, nullptr, nullptr, nullptr, 0);
    ASSERT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQresultErrorMessage(r);
    EXPECT_EQ(PQnfields(r), 1);
    PQclear(r);
  }
  ASSERT_TRUE(exec(su.conn, "ALTER TABLE plan_t ADD COLUMN b int DEFAULT 2").ok());
  for (int round = 0; round < 3; ++round) {
    for (auto* c : {&a, &b}) {
      PGresult* r = PQexecPrepared(c->conn.get(), "plan_s", 0, nullptr, nullptr, nullptr, 0);
      EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << round << ": " << PQresultErrorMessage(r);
      EXPECT_EQ(PQnfields(r), 2) << round;
      PQclear(r);
    }
  }
  EXPECT_TRUE(exec(su.conn, "DROP TABLE plan_t").ok());
}

}  // namespace
}  // namespace pooler::integration
