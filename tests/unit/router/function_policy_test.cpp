#include "router/function_policy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace router {
namespace {

struct FunctionCase {
  const char* function;
  bool needs_primary;
};

// Each rule of FunctionPolicy, in order of precedence, one row each.
TEST(FunctionPolicyTest, Rules) {
  const FunctionPolicy policy(
      /*volatile_functions=*/{"random", "nextval", "My_Volatile", "both", "pg_advisory_lock",
                              "shadowed"},
      /*read_only_functions=*/{"both", "app.shadowed", "nextval", "Pg_Sleep"},
      /*write_functions=*/{"audit.log_event", "stamp", "both"});
  const std::vector<FunctionCase> cases = {
      {"audit.log_event", true},      // 1: write_functions, qualified
      {"log_event", false},           //    ... only that schema's; not volatile
      {"stamp", true},                // 1: write_functions, bare
      {"x.stamp", true},              //    ... any schema
      {"both", true},                 // 1 beats 3
      {"nextval", true},              // 2: always primary, read_only_functions cannot override
      {"pg_catalog.nextval", true},   // 2: qualified as written
      {"setval", true},               // 2
      {"currval", true},              // 2
      {"pg_advisory_xact_lock", true},  // 2: prefix
      {"pg_try_advisory_lock", true},   // 2: prefix
      {"set_config", true},           // 2
      {"pg_notify", true},            // 2
      {"lo_import", true},            // 2: prefix
      {"dblink_exec", true},          // 2: prefix
      {"txid_current", true},         // 2: stable in pg_proc, but assigns a transaction id
      {"pg_current_wal_lsn", true},   // 2: prefix
      {"pg_terminate_backend", true}, // 2
      {"app.shadowed", false},        // 3: read_only_functions, qualified
      {"shadowed", true},             //    ... the bare name stays volatile
      {"pg_sleep", false},            // 3 (and 4)
      {"random", false},              // 4: harmless although volatile
      {"gen_random_uuid", false},     // 4
      {"clock_timestamp", false},     // 4
      {"pg_is_in_recovery", false},   // 4
      {"pg_last_wal_replay_lsn", false},  // 4
      {"my_volatile", true},          // 5: volatile in pg_proc (case-insensitive)
      {"other.my_volatile", true},    // 5: bare name, any schema
      {"lower", false},               // 6: loaded, not volatile
      {"now", false},                 // 6
  };
  for (const auto& c : cases) {
    EXPECT_EQ(policy.needs_primary(c.function), c.needs_primary) << c.function;
  }
  EXPECT_TRUE(policy.loaded());
}

// Not loaded yet: anything not on a built-in or configured list needs the primary.
TEST(FunctionPolicyTest, Unloaded) {
  const FunctionPolicy policy = FunctionPolicy::unloaded({"safe"}, {});
  EXPECT_FALSE(policy.loaded());
  EXPECT_TRUE(policy.needs_primary("lower"));
  EXPECT_FALSE(policy.needs_primary("safe"));
  EXPECT_FALSE(policy.needs_primary("random"));
  EXPECT_TRUE(policy.needs_primary("nextval"));
  EXPECT_TRUE(FunctionPolicy().needs_primary("anything"));
}

// Under a replica hint only the must-run-on-primary rules (1 and 2) remain.
TEST(FunctionPolicyTest, FirstNeedingPrimary) {
  const FunctionPolicy policy({"v"}, {}, {"w"});
  EXPECT_EQ(policy.first_needing_primary({"lower", "v", "nextval"}), "v");
  EXPECT_EQ(policy.first_needing_primary({"lower", "v", "nextval"}, true), "nextval");
  EXPECT_EQ(policy.first_needing_primary({"lower", "v"}, true), "");
  EXPECT_EQ(policy.first_needing_primary({"w"}, true), "w");
  EXPECT_EQ(policy.first_needing_primary({}), "");
}

TEST(FunctionPolicyTest, Query) {
  const std::string q = FunctionPolicy::volatile_functions_query();
  EXPECT_NE(q.find("pg_proc"), std::string::npos);
  EXPECT_NE(q.find("provolatile = 'v'"), std::string::npos);
}

}  // namespace
}  // namespace router
