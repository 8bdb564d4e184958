#include "router/router.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "parser/analyzer.h"

namespace router {
namespace {

parser::Analysis analysed(std::string_view sql) {
  auto a = parser::analyze(sql);
  EXPECT_TRUE(a.has_value()) << sql;
  return a ? std::move(*a) : parser::Analysis{};
}

const FunctionPolicy& policy() {
  static const FunctionPolicy p(
      /*volatile_functions=*/{"nextval", "random", "my_volatile", "safe_fn", "pg_advisory_lock",
                              "clock_timestamp"},
      /*read_only_functions=*/{"app.safe_fn"},
      /*write_functions=*/{"audit_log"});
  return p;
}

std::vector<ReplicaState> two_replicas() {
  return {ReplicaState{.lag_bytes = 0, .lag_ms = 0, .replay_lsn = 1000},
          ReplicaState{.lag_bytes = 0, .lag_ms = 0, .replay_lsn = 1000}};
}

RouterConfig bounded() {
  return RouterConfig{.max_replica_lag_bytes = 1 << 20, .max_replica_lag_ms = 5000};
}

struct Situation {
  const char* name;
  const char* sql;
  Target target;
  int replica;
  const char* reason;
  SessionView session;
  std::vector<ReplicaState> replicas;
  RouterConfig config;
  PrimaryState primary;
};

// A row that must go to the primary (or nowhere) for `reason`.
Situation P(const char* name, const char* sql, const char* reason, SessionView session = {},
            std::vector<ReplicaState> replicas = two_replicas(), RouterConfig config = bounded(),
            Target target = Target::Primary) {
  return {name, sql, target, -1, reason, session, std::move(replicas), config, {}};
}

// A row that must go to replica `replica`.
Situation R(const char* name, const char* sql, int replica, SessionView session = {},
            std::vector<ReplicaState> replicas = two_replicas(), RouterConfig config = bounded(),
            PrimaryState primary = {}) {
  return {name, sql, Target::Replica, replica, "replica", session, std::move(replicas), config,
          primary};
}

std::vector<ReplicaState> with(std::vector<ReplicaState> r, std::size_t i, ReplicaState s) {
  r[i] = s;
  return r;
}

constexpr ReplicaState kFresh{.lag_bytes = 0, .lag_ms = 0, .replay_lsn = 1000};
constexpr ReplicaState kUnhealthy{.healthy = false, .lag_bytes = 0, .lag_ms = 0};
constexpr ReplicaState kBanned{.banned = true, .lag_bytes = 0, .lag_ms = 0};
constexpr ReplicaState kLagBytes{.lag_bytes = 2 << 20, .lag_ms = 0};
constexpr ReplicaState kLagMs{.lag_bytes = 100, .lag_ms = 60000};
constexpr ReplicaState kIdlePrimary{.lag_bytes = 0, .lag_ms = 60000};
constexpr ReplicaState kLagUnknown{};
constexpr ReplicaState kNoWeight{.lag_bytes = 0, .lag_ms = 0, .weight = 0};
constexpr ReplicaState kBusy{.lag_bytes = 0, .lag_ms = 0, .replay_lsn = 1000, .active = 3};
constexpr ReplicaState kBehind{.lag_bytes = 0, .lag_ms = 0, .replay_lsn = 500};

// One row per routing rule: the situation, and the route it must get.
TEST(RouterTest, Situations) {
  const RouterConfig never{.primary_reads = RouterConfig::PrimaryReads::Never,
                           .max_replica_lag_bytes = 1 << 20};
  const RouterConfig always{.primary_reads = RouterConfig::PrimaryReads::Always};
  const RouterConfig unbounded{};
  const std::vector<Situation> situations = {
      R("autocommit select", "SELECT * FROM t WHERE id = 1", 0),
      R("show", "SHOW search_path", 0),
      R("explain select", "EXPLAIN SELECT 1", 0),
      P("insert", "INSERT INTO t VALUES (1)", "write"),
      P("for update", "SELECT * FROM t FOR UPDATE", "write"),
      P("select into", "SELECT * INTO n FROM t", "write"),
      P("data-modifying cte", "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "write"),
      P("explain analyze of a write", "EXPLAIN ANALYZE DELETE FROM t", "write"),
      P("lock", "LOCK TABLE t", "write"),
      P("do", "DO $$ BEGIN END $$", "write"),
      P("call", "CALL p()", "write"),
      P("copy from", "COPY t FROM STDIN", "write"),
      P("copy of a write", "COPY (INSERT INTO t VALUES (1) RETURNING *) TO STDOUT", "write"),
      P("listen", "LISTEN ch", "write"),
      P("notify", "NOTIFY ch", "write"),
      P("set", "SET search_path = a", "write"),
      P("prepare of a write", "PREPARE p AS DELETE FROM t", "write"),
      R("prepare of a read", "PREPARE p AS SELECT 1", 0),
      P("execute", "EXECUTE p", "write"),
      P("multi-statement with a write", "SELECT 1; UPDATE t SET a = 1; SELECT 2", "write"),
      R("multi-statement reads", "SELECT 1; SELECT 2", 0),
      P("parse error", "SELEC 1", "parse error"),
      P("empty query", "", "parse error"),
      P("inside a read-write transaction", "SELECT 1", "read-write transaction",
        {.in_transaction = true}),
      R("inside a read-only transaction", "SELECT 1", 0,
        {.in_transaction = true, .transaction_read_only = true}),
      P("begin", "BEGIN", "read-write transaction"),
      R("begin read only", "BEGIN READ ONLY", 0),
      R("begin with default read only", "BEGIN", 0, {.default_read_only = true}),
      P("begin read write despite default", "BEGIN READ WRITE", "read-write transaction",
        {.default_read_only = true}),
      R("begin then set transaction read only", "BEGIN; SET TRANSACTION READ ONLY; SELECT 1", 0),
      P("begin then set transaction read write", "BEGIN; SET TRANSACTION READ WRITE",
        "read-write transaction"),
      R("whole transaction in one query", "BEGIN; SELECT 1; COMMIT", 0),
      P("commit and chain keeps it open", "BEGIN; SELECT 1; COMMIT AND CHAIN",
        "read-write transaction"),
      P("hint primary", "/* pgmux:primary */ SELECT 1", "hint"),
      R("hint replica skips volatile rule", "/* pgmux:replica */ SELECT my_volatile()", 0),
      P("hint replica keeps always-primary", "/* pgmux:replica */ SELECT nextval('s')",
        "function"),
      P("hint replica on a write", "/* pgmux:replica */ INSERT INTO t VALUES (1)", "write"),
      P("hint replica in a read-write transaction", "/* pgmux:replica */ SELECT 1",
        "read-write transaction", {.in_transaction = true}),
      R("hint replica skips read-your-writes", "/* pgmux:replica */ SELECT 1", 0,
        {.must_read_primary = true}),
      P("session route primary", "SELECT 1", "session route", {.session_route = Target::Primary}),
      R("session route replica", "SELECT my_volatile()", 0, {.session_route = Target::Replica}),
      R("comment hint beats session route", "/* pgmux:replica */ SELECT 1", 0,
        {.session_route = Target::Primary}),
      P("volatile user function", "SELECT my_volatile()", "function"),
      P("volatile function in a subquery", "SELECT * FROM t WHERE a = (SELECT my_volatile())",
        "function"),
      P("nextval", "SELECT nextval('s')", "function"),
      P("advisory lock", "SELECT pg_advisory_lock(1)", "function"),
      P("set_config", "SELECT set_config('a.b', 'c', false)", "function"),
      R("harmless volatile", "SELECT random(), clock_timestamp()", 0),
      R("stable function", "SELECT lower(name) FROM t", 0),
      R("read_only_functions override", "SELECT app.safe_fn()", 0),
      P("override is schema-specific", "SELECT safe_fn()", "function"),
      P("write_functions", "SELECT audit_log('x')", "function"),
      P("read-your-writes window", "SELECT 1", "read-your-writes", {.must_read_primary = true}),
      R("read-your-writes lsn: caught-up replica", "SELECT 1", 1, {.min_replay_lsn = 800},
        with(two_replicas(), 0, kBehind)),
      P("read-your-writes lsn: none caught up", "SELECT 1", "read-your-writes",
        {.min_replay_lsn = 800}, {kBehind, kBehind}, never),
      R("unhealthy replica skipped", "SELECT 1", 1, {}, with(two_replicas(), 0, kUnhealthy)),
      R("banned replica skipped", "SELECT 1", 1, {}, with(two_replicas(), 0, kBanned)),
      R("lag in bytes over bound", "SELECT 1", 1, {}, with(two_replicas(), 0, kLagBytes)),
      R("lag in ms over bound", "SELECT 1", 1, {}, with(two_replicas(), 0, kLagMs)),
      R("old replay timestamp, nothing to replay", "SELECT 1", 0, {},
        with(two_replicas(), 0, kIdlePrimary)),
      R("unknown lag with a bound", "SELECT 1", 1, {}, with(two_replicas(), 0, kLagUnknown)),
      R("unknown lag without bounds", "SELECT 1", 0, {}, {kLagUnknown}, unbounded),
      R("weight zero skipped", "SELECT 1", 1, {}, with(two_replicas(), 0, kNoWeight)),
      P("all replicas out: fallback", "SELECT 1", "fallback: no replica available", {},
        {kUnhealthy, kBanned}),
      P("no replicas: fallback", "SELECT 1", "fallback: no replica available", {}, {}),
      P("all replicas out, primary_reads never", "SELECT 1", "no replica available", {},
        {kUnhealthy, kLagBytes}, never, Target::None),
      P("writes ignore primary_reads never", "DELETE FROM t", "write", {}, {}, never),
      R("least outstanding", "SELECT 1", 1, {}, with(two_replicas(), 0, kBusy)),
      R("weighted least outstanding", "SELECT 1", 0, {},
        {ReplicaState{.lag_bytes = 0, .lag_ms = 0, .active = 2, .weight = 3},
         ReplicaState{.lag_bytes = 0, .lag_ms = 0, .active = 1, .weight = 1}}),
      P("primary_reads always: idle primary", "SELECT 1", "primary read", {}, {kBusy, kBusy},
        always),
      R("primary_reads always: busy primary", "SELECT 1", 1, {}, {kBusy, kFresh}, always,
        PrimaryState{.active = 5}),
      R("primary_reads always, replica hint", "/* pgmux:replica */ SELECT 1", 0, {}, {kBusy},
        always),
  };
  for (const auto& s : situations) {
    std::uint64_t counter = 0;
    const Route r = decide(analysed(s.sql), s.session, s.replicas, s.config, policy(), counter,
                           s.primary);
    EXPECT_EQ(r.target, s.target) << s.name << ": " << to_string(r.target) << " " << r.reason;
    EXPECT_EQ(r.replica, s.replica) << s.name;
    EXPECT_EQ(r.reason, s.reason) << s.name;
  }
}

std::map<int, int> spread(const std::vector<ReplicaState>& replicas, RouterConfig config,
                          int n) {
  const parser::Analysis a = analysed("SELECT 1");
  std::uint64_t counter = 0;
  std::map<int, int> seen;
  for (int i = 0; i < n; ++i) {
    const Route r = decide(a, {}, replicas, config, policy(), counter);
    ++seen[r.replica];
  }
  return seen;
}

// Round robin takes the replicas in turn, in proportion to their weights.
TEST(RouterTest, RoundRobinWeighted) {
  RouterConfig config{.balance = RouterConfig::Balance::RoundRobin};
  EXPECT_EQ(spread({kFresh, kFresh, kFresh}, config, 9),
            (std::map<int, int>{{0, 3}, {1, 3}, {2, 3}}));
  ReplicaState heavy = kFresh;
  heavy.weight = 3;
  EXPECT_EQ(spread({kFresh, heavy, kUnhealthy}, config, 8), (std::map<int, int>{{0, 2}, {1, 6}}));
}

// Equally loaded replicas take turns under least-outstanding too.
TEST(RouterTest, LeastOutstandingTiesRotate) {
  EXPECT_EQ(spread({kFresh, kFresh}, RouterConfig{}, 10), (std::map<int, int>{{0, 5}, {1, 5}}));
}

// Before pg_proc is read, unknown functions stay on the primary; built-in lists still apply.
TEST(RouterTest, UnloadedPolicy) {
  const FunctionPolicy unloaded = FunctionPolicy::unloaded({"app.safe_fn"}, {});
  std::uint64_t counter = 0;
  auto route = [&](const char* sql) {
    return decide(analysed(sql), {}, two_replicas(), bounded(), unloaded, counter);
  };
  EXPECT_EQ(route("SELECT lower('A')").reason, "function");
  EXPECT_EQ(route("SELECT random()").target, Target::Replica);
  EXPECT_EQ(route("SELECT app.safe_fn()").target, Target::Replica);
  EXPECT_EQ(route("SELECT 1").target, Target::Replica);
}

// observe() carries what completed queries did into the next decision.
TEST(RouterTest, ObserveSessionState) {
  SessionView s;
  observe(analysed("SET default_transaction_read_only = on"), s);
  EXPECT_TRUE(s.default_read_only);
  observe(analysed("BEGIN"), s);
  EXPECT_TRUE(s.in_transaction);
  EXPECT_TRUE(s.transaction_read_only);
  observe(analysed("COMMIT"), s);
  EXPECT_FALSE(s.in_transaction);
  observe(analysed("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE"), s);
  EXPECT_FALSE(s.default_read_only);
  observe(analysed("BEGIN; SET TRANSACTION READ ONLY"), s);
  EXPECT_TRUE(s.transaction_read_only);
  observe(analysed("ROLLBACK"), s);
  EXPECT_FALSE(s.transaction_read_only);

  observe(analysed("SET pgmux.route = 'Replica'"), s);
  EXPECT_EQ(s.session_route, Target::Replica);
  observe(analysed("SET pgmux.route = auto"), s);
  EXPECT_EQ(s.session_route, std::nullopt);
  observe(analysed("SET pgmux.route TO 'primary'"), s);  // PRIMARY is a reserved word
  EXPECT_EQ(s.session_route, Target::Primary);
  observe(analysed("SET LOCAL pgmux.route = 'replica'"), s);  // transaction-scoped: ignored
  EXPECT_EQ(s.session_route, Target::Primary);
  observe(analysed("RESET pgmux.route"), s);
  EXPECT_EQ(s.session_route, std::nullopt);

  observe(analysed("SET default_transaction_read_only TO 'yes'; SET pgmux.route = 'primary'"), s);
  EXPECT_TRUE(s.default_read_only);
  observe(analysed("DISCARD ALL"), s);
  EXPECT_FALSE(s.default_read_only);
  EXPECT_EQ(s.session_route, std::nullopt);
  observe(analysed("SET default_transaction_read_only = 1"), s);
  observe(analysed("RESET ALL"), s);
  EXPECT_FALSE(s.default_read_only);
  observe(analysed("SELEC 1"), s);  // parse errors change nothing
}

TEST(RouterTest, RouteFromSetting) {
  EXPECT_EQ(route_from_setting("primary"), Target::Primary);
  EXPECT_EQ(route_from_setting("REPLICA"), Target::Replica);
  EXPECT_EQ(route_from_setting("auto"), std::nullopt);
  EXPECT_EQ(route_from_setting(""), std::nullopt);
}

}  // namespace
}  // namespace router
