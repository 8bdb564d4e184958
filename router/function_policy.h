#pragma once
// Which function calls keep a query on the primary. Immutable once built; rebuild it when
// the volatile-function list is refreshed or the configuration changes, and share it
// between workers as a shared_ptr<const FunctionPolicy>.
//
// A call (name as parser::StatementInfo::functions reports it: lower-cased, "schema.name"
// when written so) needs the primary when, in this order:
//   1. its name (qualified or bare) is in write_functions (configuration);
//   2. its bare name is on the built-in always-primary list: functions that write, take
//      locks or act on the server they run on (nextval, setval, currval, lastval,
//      pg_advisory_*, pg_try_advisory_*, set_config, pg_notify, lo_*, loread, lowrite,
//      dblink*, txid_current, pg_current_xact_id, pg_current_wal_*, pg_switch_wal,
//      pg_cancel_backend, pg_terminate_backend, replication slot and origin functions ...).
//      read_only_functions cannot override these: on a replica they fail or act on the
//      wrong server;
//   3. not if its bare name, or its name as written, is in read_only_functions
//      (configuration: "name" matches any schema, "schema.name" only that call);
//   4. not if its bare name is on the built-in harmless list: volatile functions whose
//      result on a replica is as good as on the primary (random, gen_random_uuid,
//      clock_timestamp, timeofday, pg_sleep*, pg_is_in_recovery, replay position and
//      relation-size functions ...);
//   5. yes if its bare name is a volatile function in the primary's pg_proc (any schema:
//      a name volatile anywhere counts as volatile everywhere);
//   6. yes if the volatile list has not been loaded yet; otherwise no.

#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace router {

class FunctionPolicy {
 public:
  // SQL for the primary: one text column, the names of volatile functions.
  static const char* volatile_functions_query();

  // Before the first pg_proc read: every call not on a built-in list needs the primary.
  FunctionPolicy() = default;
  // Names are matched case-insensitively (all are lower-cased here).
  FunctionPolicy(const std::vector<std::string>& volatile_functions,
                 const std::vector<std::string>& read_only_functions,
                 const std::vector<std::string>& write_functions);
  // Configuration only, volatile list not loaded yet (rule 6 applies).
  static FunctionPolicy unloaded(const std::vector<std::string>& read_only_functions,
                                 const std::vector<std::string>& write_functions);

  bool needs_primary(std::string_view function) const;
  // Rules 1 and 2 only: calls that must run on the primary even under a replica hint.
  bool must_run_on_primary(std::string_view function) const;
  // The first call in `functions` that needs the primary (with `hinted_replica`: that must
  // run on the primary), or "" when none does.
  std::string_view first_needing_primary(const std::vector<std::string>& functions,
                                         bool hinted_replica = false) const;

  bool loaded() const { return loaded_; }

 private:
  bool loaded_ = false;
  std::unordered_set<std::string> volatile_;
  std::unordered_set<std::string> read_only_;
  std::unordered_set<std::string> write_;
};

}  // namespace router
